/*
 * Unit tests for the auth_http codec: what nginx sends is parsed (and the
 * password is never copied), malformed heads are refused with a reason,
 * and each kind of answer carries exactly the headers nginx acts on:
 * unknown and refused routes the same text and Auth-Wait, a temporary
 * failure none (nginx closes), no header value able to end its line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "authsrv.h"

#define NGINX_HEAD(user, proto, attempt) \
	"GET /auth HTTP/1.0\r\nHost: localhost\r\nAuth-Method: plain\r\n" \
	"Auth-User: " user "\r\nAuth-Pass: pa%20ss\r\nAuth-Protocol: " proto "\r\n" \
	"Auth-Login-Attempt: " attempt "\r\nClient-IP: 192.0.2.42\r\n" \
	"Client-Host: client.example.org\r\n\r\n"

static int
parse(const char *head, struct authsrv_req *rq, const char **why)
{
	return authsrv_parse(head, strlen(head), rq, why);
}

static void
test_parse_nginx_request(void **state)
{
	struct authsrv_req rq;
	const char *why;

	(void)state;
	assert_int_equal(parse(NGINX_HEAD("us%20er%25x@example.com", "imap", "2"), &rq, &why), 0);
	assert_null(why);
	assert_string_equal(rq.user, "us er%x@example.com");
	assert_int_equal(rq.proto, AUTHSRV_P_IMAP);
	assert_int_equal(rq.method, AUTHSRV_M_PLAIN);
	assert_string_equal(rq.ip, "192.0.2.42");
	assert_int_equal(rq.attempt, 2);
	/* the password is nowhere in the parsed request */
	assert_null(memmem(&rq, sizeof(rq), "pa%20ss", 7));
	assert_null(memmem(&rq, sizeof(rq), "pa ss", 5));
	assert_int_equal(parse(NGINX_HEAD("a@b", "POP3", "1"), &rq, &why), 0);
	assert_int_equal(rq.proto, AUTHSRV_P_POP3);
	assert_int_equal(parse(NGINX_HEAD("a@b", "smtp", "1"), &rq, &why), 0);
	assert_int_equal(rq.proto, AUTHSRV_P_SMTP);
	/* bare LFs, no Auth-Login-Attempt, IPv6, HTTP/1.1 */
	assert_int_equal(parse("GET /x HTTP/1.1\nAuth-Method: LOGIN\nAuth-User: a@b\n"
	                       "Auth-Protocol: imap\nClient-IP: 2001:db8::1\n\n", &rq, &why), 0);
	assert_int_equal(rq.attempt, 1);
	assert_int_equal(rq.method, AUTHSRV_M_PLAIN);
	assert_string_equal(rq.ip, "2001:db8::1");
	/* apop needs the cleartext password back: not served */
	assert_int_equal(parse("GET / HTTP/1.0\r\nAuth-Method: apop\r\nAuth-User: a@b\r\n"
	                       "Auth-Salt: <1.2@x>\r\nAuth-Protocol: pop3\r\n"
	                       "Client-IP: 127.0.0.1\r\n\r\n", &rq, &why), 0);
	assert_int_equal(rq.method, AUTHSRV_M_OTHER);
	assert_string_equal(rq.method_name, "apop");
}

