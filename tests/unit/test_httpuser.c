/*
 * Unit tests for HTTP user extraction: URL forms, the ActiveSync query,
 * Zimbra's ZM_AUTH_TOKEN and Basic credentials, and malformed inputs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "httpuser.h"

#define S(x) (x), strlen(x)

/* Build a token "0_<hmac>_<hex of data>" into <out>. */
static void
mk_token(char *out, size_t outlen, const char *data)
{
	size_t n = (size_t)snprintf(out, outlen, "0_%s_", "9f3c2a0b5d1e4f60718293a4b5c6d7e8f9012345");

	for (size_t i = 0; data[i] && n + 2 < outlen; i++)
		n += (size_t)snprintf(out + n, outlen - n, "%02x", (unsigned char)data[i]);
}

static void
test_path(void **state)
{
	char u[HTTPUSER_MAX];

	(void)state;
	assert_int_equal(httpuser_from_path(S("/home/alice/inbox"), u, sizeof(u)), 1);
	assert_string_equal(u, "alice");
	assert_int_equal(httpuser_from_path(S("/home/alice@example.com/Calendar.ics"), u, sizeof(u)), 1);
	assert_string_equal(u, "alice@example.com");
	assert_int_equal(httpuser_from_path(S("/service/home/~bob/inbox.rss"), u, sizeof(u)), 1);
	assert_string_equal(u, "bob");
	assert_int_equal(httpuser_from_path(S("/home/%7Ebob/"), u, sizeof(u)), 1);
	assert_string_equal(u, "bob");
	assert_int_equal(httpuser_from_path(S("/dav/carol%40example.com/Calendar/"), u, sizeof(u)), 1);
	assert_string_equal(u, "carol@example.com");
	assert_int_equal(httpuser_from_path(S("/principals/users/dave/"), u, sizeof(u)), 1);
	assert_string_equal(u, "dave");
	assert_int_equal(httpuser_from_path(S("/home/eve"), u, sizeof(u)), 1);
	assert_string_equal(u, "eve");
	/* No user named. */
	assert_int_equal(httpuser_from_path(S("/home/~/inbox"), u, sizeof(u)), 0);
	assert_int_equal(httpuser_from_path(S("/home/"), u, sizeof(u)), 0);
	assert_int_equal(httpuser_from_path(S("/home//x"), u, sizeof(u)), 0);
	assert_int_equal(httpuser_from_path(S("/"), u, sizeof(u)), 0);
	assert_int_equal(httpuser_from_path(S("/zimbra/"), u, sizeof(u)), 0);
	assert_int_equal(httpuser_from_path(S("/homes/alice/"), u, sizeof(u)), 0);
	assert_int_equal(httpuser_from_path(NULL, 0, u, sizeof(u)), 0);
	/* Malformed: bad escapes, control characters, encoded slash. */
	assert_int_equal(httpuser_from_path(S("/home/al%zzice/"), u, sizeof(u)), -1);
	assert_int_equal(httpuser_from_path(S("/home/alice%"), u, sizeof(u)), -1);
	assert_int_equal(httpuser_from_path(S("/home/alice%4"), u, sizeof(u)), -1);
	assert_int_equal(httpuser_from_path(S("/home/al%0aice/"), u, sizeof(u)), -1);
	assert_int_equal(httpuser_from_path(S("/home/al%2fice/"), u, sizeof(u)), -1);
	assert_int_equal(httpuser_from_path(S("/home/al%00ice/"), u, sizeof(u)), -1);
	assert_int_equal(httpuser_from_path(S("/home/al%20ice/"), u, sizeof(u)), -1);
	/* The length prefix is honoured: no NUL needed, none read past. */
	assert_int_equal(httpuser_from_path("/home/alice/xyz", 10, u, sizeof(u)), 1);
	assert_string_equal(u, "alic");
	/* Too long for the output. */
	assert_int_equal(httpuser_from_path(S("/home/abcdefgh/"), u, 8), -1);
	assert_int_equal(httpuser_from_path(S("/home/abcdefg/"), u, 8), 1);
}

