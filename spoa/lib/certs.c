/*
 * Certificate store for SNI: loads a directory of PEM files the way
 * HAProxy's "crt <dir>" does, builds one SSL_CTX per file and indexes the
 * contexts by the DNS names of their certificates in two sorted arrays
 * (exact names, and wildcard suffixes). Lookups are binary searches over
 * those arrays and allocate nothing. The rules deciding which files are
 * served and under which names (certs_file_ctx(), certs_names()) are
 * exported, so that inspection tools apply exactly these.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certs.h"

/* One loaded file. */
struct certs_file {
	char *name;            /* file name without directory */
	SSL_CTX *ctx;
};

/* One index entry: a lower-case name (or wildcard suffix ".example.com"). */
struct certs_entry {
	char *name;
	size_t file;           /* index into files[]; lower = earlier file */
};

/* The store. Immutable after certs_load() returns. */
struct certs {
	_Atomic int refs;
	struct certs_file *files;
	size_t nfiles;
	struct certs_entry *exact, *wild;
	size_t nexact, nwild;
	size_t def;            /* index of the default file */
};

/* Tell whether <s> ends with <suffix>. */
static int
ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Decide whether <name> is a certificate file: see certs.h. */
int
certs_is_cert_name(const char *name)
{
	if (name[0] == '.' || name[0] == '\0')
		return 0;
	if (ends_with(name, ".key") || ends_with(name, ".issuer") ||
	    ends_with(name, ".ocsp") || ends_with(name, ".sctl"))
		return 0;
	return 1;
}

/*
 * Normalise server name <in> into <out> (<len> bytes): lower case, one
 * trailing dot removed. Returns 0, or -1 when empty, too long or holding
 * octets no DNS name has.
 */
static int
norm_name(const char *in, char *out, size_t len)
{
	size_t n = strlen(in), i;

	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n == 0 || n >= len)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (ch <= 0x20 || ch >= 0x7f)
			return -1;
		out[i] = (char)((ch >= 'A' && ch <= 'Z') ? ch + 32 : ch);
	}
	out[n] = '\0';
	return 0;
}

/* Match <pattern> against <name>: see certs.h. */
int
certs_name_match(const char *pattern, const char *name)
{
	char p[CERTS_NAME_MAX], n[CERTS_NAME_MAX];
	const char *dot;

	if (norm_name(pattern, p, sizeof(p)) < 0 || norm_name(name, n, sizeof(n)) < 0)
		return 0;
	if (p[0] == '*' && p[1] == '.') {
		dot = strchr(n, '.');
		/* exactly one non-empty label before the suffix */
		return dot != NULL && dot != n && strcmp(dot, p + 1) == 0;
	}
	return strcmp(p, n) == 0;
}

/* Select <proto> from the ALPN list <in>: see certs.h. */
int
certs_alpn_select(const unsigned char *in, unsigned inlen, const char *proto,
                  const unsigned char **out, unsigned char *outlen)
{
	size_t plen = strlen(proto);
	unsigned i = 0;

	while (i < inlen) {
		unsigned l = in[i];

		if (l == 0 || i + 1 + l > inlen)
			return SSL_TLSEXT_ERR_ALERT_FATAL;
		if (l == plen && memcmp(in + i + 1, proto, plen) == 0) {
			*out = in + i + 1;
			*outlen = (unsigned char)l;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + l;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* Copy the first OpenSSL error text (or <dflt>) into <reason>. */
static void
ssl_reason(char *reason, size_t len, const char *what, const char *dflt)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256];

	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(reason, len, "%s: %s", what, buf);
	} else {
		snprintf(reason, len, "%s: %s", what, dflt);
	}
	ERR_clear_error();
}

/* Refuse passphrase-protected keys instead of prompting on a terminal. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Read the first private key in PEM file <path>. Returns it or NULL. */
static EVP_PKEY *
read_key(const char *path)
{
	BIO *b = BIO_new_file(path, "r");
	EVP_PKEY *k;

	if (b == NULL) {
		ERR_clear_error();
		return NULL;
	}
	k = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
	BIO_free(b);
	ERR_clear_error();
	return k;
}

