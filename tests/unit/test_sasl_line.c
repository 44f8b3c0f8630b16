/*
 * Unit tests for the SASL response line reader the IMAP and POP3 parsers
 * share: every outcome at its bound and one past it, fed whole and byte by
 * byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sasl_line.h"

static const char *const rc_names[] = { "AGAIN", "RESPONSE", "CANCEL", "ERROR", "FATAL" };

/*
 * Feed <len> octets of <in> (in chunks of <chunk>, 0: whole) to a reader of
 * <max>/<skip_max> with an output buffer of <outlen>; describe the outcome
 * ("RESPONSE 'text'", "ERROR reason", ...) into <ev> and return the octets
 * consumed.
 */
static size_t
run(const char *in, size_t len, size_t chunk, size_t max, size_t skip_max, size_t outlen,
    char *ev, size_t evlen)
{
	static char out[256];
	struct sasl_line sl;
	enum sasl_line_rc rc = SASL_LINE_AGAIN;
	size_t off = 0, used = 0;

	assert_true(outlen <= sizeof(out));
	sasl_line_init(&sl, max, skip_max);
	while (off < len && rc == SASL_LINE_AGAIN) {
		size_t n = chunk && chunk < len - off ? chunk : len - off;

		rc = sasl_line_feed(&sl, out, outlen, in + off, n, &used);
		assert_true(used <= n);
		if (rc == SASL_LINE_AGAIN)
			assert_int_equal(used, n);
		off += used;
	}
	if (rc == SASL_LINE_RESPONSE || rc == SASL_LINE_CANCEL) {
		assert_int_equal(strlen(out), sl.used);
		snprintf(ev, evlen, "%s '%s' %zu", rc_names[rc], out, sl.len);
	} else if (rc == SASL_LINE_ERROR || rc == SASL_LINE_FATAL) {
		assert_non_null(sl.error);
		assert_true(sl.too_long == (strcmp(sl.error, "line too long") == 0));
		snprintf(ev, evlen, "%s %s %zu", rc_names[rc], sl.error, sl.len);
	} else {
		snprintf(ev, evlen, "%s %zu", rc_names[rc], sl.len);
	}
	return off;
}

/* Check that <in> gives <want> and consumes <want_used>, whole and byte by byte. */
static void
check(const char *in, size_t len, size_t max, size_t skip_max, size_t outlen,
      const char *want, size_t want_used)
{
	char ev[512];
	size_t used;

	used = run(in, len, 0, max, skip_max, outlen, ev, sizeof(ev));
	if (strcmp(ev, want) != 0) {
		print_error("input: %.*s\nwant: %s\ngot:  %s\n", (int)len, in, want, ev);
		fail();
	}
	assert_int_equal(used, want_used);
	used = run(in, len, 1, max, skip_max, outlen, ev, sizeof(ev));
	if (strcmp(ev, want) != 0) {
		print_error("byte by byte: want %s, got %s\n", want, ev);
		fail();
	}
	assert_int_equal(used, want_used);
}

#define CHECK(in, max, want, used) check((in), sizeof(in) - 1, (max), 1000, 256, (want), (used))

static void
test_responses(void **state)
{
	(void)state;
	CHECK("AHVzZXIAcGFzcw==\r\nNEXT", 100, "RESPONSE 'AHVzZXIAcGFzcw==' 18", 18);
	CHECK("abc\n", 100, "RESPONSE 'abc' 4", 4);
	CHECK("\r\n", 100, "RESPONSE '' 2", 2);
	CHECK("*\r\n", 100, "CANCEL '*' 3", 3);
	CHECK("**\r\n", 100, "RESPONSE '**' 4", 4);
	CHECK("abc", 100, "AGAIN 3", 3);
}

static void
test_errors(void **state)
{
	(void)state;
	CHECK("ab\0c\r\nNEXT", 100, "ERROR NUL in command 6", 6);
	CHECK("ab\rc\r\nNEXT", 100, "ERROR CR without LF 6", 6);
	CHECK("ab\r\0\r\nNEXT", 100, "ERROR NUL in command 6", 6);
	/* literals mean nothing here: the line ends at its LF */
	CHECK("{5+}\r\nNEXT", 100, "RESPONSE '{5+}' 6", 6);
}

static void
test_bounds(void **state)
{
	(void)state;
	/* max counts CR and LF: 12 octets pass, 13 do not */
	CHECK("0123456789\r\nNEXT", 12, "RESPONSE '0123456789' 12", 12);
	CHECK("0123456789A\r\nNEXT", 12, "ERROR line too long 13", 13);
	CHECK("0123456789\nNEXT", 11, "RESPONSE '0123456789' 11", 11);
	CHECK("0123456789A\nNEXT", 11, "ERROR line too long 12", 12);
	/* "line too long" outranks an earlier error */
	CHECK("0\0" "1234567890123\r\n", 12, "ERROR line too long 17", 17);
	/* still going at skip_max octets: FATAL, the octet past it unused */
	check("0123456789abcdefghij\r\n", 20, 5, 20, 256, "AGAIN 20", 20);
	check("0123456789abcdefghijk\r\n", 23, 5, 20, 256, "FATAL line too long 21", 20);
	/* the caller's buffer is a bound too (octets and the NUL) */
	check("abcd\r\n", 6, 100, 1000, 5, "RESPONSE 'abcd' 6", 6);
	check("abcde\r\n", 7, 100, 1000, 5, "ERROR line too long 7", 7);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_responses),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
