/*
 * Certificate store: every PEM file of a directory (the rules of HAProxy's
 * "crt <dir>"), one SSL_CTX per file, indexed by the certificate's DNS
 * names for SNI (never by IP address SANs: SNI carries no address). A
 * store is immutable once built; a reload builds a new one and the owner
 * swaps the pointer. Stores are reference counted so that a
 * connection in handshake keeps the store it started with.
 * Lookups allocate nothing: random SNI names cannot grow memory.
 */
#ifndef GH_CERTS_H
#define GH_CERTS_H

#include <stddef.h>
#include <openssl/ssl.h>

#include "log.h"

#define CERTS_NAME_MAX 256            /* a DNS name, bytes incl. NUL */
#define CERTS_FILE_MAX (1024 * 1024)  /* larger certificate files are refused */

struct certs;

/* How to build a store. */
struct certs_opts {
	const struct logger *log;        /* skipped files are logged here (may be NULL) */
	const char *default_file;        /* file name (no directory) of the default; NULL = first */
	/* Called for every SSL_CTX built, to add protocol settings (ALPN, ...). */
	void (*setup)(SSL_CTX *ctx, void *arg);
	void *arg;
};

/*
 * Build a store from every certificate file in directory <dir> with <opts>
 * (NULL: defaults). Broken files are skipped with a log line. Returns a
 * store holding one reference (possibly with no certificate at all), or
 * NULL when <dir> cannot be read or memory runs out (<err> tells why).
 */
struct certs *certs_load(const char *dir, const struct certs_opts *opts,
                         char *err, size_t errlen);

/* Take one more reference on <c> and return it. */
struct certs *certs_ref(struct certs *c);

/* Drop one reference on <c> (NULL is fine); the last one frees the store. */
void certs_unref(struct certs *c);

/* Return the number of certificates loaded in <c>. */
size_t certs_count(const struct certs *c);

/* Return the default context of <c> (not a new reference), or NULL when empty. */
SSL_CTX *certs_default(const struct certs *c);

/*
 * Find the context for server name <sni> in <c>: exact names first, then
 * wildcards (one label), ignoring case and a trailing dot. Returns the
 * context (not a new reference) or NULL when no name matches.
 */
SSL_CTX *certs_find(const struct certs *c, const char *sni);

/* Like certs_find(), but fall back to the default. NULL only when empty. */
SSL_CTX *certs_select(const struct certs *c, const char *sni);

/* Return the file name (no directory) that <ctx> of <c> came from, or "?". */
const char *certs_file_of(const struct certs *c, const SSL_CTX *ctx);

/*
 * Build the server context certs_load() serves for file <path>: a regular
 * file of at most CERTS_FILE_MAX bytes, PEM chain parses, key (inline or
 * in <path>.key) matches, the leaf's validity period covers now (the
 * chain's certificates are not checked: clients may build another path).
 * Returns a new context (caller frees), or NULL with the reason in
 * <reason> (<len> bytes).
 */
SSL_CTX *certs_file_ctx(const char *path, char *reason, size_t len);

/*
 * Check the certificate file <path> as certs_load() would (see
 * certs_file_ctx()). Returns 0 when usable; otherwise -1 with a reason in
 * <reason>.
 */
int certs_check_file(const char *path, char *reason, size_t len);

/* Receives one index key <name> of a certificate, with <arg>; nonzero stops. */
typedef int (*certs_name_fn)(const char *name, void *arg);

/*
 * Call <fn> with <arg> for every name certificate <crt> is indexed under,
 * in certificate order: its DNS SANs, or its first CN when it has no DNS
 * SAN, each lower-cased without a trailing dot ("*.example.com" for a
 * wildcard). Skipped: names with an embedded NUL, a space, a control or
 * non-ASCII octet, over CERTS_NAME_MAX - 1 bytes, address literals, and
 * '*' anywhere but a whole first label. Returns 0, or the first nonzero
 * return of <fn>.
 */
int certs_names(X509 *crt, certs_name_fn fn, void *arg);

/*
 * Set <*names> to the sorted names of the certificate files of <dir>:
 * regular files for which certs_is_cert_name() holds. Returns the count
 * (free with certs_dir_files_free()), or -1 with errno set.
 */
long certs_dir_files(const char *dir, char ***names);

/* Free <names> (<n> entries, NULL entries allowed) from certs_dir_files(). */
void certs_dir_files_free(char **names, long n);

/*
 * Tell whether a directory entry called <name> is a certificate file
 * (not a dotfile, not .key/.issuer/.ocsp/.sctl). Returns 1 or 0.
 */
int certs_is_cert_name(const char *name);

/*
 * Tell whether name <pattern> from a certificate ("mail.example.com" or
 * "*.example.com") matches server name <name>. Case-insensitive; a trailing
 * dot on <name> is ignored; a wildcard matches exactly one label.
 */
int certs_name_match(const char *pattern, const char *name);

/*
 * ALPN selection for a listener speaking <proto> ("imap" or "pop3"): the
 * client's list <in>/<inlen> (wire format) must contain <proto>. Sets
 * <out>/<outlen> to it and returns SSL_TLSEXT_ERR_OK; returns
 * SSL_TLSEXT_ERR_ALERT_FATAL when the list lacks it (ALPACA), or
 * SSL_TLSEXT_ERR_ALERT_FATAL on a malformed list.
 */
int certs_alpn_select(const unsigned char *in, unsigned inlen, const char *proto,
                      const unsigned char **out, unsigned char *outlen);

#endif