/* Build the server context of file <path>: see certs.h. */
SSL_CTX *
certs_file_ctx(const char *path, char *reason, size_t len)
{
	SSL_CTX *ctx;
	X509 *crt;
	EVP_PKEY *key;
	char keypath[4096];
	struct stat st;
	int n;

	if (stat(path, &st) != 0) {
		snprintf(reason, len, "cannot read: %s", strerror(errno));
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CERTS_FILE_MAX) {
		snprintf(reason, len, "not a regular file of at most %d bytes", CERTS_FILE_MAX);
		return NULL;
	}
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		ssl_reason(reason, len, "out of memory", "SSL_CTX_new");
		return NULL;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, path) != 1) {
		ssl_reason(reason, len, "bad PEM (no certificate)", "unreadable");
		goto fail;
	}
	key = read_key(path);
	if (key == NULL) {
		n = snprintf(keypath, sizeof(keypath), "%s.key", path);
		if (n > 0 && (size_t)n < sizeof(keypath))
			key = read_key(keypath);
	}
	if (key == NULL) {
		snprintf(reason, len, "no private key (neither in the file nor in .key)");
		goto fail;
	}
	if (X509_check_private_key(SSL_CTX_get0_certificate(ctx), key) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		snprintf(reason, len, "key does not match the certificate");
		EVP_PKEY_free(key);
		goto fail;
	}
	EVP_PKEY_free(key);
	crt = SSL_CTX_get0_certificate(ctx);
	if (crt == NULL) {
		snprintf(reason, len, "bad PEM (no certificate)");
		goto fail;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(crt)) <= 0) {
		snprintf(reason, len, "expired");
		goto fail;
	}
	if (X509_cmp_current_time(X509_get0_notBefore(crt)) >= 0) {
		snprintf(reason, len, "not yet valid");
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Check <path> as a certificate file: see certs.h. */
int
certs_check_file(const char *path, char *reason, size_t len)
{
	SSL_CTX *ctx = certs_file_ctx(path, reason, len);

	if (ctx == NULL)
		return -1;
	SSL_CTX_free(ctx);
	return 0;
}

/* Tell whether <n> (normalised) is an IPv4 or IPv6 address literal. */
static int
is_ip_literal(const char *n)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, n, buf) == 1 || inet_pton(AF_INET6, n, buf) == 1;
}

/*
 * Hand name <raw> (<rawlen> bytes, not NUL-terminated) from a certificate
 * to <fn> when it can be an index key. Returns 0 (also when skipped), or
 * what <fn> returned.
 */
static int
names_emit(const unsigned char *raw, int rawlen, certs_name_fn fn, void *arg)
{
	char buf[CERTS_NAME_MAX], n[CERTS_NAME_MAX];

	if (rawlen <= 0 || (size_t)rawlen >= sizeof(buf))
		return 0;
	memcpy(buf, raw, (size_t)rawlen);
	buf[rawlen] = '\0';
	if (strlen(buf) != (size_t)rawlen)
		return 0;   /* embedded NUL: "good.example\0.evil.example" */
	if (norm_name(buf, n, sizeof(n)) < 0 || is_ip_literal(n))
		return 0;   /* not a DNS name; TLS sends no address in SNI */
	if (n[0] == '*') {
		if (n[1] != '.' || n[2] == '\0' || strchr(n + 1, '*') != NULL)
			return 0;
	} else if (strchr(n, '*') != NULL) {
		return 0;
	}
	return fn(n, arg);
}

/* Hand the names certificate <crt> is found by to <fn>: see certs.h. */
int
certs_names(X509 *crt, certs_name_fn fn, void *arg)
{
	GENERAL_NAMES *gens;
	X509_NAME *subj;
	int i, ndns = 0, rc = 0;

	gens = X509_get_ext_d2i(crt, NID_subject_alt_name, NULL, NULL);
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) && rc == 0; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type != GEN_DNS)
			continue;
		/* a DNS SAN, even an unusable one, rules out the CN (RFC 6125) */
		ndns++;
		rc = names_emit(ASN1_STRING_get0_data(g->d.dNSName),
		                ASN1_STRING_length(g->d.dNSName), fn, arg);
	}
	GENERAL_NAMES_free(gens);
	subj = X509_get_subject_name(crt);
	i = subj != NULL ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1) : -1;
	if (ndns == 0 && rc == 0 && i >= 0) {
		ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
		unsigned char *utf8 = NULL;
		int l = ASN1_STRING_to_UTF8(&utf8, d);

		if (l > 0)
			rc = names_emit(utf8, l, fn, arg);
		OPENSSL_free(utf8);
	}
	return rc;
}

