/*
 * Unit tests for the memcached handle that need no server: server list
 * parsing, and every call on a missing handle failing cleanly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "mc.h"

/* Try to create a handle for the single server <s>; return 1 when it worked. */
static int
accepts(const char *s)
{
	struct cfg_memcached c;
	struct logger lg;
	struct mc *mc;

	memset(&c, 0, sizeof(c));
	assert_int_equal(log_init(&lg, "test", "stderr", "err", NULL), 0);
	lg.level = -1;   /* the refusals below are expected: keep the output clean */
	snprintf(c.servers.item[0], sizeof(c.servers.item[0]), "%s", s);
	c.servers.n = 1;
	c.timeout_ms = 100;
	c.retry_s = 1;
	mc = mc_new(&c, &lg);
	mc_free(mc);
	return mc != NULL;
}

static void
test_servers(void **state)
{
	(void)state;
	assert_true(accepts("127.0.0.1:11211"));
	assert_true(accepts("127.0.0.1"));
	assert_true(accepts("[::1]:11211"));
	assert_true(accepts("[::1]"));
	assert_false(accepts("127.0.0.1:0"));
	assert_false(accepts("127.0.0.1:65536"));
	assert_false(accepts("127.0.0.1:"));
	assert_false(accepts("127.0.0.1:11x"));
	assert_false(accepts("[::1"));
	assert_false(accepts("[::1]11211"));
	assert_false(accepts(":11211"));
}

static void
test_none(void **state)
{
	struct cfg_memcached c;
	char v[8];
	uint64_t n = 7;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_null(mc_new(&c, NULL));           /* no servers: no handle */
	assert_int_equal(mc_get(NULL, "k", v, sizeof(v)), MC_ERR);
	assert_int_equal(mc_set(NULL, "k", "v", 1), MC_ERR);
	assert_int_equal(mc_delete(NULL, "k"), MC_ERR);
	assert_int_equal(mc_incr(NULL, "k", 1, 1, &n), MC_ERR);
	assert_int_equal(n, 7);
	assert_true(mc_failed(NULL));
	mc_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_servers),
		cmocka_unit_test(test_none),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
