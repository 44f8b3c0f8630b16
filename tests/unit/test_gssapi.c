/*
 * Unit tests of the SASL GSSAPI mechanism's own parts: the security layer
 * message, the principal mapping, and the conversation's refusals that
 * need no KDC (an empty token, an unreadable keytab, a step after the end).
 * The full exchange with a real KDC is in tests/integration/test_mail_gssapi.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "gssapi.h"

static void
test_layer(void **state)
{
	char az[GSSAPI_NAME_MAX + 1];
	unsigned char m[300];
	(void)state;

	assert_int_equal(gssapi_parse_layer((const unsigned char *)"\x01\0\0\0", 4, az, sizeof(az)),
	                 GSSAPI_LAYER_OK);
	assert_string_equal(az, "");
	/* a client may state a size without a layer: ignored */
	assert_int_equal(gssapi_parse_layer((const unsigned char *)"\x01\x00\x10\x00" "alice", 9,
	                                    az, sizeof(az)), GSSAPI_LAYER_OK);
	assert_string_equal(az, "alice");
	/* integrity (2), privacy (4), several bits, nothing: refused */
	assert_int_equal(gssapi_parse_layer((const unsigned char *)"\x02\xff\xff\xff", 4, az,
	                                    sizeof(az)), GSSAPI_LAYER_WANTED);
	assert_int_equal(gssapi_parse_layer((const unsigned char *)"\x04\xff\xff\xff", 4, az,
	                                    sizeof(az)), GSSAPI_LAYER_WANTED);
	assert_int_equal(gssapi_parse_layer((const unsigned char *)"\x07\0\0\0", 4, az, sizeof(az)),
	                 GSSAPI_LAYER_WANTED);
	assert_int_equal(gssapi_parse_layer((const unsigned char *)"\0\0\0\0", 4, az, sizeof(az)),
	                 GSSAPI_LAYER_WANTED);
	assert_int_equal(gssapi_parse_layer((const unsigned char *)"\x01\0\0", 3, az, sizeof(az)),
	                 GSSAPI_LAYER_SHORT);
	/* an authzid with NUL, CR or LF, or over the limit */
	assert_int_equal(gssapi_parse_layer((const unsigned char *)"\x01\0\0\0" "a\0b", 7, az,
	                                    sizeof(az)), GSSAPI_LAYER_AUTHZID);
	assert_int_equal(gssapi_parse_layer((const unsigned char *)"\x01\0\0\0" "a\r\nb", 8, az,
	                                    sizeof(az)), GSSAPI_LAYER_AUTHZID);
	memset(m, 'a', sizeof(m));
	m[0] = 1;
	assert_int_equal(gssapi_parse_layer(m, 4 + GSSAPI_NAME_MAX + 1, az, sizeof(az)),
	                 GSSAPI_LAYER_AUTHZID);
	assert_int_equal(gssapi_parse_layer(m, 4 + GSSAPI_NAME_MAX, az, sizeof(az)),
	                 GSSAPI_LAYER_OK);
	assert_int_equal(strlen(az), GSSAPI_NAME_MAX);
}

static void
test_principal(void **state)
{
	struct cfg_list realms = { 0 };
	char out[300];
	const char *why;
	(void)state;

	realms.n = 1;
	strcpy(realms.item[0], "OTHER.TEST=other.example");
	assert_int_equal(gssapi_parse_principal("alice@GH.TEST", "GH.TEST", &realms, out,
	                                        sizeof(out), &why), 0);
	assert_string_equal(out, "alice");
	assert_int_equal(gssapi_parse_principal("carol@OTHER.TEST", "GH.TEST", &realms, out,
	                                        sizeof(out), &why), 0);
	assert_string_equal(out, "carol@other.example");
	/* realms are case-sensitive; unknown ones are refused */
	assert_int_equal(gssapi_parse_principal("alice@gh.test", "GH.TEST", &realms, out,
	                                        sizeof(out), &why), -1);
	assert_string_equal(why, "realm not accepted");
	assert_string_equal(out, "");
	assert_int_equal(gssapi_parse_principal("eve@EVIL.TEST", "GH.TEST", &realms, out,
	                                        sizeof(out), &why), -1);
	/* an instance is another principal; escapes and empty names are refused */
	assert_int_equal(gssapi_parse_principal("alice/admin@GH.TEST", "GH.TEST", &realms, out,
	                                        sizeof(out), &why), -1);
	assert_string_equal(why, "principal has an instance");
	assert_int_equal(gssapi_parse_principal("a\\@b@GH.TEST", "GH.TEST", &realms, out,
	                                        sizeof(out), &why), -1);
	assert_int_equal(gssapi_parse_principal("@GH.TEST", "GH.TEST", &realms, out,
	                                        sizeof(out), &why), -1);
	assert_int_equal(gssapi_parse_principal("alice", "GH.TEST", &realms, out,
	                                        sizeof(out), &why), -1);
	assert_int_equal(gssapi_parse_principal("alice@", "GH.TEST", &realms, out,
	                                        sizeof(out), &why), -1);
	/* no default realm: only the mapped realms */
	assert_int_equal(gssapi_parse_principal("alice@GH.TEST", "", &realms, out,
	                                        sizeof(out), &why), -1);
	/* the output bound holds */
	assert_int_equal(gssapi_parse_principal("carol@OTHER.TEST", "GH.TEST", &realms, out, 10,
	                                        &why), -1);
	assert_string_equal(why, "principal too long");
}

static void
test_conversation_refusals(void **state)
{
	unsigned char out[GSSAPI_OUT_MAX];
	size_t outlen = 99;
	struct gssapi *g;
	(void)state;

	/* an empty first token is no ticket */
	g = gssapi_new("/nonexistent/gh-test.keytab", "", "imap");
	assert_non_null(g);
	assert_int_equal(gssapi_step(g, (const unsigned char *)"", 0, out, sizeof(out), &outlen),
	                 GSSAPI_FAIL);
	assert_int_equal(outlen, 0);
	assert_string_equal(gssapi_error(g), "empty GSSAPI token");
	/* over: every later step fails */
	assert_int_equal(gssapi_step(g, (const unsigned char *)"x", 1, out, sizeof(out), &outlen),
	                 GSSAPI_FAIL);
	assert_string_equal(gssapi_principal(g), "");
	gssapi_free(g);

	/* the keytab cannot be read: the proxy's trouble, a temporary failure */
	g = gssapi_new("/nonexistent/gh-test.keytab", "", "imap");
	assert_int_equal(gssapi_step(g, (const unsigned char *)"\x60\x01\x00", 3, out, sizeof(out),
	                             &outlen), GSSAPI_TEMPFAIL);
	assert_non_null(strstr(gssapi_error(g), "keytab"));
	gssapi_free(g);
	gssapi_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layer),
		cmocka_unit_test(test_principal),
		cmocka_unit_test(test_conversation_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