/* Where index_name() appends. */
struct index_ctx {
	struct certs *c;
	size_t *capx, *capw;
	size_t file;
};

/* Append index key <n> (from certs_names()) to the index. Returns 0 or -1. */
static int
index_name(const char *n, void *arg)
{
	struct index_ctx *ix = arg;
	struct certs *c = ix->c;
	struct certs_entry **arr;
	size_t *cnt, *cap;
	const char *key;

	if (n[0] == '*') {
		arr = &c->wild; cnt = &c->nwild; cap = ix->capw; key = n + 1;
	} else {
		arr = &c->exact; cnt = &c->nexact; cap = ix->capx; key = n;
	}
	if (*cnt == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct certs_entry *na = realloc(*arr, ncap * sizeof(**arr));

		if (na == NULL)
			return -1;
		*arr = na;
		*cap = ncap;
	}
	(*arr)[*cnt].name = strdup(key);
	if ((*arr)[*cnt].name == NULL)
		return -1;
	(*arr)[*cnt].file = ix->file;
	(*cnt)++;
	return 0;
}

/* Index every name of the certificate of file <file>. Returns 0 or -1. */
static int
index_file(struct certs *c, size_t *capx, size_t *capw, size_t file)
{
	struct index_ctx ix = { c, capx, capw, file };

	return certs_names(SSL_CTX_get0_certificate(c->files[file].ctx), index_name, &ix) < 0
	       ? -1 : 0;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct certs_entry *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	if (r != 0)
		return r;
	return x->file < y->file ? -1 : x->file > y->file;
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort <arr> and drop later duplicates (the earlier file wins). */
static void
index_sort(struct certs_entry *arr, size_t *n)
{
	size_t i, j = 0;

	if (*n == 0)
		return;
	qsort(arr, *n, sizeof(*arr), entry_cmp);
	for (i = 1; i < *n; i++) {
		if (strcmp(arr[i].name, arr[j].name) == 0) {
			free(arr[i].name);
			continue;
		}
		arr[++j] = arr[i];
	}
	*n = j + 1;
}

/* Free everything <c> owns, then <c>. */
static void
certs_destroy(struct certs *c)
{
	size_t i;

	for (i = 0; i < c->nfiles; i++) {
		SSL_CTX_free(c->files[i].ctx);
		free(c->files[i].name);
	}
	for (i = 0; i < c->nexact; i++)
		free(c->exact[i].name);
	for (i = 0; i < c->nwild; i++)
		free(c->wild[i].name);
	free(c->files);
	free(c->exact);
	free(c->wild);
	free(c);
}

/* List the certificate files of <dir>: see certs.h. */
long
certs_dir_files(const char *dir, char ***names)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;
	size_t n = 0, cap = 0;

	*names = NULL;
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		char path[4096];
		struct stat st;
		int l;

		if (!certs_is_cert_name(de->d_name))
			continue;
		l = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (l < 0 || (size_t)l >= sizeof(path) || stat(path, &st) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **nv = realloc(v, ncap * sizeof(*v));

			if (nv == NULL)
				goto oom;
			v = nv;
			cap = ncap;
		}
		if ((v[n] = strdup(de->d_name)) == NULL)
			goto oom;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof(*v), str_cmp);
	*names = v;
	return (long)n;
oom:
	closedir(d);
	while (n > 0)
		free(v[--n]);
	free(v);
	errno = ENOMEM;
	return -1;
}

/* Free <n> names of <names> from certs_dir_files(), and the array. */
void
certs_dir_files_free(char **names, long n)
{
	while (n > 0)
		free(names[--n]);
	free(names);
}