static void
test_parse_refuses_bad_heads(void **state)
{
	static const struct {
		const char *head, *why;
	} bad[] = {
		{ "POST /auth HTTP/1.0\r\n\r\n", "not a GET request" },
		{ "GET /auth HTTP/2.0\r\n\r\n", "a malformed head" },
		{ "GET auth HTTP/1.0\r\n\r\n", "a malformed head" },
		{ "GET /auth HTTP/1.0\r\nAuth-User: a\r\n", "a malformed head" },   /* no blank line */
		{ "GET /auth HTTP/1.0\r\n folded: x\r\n\r\n", "a malformed head" },
		{ "GET /auth HTTP/1.0\r\nNoColon\r\n\r\n", "a malformed head" },
		{ "GET /auth HTTP/1.0\r\nA: b\x01\r\n\r\n", "a malformed head" },
		{ "GET /auth HTTP/1.0\r\nAuth-User: %zz\r\n\r\n", "a bad Auth-User" },
		{ "GET /auth HTTP/1.0\r\nAuth-User: a%0d%0aX: y\r\n\r\n", "a bad Auth-User" },
		{ "GET /auth HTTP/1.0\r\nAuth-User: a%\r\n\r\n", "a bad Auth-User" },
		{ "GET /auth HTTP/1.0\r\nAuth-User: a\r\nauth-user: b\r\n\r\n", "a header given twice" },
		{ "GET /auth HTTP/1.0\r\nClient-IP: 1.2.3\r\n\r\n", "a bad Client-IP" },
		{ "GET /auth HTTP/1.0\r\nAuth-Login-Attempt: x1\r\n\r\n", "a bad Auth-Login-Attempt" },
		{ "GET /auth HTTP/1.0\r\nAuth-Login-Attempt: 99999999\r\n\r\n",
		  "a bad Auth-Login-Attempt" },
		{ "GET /auth HTTP/1.0\r\nAuth-Method: plain\r\nAuth-Protocol: imap\r\n"
		  "Client-IP: 127.0.0.1\r\n\r\n", "Auth-User, Auth-Method, Auth-Protocol or Client-IP missing" },
	};
	char many[4096];
	struct authsrv_req rq;
	const char *why;
	size_t i, off;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i].head, &rq, &why), -1);
		assert_string_equal(why, bad[i].why);
	}
	off = (size_t)snprintf(many, sizeof(many), "GET / HTTP/1.0\r\n");
	for (i = 0; i <= AUTHSRV_HEADERS_MAX; i++)
		off += (size_t)snprintf(many + off, sizeof(many) - off, "X-%zu: y\r\n", i);
	snprintf(many + off, sizeof(many) - off, "\r\n");
	assert_int_equal(parse(many, &rq, &why), -1);
	assert_string_equal(why, "too many header lines");
	/* a NUL inside the head */
	assert_int_equal(authsrv_parse("GET / HTTP/1.0\r\nA: \0b\r\n\r\n", 24, &rq, &why), -1);
}

/* Build answer <a> into <buf> and return it as a string. */
static const char *
build(const struct authsrv_answer *a, char *buf, size_t len)
{
	int n = authsrv_answer(a, buf, len);

	assert_true(n > 0);
	assert_int_equal(strlen(buf), (size_t)n);
	assert_non_null(strstr(buf, "\r\n\r\n"));
	return buf;
}

static void
req_for(struct authsrv_req *rq, enum authsrv_proto p, uint32_t attempt)
{
	memset(rq, 0, sizeof(*rq));
	rq->proto = p;
	rq->method = AUTHSRV_M_PLAIN;
	rq->attempt = attempt;
	snprintf(rq->user, sizeof(rq->user), "alice@example.com");
	snprintf(rq->ip, sizeof(rq->ip), "192.0.2.1");
}

