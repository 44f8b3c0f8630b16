/*
 * Unit tests for account name normalisation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "name.h"

static void
test_basic(void **state)
{
	char o[NAME_MAX_LEN + 1];

	(void)state;
	assert_int_equal(name_normalise(o, sizeof(o), "Alice@Example.COM", NULL), 17);
	assert_string_equal(o, "alice@example.com");
	assert_int_equal(name_normalise(o, sizeof(o), "  bob@example.org\t", "x.y"), 15);
	assert_string_equal(o, "bob@example.org");
	assert_int_equal(name_normalise(o, sizeof(o), "Carol", "Example.COM"), 17);
	assert_string_equal(o, "carol@example.com");
	assert_int_equal(name_normalise(o, sizeof(o), "carol", ""), 5);
	assert_string_equal(o, "carol");
	assert_int_equal(name_normalise(o, sizeof(o), "carol", NULL), 5);
	assert_int_equal(name_normalise(o, sizeof(o), "Dave+Tag@Example.com", NULL), 20);
	assert_string_equal(o, "dave+tag@example.com");
	/* inner spaces are kept: the hashed cache key and escaped filter deal with them */
	assert_true(name_normalise(o, sizeof(o), "a b@c", NULL) > 0);
	assert_string_equal(o, "a b@c");
}

static void
test_utf8(void **state)
{
	char o[NAME_MAX_LEN + 1];

	(void)state;
	/* "JÜrgen": the ASCII letters are lowered, the UTF-8 bytes are left alone */
	assert_int_equal(name_normalise(o, sizeof(o), "J\xc3\x9crgen@Example.com", NULL), 19);
	assert_string_equal(o, "j\xc3\x9crgen@example.com");
}

static void
test_reject(void **state)
{
	char o[NAME_MAX_LEN + 1], big[400];

	(void)state;
	assert_int_equal(name_normalise(o, sizeof(o), "", "d"), -1);
	assert_string_equal(o, "");
	assert_int_equal(name_normalise(o, sizeof(o), "  \t ", "d"), -1);
	assert_int_equal(name_normalise(o, sizeof(o), "a\r\nb", NULL), -1);
	assert_int_equal(name_normalise(o, sizeof(o), "a\x01", NULL), -1);
	assert_int_equal(name_normalise(o, sizeof(o), "a\x7f", NULL), -1);
	assert_int_equal(name_normalise(o, sizeof(o), NULL, NULL), -1);
	assert_int_equal(name_normalise_len(o, sizeof(o), "a\0b", 3, NULL), -1);
	assert_int_equal(name_normalise_len(o, sizeof(o), "ab", 2, NULL), 2);
	/* too long: for NAME_MAX_LEN, and for the buffer */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(name_normalise(o, sizeof(o), big, NULL), -1);
	big[NAME_MAX_LEN] = '\0';
	assert_int_equal(name_normalise(o, sizeof(o), big, NULL), NAME_MAX_LEN);
	assert_int_equal(name_normalise(o, sizeof(o), big, "d"), -1);
	assert_int_equal(name_normalise(o, 4, "abcd", NULL), -1);
	assert_int_equal(name_normalise(o, 5, "abcd", NULL), 4);
	assert_int_equal(name_normalise(o, 5, "abc", "d"), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_reject),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