static void
test_query(void **state)
{
	char u[HTTPUSER_MAX];

	(void)state;
	assert_int_equal(httpuser_from_query(S("Cmd=Sync&User=alice%40example.com&DeviceId=X"), u, sizeof(u)), 1);
	assert_string_equal(u, "alice@example.com");
	assert_int_equal(httpuser_from_query(S("user=bob"), u, sizeof(u)), 1);
	assert_string_equal(u, "bob");
	assert_int_equal(httpuser_from_query(S("Cmd=Ping&User=EXAMPLE%5Ccarol"), u, sizeof(u)), 1);
	assert_string_equal(u, "EXAMPLE\\carol");
	assert_int_equal(httpuser_from_query(S("Cmd=Ping&DeviceId=1"), u, sizeof(u)), 0);
	assert_int_equal(httpuser_from_query(S("User="), u, sizeof(u)), 0);
	assert_int_equal(httpuser_from_query(S("Username=x&=y&User"), u, sizeof(u)), 0);
	assert_int_equal(httpuser_from_query(S("User=a+b"), u, sizeof(u)), -1);
	assert_int_equal(httpuser_from_query(S("User=%zz"), u, sizeof(u)), -1);
	assert_int_equal(httpuser_from_query(NULL, 0, u, sizeof(u)), 0);
	assert_true(httpuser_is_activesync(S("/Microsoft-Server-ActiveSync")));
	assert_true(httpuser_is_activesync(S("/microsoft-server-activesync/x")));
	assert_false(httpuser_is_activesync(S("/Microsoft-Server-ActiveSyncX")));
	assert_false(httpuser_is_activesync(S("/home/alice")));
}

static void
test_token(void **state)
{
	char t[HTTPUSER_TOKEN_MAX + 64], u[HTTPUSER_MAX];

	(void)state;
	/* The example from Zimbra's proxy source. */
	mk_token(t, sizeof(t), "id=36:cc00ce85-8c0b-49eb-8e08-a8aab43ce836;exp=13:1196504658160;"
	         "type=6:zimbra;mailhost=14:127.0.0.1:7070;");
	assert_int_equal(httpuser_from_token(S(t), u, sizeof(u)), 1);
	assert_string_equal(u, "cc00ce85-8c0b-49eb-8e08-a8aab43ce836");
	/* id not first; a value containing ';' and '=' is skipped by length. */
	mk_token(t, sizeof(t), "exp=13:1196504658160;x=5:a;b=c;id=36:CC00CE85-8C0B-49EB-8E08-A8AAB43CE836;");
	assert_int_equal(httpuser_from_token(S(t), u, sizeof(u)), 1);
	assert_string_equal(u, "CC00CE85-8C0B-49EB-8E08-A8AAB43CE836");
	/* Last field without ';'. */
	mk_token(t, sizeof(t), "id=36:cc00ce85-8c0b-49eb-8e08-a8aab43ce836");
	assert_int_equal(httpuser_from_token(S(t), u, sizeof(u)), 1);
	/* No id field. */
	mk_token(t, sizeof(t), "exp=13:1196504658160;type=6:zimbra;");
	assert_int_equal(httpuser_from_token(S(t), u, sizeof(u)), 0);
	/* An id that is not a UUID is refused. */
	mk_token(t, sizeof(t), "id=5:alice;");
	assert_int_equal(httpuser_from_token(S(t), u, sizeof(u)), -1);
	mk_token(t, sizeof(t), "id=36:cc00ce85-8c0b-49eb-8e08-a8aab43ce83\n;");
	assert_int_equal(httpuser_from_token(S(t), u, sizeof(u)), -1);
	/* Lengths that lie. */
	mk_token(t, sizeof(t), "id=99:cc00ce85-8c0b-49eb-8e08-a8aab43ce836;");
	assert_int_equal(httpuser_from_token(S(t), u, sizeof(u)), -1);
	mk_token(t, sizeof(t), "exp=9999999999999999999999:1;");
	assert_int_equal(httpuser_from_token(S(t), u, sizeof(u)), -1);
	mk_token(t, sizeof(t), "exp=2:123;");
	assert_int_equal(httpuser_from_token(S(t), u, sizeof(u)), -1);
	mk_token(t, sizeof(t), "exp;");
	assert_int_equal(httpuser_from_token(S(t), u, sizeof(u)), -1);
	mk_token(t, sizeof(t), "exp=:1;");
	assert_int_equal(httpuser_from_token(S(t), u, sizeof(u)), -1);
	/* Structure: key version, hmac, hex. */
	assert_int_equal(httpuser_from_token(S("0_abc_6964"), u, sizeof(u)), -1);
	assert_int_equal(httpuser_from_token(S("0_abc_69g4"), u, sizeof(u)), -1);
	assert_int_equal(httpuser_from_token(S("0_abc_696"), u, sizeof(u)), -1);
	assert_int_equal(httpuser_from_token(S("x_abc_6964"), u, sizeof(u)), -1);
	assert_int_equal(httpuser_from_token(S("0__6964"), u, sizeof(u)), -1);
	assert_int_equal(httpuser_from_token(S("0_abc_"), u, sizeof(u)), -1);
	assert_int_equal(httpuser_from_token(S("0_abc"), u, sizeof(u)), -1);
	assert_int_equal(httpuser_from_token(S("0"), u, sizeof(u)), -1);
	assert_int_equal(httpuser_from_token(NULL, 0, u, sizeof(u)), 0);
	/* Oversize token. */
	memset(t, 'a', sizeof(t));
	memcpy(t, "0_a_", 4);
	assert_int_equal(httpuser_from_token(t, HTTPUSER_TOKEN_MAX + 2, u, sizeof(u)), -1);
	/* A buffer too small for the id. */
	mk_token(t, sizeof(t), "id=36:cc00ce85-8c0b-49eb-8e08-a8aab43ce836;");
	assert_int_equal(httpuser_from_token(S(t), u, 36), -1);
}