/* Build a store from <dir>: see certs.h. */
struct certs *
certs_load(const char *dir, const struct certs_opts *opts, char *err, size_t errlen)
{
	struct certs_opts o = { 0 };
	struct certs *c;
	char **names = NULL;
	long n, i;
	size_t capx = 0, capw = 0;

	if (opts != NULL)
		o = *opts;
	n = certs_dir_files(dir, &names);
	if (n < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || (n > 0 && (c->files = calloc((size_t)n, sizeof(*c->files))) == NULL))
		goto oom;
	atomic_init(&c->refs, 1);
	for (i = 0; i < n; i++) {
		char path[4096], reason[256];
		SSL_CTX *ctx;
		int l = snprintf(path, sizeof(path), "%s/%s", dir, names[i]);

		if (l < 0 || (size_t)l >= sizeof(path))
			continue;
		ctx = certs_file_ctx(path, reason, sizeof(reason));
		if (ctx == NULL) {
			log_warnx(o.log, "certs: skipping %s: %s", path, reason);
			continue;
		}
		if (o.setup != NULL)
			o.setup(ctx, o.arg);
		c->files[c->nfiles].ctx = ctx;
		c->files[c->nfiles].name = names[i];
		names[i] = NULL;
		if (o.default_file != NULL && strcmp(o.default_file, c->files[c->nfiles].name) == 0)
			c->def = c->nfiles;
		c->nfiles++;
		if (index_file(c, &capx, &capw, c->nfiles - 1) < 0)
			goto oom;
	}
	index_sort(c->exact, &c->nexact);
	index_sort(c->wild, &c->nwild);
	certs_dir_files_free(names, n);
	return c;
oom:
	snprintf(err, errlen, "%s: out of memory", dir);
	certs_dir_files_free(names, n);
	if (c != NULL)
		certs_destroy(c);
	return NULL;
}

/* Take a reference on <c>: see certs.h. */
struct certs *
certs_ref(struct certs *c)
{
	atomic_fetch_add(&c->refs, 1);
	return c;
}

/* Drop a reference on <c>: see certs.h. */
void
certs_unref(struct certs *c)
{
	if (c != NULL && atomic_fetch_sub(&c->refs, 1) == 1)
		certs_destroy(c);
}

/* Return the number of certificates in <c>. */
size_t
certs_count(const struct certs *c)
{
	return c->nfiles;
}

/* Return the default context of <c>, or NULL. */
SSL_CTX *
certs_default(const struct certs *c)
{
	return c->nfiles ? c->files[c->def].ctx : NULL;
}

/* Binary-search <key> in <arr> of <n>. Returns the entry or NULL. */
static const struct certs_entry *
index_find(const struct certs_entry *arr, size_t n, const char *key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(key, arr[mid].name);

		if (r == 0)
			return &arr[mid];
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* Find the context for <sni>: see certs.h. */
SSL_CTX *
certs_find(const struct certs *c, const char *sni)
{
	char n[CERTS_NAME_MAX];
	const struct certs_entry *e;
	const char *dot;

	if (sni == NULL || norm_name(sni, n, sizeof(n)) < 0)
		return NULL;
	e = index_find(c->exact, c->nexact, n);
	if (e != NULL)
		return c->files[e->file].ctx;
	dot = strchr(n, '.');
	if (dot == NULL || dot == n)
		return NULL;
	e = index_find(c->wild, c->nwild, dot);
	return e != NULL ? c->files[e->file].ctx : NULL;
}

/* Find the context for <sni> or the default: see certs.h. */
SSL_CTX *
certs_select(const struct certs *c, const char *sni)
{
	SSL_CTX *ctx = certs_find(c, sni);

	return ctx != NULL ? ctx : certs_default(c);
}

/* Return the file name of <ctx> in <c>. */
const char *
certs_file_of(const struct certs *c, const SSL_CTX *ctx)
{
	size_t i;

	for (i = 0; i < c->nfiles; i++)
		if (c->files[i].ctx == ctx)
			return c->files[i].name;
	return "?";
}
