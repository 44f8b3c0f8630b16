/*
 * Unit tests for the server address splitter shared by the memcached
 * client and the CLI (parse_hostport): the forms parse_addr() reads, host
 * names, default ports, and what is refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "parse.h"

/* Split <s> with default port <dflt>; expect <host>/<port>. */
static void
ok(const char *s, uint16_t dflt, const char *host, uint16_t port)
{
	char h[64];
	uint16_t p = 0;

	assert_int_equal(parse_hostport(s, dflt, h, sizeof(h), &p), 0);
	assert_string_equal(h, host);
	assert_int_equal(p, port);
}

/* Expect <s> to be refused with default port <dflt>. */
static void
bad(const char *s, uint16_t dflt)
{
	char h[64];
	uint16_t p = 0;

	assert_int_equal(parse_hostport(s, dflt, h, sizeof(h), &p), -1);
}

static void
test_hostport_forms(void **state)
{
	(void)state;
	ok("127.0.0.1:11211", 0, "127.0.0.1", 11211);
	ok("mc1.example.com:11212", 11211, "mc1.example.com", 11212);
	ok("localhost", 11211, "localhost", 11211);
	ok("[::1]:11213", 0, "::1", 11213);
	ok("[2001:db8::5]", 11211, "2001:db8::5", 11211);
	ok("::1", 11211, "::1", 11211);   /* bare IPv6: no port, as parse_addr() */
	ok("h:65535", 0, "h", 65535);
}

static void
test_hostport_refused(void **state)
{
	char tiny[4];
	uint16_t p;

	(void)state;
	bad(NULL, 1);
	bad("", 1);
	bad("localhost", 0);          /* a port is required */
	bad("::1", 0);
	bad("h:", 1);
	bad("h:0", 1);
	bad("h:65536", 1);
	bad("h:12x", 1);
	bad("h:-1", 1);
	bad(":11211", 1);
	bad("[::1", 1);
	bad("[::1]x", 1);
	bad("[]:1", 1);
	bad("[host]:1", 1);           /* brackets hold IPv6 only */
	bad("a b:1", 1);
	bad("a/b:1", 1);
	bad("a\x01:1", 1);
	assert_int_equal(parse_hostport("abcd:1", 0, tiny, sizeof(tiny), &p), -1);
	assert_int_equal(parse_hostport("abc:1", 0, tiny, sizeof(tiny), &p), 0);
}

/* A listening address: ip:port as parse_addr() reads it, or unix@/abs/path. */
static void
test_listen_addr(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char longp[200];

	(void)state;
	assert_int_equal(parse_listen_addr("unix@/run/gh/spoa.sock", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_UNIX);
	assert_string_equal(((struct sockaddr_un *)&ss)->sun_path, "/run/gh/spoa.sock");
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/gh/spoa.sock") + 1);
	assert_int_equal(parse_listen_addr("127.0.0.1:12345", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(parse_listen_addr("unix@relative.sock", &ss, &len), -1);
	assert_int_equal(parse_listen_addr("unix@", &ss, &len), -1);
	assert_int_equal(parse_listen_addr("/run/gh/spoa.sock", &ss, &len), -1);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(parse_listen_addr(longp, &ss, &len), -1);   /* no unix@ */
	{
		char u[sizeof(longp) + 5];

		snprintf(u, sizeof(u), "unix@%s", longp);
		assert_int_equal(parse_listen_addr(u, &ss, &len), -1);   /* over sun_path */
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostport_forms),
		cmocka_unit_test(test_hostport_refused),
		cmocka_unit_test(test_listen_addr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