static void
test_basic(void **state)
{
	char u[HTTPUSER_MAX];

	(void)state;
	/* alice@example.com:secret */
	assert_int_equal(httpuser_from_basic(S("Basic YWxpY2VAZXhhbXBsZS5jb206c2VjcmV0"), u, sizeof(u)), 1);
	assert_string_equal(u, "alice@example.com");
	/* bob:pa:ss (password with a colon), no padding, lower-case scheme */
	assert_int_equal(httpuser_from_basic(S("basic  Ym9iOnBhOnNz "), u, sizeof(u)), 1);
	assert_string_equal(u, "bob");
	/* EXAMPLE\carol:x */
	assert_int_equal(httpuser_from_basic(S("Basic RVhBTVBMRVxjYXJvbDp4"), u, sizeof(u)), 1);
	assert_string_equal(u, "EXAMPLE\\carol");
	/* Not Basic. */
	assert_int_equal(httpuser_from_basic(S("Bearer abc.def.ghi"), u, sizeof(u)), 0);
	assert_int_equal(httpuser_from_basic(S("Basi"), u, sizeof(u)), 0);
	assert_int_equal(httpuser_from_basic(S("BasicYWxpY2U6eA=="), u, sizeof(u)), 0);
	assert_int_equal(httpuser_from_basic(NULL, 0, u, sizeof(u)), 0);
	/* Bad requests: no colon, bad alphabet, data after padding, nothing,
	 * a CR/LF in the user name ("alice\r\n@example.com:pw"). */
	assert_int_equal(httpuser_from_basic(S("Basic YWxpY2U="), u, sizeof(u)), -2);
	assert_int_equal(httpuser_from_basic(S("Basic YWxp*2U6eA=="), u, sizeof(u)), -2);
	assert_int_equal(httpuser_from_basic(S("Basic YQ==YQ=="), u, sizeof(u)), -2);
	assert_int_equal(httpuser_from_basic(S("Basic "), u, sizeof(u)), -2);
	assert_int_equal(httpuser_from_basic(S("Basic YWxpY2UNCkBleGFtcGxlLmNvbTpwdw=="), u,
	                                     sizeof(u)), -2);
	/* No account has it: an empty user, a space in it ("a b:x"): never
	 * "no user" (the server still checks them), a bad request. */
	assert_int_equal(httpuser_from_basic(S("Basic OnNlY3JldA=="), u, sizeof(u)), -2);
	assert_int_equal(httpuser_from_basic(S("Basic YSBiOng="), u, sizeof(u)), -2);
	assert_string_equal(u, "");
	/* spaces around the name are not part of it (" bob :x") */
	assert_int_equal(httpuser_from_basic(S("Basic IGJvYiA6eA=="), u, sizeof(u)), 1);
	assert_string_equal(u, "bob");
	/* The password never reaches the output. */
	assert_int_equal(httpuser_from_basic(S("Basic YWxpY2VAZXhhbXBsZS5jb206c2VjcmV0"), u, sizeof(u)), 1);
	assert_null(memmem(u, sizeof(u), "secret", 6));
}

