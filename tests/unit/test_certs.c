/*
 * Unit tests for the certificate store: name matching, directory rules,
 * validation reasons, SNI lookup (exact, wildcard, case, trailing dot, no
 * match -> default), ALPN selection and reference counting. Certificates
 * are generated with OpenSSL in a temporary directory.
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

#include "certs.h"

static char dir[64];

/* Make a key pair. */
static EVP_PKEY *
make_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

/*
 * Make a self-signed certificate for <key> with common name <cn> and SAN
 * DNS names <san> (comma-separated "DNS:a,DNS:b", or NULL), valid from
 * <from> to <to> seconds relative to now.
 */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, const char *san, long from, long to)
{
	X509 *x = X509_new();
	X509_NAME *n;
	X509V3_CTX ctx;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), from);
	X509_gmtime_adj(X509_getm_notAfter(x), to);
	X509_set_pubkey(x, key);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, n);
	if (san != NULL) {
		X509_EXTENSION *ext;

		X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
		assert_non_null(ext);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

/* Write <x> and (unless NULL) <key> to <name> in the test directory. */
static void
write_pem(const char *name, X509 *x, EVP_PKEY *key)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	if (x != NULL)
		PEM_write_X509(f, x);
	if (key != NULL)
		PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
}

/* Write a certificate file <name> for <cn>/<san> valid <from>..<to>. */
static void
cert_file(const char *name, const char *cn, const char *san, long from, long to)
{
	EVP_PKEY *k = make_key();
	X509 *x = make_cert(k, cn, san, from, to);

	write_pem(name, x, k);
	X509_free(x);
	EVP_PKEY_free(k);
}

