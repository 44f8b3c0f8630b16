/*
 * Unit tests for metrics counting and Prometheus text rendering.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "metrics.h"

static void
test_counters(void **state)
{
	static struct metrics ms;
	char buf[8192];
	size_t off = 0;
	int i;

	(void)state;
	memset(&ms, 0, sizeof(ms));
	for (i = 0; i < 3; i++)
		metrics_inc(&ms, M_LOOKUP_LDAP);
	metrics_inc(&ms, M_THROTTLE_REJECT_IP);
	metrics_inc(&ms, M_QUEUE_BUSY);
	metrics_inc(&ms, M_DEP_MEMCACHED_ERROR);
	metrics_inc(&ms, M_MEMCACHED_OUTAGES);
	atomic_store(&ms.queue_depth, 7);
	assert_int_equal(metrics_get(&ms, M_LOOKUP_LDAP), 3);

	assert_int_equal(metrics_render(&ms, buf, sizeof(buf), &off), 0);
	assert_int_equal(off, strlen(buf));
	assert_non_null(strstr(buf, "# TYPE gatehouse_lookups_total counter\n"));
	assert_non_null(strstr(buf, "gatehouse_lookups_total{outcome=\"ldap\"} 3\n"));
	assert_non_null(strstr(buf, "gatehouse_lookups_total{outcome=\"local\"} 0\n"));
	assert_non_null(strstr(buf, "gatehouse_throttle_verdicts_total{verdict=\"reject_ip\"} 1\n"));
	assert_non_null(strstr(buf, "gatehouse_throttle_verdicts_total{verdict=\"fail_open\"} 0\n"));
	assert_non_null(strstr(buf, "gatehouse_queue_busy_total 1\n"));
	assert_non_null(strstr(buf, "gatehouse_queue_submitted_total 0\n"));
	assert_non_null(strstr(buf, "gatehouse_dependency_errors_total{dependency=\"memcached\"} 1\n"));
	assert_non_null(strstr(buf, "gatehouse_memcached_outages_total 1\n"));
	assert_non_null(strstr(buf, "# TYPE gatehouse_queue_depth gauge\ngatehouse_queue_depth 7\n"));
}

static void
test_append_and_overflow(void **state)
{
	static struct metrics ms;
	char big[8192], small[100];
	size_t off, before;

	(void)state;
	memset(&ms, 0, sizeof(ms));
	/* rendering appends at the offset, after the daemon's own lines */
	off = 0;
	assert_int_equal(metrics_render_one("gatehouse_spoa_connections", "Open connections.",
	                                    "gauge", 4, big, sizeof(big), &off), 0);
	assert_string_equal(big, "# HELP gatehouse_spoa_connections Open connections.\n"
	                    "# TYPE gatehouse_spoa_connections gauge\n"
	                    "gatehouse_spoa_connections 4\n");
	before = off;
	assert_int_equal(metrics_render(&ms, big, sizeof(big), &off), 0);
	assert_true(off > before);
	assert_int_equal(strncmp(big, "# HELP gatehouse_spoa_connections", 33), 0);

	/* too small: -1, offset unchanged, buffer still terminated there */
	off = 10;
	memset(small, 'x', sizeof(small));
	assert_int_equal(metrics_render(&ms, small, sizeof(small), &off), -1);
	assert_int_equal(off, 10);
	assert_int_equal(small[10], '\0');
	off = sizeof(small);
	assert_int_equal(metrics_render_one("a", "b", "counter", 1, small, sizeof(small), &off), -1);
	assert_int_equal(off, sizeof(small));
}

static void
test_histogram(void **state)
{
	static struct metrics_hist h;
	char buf[4096];
	size_t off = 0;

	(void)state;
	memset(&h, 0, sizeof(h));
	metrics_hist_observe(&h, 10);        /* <= 50us */
	metrics_hist_observe(&h, 50);        /* boundary: still <= 50us */
	metrics_hist_observe(&h, 51);        /* <= 100us */
	metrics_hist_observe(&h, 3000);      /* <= 5ms */
	metrics_hist_observe(&h, 6000000);   /* above 5 s: +Inf only */
	assert_int_equal(metrics_hist_render(&h, "gatehouse_lookup_seconds", "Lookup latency.",
	                                     buf, sizeof(buf), &off), 0);
	assert_non_null(strstr(buf, "# TYPE gatehouse_lookup_seconds histogram\n"));
	assert_non_null(strstr(buf, "gatehouse_lookup_seconds_bucket{le=\"0.00005\"} 2\n"));
	assert_non_null(strstr(buf, "gatehouse_lookup_seconds_bucket{le=\"0.0001\"} 3\n"));
	assert_non_null(strstr(buf, "gatehouse_lookup_seconds_bucket{le=\"0.0025\"} 3\n"));
	assert_non_null(strstr(buf, "gatehouse_lookup_seconds_bucket{le=\"0.005\"} 4\n"));
	assert_non_null(strstr(buf, "gatehouse_lookup_seconds_bucket{le=\"5\"} 4\n"));
	assert_non_null(strstr(buf, "gatehouse_lookup_seconds_bucket{le=\"+Inf\"} 5\n"));
	assert_non_null(strstr(buf, "gatehouse_lookup_seconds_count 5\n"));
	/* 10 + 50 + 51 + 3000 + 6000000 us */
	assert_non_null(strstr(buf, "gatehouse_lookup_seconds_sum 6.003111\n"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_append_and_overflow),
		cmocka_unit_test(test_histogram),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
