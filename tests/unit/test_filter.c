/*
 * Unit tests for RFC 4515 filter escaping and filter templates, checked
 * against libldap's own escaping and parser.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <ldap.h>
#include <cmocka.h>

#include "filter.h"

static void
test_escape(void **state)
{
	char o[FILTER_MAX];

	(void)state;
	assert_int_equal(filter_escape(o, sizeof(o), "alice@example.com", 17), 17);
	assert_string_equal(o, "alice@example.com");
	assert_true(filter_escape(o, sizeof(o), "*)(mail=*", 9) > 0);
	assert_string_equal(o, "\\2a\\29\\28mail=\\2a");
	assert_true(filter_escape(o, sizeof(o), "a\\b", 3) > 0);
	assert_string_equal(o, "a\\5cb");
	assert_true(filter_escape(o, sizeof(o), "a\0b", 3) > 0);
	assert_string_equal(o, "a\\00b");
	assert_true(filter_escape(o, sizeof(o), "j\xc3\xbc", 3) > 0);
	assert_string_equal(o, "j\\c3\\bc");
	assert_int_equal(filter_escape(o, sizeof(o), "", 0), 0);
	assert_string_equal(o, "");
}

/* Our escaping of <v> must mean the same bytes as libldap's. */
static void
same_as_libldap(const char *v, size_t len)
{
	struct berval in = { (ber_len_t)len, (char *)(uintptr_t)v }, out = { 0, NULL };
	char o[FILTER_MAX];

	assert_int_equal(ldap_bv2escaped_filter_value(&in, &out), 0);
	assert_true(filter_escape(o, sizeof(o), v, len) >= 0);
	/* libldap may use upper or lower case hex: compare case-insensitively */
	assert_int_equal(strlen(o), out.bv_len);
	assert_int_equal(strncasecmp(o, out.bv_val, out.bv_len), 0);
	ber_memfree(out.bv_val);
}

static void
test_libldap(void **state)
{
	(void)state;
	same_as_libldap("*)(mail=*", 9);
	same_as_libldap("a\0b\\c(d)e*", 10);
	same_as_libldap("j\xc3\xbcrgen", 7);
	same_as_libldap("plain", 5);
}

static void
test_build(void **state)
{
	char o[FILTER_MAX];
	const char *tmpl = "(&(objectClass=inetOrgPerson)(|(mail=%s)(mailLocalAddress=%s)))";

	(void)state;
	assert_true(filter_build(o, sizeof(o), tmpl, "bob@x", 5) > 0);
	assert_string_equal(o, "(&(objectClass=inetOrgPerson)(|(mail=bob@x)(mailLocalAddress=bob@x)))");
	/* an injection attempt stays one assertion value per %s */
	assert_true(filter_build(o, sizeof(o), tmpl, "*)(mail=*", 9) > 0);
	assert_string_equal(o, "(&(objectClass=inetOrgPerson)(|(mail=\\2a\\29\\28mail=\\2a)"
	                       "(mailLocalAddress=\\2a\\29\\28mail=\\2a)))");
	assert_int_equal(filter_build(o, sizeof(o), "(uid=%d)", "x", 1), -1);
	assert_int_equal(filter_build(o, sizeof(o), "(uid=%", "x", 1), -1);
	assert_int_equal(filter_build(o, sizeof(o), "(entryUUID=%s)", "", 0), 12);
	assert_string_equal(o, "(entryUUID=)");
}

static void
test_bounds(void **state)
{
	char o[12], big[FILTER_MAX];

	(void)state;
	assert_int_equal(filter_build(o, sizeof(o), "(uid=%s)", "abcde", 5), 11);
	assert_string_equal(o, "(uid=abcde)");
	assert_int_equal(filter_build(o, sizeof(o), "(uid=%s)", "abcdef", 6), -1);
	assert_string_equal(o, "");
	assert_int_equal(filter_build(o, sizeof(o), "(uid=%s)", "abcd*", 5), -1);
	assert_int_equal(filter_escape(o, 4, "*", 1), 3);
	assert_int_equal(filter_escape(o, 3, "*", 1), -1);
	memset(big, '*', sizeof(big));
	assert_int_equal(filter_escape(o, sizeof(o), big, sizeof(big)), -1);
	assert_int_equal(filter_escape(o, 0, "", 0), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_libldap),
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
