/*
 * Unit tests for the auth_http codec: answers as nginx documents them and
 * as Zimbra's lookup servlet sends them, malformed answers, escaping, and
 * the rule deciding where the password may go.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "authhttp.h"

/* Feed the lines of <text> (LF or CRLF separated) to a fresh <a>. */
static void
feed(struct authhttp_answer *a, const char *text)
{
	const char *p = text, *nl;

	authhttp_answer_init(a);
	while (*p) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		(void)authhttp_answer_line(a, p, (size_t)(nl - p) + (*nl ? 1 : 0));
		p = *nl ? nl + 1 : nl;
	}
}

static void
test_nginx_good(void **state)
{
	struct authhttp_answer a;

	(void)state;
	feed(&a, "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 198.51.100.1\r\n"
	         "Auth-Port: 143\r\n\r\n");
	assert_int_equal(authhttp_answer_verdict(&a), AUTHHTTP_ROUTE);
	assert_string_equal(a.server, "198.51.100.1");
	assert_int_equal(a.port, 143);
	assert_int_equal(a.wait_s, -1);
	assert_string_equal(a.user, "");
}

static void
test_nginx_bad_with_wait(void **state)
{
	struct authhttp_answer a;

	(void)state;
	feed(&a, "HTTP/1.0 200 OK\nAuth-Status: Invalid login or password\nAuth-Wait: 3\n");
	assert_int_equal(authhttp_answer_verdict(&a), AUTHHTTP_REFUSED);
	assert_string_equal(a.status, "Invalid login or password");
	assert_int_equal(a.wait_s, 3);
	/* no Auth-Wait: a refusal all the same */
	feed(&a, "HTTP/1.0 200 OK\nAuth-Status: Temporary server problem, try again later\n");
	assert_int_equal(authhttp_answer_verdict(&a), AUTHHTTP_REFUSED);
	assert_int_equal(a.wait_s, -1);
	/* an absurd wait is capped */
	feed(&a, "HTTP/1.0 200 OK\nAuth-Status: no\nAuth-Wait: 999999999\n");
	assert_int_equal(a.wait_s, AUTHHTTP_WAIT_MAX);
}

static void
test_zimbra(void **state)
{
	struct authhttp_answer a;

	(void)state;
	/* NginxLookupHandler.sendResult(): names case-insensitive, Auth-User escaped */
	feed(&a, "HTTP/1.1 200 OK\r\nauth-status: OK\r\nAUTH-SERVER: 192.0.2.5\r\n"
	         "Auth-Port: 7143\r\nAuth-Cache-Alias: FALSE\r\nAuth-User: a%25b@example.com\r\n"
	         "Content-Length: 0\r\n\r\n");
	assert_int_equal(authhttp_answer_verdict(&a), AUTHHTTP_ROUTE);
	assert_string_equal(a.user, "a%b@example.com");
	assert_int_equal(a.port, 7143);
	/* sendError(): the reason and zimbraReverseProxyAuthWaitInterval */
	feed(&a, "HTTP/1.1 200 OK\r\nAuth-Status: user not found:x@example.com\r\n"
	         "Auth-Wait: 10\r\n\r\n");
	assert_int_equal(authhttp_answer_verdict(&a), AUTHHTTP_REFUSED);
	assert_int_equal(a.wait_s, 10);
	/* a hostname (zimbraReverseProxyDnsLookupInServerEnabled off) is kept as is */
	feed(&a, "HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nAuth-Server: mbox1.example.com\r\n"
	         "Auth-Port: 7110\r\n");
	assert_int_equal(authhttp_answer_verdict(&a), AUTHHTTP_ROUTE);
	assert_string_equal(a.server, "mbox1.example.com");
}