static void
test_form(void **state)
{
	char u[HTTPUSER_MAX], big[2 * HTTPUSER_MAX];

	(void)state;
	/* as browsers send it */
	assert_int_equal(httpuser_from_form(S("user%40example.org"), u, sizeof(u)), 1);
	assert_string_equal(u, "user@example.org");
	assert_int_equal(httpuser_from_form(S("alice@example.com"), u, sizeof(u)), 1);
	assert_string_equal(u, "alice@example.com");
	/* spaces around it ('+' is a space) are not part of the name */
	assert_int_equal(httpuser_from_form(S("+%20bob%40example.com+"), u, sizeof(u)), 1);
	assert_string_equal(u, "bob@example.com");
	assert_int_equal(httpuser_from_form(S("++"), u, sizeof(u)), 0);
	assert_int_equal(httpuser_from_form(S(""), u, sizeof(u)), 0);
	assert_int_equal(httpuser_from_form(NULL, 0, u, sizeof(u)), 0);
	/* no account has these: a bad request, never a name counted under nothing */
	assert_int_equal(httpuser_from_form(S("a+b%40example.com"), u, sizeof(u)), -2);
	assert_string_equal(u, "");
	memset(big, 'a', sizeof(big));
	assert_int_equal(httpuser_from_form(big, sizeof(big), u, sizeof(u)), -2);
	/* padding that overflows before it is trimmed is still trimmed */
	{
		char pad[600];
		int n = snprintf(pad, sizeof(pad), "victim%%40example.org");

		memset(pad + n, '+', sizeof(pad) - (size_t)n - 1);
		pad[sizeof(pad) - 1] = '\0';
		assert_int_equal(httpuser_from_form(pad, strlen(pad), u, sizeof(u)), 1);
		assert_string_equal(u, "victim@example.org");
	}
	/* bad requests: a bad escape, a CR/LF, a NUL */
	assert_int_equal(httpuser_from_form(S("alice%4"), u, sizeof(u)), -2);
	assert_int_equal(httpuser_from_form(S("alice%zz"), u, sizeof(u)), -2);
	assert_int_equal(httpuser_from_form(S("alice%0D%0A@example.com"), u, sizeof(u)), -2);
	assert_int_equal(httpuser_from_form(S("alice%00"), u, sizeof(u)), -2);
	assert_string_equal(u, "");
}

static void
test_find(void **state)
{
	struct httpuser_req r;
	char t[1024], u[HTTPUSER_MAX];

	(void)state;
	memset(&r, 0, sizeof(r));
	mk_token(t, sizeof(t), "id=36:cc00ce85-8c0b-49eb-8e08-a8aab43ce836;");
	r.path = "/home/alice/inbox"; r.path_len = strlen(r.path);
	r.token = t; r.token_len = strlen(t);
	r.auth = "Basic Ym9iOnBhOnNz"; r.auth_len = strlen(r.auth);
	assert_int_equal(httpuser_find(&r, u, sizeof(u)), HTTPUSER_URL);
	assert_string_equal(u, "alice");
	r.path = "/zimbra/"; r.path_len = strlen(r.path);
	assert_int_equal(httpuser_find(&r, u, sizeof(u)), HTTPUSER_COOKIE);
	assert_string_equal(u, "cc00ce85-8c0b-49eb-8e08-a8aab43ce836");
	r.token = "garbage"; r.token_len = 7;
	assert_int_equal(httpuser_find(&r, u, sizeof(u)), HTTPUSER_BASIC);
	assert_string_equal(u, "bob");
	r.path = "/Microsoft-Server-ActiveSync"; r.path_len = strlen(r.path);
	r.query = "Cmd=Sync&User=carol"; r.query_len = strlen(r.query);
	assert_int_equal(httpuser_find(&r, u, sizeof(u)), HTTPUSER_URL);
	assert_string_equal(u, "carol");
	/* User= outside ActiveSync is not a routing hint. */
	r.path = "/zimbra/"; r.path_len = strlen(r.path);
	r.auth = NULL; r.auth_len = 0;
	assert_int_equal(httpuser_find(&r, u, sizeof(u)), HTTPUSER_NONE);
	assert_string_equal(u, "");
	/* malformed Basic credentials are a bad request, not "no user" */
	r.auth = "Basic YWxpY2UNCkBleGFtcGxlLmNvbTpwdw=="; r.auth_len = strlen(r.auth);
	assert_int_equal(httpuser_find(&r, u, sizeof(u)), HTTPUSER_BAD);
	assert_string_equal(u, "");
	assert_string_equal(httpuser_by_name(HTTPUSER_BAD), "bad");
	assert_string_equal(httpuser_by_name(HTTPUSER_COOKIE), "cookie");
	assert_string_equal(httpuser_by_name(HTTPUSER_NONE), "none");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path),
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_token),
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_form),
		cmocka_unit_test(test_find),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
