/*
 * Unit tests for the in-process cache: hits, expiry with an explicit
 * clock, replacement, deletion, the capacity bound and eviction order.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "lcache.h"

static void
test_hit_expiry(void **state)
{
	struct lcache *c = lcache_new(64);
	char v[LCACHE_VAL_MAX];

	(void)state;
	assert_non_null(c);
	assert_int_equal(lcache_get_at(c, "n:a", v, sizeof(v), 1000), 0);
	assert_int_equal(lcache_put_at(c, "n:a", "a@x srv1", 500, 1000), 0);
	assert_int_equal(lcache_get_at(c, "n:a", v, sizeof(v), 1000), 1);
	assert_string_equal(v, "a@x srv1");
	assert_int_equal(lcache_get_at(c, "n:a", v, sizeof(v), 1499), 1);
	assert_int_equal(lcache_get_at(c, "n:a", v, sizeof(v), 1500), 0);   /* expired */
	assert_int_equal(lcache_count(c), 0);                               /* and dropped */
	/* replacement renews the value and the lifetime */
	assert_int_equal(lcache_put_at(c, "n:a", "a@x srv1", 500, 2000), 0);
	assert_int_equal(lcache_put_at(c, "n:a", "a@x srv2", 500, 2400), 0);
	assert_int_equal(lcache_count(c), 1);
	assert_int_equal(lcache_get_at(c, "n:a", v, sizeof(v), 2800), 1);
	assert_string_equal(v, "a@x srv2");
	/* too small a buffer is a miss, not a truncation */
	assert_int_equal(lcache_get_at(c, "n:a", v, 4, 2800), 0);
	/* ttl 0 stores nothing */
	assert_int_equal(lcache_put_at(c, "n:b", "x", 0, 2800), -1);
	assert_int_equal(lcache_get_at(c, "n:b", v, sizeof(v), 2800), 0);
	lcache_free(c);
}

static void
test_delete_and_limits(void **state)
{
	struct lcache *c = lcache_new(64);
	char v[LCACHE_VAL_MAX], bigk[LCACHE_KEY_MAX + 1], bigv[LCACHE_VAL_MAX + 1];

	(void)state;
	assert_int_equal(lcache_put_at(c, "k1", "v1", 1000, 0), 0);
	assert_int_equal(lcache_put_at(c, "k2", "v2", 1000, 0), 0);
	assert_int_equal(lcache_del(c, "k1"), 1);
	assert_int_equal(lcache_del(c, "k1"), 0);
	assert_int_equal(lcache_get_at(c, "k1", v, sizeof(v), 1), 0);
	assert_int_equal(lcache_get_at(c, "k2", v, sizeof(v), 1), 1);
	memset(bigk, 'k', sizeof(bigk) - 1);
	bigk[sizeof(bigk) - 1] = '\0';
	memset(bigv, 'v', sizeof(bigv) - 1);
	bigv[sizeof(bigv) - 1] = '\0';
	assert_int_equal(lcache_put_at(c, bigk, "v", 1000, 0), -1);
	assert_int_equal(lcache_put_at(c, "k3", bigv, 1000, 0), -1);
	bigk[LCACHE_KEY_MAX - 1] = '\0';
	bigv[LCACHE_VAL_MAX - 1] = '\0';
	assert_int_equal(lcache_put_at(c, bigk, bigv, 1000, 0), 0);
	assert_int_equal(lcache_get_at(c, bigk, v, sizeof(v), 1), 1);
	assert_string_equal(v, bigv);
	assert_null(lcache_new(0));
	assert_int_equal(lcache_get(NULL, "k", v, sizeof(v)), 0);
	lcache_free(NULL);
	lcache_free(c);
}

static void
test_capacity(void **state)
{
	struct lcache *c = lcache_new(100);
	char k[32], v[LCACHE_VAL_MAX];
	unsigned cap, i, live;

	(void)state;
	cap = lcache_capacity(c);
	assert_true(cap >= 100 && cap < 200);
	/* ten times the capacity: the count never exceeds it */
	for (i = 0; i < cap * 10; i++) {
		snprintf(k, sizeof(k), "key%u", i);
		assert_int_equal(lcache_put_at(c, k, "v", 60000, i), 0);
		assert_true(lcache_count(c) <= cap);
	}
	assert_int_equal(lcache_count(c), cap);
	/* the newest entries survive; the oldest were evicted */
	live = 0;
	for (i = cap * 9; i < cap * 10; i++) {
		snprintf(k, sizeof(k), "key%u", i);
		live += (unsigned)lcache_get_at(c, k, v, sizeof(v), cap * 10);
	}
	assert_true(live > cap / 2);
	assert_int_equal(lcache_get_at(c, "key0", v, sizeof(v), cap * 10), 0);
	lcache_free(c);
}

static void
test_expired_first(void **state)
{
	struct lcache *c = lcache_new(16);   /* one slot per stripe */
	char k[32], v[LCACHE_VAL_MAX];
	unsigned i;

	(void)state;
	assert_int_equal(lcache_capacity(c), 16);
	for (i = 0; i < 200; i++) {
		snprintf(k, sizeof(k), "short%u", i);
		assert_int_equal(lcache_put_at(c, k, "v", 10, 0), 0);
	}
	/* later inserts reclaim expired slots */
	for (i = 0; i < 200; i++) {
		snprintf(k, sizeof(k), "late%u", i);
		assert_int_equal(lcache_put_at(c, k, "w", 1000, 100), 0);
		assert_int_equal(lcache_get_at(c, k, v, sizeof(v), 100), 1);
	}
	assert_true(lcache_count(c) <= 16);
	lcache_free(c);
}

struct th_arg {
	struct lcache *c;
	unsigned id;
};

static void *
hammer(void *p)
{
	struct th_arg *a = p;
	char k[32], v[LCACHE_VAL_MAX];
	unsigned i;

	for (i = 0; i < 20000; i++) {
		snprintf(k, sizeof(k), "t%u-%u", a->id, i % 500);
		if (lcache_get(a->c, k, v, sizeof(v)) == 0)
			(void)lcache_put(a->c, k, k, 10000);
		else if (strcmp(v, k) != 0)
			return (void *)1;
		if (i % 97 == 0)
			(void)lcache_del(a->c, k);
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct lcache *c = lcache_new(1000);
	struct th_arg a[8];
	pthread_t t[8];
	void *rv;
	unsigned i;

	(void)state;
	for (i = 0; i < 8; i++) {
		a[i].c = c;
		a[i].id = i;
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &a[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(t[i], &rv), 0);
		assert_null(rv);
	}
	assert_true(lcache_count(c) <= lcache_capacity(c));
	lcache_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_expiry),
		cmocka_unit_test(test_delete_and_limits),
		cmocka_unit_test(test_capacity),
		cmocka_unit_test(test_expired_first),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
