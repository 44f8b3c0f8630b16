/*
 * Unit tests for certificate file inspection: the verdict and the names
 * are the store's (an expired chain certificate is served, with a warning;
 * an expired leaf is not), names another file serves are shadowed, IP SANs
 * are listed apart and never matched, chain order is a warning, and a
 * refused file is still described. Certificates are generated with OpenSSL
 * in a temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certs_inspect.h"

static char dir[64];

/* A key and its certificate. */
struct kc {
	EVP_PKEY *key;
	X509 *crt;
};

/*
 * Make a certificate for a new key with CN <cn>, SANs <san> ("DNS:a,IP:b"
 * or NULL), valid <from>..<to> seconds from now, a CA when <ca>, signed by
 * <issuer> (NULL: self-signed).
 */
static struct kc
make(const char *cn, const char *san, long from, long to, int ca, const struct kc *issuer)
{
	struct kc r = { EVP_EC_gen("P-256"), X509_new() };
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	static long serial = 1;

	assert_non_null(r.key);
	assert_non_null(r.crt);
	X509_set_version(r.crt, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(r.crt), serial++);
	X509_gmtime_adj(X509_getm_notBefore(r.crt), from);
	X509_gmtime_adj(X509_getm_notAfter(r.crt), to);
	X509_set_pubkey(r.crt, r.key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(r.crt), "CN", MBSTRING_ASC,
	                           (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(r.crt, X509_get_subject_name(issuer ? issuer->crt : r.crt));
	X509V3_set_ctx(&ctx, issuer ? issuer->crt : r.crt, r.crt, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
	                          ca ? "critical,CA:TRUE" : "CA:FALSE");
	X509_add_ext(r.crt, ext, -1);
	X509_EXTENSION_free(ext);
	if (san != NULL) {
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
		assert_non_null(ext);
		X509_add_ext(r.crt, ext, -1);
		X509_EXTENSION_free(ext);
	}
	assert_true(X509_sign(r.crt, issuer ? issuer->key : r.key, EVP_sha256()) > 0);
	return r;
}

static void
kc_free(struct kc *k)
{
	X509_free(k->crt);
	EVP_PKEY_free(k->key);
}

/* Write file <name>: <leaf>, then <c1> and <c2> (either NULL), then the key. */
static void
write_file(const char *name, const struct kc *leaf, const struct kc *c1, const struct kc *c2)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	PEM_write_X509(f, leaf->crt);
	if (c1 != NULL)
		PEM_write_X509(f, c1->crt);
	if (c2 != NULL)
		PEM_write_X509(f, c2->crt);
	PEM_write_PrivateKey(f, leaf->key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
}

static int
setup(void **state)
{
	struct kc root, inter_old, other, leaf, a, b, ip, old;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_certs_inspect.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	root = make("test root", NULL, -86400 * 30, 86400 * 30, 1, NULL);
	inter_old = make("expired intermediate", NULL, -86400 * 20, -86400, 1, &root);
	other = make("unrelated CA", NULL, -60, 86400, 1, NULL);
	/* 00-a: the default, with an IP SAN */
	a = make("a.example.test", "DNS:a.example.test,IP:127.0.0.1", -60, 86400, 0, NULL);
	write_file("00-a.pem", &a, NULL, NULL);
	/* b: a name of a (shadowed), its own name, a wildcard, an IP SAN */
	b = make("b.example.test",
	         "DNS:a.example.test,DNS:b.example.test,DNS:*.w.example.test,IP:127.0.0.2",
	         -60, 86400, 0, NULL);
	write_file("b.pem", &b, NULL, NULL);
	/* chain: a valid leaf under an expired intermediate */
	leaf = make("chain.example.test", "DNS:chain.example.test", -60, 86400, 0, &inter_old);
	write_file("chain.pem", &leaf, &inter_old, &root);
	/* order: the leaf followed by a CA that did not sign it */
	write_file("order.pem", &leaf, &other, NULL);
	/* an address only: no name */
	ip = make("127.0.0.3", "IP:127.0.0.3", -60, 86400, 0, NULL);
	write_file("ip.pem", &ip, NULL, NULL);
	/* an expired leaf */
	old = make("old.example.test", "DNS:old.example.test", -86400 * 2, -60, 0, NULL);
	write_file("old.pem", &old, NULL, NULL);
	kc_free(&root);
	kc_free(&inter_old);
	kc_free(&other);
	kc_free(&leaf);
	kc_free(&a);
	kc_free(&b);
	kc_free(&ip);
	kc_free(&old);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Tell whether one string of <l> contains <needle>. */
static int
has(const struct certs_strs *l, const char *needle)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strstr(l->v[i], needle) != NULL)
			return 1;
	return 0;
}

/* Inspect file <name> of the test directory with <store> into <ci>. */
static void
inspect(const char *name, const struct certs *store, struct certs_info *ci)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(certs_inspect(path, store, ci), 0);
}

