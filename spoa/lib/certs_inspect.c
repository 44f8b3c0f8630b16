/*
 * Certificate file inspection: runs the store's own rules (certs_file_ctx()
 * for the verdict, certs_names() for the names, the store itself for which
 * file wins a name) on one file and adds what an operator reads: the
 * leaf's subject, issuer, dates and fingerprint, and warnings about what
 * the daemons serve anyway (chain order, expired chain certificates).
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certs_inspect.h"

#define INSPECT_CHAIN_MAX 16   /* certificates of a file looked at */

/* Append a copy of <s> to <l>. Returns 0 or -1. */
static int
strs_add(struct certs_strs *l, const char *s)
{
	char **nv = realloc(l->v, (l->n + 1) * sizeof(*nv));

	if (nv == NULL)
		return -1;
	l->v = nv;
	if ((l->v[l->n] = strdup(s)) == NULL)
		return -1;
	l->n++;
	return 0;
}

/* Free the strings of <l>. */
static void
strs_free(struct certs_strs *l)
{
	while (l->n > 0)
		free(l->v[--l->n]);
	free(l->v);
	l->v = NULL;
}

/* Format <t> as "YYYY-MM-DDTHH:MM:SSZ" into <buf>; "?" when unreadable. */
static void
time_str(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "?");
}

/* Format <name> in its one-line RFC 2253 form into <buf>. */
static void
name_str(const X509_NAME *name, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n;

	buf[0] = '\0';
	if (b == NULL)
		return;
	X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253);
	n = BIO_read(b, buf, (int)len - 1);
	buf[n > 0 ? n : 0] = '\0';
	BIO_free(b);
}

/* Read up to <max> certificates of PEM file <path> as the SSL_CTX reading
 * does (leaf with its trust settings, then the chain). Returns the count. */
static int
read_chain(const char *path, X509 **xs, int max)
{
	struct stat st;
	BIO *b;
	X509 *x;
	int n = 0;

	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CERTS_FILE_MAX ||
	    (b = BIO_new_file(path, "r")) == NULL) {
		ERR_clear_error();
		return 0;
	}
	x = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL);
	while (x != NULL && n < max) {
		xs[n++] = x;
		x = n < max ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	}
	BIO_free(b);
	ERR_clear_error();
	return n;
}

/* Take the leaf and chain of <ctx> into <xs> (new references). Returns the count. */
static int
ctx_chain(SSL_CTX *ctx, X509 **xs, int max)
{
	STACK_OF(X509) *chain = NULL;
	X509 *leaf = SSL_CTX_get0_certificate(ctx);
	int n = 0, i;

	if (leaf == NULL || max < 1)
		return 0;
	X509_up_ref(leaf);
	xs[n++] = leaf;
	if (SSL_CTX_get0_chain_certs(ctx, &chain) == 1 && chain != NULL)
		for (i = 0; i < sk_X509_num(chain) && n < max; i++) {
			X509 *x = sk_X509_value(chain, i);

			X509_up_ref(x);
			xs[n++] = x;
		}
	return n;
}

/* Where collect_name() puts the names of a file. */
struct collect {
	struct certs_info *ci;
	const struct certs *store;    /* NULL: no shadowing */
	const char *base;             /* the file's name in the store */
	int oom;
};

/* Record index key <name>: served by this file or shadowed. */
static int
collect_name(const char *name, void *arg)
{
	struct collect *co = arg;
	const char *owner = NULL;

	if (co->store != NULL) {
		SSL_CTX *ctx = certs_find(co->store, name);

		owner = ctx != NULL ? certs_file_of(co->store, ctx) : NULL;
	}
	if (owner != NULL && strcmp(owner, co->base) != 0) {
		if (strs_add(&co->ci->shadowed, name) < 0 ||
		    strs_add(&co->ci->shadowed_by, owner) < 0)
			co->oom = 1;
	} else if (strs_add(&co->ci->names, name) < 0) {
		co->oom = 1;
	}
	return co->oom ? -1 : 0;
}

/* Add the IP address SANs of <x> to <ci>. Returns 0 or -1. */
static int
collect_ips(X509 *x, struct certs_info *ci)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int i, rc = 0;

	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) && rc == 0; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char ip[INET6_ADDRSTRLEN];
		int l;

		if (g->type != GEN_IPADD)
			continue;
		l = ASN1_STRING_length(g->d.iPAddress);
		if ((l == 4 || l == 16) &&
		    inet_ntop(l == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(g->d.iPAddress),
		              ip, sizeof(ip)) != NULL)
			rc = strs_add(&ci->ip_sans, ip);
	}
	GENERAL_NAMES_free(gens);
	return rc;
}

/* Add a warning to <ci> from <fmt>. Returns 0 or -1. */
static int __attribute__((format(printf, 2, 3)))
add_warning(struct certs_info *ci, const char *fmt, ...)
{
	char buf[768];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return strs_add(&ci->warnings, buf);
}