static void
test_unusable(void **state)
{
	struct authhttp_answer a;

	(void)state;
	feed(&a, "HTTP/1.1 503 Service Unavailable\r\nAuth-Status: OK\r\nAuth-Server: 1.2.3.4\r\n"
	         "Auth-Port: 143\r\n");
	assert_int_equal(authhttp_answer_verdict(&a), AUTHHTTP_BAD);
	feed(&a, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n");
	assert_int_equal(authhttp_answer_verdict(&a), AUTHHTTP_BAD);      /* no Auth-Status */
	feed(&a, "HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 1.2.3.4\r\n");
	assert_int_equal(authhttp_answer_verdict(&a), AUTHHTTP_BAD);      /* no port */
	feed(&a, "HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 1.2.3.4\r\nAuth-Port: 0\r\n");
	assert_int_equal(authhttp_answer_verdict(&a), AUTHHTTP_BAD);
	feed(&a, "HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 1.2.3.4\r\n"
	         "Auth-Port: 70000\r\n");
	assert_int_equal(authhttp_answer_verdict(&a), AUTHHTTP_BAD);
	feed(&a, "HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 1.2.3.4 evil\r\n"
	         "Auth-Port: 143\r\n");
	assert_int_equal(authhttp_answer_verdict(&a), AUTHHTTP_BAD);
	feed(&a, "HTTP/1.1 200 OK\r\nAuth-Status: no\r\nAuth-Wait: soon\r\n");
	assert_int_equal(authhttp_answer_verdict(&a), AUTHHTTP_BAD);
	assert_string_equal(a.why, "malformed Auth-Wait");
	feed(&a, "HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 1.2.3.4\r\n"
	         "Auth-Port: 143\r\nAuth-User: a%0ab\r\n");
	assert_int_equal(authhttp_answer_verdict(&a), AUTHHTTP_BAD);      /* a control byte */
	feed(&a, "garbage\r\n");
	assert_int_equal(authhttp_answer_verdict(&a), AUTHHTTP_BAD);
	feed(&a, "HTTP/1.1 2x0 OK\r\n");
	assert_int_equal(authhttp_answer_verdict(&a), AUTHHTTP_BAD);
}

static void
test_status_line_resets(void **state)
{
	struct authhttp_answer a;

	(void)state;
	/* an interim answer's headers are forgotten */
	feed(&a, "HTTP/1.1 100 Continue\r\nAuth-Status: OK\r\nAuth-Server: 6.6.6.6\r\n"
	         "Auth-Port: 1\r\n\r\nHTTP/1.1 200 OK\r\nAuth-Status: nope\r\n\r\n");
	assert_int_equal(authhttp_answer_verdict(&a), AUTHHTTP_REFUSED);
	assert_string_equal(a.server, "");
}

static void
test_long_and_controls(void **state)
{
	struct authhttp_answer a;
	char line[AUTHHTTP_LINE_MAX + 64];

	(void)state;
	authhttp_answer_init(&a);
	assert_int_equal(authhttp_answer_line(&a, "HTTP/1.1 200 OK\r\n", 17), 0);
	/* a status text is kept for the log, its control bytes replaced */
	assert_int_equal(authhttp_answer_line(&a, "Auth-Status: a\x01" "b\r\n", 17), 0);
	assert_string_equal(a.status, "a?b");
	memset(line, 'x', sizeof(line));
	memcpy(line, "Auth-Server: ", 13);
	assert_int_equal(authhttp_answer_line(&a, line, sizeof(line)), -1);
	assert_int_equal(authhttp_answer_verdict(&a), AUTHHTTP_BAD);
	/* a server name longer than kept is refused, not truncated */
	authhttp_answer_init(&a);
	(void)authhttp_answer_line(&a, "HTTP/1.1 200 OK", 15);
	assert_int_equal(authhttp_answer_line(&a, line, AUTHHTTP_VAL_MAX + 20), -1);
	assert_string_equal(a.server, "");
}

static void
test_escape(void **state)
{
	char o[64];

	(void)state;
	assert_int_equal(authhttp_escape(o, sizeof(o), "alice@example.com"), 17);
	assert_string_equal(o, "alice@example.com");
	assert_true(authhttp_escape(o, sizeof(o), "p w%d\r\n\x7f\xc3\xbc") > 0);
	assert_string_equal(o, "p%20w%25d%0D%0A%7F%C3%BC");
	assert_int_equal(authhttp_escape(o, 4, "abcd"), -1);
	assert_int_equal(authhttp_escape(o, 4, "a b"), -1);
	assert_int_equal(authhttp_unescape(o, sizeof(o), "p%20w%25d", 9), 5);
	assert_string_equal(o, "p w%d");
	assert_int_equal(authhttp_unescape(o, sizeof(o), "bad%2", 5), -1);
	assert_int_equal(authhttp_unescape(o, sizeof(o), "bad%zz", 6), -1);
	assert_int_equal(authhttp_unescape(o, sizeof(o), "nul%00", 6), -1);
	assert_int_equal(authhttp_unescape(o, 3, "abc", 3), -1);
}

static void
test_headers(void **state)
{
	char o[64];

	(void)state;
	assert_int_equal(authhttp_header(o, sizeof(o), "Auth-User", "a b@x", 1), 0);
	assert_string_equal(o, "Auth-User: a%20b@x");
	assert_int_equal(authhttp_header(o, sizeof(o), "Auth-Pass", "", 1), 0);
	assert_string_equal(o, "Auth-Pass;");
	assert_int_equal(authhttp_header(o, sizeof(o), "Client-IP", "1.2.3.4\r\nX: y", 0), -1);
	assert_int_equal(authhttp_header(o, 12, "Auth-User", "abc", 0), -1);
	assert_string_equal(authhttp_proto_name(PROTO_IMAPS), "imapssl");
	assert_string_equal(authhttp_proto_name(PROTO_POP3), "pop3");
	assert_string_equal(authhttp_proto_name(PROTO_HTTP), "http");
}

static void
test_password_rule(void **state)
{
	struct cfg_lookup c;

	(void)state;
	memset(&c, 0, sizeof(c));
	/* off by default: never */
	assert_false(authhttp_may_send_password(&c, "https://a/x"));
	assert_false(authhttp_may_send_password(&c, "http://a/x"));
	c.send_password = 1;
	assert_true(authhttp_may_send_password(&c, "https://a/x"));
	assert_true(authhttp_may_send_password(&c, "HTTPS://a/x"));
	assert_false(authhttp_may_send_password(&c, "http://a/x"));
	c.allow_plain_http = 1;
	assert_true(authhttp_may_send_password(&c, "http://a/x"));
	c.send_password = 0;
	assert_false(authhttp_may_send_password(&c, "http://a/x"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nginx_good),
		cmocka_unit_test(test_nginx_bad_with_wait),
		cmocka_unit_test(test_zimbra),
		cmocka_unit_test(test_unusable),
		cmocka_unit_test(test_status_line_resets),
		cmocka_unit_test(test_long_and_controls),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_password_rule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
