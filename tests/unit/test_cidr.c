/*
 * Unit tests for CIDR parsing, matching and throttle-key grouping.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "cidr.h"

/* Return 1 when address <ip> lies in block <block>. */
static int
in(const char *block, const char *ip)
{
	struct cidr c, a;

	assert_int_equal(cidr_parse(block, &c), 0);
	assert_int_equal(cidr_parse_addr(ip, &a), 0);
	return cidr_match(&c, &a);
}

static void
test_v4(void **state)
{
	struct cidr c;
	char buf[CIDR_STR_MAX];

	(void)state;
	assert_int_equal(cidr_parse("192.0.2.7", &c), 0);
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 32);
	assert_int_equal(cidr_parse("198.51.100.7/24", &c), 0);
	assert_int_equal(c.prefix, 24);
	assert_int_equal(cidr_format(&c, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "198.51.100.0/24");	/* host bits cleared */
	assert_true(in("198.51.100.0/24", "198.51.100.255"));
	assert_false(in("198.51.100.0/24", "198.51.101.1"));
	assert_true(in("203.0.113.0/25", "203.0.113.127"));
	assert_false(in("203.0.113.0/25", "203.0.113.128"));
	assert_true(in("192.0.2.7/32", "192.0.2.7"));
	assert_false(in("192.0.2.7/32", "192.0.2.8"));
	assert_true(in("192.0.2.7", "192.0.2.7"));
	assert_true(in("0.0.0.0/0", "203.0.113.9"));
	assert_false(in("0.0.0.0/0", "2001:db8::1"));	/* families differ */
}

static void
test_v6(void **state)
{
	struct cidr c;
	char buf[CIDR_STR_MAX];

	(void)state;
	assert_int_equal(cidr_parse("2001:db8::/32", &c), 0);
	assert_int_equal(c.family, AF_INET6);
	assert_int_equal(c.prefix, 32);
	assert_true(in("2001:db8::/32", "2001:db8:ffff::1"));
	assert_false(in("2001:db8::/32", "2001:db9::1"));
	assert_true(in("2001:db8::/33", "2001:db8:7fff::1"));
	assert_false(in("2001:db8::/33", "2001:db8:8000::1"));
	assert_true(in("::/0", "fe80::1"));
	assert_true(in("::1/128", "::1"));
	assert_false(in("::1/128", "::2"));
	assert_true(in("::1", "::1"));
	assert_true(in("[2001:db8::1]", "2001:db8::1"));
	assert_int_equal(cidr_parse("2001:db8:1:2:3:4:5:6/64", &c), 0);
	assert_int_equal(cidr_format(&c, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2001:db8:1:2::/64");
}

static void
test_mapped(void **state)
{
	struct cidr c;

	(void)state;
	assert_int_equal(cidr_parse_addr("::ffff:192.0.2.7", &c), 0);
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 32);
	assert_true(in("192.0.2.0/24", "::ffff:192.0.2.7"));
	assert_true(in("::ffff:192.0.2.0/120", "192.0.2.200"));
	assert_int_equal(cidr_parse("::ffff:198.51.100.0/120", &c), 0);
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 24);
	/* a block wider than the mapped range stays IPv6 */
	assert_int_equal(cidr_parse("::/64", &c), 0);
	assert_int_equal(c.family, AF_INET6);
}

static void
test_bad(void **state)
{
	static const char *bad[] = {
		"", "/", "/8", "198.51.100.0/", "198.51.100.0/33", "198.51.100.0/-1", "198.51.100.0/24/8",
		"198.51.100.0/ 8", "198.51.100.0/08x", "256.0.0.1", "198.51.100", "1.2.3.4.5",
		"::1/129", "2001:db8:::1", "gggg::", "example.com", " 198.51.100.1",
		"198.51.100.1 ", "[198.51.100.1", "[::1", "::1]", "[]", "198.51.100.1/99999999999999999999",
		"2001:db8::/64 ",
	};
	struct cidr c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cidr_parse(bad[i], &c) == 0)
			fail_msg("accepted '%s'", bad[i]);
	assert_int_equal(cidr_parse_addr("198.51.100.0/24", &c), -1);
	assert_int_equal(cidr_parse(NULL, &c), -1);
	assert_int_equal(cidr_parse_addr(NULL, &c), -1);
}