/* Warn about what the chain <xs>[<n>] gets wrong that the daemons serve anyway. */
static int
chain_warnings(X509 **xs, int n, struct certs_info *ci)
{
	char subj[256], isubj[256], when[32];
	int i, rc = 0;

	for (i = 1; i < n && rc == 0; i++) {
		name_str(X509_get_subject_name(xs[i]), subj, sizeof(subj));
		if (X509_cmp_current_time(X509_get0_notAfter(xs[i])) <= 0) {
			time_str(X509_get0_notAfter(xs[i]), when, sizeof(when));
			rc = add_warning(ci, "chain certificate %d (%s) expired on %s (served: clients that "
			          "cannot build another path refuse it)", i + 1, subj, when);
		} else if (X509_cmp_current_time(X509_get0_notBefore(xs[i])) >= 0) {
			rc = add_warning(ci, "chain certificate %d (%s) is not valid yet (served: clients "
			          "that cannot build another path refuse it)", i + 1, subj);
		}
	}
	for (i = 0; i + 1 < n && rc == 0; i++) {
		EVP_PKEY *pk = X509_get0_pubkey(xs[i + 1]);

		if (X509_check_issued(xs[i + 1], xs[i]) == X509_V_OK && pk != NULL &&
		    X509_verify(xs[i], pk) == 1)
			continue;
		ERR_clear_error();
		name_str(X509_get_subject_name(xs[i]), subj, sizeof(subj));
		name_str(X509_get_subject_name(xs[i + 1]), isubj, sizeof(isubj));
		rc = add_warning(ci, "chain order: certificate %d (%s) is not signed by the next one, "
		          "certificate %d (%s)", i + 1, subj, i + 2, isubj);
	}
	return rc;
}

/* Fill the leaf details of <ci> from <x>. */
static void
leaf_details(X509 *x, struct certs_info *ci)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(x), NULL);
	char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;

	name_str(X509_get_subject_name(x), ci->subject, sizeof(ci->subject));
	name_str(X509_get_issuer_name(x), ci->issuer, sizeof(ci->issuer));
	time_str(X509_get0_notBefore(x), ci->not_before, sizeof(ci->not_before));
	time_str(X509_get0_notAfter(x), ci->not_after, sizeof(ci->not_after));
	snprintf(ci->serial, sizeof(ci->serial), "%s", hex != NULL ? hex : "?");
	OPENSSL_free(hex);
	BN_free(bn);
	if (X509_digest(x, EVP_sha1(), md, &mdlen) == 1)
		for (i = 0; i < mdlen && 2 * i + 2 < sizeof(ci->sha1); i++)
			snprintf(ci->sha1 + 2 * i, 3, "%02X", md[i]);
}

/* Inspect <path> into <ci>: see certs_inspect.h. */
int
certs_inspect(const char *path, const struct certs *store, struct certs_info *ci)
{
	X509 *xs[INSPECT_CHAIN_MAX];
	const char *base = strrchr(path, '/');
	struct collect co = { ci, NULL, NULL, 0 };
	SSL_CTX *ctx;
	int n, i, rc = 0;

	memset(ci, 0, sizeof(*ci));
	base = base != NULL ? base + 1 : path;
	ctx = certs_file_ctx(path, ci->error, sizeof(ci->error));
	ci->ok = ctx != NULL;
	/* the served certificates themselves; the file's, to describe a refused one */
	n = ctx != NULL ? ctx_chain(ctx, xs, INSPECT_CHAIN_MAX)
	                : read_chain(path, xs, INSPECT_CHAIN_MAX);
	SSL_CTX_free(ctx);
	if (ci->ok && store != NULL) {
		SSL_CTX *def = certs_default(store);

		ci->is_default = def != NULL && strcmp(certs_file_of(store, def), base) == 0;
		co.store = store;
		co.base = base;
	}
	if (n > 0) {
		leaf_details(xs[0], ci);
		if (certs_names(xs[0], collect_name, &co) != 0 || co.oom ||
		    collect_ips(xs[0], ci) < 0 || chain_warnings(xs, n, ci) < 0)
			rc = -1;
	}
	if (rc == 0 && ci->ok && ci->names.n == 0 && ci->shadowed.n == 0)
		rc = add_warning(ci, store == NULL || ci->is_default
		                 ? "no DNS name to be found by: served only as the default certificate"
		                 : "no DNS name to be found by, and not the default: never served");
	if (rc == 0 && ci->ok && store != NULL && !ci->is_default && ci->ip_sans.n > 0)
		rc = add_warning(ci, "IP address SANs are never matched (a client sends no SNI for an "
		          "address): such clients get the default certificate, %s",
		          certs_file_of(store, certs_default(store)));
	for (i = 0; i < n; i++)
		X509_free(xs[i]);
	if (rc < 0) {
		certs_inspect_free(ci);
		memset(ci, 0, sizeof(*ci));
		snprintf(ci->error, sizeof(ci->error), "out of memory");
		return -1;
	}
	return 0;
}

/* Free what <ci> holds. */
void
certs_inspect_free(struct certs_info *ci)
{
	strs_free(&ci->names);
	strs_free(&ci->shadowed);
	strs_free(&ci->shadowed_by);
	strs_free(&ci->ip_sans);
	strs_free(&ci->warnings);
}
