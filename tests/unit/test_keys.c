/*
 * Unit tests for memcached key encoding: plain keys, and hashed keys for
 * long, unsafe and UTF-8 names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "keys.h"

static void
test_plain(void **state)
{
	char k[KEYS_MAX];

	(void)state;
	assert_int_equal(keys_make(k, sizeof(k), KEYS_NAME, "alice@example.com"), 0);
	assert_string_equal(k, "gh:n:alice@example.com");
	assert_int_equal(keys_make(k, sizeof(k), KEYS_ID, "0f1e-22"), 0);
	assert_string_equal(k, "gh:i:0f1e-22");
	assert_int_equal(keys_make(k, sizeof(k), KEYS_THR_IP, "192.0.2.1"), 0);
	assert_string_equal(k, "gh:ti:192.0.2.1");
	assert_int_equal(keys_make(k, sizeof(k), KEYS_FAIL_USER, "bob+tag@example.org"), 0);
	assert_string_equal(k, "gh:fu:bob+tag@example.org");
}

static void
test_hashed(void **state)
{
	char k[KEYS_MAX], k2[KEYS_MAX], long200[201], long201[202];

	(void)state;
	/* SHA-256("") is well known */
	assert_int_equal(keys_make(k, sizeof(k), KEYS_NAME, ""), 0);
	assert_string_equal(k, "gh:n:#e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	/* SHA-256("abc") with a space appended is not "abc": check the space forces hashing */
	assert_int_equal(keys_make(k, sizeof(k), KEYS_NAME, "a b"), 0);
	assert_true(strncmp(k, "gh:n:#", 6) == 0);
	assert_int_equal(strlen(k), 6 + 64);
	assert_int_equal(keys_make(k, sizeof(k), KEYS_NAME, "abc"), 0);
	assert_string_equal(k, "gh:n:abc");
	/* control characters, DEL, UTF-8 */
	assert_int_equal(keys_make(k, sizeof(k), KEYS_NAME, "a\r\nb"), 0);
	assert_true(strncmp(k, "gh:n:#", 6) == 0);
	assert_int_equal(keys_make(k, sizeof(k), KEYS_NAME, "a\x7f"), 0);
	assert_true(strncmp(k, "gh:n:#", 6) == 0);
	assert_int_equal(keys_make(k, sizeof(k), KEYS_NAME, "j\xc3\xbcrgen@example.com"), 0);
	assert_true(strncmp(k, "gh:n:#", 6) == 0);
	/* a plain key may not pose as a hashed one */
	assert_int_equal(keys_make(k, sizeof(k), KEYS_NAME, "#abc"), 0);
	assert_true(strncmp(k, "gh:n:#", 6) == 0);
	assert_int_equal(strlen(k), 6 + 64);
	/* 200 bytes stay plain, 201 are hashed */
	memset(long200, 'a', 200);
	long200[200] = '\0';
	memset(long201, 'a', 201);
	long201[201] = '\0';
	assert_int_equal(keys_make(k, sizeof(k), KEYS_NAME, long200), 0);
	assert_int_equal(strlen(k), 5 + 200);
	assert_int_equal(keys_make(k, sizeof(k), KEYS_NAME, long201), 0);
	assert_int_equal(strlen(k), 6 + 64);
	/* deterministic, and the kind is part of the key */
	assert_int_equal(keys_make(k2, sizeof(k2), KEYS_NAME, long201), 0);
	assert_string_equal(k, k2);
	assert_int_equal(keys_make(k2, sizeof(k2), KEYS_THR_USER, long201), 0);
	assert_string_equal(k + 6, k2 + 7);
}

static void
test_small_buffer(void **state)
{
	char k[16];

	(void)state;
	assert_int_equal(keys_make(k, sizeof(k), KEYS_NAME, "alice@example.com"), -1);
	assert_int_equal(keys_make(k, sizeof(k), KEYS_NAME, "a b"), -1);
	assert_int_equal(keys_make(k, sizeof(k), KEYS_NAME, "bob"), 0);
	assert_string_equal(k, "gh:n:bob");
	assert_int_equal(keys_make(k, 3, KEYS_NAME, "bob"), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_hashed),
		cmocka_unit_test(test_small_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