static void
test_decide_and_answer(void **state)
{
	struct authsrv_req rq;
	struct route_result rr;
	struct throttle_result tr;
	struct authsrv_answer a;
	struct sockaddr_in *sin = (struct sockaddr_in *)&rr.addr;
	char ip[64], buf[AUTHSRV_ANSWER_MAX], unknown[AUTHSRV_ANSWER_MAX];

	(void)state;
	memset(&rr, 0, sizeof(rr));
	memset(&tr, 0, sizeof(tr));
	req_for(&rq, AUTHSRV_P_IMAP, 1);
	/* a route: Auth-Server is the IP address, Auth-Port the protocol's */
	rr.status = ROUTE_OK;
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.3", &sin->sin_addr);
	rr.port = 7143;
	authsrv_decide(&rq, &rr, &tr, 0, &a, ip, sizeof(ip));
	assert_int_equal(a.kind, AUTHSRV_OK);
	assert_string_equal(build(&a, buf, sizeof(buf)),
	                    "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 192.0.2.3\r\n"
	                    "Auth-Port: 7143\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
	/* unknown, refused and unusable give the very same answer */
	rr.status = ROUTE_UNKNOWN;
	authsrv_decide(&rq, &rr, &tr, 0, &a, ip, sizeof(ip));
	build(&a, unknown, sizeof(unknown));
	assert_non_null(strstr(unknown, "Auth-Status: Invalid login or password\r\n"));
	assert_non_null(strstr(unknown, "Auth-Wait: 3\r\n"));
	assert_null(strstr(unknown, "Auth-Server"));
	rr.status = ROUTE_REFUSED;
	authsrv_decide(&rq, &rr, &tr, 0, &a, ip, sizeof(ip));
	assert_string_equal(build(&a, buf, sizeof(buf)), unknown);
	rr.status = ROUTE_UNUSABLE;
	authsrv_decide(&rq, &rr, &tr, 0, &a, ip, sizeof(ip));
	assert_string_equal(build(&a, buf, sizeof(buf)), unknown);
	/* from the tenth attempt on, no Auth-Wait: nginx closes */
	req_for(&rq, AUTHSRV_P_IMAP, AUTHSRV_MAX_ATTEMPTS);
	authsrv_decide(&rq, &rr, &tr, 0, &a, ip, sizeof(ip));
	assert_null(strstr(build(&a, buf, sizeof(buf)), "Auth-Wait"));
	/* throttled: the configured message, cleaned of line breaks */
	req_for(&rq, AUTHSRV_P_POP3, 1);
	tr.message = "Slow down\r\nX-Evil: 1";
	authsrv_decide(&rq, &rr, &tr, 1, &a, ip, sizeof(ip));
	assert_int_equal(a.kind, AUTHSRV_THROTTLED);
	build(&a, buf, sizeof(buf));
	assert_non_null(strstr(buf, "Auth-Status: Slow down  X-Evil: 1\r\nAuth-Wait: 3\r\n"));
	tr.message = NULL;
	authsrv_decide(&rq, &rr, &tr, 1, &a, ip, sizeof(ip));
	assert_non_null(strstr(build(&a, buf, sizeof(buf)),
	                       "Auth-Status: Too many login attempts, try again later\r\n"));
	/* LDAP down: the protocol's temporary code, no Auth-Wait */
	rr.status = ROUTE_TEMPFAIL;
	authsrv_decide(&rq, &rr, &tr, 0, &a, ip, sizeof(ip));
	assert_int_equal(a.kind, AUTHSRV_TEMPFAIL);
	build(&a, buf, sizeof(buf));
	assert_non_null(strstr(buf, "Auth-Status: [SYS/TEMP] "));
	assert_null(strstr(buf, "Auth-Wait"));
	req_for(&rq, AUTHSRV_P_IMAP, 1);
	rr.status = ROUTE_BUSY;
	authsrv_decide(&rq, &rr, &tr, 0, &a, ip, sizeof(ip));
	assert_non_null(strstr(build(&a, buf, sizeof(buf)), "Auth-Status: [UNAVAILABLE] "));
	/* SMTP: refused with an SMTP code, no Auth-Wait */
	req_for(&rq, AUTHSRV_P_SMTP, 1);
	authsrv_decide(&rq, NULL, NULL, 0, &a, ip, sizeof(ip));
	assert_int_equal(a.kind, AUTHSRV_UNSUPPORTED);
	build(&a, buf, sizeof(buf));
	assert_non_null(strstr(buf, "Auth-Error-Code: 554 5.7.0\r\n"));
	assert_null(strstr(buf, "Auth-Wait"));
	/* no route looked up (empty user): invalid */
	req_for(&rq, AUTHSRV_P_IMAP, 1);
	rq.user[0] = '\0';
	authsrv_decide(&rq, NULL, &tr, 0, &a, ip, sizeof(ip));
	assert_string_equal(build(&a, buf, sizeof(buf)), unknown);
	/* too small a buffer: -1, never a partial write past it */
	assert_int_equal(authsrv_answer(&a, buf, 40), -1);
	assert_int_equal(authsrv_answer_bad(buf, 10), -1);
	assert_true(authsrv_answer_bad(buf, sizeof(buf)) > 0);
	assert_int_equal(strncmp(buf, "HTTP/1.0 400 ", 13), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_nginx_request),
		cmocka_unit_test(test_parse_refuses_bad_heads),
		cmocka_unit_test(test_decide_and_answer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
