/*
 * Unit tests for base64 and SASL PLAIN decoding/encoding.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sasl.h"

/* Decode <s> as base64 into a string; returns the length or -1. */
static ssize_t
dec(const char *s, char *out, size_t outlen)
{
	ssize_t n = sasl_b64_decode(s, strlen(s), (unsigned char *)out, outlen - 1);
	if (n >= 0)
		out[n] = '\0';
	return n;
}

static void
test_b64(void **state)
{
	char out[64];
	unsigned char bin[256];
	char enc[400];
	size_t i;
	(void)state;

	assert_int_equal(dec("", out, sizeof(out)), 0);
	assert_int_equal(dec("=", out, sizeof(out)), 0);
	assert_int_equal(dec("Zg==", out, sizeof(out)), 1);
	assert_string_equal(out, "f");
	assert_int_equal(dec("Zm8=", out, sizeof(out)), 2);
	assert_string_equal(out, "fo");
	assert_int_equal(dec("Zm9vYmFy", out, sizeof(out)), 6);
	assert_string_equal(out, "foobar");
	assert_int_equal(dec("Zm9", out, sizeof(out)), -1);         /* no padding */
	assert_int_equal(dec("Zg=a", out, sizeof(out)), -1);        /* data after pad */
	assert_int_equal(dec("Z===", out, sizeof(out)), -1);
	assert_int_equal(dec("Zg==Zg==", out, sizeof(out)), -1);    /* pad mid-way */
	assert_int_equal(dec("Zm9v YmFy", out, sizeof(out)), -1);
	assert_int_equal(dec("Zm9v\r\n", out, sizeof(out)), -1);
	assert_int_equal(dec("Zm9vYmFy", out, 6), -1);              /* no room */
	assert_int_equal(dec("*", out, sizeof(out)), -1);

	for (i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)(i * 7 + 3);
	for (i = 0; i < sizeof(bin); i++) {
		unsigned char back[256];
		ssize_t n = sasl_b64_encode(bin, i, enc, sizeof(enc));
		assert_true(n >= 0);
		assert_int_equal((size_t)n, (i + 2) / 3 * 4);
		if (i == 0)
			continue;
		assert_int_equal(sasl_b64_decode(enc, (size_t)n, back, sizeof(back)), (ssize_t)i);
		assert_memory_equal(back, bin, i);
	}
	assert_int_equal(sasl_b64_encode(bin, 3, enc, 4), -1);
	assert_int_equal(sasl_b64_encode(bin, 3, enc, 5), 4);
}

static void
test_plain_ok(void **state)
{
	struct sasl_plain p;
	char enc[4096];
	(void)state;

	/* "\0bob\0secret" */
	assert_int_equal(sasl_plain_decode("AGJvYgBzZWNyZXQ=", 16, &p), SASL_OK);
	assert_string_equal(p.authzid, "");
	assert_string_equal(p.authcid, "bob");
	assert_string_equal(p.password, "secret");
	assert_int_equal(p.password_len, 6);
	/* "admin\0bob\0se cret" */
	assert_int_equal(sasl_plain_decode("YWRtaW4AYm9iAHNlIGNyZXQ=", 24, &p), SASL_OK);
	assert_string_equal(p.authzid, "admin");
	assert_string_equal(p.authcid, "bob");
	assert_string_equal(p.password, "se cret");
	assert_int_equal(sasl_plain_encode(&p, enc, sizeof(enc)), 24);
	assert_string_equal(enc, "YWRtaW4AYm9iAHNlIGNyZXQ=");
	assert_int_equal(sasl_plain_encode(&p, enc, 24), -1);
	sasl_plain_wipe(&p);
	assert_int_equal(p.password[0], 0);
}

/* Encode raw <msg> of <len> and decode it as PLAIN. */
static int
plain_raw(const char *msg, size_t len, struct sasl_plain *p)
{
	char enc[4096];
	ssize_t n = sasl_b64_encode((const unsigned char *)msg, len, enc, sizeof(enc));
	assert_true(n >= 0);
	return sasl_plain_decode(enc, (size_t)n, p);
}

static void
test_plain_bad(void **state)
{
	struct sasl_plain p;
	static char big[4096];
	(void)state;

	assert_int_equal(sasl_plain_decode("=", 1, &p), SASL_EBASE64);
	assert_int_equal(sasl_plain_decode("", 0, &p), SASL_EBASE64);
	assert_int_equal(sasl_plain_decode("*", 1, &p), SASL_EBASE64);
	assert_int_equal(sasl_plain_decode("AGJvYg!zZWNyZXQ=", 16, &p), SASL_EBASE64);
	assert_int_equal(plain_raw("bob", 3, &p), SASL_EFORMAT);
	assert_int_equal(plain_raw("\0bob", 4, &p), SASL_EFORMAT);
	assert_int_equal(plain_raw("\0bob\0", 5, &p), SASL_EFORMAT);      /* empty password */
	assert_int_equal(plain_raw("\0\0pw", 4, &p), SASL_EFORMAT);       /* empty authcid */
	assert_int_equal(plain_raw("\0bob\0pw\0", 8, &p), SASL_EFORMAT);  /* extra NUL */
	assert_int_equal(plain_raw("\0bo\rb\0pw", 8, &p), SASL_EFORMAT);
	assert_int_equal(plain_raw("\0bob\0p\nw", 8, &p), SASL_EFORMAT);
	assert_int_equal(p.password[0], 0);

	/* 255-octet names and a 1024-octet password pass; one more does not */
	memset(big, 'n', 255);
	big[255] = '\0';
	memset(big + 256, 'u', 255);
	big[511] = '\0';
	memset(big + 512, 'p', 1024);
	assert_int_equal(plain_raw(big, 1536, &p), SASL_OK);
	assert_int_equal(p.authzid_len, 255);
	assert_int_equal(p.password_len, 1024);
	big[0] = '\0';    /* authzid empty, authcid 255 + 1024 password */
	memset(big, 'n', 256);
	assert_int_equal(plain_raw(big, 1536, &p), SASL_EFORMAT); /* only one NUL left */
	memset(big, 0, sizeof(big));
	big[0] = '\0';
	memset(big + 1, 'u', 256);
	big[257] = '\0';
	big[258] = 'p';
	assert_int_equal(plain_raw(big, 259, &p), SASL_ETOOLONG);
	memset(big, 'A', sizeof(big));
	assert_int_equal(sasl_plain_decode(big, 2052, &p), SASL_ETOOLONG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_plain_ok),
		cmocka_unit_test(test_plain_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