static void
test_chain_expired_is_served(void **state)
{
	struct certs_info ci;
	char err[256];
	struct certs *c;

	(void)state;
	inspect("chain.pem", NULL, &ci);
	assert_true(ci.ok);
	assert_int_equal(ci.names.n, 1);
	assert_string_equal(ci.names.v[0], "chain.example.test");
	assert_true(has(&ci.warnings, "chain certificate 2 (CN=expired intermediate) expired"));
	assert_string_equal(ci.subject, "CN=chain.example.test");
	assert_string_equal(ci.issuer, "CN=expired intermediate");
	assert_int_equal(strlen(ci.sha1), 40);
	certs_inspect_free(&ci);
	/* and the store serves it, as the inspection says */
	c = certs_load(dir, NULL, err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(certs_file_of(c, certs_find(c, "chain.example.test")), "chain.pem");
	certs_unref(c);
}

static void
test_chain_order_warns(void **state)
{
	struct certs_info ci;

	(void)state;
	inspect("order.pem", NULL, &ci);
	assert_true(ci.ok);
	assert_true(has(&ci.warnings, "chain order: certificate 1 (CN=chain.example.test) is "
	                              "not signed by the next one"));
	certs_inspect_free(&ci);
}

static void
test_expired_leaf_refused_and_described(void **state)
{
	struct certs_info ci;

	(void)state;
	inspect("old.pem", NULL, &ci);
	assert_false(ci.ok);
	assert_string_equal(ci.error, "expired");
	assert_int_equal(ci.names.n, 1);
	assert_string_equal(ci.names.v[0], "old.example.test");
	assert_string_equal(ci.subject, "CN=old.example.test");
	assert_true(ci.not_after[0] != '\0' && ci.not_after[strlen(ci.not_after) - 1] == 'Z');
	certs_inspect_free(&ci);
	/* no file at all */
	assert_int_equal(certs_inspect("/nonexistent/x.pem", NULL, &ci), 0);
	assert_false(ci.ok);
	assert_non_null(strstr(ci.error, "cannot read"));
	assert_int_equal(ci.names.n, 0);
	certs_inspect_free(&ci);
}

static void
test_store_view(void **state)
{
	struct certs_info ci;
	char err[256];
	struct certs *c;

	(void)state;
	c = certs_load(dir, NULL, err, sizeof(err));
	assert_non_null(c);
	/* the default: its IP SAN listed apart, no warning about it */
	inspect("00-a.pem", c, &ci);
	assert_true(ci.ok && ci.is_default);
	assert_int_equal(ci.names.n, 1);
	assert_string_equal(ci.names.v[0], "a.example.test");
	assert_int_equal(ci.ip_sans.n, 1);
	assert_string_equal(ci.ip_sans.v[0], "127.0.0.1");
	assert_int_equal(ci.warnings.n, 0);
	certs_inspect_free(&ci);
	/* b: a.example.test is 00-a's; its IP SAN is never matched */
	inspect("b.pem", c, &ci);
	assert_true(ci.ok);
	assert_false(ci.is_default);
	assert_int_equal(ci.names.n, 2);
	assert_string_equal(ci.names.v[0], "b.example.test");
	assert_string_equal(ci.names.v[1], "*.w.example.test");
	assert_int_equal(ci.shadowed.n, 1);
	assert_string_equal(ci.shadowed.v[0], "a.example.test");
	assert_string_equal(ci.shadowed_by.v[0], "00-a.pem");
	assert_string_equal(ci.ip_sans.v[0], "127.0.0.2");
	assert_true(has(&ci.warnings, "IP address SANs are never matched"));
	assert_true(has(&ci.warnings, "00-a.pem"));
	certs_inspect_free(&ci);
	/* what the store answers agrees */
	assert_string_equal(certs_file_of(c, certs_find(c, "a.example.test")), "00-a.pem");
	assert_string_equal(certs_file_of(c, certs_find(c, "x.w.example.test")), "b.pem");
	assert_null(certs_find(c, "127.0.0.2"));
	/* ip.pem: no name, not the default: never served */
	inspect("ip.pem", c, &ci);
	assert_true(ci.ok);
	assert_int_equal(ci.names.n, 0);
	assert_true(has(&ci.warnings, "never served"));
	certs_inspect_free(&ci);
	certs_unref(c);
}

static void
test_dir_files(void **state)
{
	char **names;
	long n;

	(void)state;
	n = certs_dir_files(dir, &names);
	assert_int_equal(n, 6);
	assert_string_equal(names[0], "00-a.pem");
	assert_string_equal(names[5], "order.pem");
	certs_dir_files_free(names, n);
	assert_int_equal(certs_dir_files("/nonexistent/dir", &names), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_expired_is_served),
		cmocka_unit_test(test_chain_order_warns),
		cmocka_unit_test(test_expired_leaf_refused_and_described),
		cmocka_unit_test(test_store_view),
		cmocka_unit_test(test_dir_files),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