static int
setup(void **state)
{
	EVP_PKEY *k, *k2;
	X509 *x;
	char path[128];
	FILE *f;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_certs.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	cert_file("a-mail.pem", "mail.example.com", "DNS:mail.example.com,DNS:www.example.com",
	          -60, 86400);
	cert_file("b-wild.pem", "wild", "DNS:*.example.net", -60, 86400);
	cert_file("c-cn.pem", "cn.example.org", NULL, -60, 86400);
	/* key in a separate .key file */
	k = make_key();
	x = make_cert(k, "split.example.com", "DNS:split.example.com", -60, 86400);
	write_pem("d-split.pem", x, NULL);
	write_pem("d-split.pem.key", NULL, k);
	X509_free(x);
	EVP_PKEY_free(k);
	/* duplicate name: the earlier file (a-mail.pem) must win */
	cert_file("e-dup.pem", "mail.example.com", "DNS:mail.example.com", -60, 86400);
	/* broken ones */
	cert_file("x-expired.pem", "expired.example.com", "DNS:expired.example.com", -86400, -60);
	cert_file("x-future.pem", "future.example.com", "DNS:future.example.com", 86400, 2 * 86400);
	k = make_key();
	k2 = make_key();
	x = make_cert(k, "mismatch.example.com", "DNS:mismatch.example.com", -60, 86400);
	write_pem("x-mismatch.pem", x, k2);
	X509_free(x);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
	snprintf(path, sizeof(path), "%s/x-garbage.pem", dir);
	f = fopen(path, "w");
	fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n", f);
	fclose(f);
	/* skipped by name */
	cert_file(".hidden.pem", "hidden.example.com", "DNS:hidden.example.com", -60, 86400);
	cert_file("z.ocsp", "ocsp.example.com", "DNS:ocsp.example.com", -60, 86400);
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

static void
test_name_match(void **state)
{
	(void)state;
	assert_true(certs_name_match("mail.example.com", "mail.example.com"));
	assert_true(certs_name_match("mail.example.com", "MAIL.Example.COM"));
	assert_true(certs_name_match("mail.example.com", "mail.example.com."));
	assert_false(certs_name_match("mail.example.com", "mail.example.com.."));
	assert_false(certs_name_match("mail.example.com", "example.com"));
	assert_true(certs_name_match("*.example.com", "imap.example.com"));
	assert_true(certs_name_match("*.Example.com", "IMAP.example.COM."));
	assert_false(certs_name_match("*.example.com", "a.b.example.com"));
	assert_false(certs_name_match("*.example.com", "example.com"));
	assert_false(certs_name_match("*.example.com", ".example.com"));
	assert_false(certs_name_match("mail.example.com", ""));
	assert_false(certs_name_match("mail.example.com", "mail example.com"));
}

static void
test_cert_names(void **state)
{
	(void)state;
	assert_true(certs_is_cert_name("mail.pem"));
	assert_true(certs_is_cert_name("00-default"));
	assert_false(certs_is_cert_name(".hidden.pem"));
	assert_false(certs_is_cert_name("mail.pem.key"));
	assert_false(certs_is_cert_name("mail.issuer"));
	assert_false(certs_is_cert_name("mail.ocsp"));
	assert_false(certs_is_cert_name("mail.sctl"));
	assert_false(certs_is_cert_name(""));
}

static void
test_check_file_reasons(void **state)
{
	char path[128], reason[256];

	(void)state;
	snprintf(path, sizeof(path), "%s/a-mail.pem", dir);
	assert_int_equal(certs_check_file(path, reason, sizeof(reason)), 0);
	snprintf(path, sizeof(path), "%s/d-split.pem", dir);
	assert_int_equal(certs_check_file(path, reason, sizeof(reason)), 0);
	snprintf(path, sizeof(path), "%s/x-expired.pem", dir);
	assert_int_equal(certs_check_file(path, reason, sizeof(reason)), -1);
	assert_non_null(strstr(reason, "expired"));
	snprintf(path, sizeof(path), "%s/x-future.pem", dir);
	assert_int_equal(certs_check_file(path, reason, sizeof(reason)), -1);
	assert_non_null(strstr(reason, "not yet valid"));
	snprintf(path, sizeof(path), "%s/x-mismatch.pem", dir);
	assert_int_equal(certs_check_file(path, reason, sizeof(reason)), -1);
	assert_non_null(strstr(reason, "does not match"));
	snprintf(path, sizeof(path), "%s/x-garbage.pem", dir);
	assert_int_equal(certs_check_file(path, reason, sizeof(reason)), -1);
	assert_non_null(strstr(reason, "bad PEM"));
	snprintf(path, sizeof(path), "%s/no-such-file.pem", dir);
	assert_int_equal(certs_check_file(path, reason, sizeof(reason)), -1);
}

/* Make a self-signed certificate with CN <cn> (or none) and the SANs
 * <types>[i]/<vals>[i] (GEN_DNS or GEN_IPADD; <lens>[i] bytes, NULs allowed). */
static X509 *
make_raw_cert(EVP_PKEY *key, const char *cn, const int *types, const char *const *vals,
              const int *lens, int n)
{
	X509 *x = X509_new();
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	int i;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	if (cn != NULL)
		X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
		                           (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	for (i = 0; i < n; i++) {
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_STRING *v = ASN1_STRING_type_new(types[i] == GEN_DNS ? V_ASN1_IA5STRING
		                                                          : V_ASN1_OCTET_STRING);

		assert_true(ASN1_STRING_set(v, vals[i], lens[i]) == 1);
		GENERAL_NAME_set0_value(g, types[i], v);
		sk_GENERAL_NAME_push(gens, g);
	}
	if (n > 0)
		assert_true(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0) == 1);
	GENERAL_NAMES_free(gens);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

/* Collects certs_names() output as "a|b|c|" (in a 1024-byte buffer). */
static int
join_name(const char *name, void *arg)
{
	char *out = arg;
	size_t n = strlen(out);

	snprintf(out + n, 1024 - n, "%s|", name);
	return 0;
}

static void
test_names_rules(void **state)
{
	static const char nul[] = "good.example.test\0.evil.example.test";
	const int t1[] = { GEN_DNS, GEN_IPADD, GEN_DNS, GEN_DNS, GEN_DNS, GEN_DNS, GEN_DNS,
	                   GEN_DNS, GEN_DNS, GEN_DNS };
	const char *const v1[] = { "UP.Example.Test.", "\x7f\0\0\x01", "127.0.0.1", "::1",
	                           "*.w.example.test", "a*.x.example.test", "*.*.example.test",
	                           "*", nul, "sp ace.example.test" };
	const int l1[] = { 16, 4, 9, 3, 16, 17, 16, 1, (int)sizeof(nul) - 1, 19 };
	const int t2[] = { GEN_DNS };
	const char *const v2[] = { nul };
	const int l2[] = { (int)sizeof(nul) - 1 };
	const int t3[] = { GEN_IPADD };
	const char *const v3[] = { "\x7f\0\0\x01" };
	const int l3[] = { 4 };
	EVP_PKEY *k = make_key();
	char out[1024];
	X509 *x;

	(void)state;
	/* DNS SANs only, lower-cased, no trailing dot; never an address, a NUL,
	 * a space or a misplaced '*'; the CN is not used when a DNS SAN exists */
	x = make_raw_cert(k, "cn.example.test", t1, v1, l1, 10);
	out[0] = '\0';
	assert_int_equal(certs_names(x, join_name, out), 0);
	assert_string_equal(out, "up.example.test|*.w.example.test|");
	X509_free(x);
	/* a DNS SAN with an embedded NUL is no name, and still rules out the CN */
	x = make_raw_cert(k, "cn.example.test", t2, v2, l2, 1);
	out[0] = '\0';
	assert_int_equal(certs_names(x, join_name, out), 0);
	assert_string_equal(out, "");
	X509_free(x);
	/* an IP SAN alone leaves the CN in use; a CN that is an address is no name */
	x = make_raw_cert(k, "Cn.Example.Test", t3, v3, l3, 1);
	out[0] = '\0';
	assert_int_equal(certs_names(x, join_name, out), 0);
	assert_string_equal(out, "cn.example.test|");
	X509_free(x);
	x = make_raw_cert(k, "127.0.0.1", t3, v3, l3, 1);
	out[0] = '\0';
	assert_int_equal(certs_names(x, join_name, out), 0);
	assert_string_equal(out, "");
	X509_free(x);
	EVP_PKEY_free(k);
}

static int setup_calls;

static void
count_setup(SSL_CTX *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	setup_calls++;
}

static void
test_store_lookup(void **state)
{
	struct certs_opts o = { .setup = count_setup };
	char err[256];
	struct certs *c;
	SSL_CTX *def;

	(void)state;
	setup_calls = 0;
	c = certs_load(dir, &o, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(certs_count(c), 5);     /* a, b, c, d, e */
	assert_int_equal(setup_calls, 5);
	def = certs_default(c);
	assert_string_equal(certs_file_of(c, def), "a-mail.pem");

	/* exact, case, trailing dot */
	assert_string_equal(certs_file_of(c, certs_find(c, "www.example.com")), "a-mail.pem");
	assert_string_equal(certs_file_of(c, certs_find(c, "WWW.Example.Com.")), "a-mail.pem");
	/* duplicate name: the earlier file wins */
	assert_string_equal(certs_file_of(c, certs_find(c, "mail.example.com")), "a-mail.pem");
	/* CN when no SAN; key in a .key file */
	assert_string_equal(certs_file_of(c, certs_find(c, "cn.example.org")), "c-cn.pem");
	assert_string_equal(certs_file_of(c, certs_find(c, "split.example.com")), "d-split.pem");
	/* wildcard: one label only */
	assert_string_equal(certs_file_of(c, certs_find(c, "imap.example.net")), "b-wild.pem");
	assert_string_equal(certs_file_of(c, certs_find(c, "POP.EXAMPLE.NET.")), "b-wild.pem");
	assert_null(certs_find(c, "a.b.example.net"));
	assert_null(certs_find(c, "example.net"));
	/* broken and skipped files are not served */
	assert_null(certs_find(c, "expired.example.com"));
	assert_null(certs_find(c, "mismatch.example.com"));
	assert_null(certs_find(c, "hidden.example.com"));
	assert_null(certs_find(c, "ocsp.example.com"));
	/* no match, no SNI, junk -> default via select */
	assert_null(certs_find(c, "unknown.example.com"));
	assert_null(certs_find(c, NULL));
	assert_null(certs_find(c, ""));
	assert_null(certs_find(c, "."));
	assert_ptr_equal(certs_select(c, "unknown.example.com"), def);
	assert_ptr_equal(certs_select(c, NULL), def);
	assert_ptr_equal(certs_select(c, "\x01\x02"), def);

	/* references: the store survives until the last one goes */
	assert_ptr_equal(certs_ref(c), c);
	certs_unref(c);
	assert_ptr_equal(certs_find(c, "www.example.com"), def);
	certs_unref(c);
}

static void
test_store_default_and_errors(void **state)
{
	struct certs_opts o = { .default_file = "c-cn.pem" };
	char err[256];
	struct certs *c;

	(void)state;
	c = certs_load(dir, &o, err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(certs_file_of(c, certs_default(c)), "c-cn.pem");
	certs_unref(c);
	assert_null(certs_load("/nonexistent/dir", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/dir"));
	certs_unref(NULL);
}

static void
test_random_sni_no_growth(void **state)
{
	char err[256], name[64];
	struct certs *c;
	int i;

	(void)state;
	c = certs_load(dir, NULL, err, sizeof(err));
	assert_non_null(c);
	/* lookups allocate nothing: a flood of names leaves the store as it was */
	for (i = 0; i < 100000; i++) {
		snprintf(name, sizeof(name), "r%d.example.invalid", i);
		assert_null(certs_find(c, name));
	}
	assert_int_equal(certs_count(c), 5);
	certs_unref(c);
}

static void
test_alpn(void **state)
{
	const unsigned char good[] = "\x08http/1.1\x04imap";
	const unsigned char bad[] = "\x08http/1.1\x02h2";
	const unsigned char broken[] = "\x09imap";
	const unsigned char *out = NULL;
	unsigned char outlen = 0;

	(void)state;
	assert_int_equal(certs_alpn_select(good, sizeof(good) - 1, "imap", &out, &outlen),
	                 SSL_TLSEXT_ERR_OK);
	assert_int_equal(outlen, 4);
	assert_memory_equal(out, "imap", 4);
	assert_int_equal(certs_alpn_select(good, sizeof(good) - 1, "pop3", &out, &outlen),
	                 SSL_TLSEXT_ERR_ALERT_FATAL);
	assert_int_equal(certs_alpn_select(bad, sizeof(bad) - 1, "imap", &out, &outlen),
	                 SSL_TLSEXT_ERR_ALERT_FATAL);
	assert_int_equal(certs_alpn_select(broken, sizeof(broken) - 1, "imap", &out, &outlen),
	                 SSL_TLSEXT_ERR_ALERT_FATAL);
	assert_int_equal(certs_alpn_select(good, 0, "imap", &out, &outlen),
	                 SSL_TLSEXT_ERR_ALERT_FATAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_match),
		cmocka_unit_test(test_cert_names),
		cmocka_unit_test(test_check_file_reasons),
		cmocka_unit_test(test_names_rules),
		cmocka_unit_test(test_store_lookup),
		cmocka_unit_test(test_store_default_and_errors),
		cmocka_unit_test(test_random_sni_no_growth),
		cmocka_unit_test(test_alpn),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