static void
test_prefix_edges(void **state)
{
	struct cidr c;

	(void)state;
	assert_int_equal(cidr_parse("1.2.3.4/0", &c), 0);
	assert_int_equal(c.prefix, 0);
	assert_true(in("1.2.3.4/0", "255.255.255.255"));
	assert_int_equal(cidr_parse("1.2.3.4/32", &c), 0);
	assert_true(in("1.2.3.4/32", "1.2.3.4"));
	assert_false(in("1.2.3.4/31", "1.2.3.6"));
	assert_true(in("1.2.3.4/31", "1.2.3.5"));
	assert_int_equal(cidr_parse("2001:db8::5/128", &c), 0);
	assert_int_equal(c.prefix, 128);
	assert_false(in("2001:db8::5/128", "2001:db8::4"));
	assert_true(in("2001:db8::5/127", "2001:db8::4"));
	assert_true(in("2001:db8::/0", "ff02::1"));
}

static void
test_list(void **state)
{
	struct cfg_list src;
	struct cidr_list l;
	struct cidr a;
	char err[128];

	(void)state;
	memset(&src, 0, sizeof(src));
	src.n = 3;
	snprintf(src.item[0], sizeof(src.item[0]), "%s", "127.0.0.0/8");
	snprintf(src.item[1], sizeof(src.item[1]), "%s", "::1");
	snprintf(src.item[2], sizeof(src.item[2]), "%s", "2001:db8:42::/48");
	assert_int_equal(cidr_list_parse(&l, &src, err, sizeof(err)), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(cidr_parse_addr("127.1.2.3", &a), 0);
	assert_true(cidr_list_match(&l, &a));
	assert_int_equal(cidr_parse_addr("::ffff:127.0.0.1", &a), 0);
	assert_true(cidr_list_match(&l, &a));
	assert_int_equal(cidr_parse_addr("2001:db8:42:ffff::9", &a), 0);
	assert_true(cidr_list_match(&l, &a));
	assert_int_equal(cidr_parse_addr("2001:db8:43::9", &a), 0);
	assert_false(cidr_list_match(&l, &a));
	assert_int_equal(cidr_parse_addr("198.51.100.1", &a), 0);
	assert_false(cidr_list_match(&l, &a));

	snprintf(src.item[1], sizeof(src.item[1]), "%s", "not-an-ip");
	assert_int_equal(cidr_list_parse(&l, &src, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not-an-ip"));

	src.n = 0;
	assert_int_equal(cidr_list_parse(&l, &src, err, sizeof(err)), 0);
	assert_int_equal(l.n, 0);
	assert_false(cidr_list_match(&l, &a));
}

static void
test_group(void **state)
{
	char out[CIDR_STR_MAX];

	(void)state;
	assert_int_equal(cidr_group("192.0.2.7", 64, out, sizeof(out)), 0);
	assert_string_equal(out, "192.0.2.7");
	assert_int_equal(cidr_group("::ffff:192.0.2.7", 64, out, sizeof(out)), 0);
	assert_string_equal(out, "192.0.2.7");
	assert_int_equal(cidr_group("2001:DB8:1:2:aaaa:bbbb:cccc:dddd", 64, out, sizeof(out)), 0);
	assert_string_equal(out, "2001:db8:1:2::/64");
	assert_int_equal(cidr_group("2001:db8:1:2::1", 64, out, sizeof(out)), 0);
	assert_string_equal(out, "2001:db8:1:2::/64");
	assert_int_equal(cidr_group("2001:0db8:0001:0002:0:0:0:1", 64, out, sizeof(out)), 0);
	assert_string_equal(out, "2001:db8:1:2::/64");
	assert_int_equal(cidr_group("2001:db8:1:2ff::1", 56, out, sizeof(out)), 0);
	assert_string_equal(out, "2001:db8:1:200::/56");
	assert_int_equal(cidr_group("2001:db8::1", 128, out, sizeof(out)), 0);
	assert_string_equal(out, "2001:db8::1");
	assert_int_equal(cidr_group("2001:db8::1", 0, out, sizeof(out)), 0);
	assert_string_equal(out, "::/0");
	assert_int_equal(cidr_group("[::1]", 64, out, sizeof(out)), 0);
	assert_string_equal(out, "::/64");
	assert_int_equal(cidr_group("nope", 64, out, sizeof(out)), -1);
	assert_int_equal(cidr_group("198.51.100.0/24", 64, out, sizeof(out)), -1);
	assert_int_equal(cidr_group("", 64, out, sizeof(out)), -1);
	assert_int_equal(cidr_group("2001:db8:1:2::1", 64, out, 8), -1);	/* too small */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v4),
		cmocka_unit_test(test_v6),
		cmocka_unit_test(test_mapped),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_prefix_edges),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_group),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
