/*
 * Unit tests for login throttling, without a network: this file defines
 * every function of the memcached handle API (mc_*) over an in-memory
 * table, so the linker never pulls the real one out of libagent.a. The
 * fake can be switched "down" to test failing open and outage logging.
 * Exactness against a real memcached is proved by the integration tests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "agent.h"
#include "cfg.h"
#include "keys.h"
#include "mc.h"
#include "metrics.h"
#include "throttle.h"

/* ---- the fake memcached ------------------------------------------------ */

#define FAKE_MAX 64

struct mc {
	int unused;
};

static struct {
	pthread_mutex_t mu;
	int down;                      /* every call fails */
	int calls;                     /* operations attempted */
	int n;
	struct {
		char key[KEYS_MAX];
		char val[64];
		uint32_t ttl;
	} e[FAKE_MAX];
} fake = { .mu = PTHREAD_MUTEX_INITIALIZER };

static int
fake_find(const char *key)
{
	int i;

	for (i = 0; i < fake.n; i++)
		if (strcmp(fake.e[i].key, key) == 0)
			return i;
	return -1;
}

static void
fake_reset(void)
{
	pthread_mutex_lock(&fake.mu);
	fake.n = 0;
	fake.down = 0;
	fake.calls = 0;
	pthread_mutex_unlock(&fake.mu);
}

struct mc *
mc_new(const struct cfg_memcached *cfg, const struct logger *lg)
{
	(void)lg;
	return cfg->servers.n > 0 ? calloc(1, sizeof(struct mc)) : NULL;
}

void
mc_free(struct mc *mc)
{
	free(mc);
}

enum mc_rc
mc_get(struct mc *mc, const char *key, char *val, size_t vlen)
{
	enum mc_rc rc = MC_MISS;
	int i;

	(void)mc;
	pthread_mutex_lock(&fake.mu);
	fake.calls++;
	if (fake.down) {
		rc = MC_ERR;
	} else if ((i = fake_find(key)) >= 0) {
		snprintf(val, vlen, "%s", fake.e[i].val);
		rc = MC_OK;
	}
	pthread_mutex_unlock(&fake.mu);
	return rc;
}

enum mc_rc
mc_set(struct mc *mc, const char *key, const char *val, uint32_t ttl_s)
{
	enum mc_rc rc = MC_OK;
	int i;

	(void)mc;
	pthread_mutex_lock(&fake.mu);
	fake.calls++;
	if (fake.down) {
		rc = MC_ERR;
	} else {
		if ((i = fake_find(key)) < 0 && fake.n < FAKE_MAX)
			i = fake.n++;
		if (i >= 0) {
			snprintf(fake.e[i].key, sizeof(fake.e[i].key), "%s", key);
			snprintf(fake.e[i].val, sizeof(fake.e[i].val), "%s", val);
			fake.e[i].ttl = ttl_s;
		}
	}
	pthread_mutex_unlock(&fake.mu);
	return rc;
}

enum mc_rc
mc_delete(struct mc *mc, const char *key)
{
	enum mc_rc rc = MC_MISS;
	int i;

	(void)mc;
	pthread_mutex_lock(&fake.mu);
	fake.calls++;
	if (fake.down) {
		rc = MC_ERR;
	} else if ((i = fake_find(key)) >= 0) {
		fake.e[i] = fake.e[--fake.n];
		rc = MC_OK;
	}
	pthread_mutex_unlock(&fake.mu);
	return rc;
}

enum mc_rc
mc_incr(struct mc *mc, const char *key, uint64_t delta, uint32_t ttl_s, uint64_t *value)
{
	enum mc_rc rc = MC_OK;
	int i;

	(void)mc;
	pthread_mutex_lock(&fake.mu);
	fake.calls++;
	if (fake.down) {
		rc = MC_ERR;
	} else if ((i = fake_find(key)) >= 0) {
		uint64_t v = strtoull(fake.e[i].val, NULL, 10) + delta;

		snprintf(fake.e[i].val, sizeof(fake.e[i].val), "%llu", (unsigned long long)v);
		*value = v;
	} else if (fake.n < FAKE_MAX) {
		i = fake.n++;
		snprintf(fake.e[i].key, sizeof(fake.e[i].key), "%s", key);
		snprintf(fake.e[i].val, sizeof(fake.e[i].val), "%llu", (unsigned long long)delta);
		fake.e[i].ttl = ttl_s;
		*value = delta;
	} else {
		rc = MC_ERR;
	}
	pthread_mutex_unlock(&fake.mu);
	return rc;
}

int
mc_failed(const struct mc *mc)
{
	(void)mc;
	return fake.down;
}

/* Return the fake's value for <key> as a number, or -1 when absent. */
static long long
fake_value(const char *key)
{
	long long v = -1;
	int i;

	pthread_mutex_lock(&fake.mu);
	if ((i = fake_find(key)) >= 0)
		v = strtoll(fake.e[i].val, NULL, 10);
	pthread_mutex_unlock(&fake.mu);
	return v;
}

/* Return the lifetime the fake stored for <key>, or 0. */
static uint32_t
fake_ttl(const char *key)
{
	uint32_t t = 0;
	int i;

	pthread_mutex_lock(&fake.mu);
	if ((i = fake_find(key)) >= 0)
		t = fake.e[i].ttl;
	pthread_mutex_unlock(&fake.mu);
	return t;
}

/* ---- fixture ------------------------------------------------------------ */

struct fx {
	struct gh_config *cfg;
	struct logger lg;
	struct agent ag;
	struct agent_worker w;
};

static struct fx *
fx_new(int with_memcached, void (*tune)(struct cfg_throttle *t))
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	fake_reset();
	f->cfg = cfg_new();
	assert_non_null(f->cfg);
	if (with_memcached) {
		f->cfg->memcached.servers.n = 1;
		snprintf(f->cfg->memcached.servers.item[0], CFG_STR_MAX, "127.0.0.1:1");
	}
	snprintf(f->cfg->throttle.ip_reject_message, CFG_STR_MAX, "too many from you");
	snprintf(f->cfg->throttle.user_reject_message, CFG_STR_MAX, "too many for you");
	if (tune != NULL)
		tune(&f->cfg->throttle);
	assert_int_equal(log_init(&f->lg, "test_throttle", "stderr", "err", NULL), 0);
	assert_int_equal(agent_init(&f->ag, f->cfg, &f->lg), 0);
	assert_int_equal(agent_worker_init(&f->w, &f->ag), 0);
	return f;
}

static void
fx_free(struct fx *f)
{
	agent_worker_free(&f->w);
	agent_free(&f->ag);
	free(f->cfg);
	free(f);
}

static enum throttle_verdict
check(struct fx *f, const char *ip, const char *user)
{
	struct throttle_result r;
	int rc = throttle_check(&f->w, ip, user, &r);

	assert_int_equal(rc, r.verdict >= THROTTLE_REJECT_IP ? 1 : 0);
	return r.verdict;
}

/* ---- tests ---------------------------------------------------------------- */

static void
tune_ip3(struct cfg_throttle *t)
{
	t->ip_max = 3;
	t->ip_ttl_s = 600;
}

static void
test_ip_limit(void **state)
{
	struct fx *f = fx_new(1, tune_ip3);
	struct throttle_result r;
	int i;

	(void)state;
	for (i = 1; i <= 3; i++) {
		assert_int_equal(throttle_check(&f->w, "192.0.2.1", NULL, &r), 0);
		assert_int_equal(r.verdict, THROTTLE_ALLOW);
		assert_int_equal(r.count, i);
		assert_int_equal(r.limit, 3);
	}
	assert_int_equal(throttle_check(&f->w, "192.0.2.1", NULL, &r), 1);
	assert_int_equal(r.verdict, THROTTLE_REJECT_IP);
	assert_int_equal(r.count, 4);
	assert_int_equal(r.retry_after, 600);
	assert_string_equal(r.message, "too many from you");
	assert_int_equal(check(f, "192.0.2.2", NULL), THROTTLE_ALLOW);
	/* the window's lifetime is the configured ttl */
	assert_int_equal(fake_ttl("gh:ti:192.0.2.1"), 600);
	assert_int_equal(fake_value("gh:ti:192.0.2.1"), 4);	/* rejected ones count */
	assert_int_equal(metrics_get(&f->ag.metrics, M_THROTTLE_ALLOW), 4);
	assert_int_equal(metrics_get(&f->ag.metrics, M_THROTTLE_REJECT_IP), 1);
	fx_free(f);
}

static void
tune_all(struct cfg_throttle *t)
{
	t->ip_max = 100;
	t->ip_fail_max = 2;
	t->user_max = 2;
	t->user_fail_max = 3;
}

static void
test_order_and_failures(void **state)
{
	struct fx *f = fx_new(1, tune_all);

	(void)state;
	snprintf(f->cfg->ldap.default_domain, CFG_STR_MAX, "example.com");
	assert_int_equal(throttle_record_failure(&f->w, "192.0.2.9", "Bob"), 0);
	assert_int_equal(fake_value("gh:fi:192.0.2.9"), 1);
	assert_int_equal(fake_value("gh:fu:bob@example.com"), 1);
	assert_int_equal(check(f, "192.0.2.9", "bob"), THROTTLE_ALLOW);
	assert_int_equal(throttle_record_failure(&f->w, "192.0.2.9", NULL), 0);
	/* failures from the IP reject before the account is even counted */
	assert_int_equal(check(f, "192.0.2.9", "carol"), THROTTLE_REJECT_IP_FAIL);
	assert_int_equal(fake_value("gh:tu:carol@example.com"), -1);
	assert_int_equal(fake_value("gh:ti:192.0.2.9"), 2);
	/* a success clears the IP's failures, not the account's */
	assert_int_equal(throttle_record_success(&f->w, "192.0.2.9", "bob"), 0);
	assert_int_equal(fake_value("gh:fi:192.0.2.9"), -1);
	assert_int_equal(fake_value("gh:fu:bob@example.com"), 1);
	assert_int_equal(check(f, "192.0.2.9", "carol"), THROTTLE_ALLOW);
	/* per-account attempts: 2 allowed, from any address */
	assert_int_equal(check(f, "192.0.2.10", "Carol@Example.com"), THROTTLE_ALLOW);
	assert_int_equal(check(f, "192.0.2.11", "carol@example.com"), THROTTLE_REJECT_USER);
	/* per-account failures, from several addresses */
	assert_int_equal(throttle_record_failure(&f->w, "198.51.100.1", "dave"), 0);
	assert_int_equal(throttle_record_failure(&f->w, "198.51.100.2", "dave"), 0);
	assert_int_equal(throttle_record_failure(&f->w, "198.51.100.3", "dave"), 0);
	assert_int_equal(check(f, "198.51.100.4", "dave"), THROTTLE_REJECT_USER_FAIL);
	assert_int_equal(check(f, "198.51.100.4", NULL), THROTTLE_ALLOW);
	fx_free(f);
}

static void
tune_wl(struct cfg_throttle *t)
{
	t->ip_max = 1;
	t->whitelist.n = 3;
	snprintf(t->whitelist.item[0], CFG_STR_MAX, "198.51.100.0/24");
	snprintf(t->whitelist.item[1], CFG_STR_MAX, "not-a-cidr");	/* skipped */
	snprintf(t->whitelist.item[2], CFG_STR_MAX, "2001:db8:ffff::/48");
}

static void
test_whitelist(void **state)
{
	struct fx *f = fx_new(1, tune_wl);
	int i;

	(void)state;
	for (i = 0; i < 3; i++) {
		assert_int_equal(check(f, "198.51.100.4", "alice"), THROTTLE_WHITELISTED);
		assert_int_equal(check(f, "::ffff:198.51.100.4", NULL), THROTTLE_WHITELISTED);
		assert_int_equal(check(f, "2001:db8:ffff:9::1", NULL), THROTTLE_WHITELISTED);
	}
	assert_int_equal(fake.calls, 0);	/* never counted */
	assert_int_equal(check(f, "198.51.101.1", NULL), THROTTLE_ALLOW);
	assert_int_equal(check(f, "198.51.101.1", NULL), THROTTLE_REJECT_IP);
	assert_int_equal(metrics_get(&f->ag.metrics, M_THROTTLE_WHITELISTED), 9);
	fx_free(f);
}

static void
tune_ip1(struct cfg_throttle *t)
{
	t->ip_max = 1;
	t->user_max = 1;
}

static void
test_ipv6_grouping(void **state)
{
	struct fx *f = fx_new(1, tune_ip1);
	struct throttle_state st;

	(void)state;
	assert_int_equal(check(f, "2001:db8:1:2::1", NULL), THROTTLE_ALLOW);
	assert_int_equal(check(f, "2001:db8:1:2:ffff::9", NULL), THROTTLE_REJECT_IP);
	assert_int_equal(check(f, "2001:db8:1:3::1", NULL), THROTTLE_ALLOW);
	assert_int_equal(fake_value("gh:ti:2001:db8:1:2::/64"), 2);
	/* IPv4-mapped clients are counted as IPv4 */
	assert_int_equal(check(f, "::ffff:192.0.2.77", NULL), THROTTLE_ALLOW);
	assert_int_equal(check(f, "192.0.2.77", NULL), THROTTLE_REJECT_IP);
	/* show by address, by group; clear */
	assert_int_equal(throttle_show(&f->w, "2001:db8:1:2::abc", &st), 0);
	assert_int_equal(st.attempts, 2);
	assert_int_equal(st.max, 1);
	assert_true(st.found);
	assert_int_equal(throttle_show(&f->w, "2001:db8:1:2::/64", &st), 0);
	assert_int_equal(st.attempts, 2);
	assert_int_equal(throttle_clear(&f->w, "2001:db8:1:2::5"), 0);
	assert_int_equal(throttle_show(&f->w, "2001:db8:1:2::abc", &st), 0);
	assert_int_equal(st.attempts, 0);
	assert_false(st.found);
	/* accounts */
	assert_int_equal(check(f, "192.0.2.80", "Eve@Example.org"), THROTTLE_ALLOW);
	assert_int_equal(throttle_show(&f->w, "EVE@example.org", &st), 0);
	assert_int_equal(st.attempts, 1);
	assert_int_equal(throttle_clear(&f->w, "eve@example.org"), 0);
	assert_int_equal(fake_value("gh:tu:eve@example.org"), -1);
	fx_free(f);
}

static void
test_fail_open_logged_once(void **state)
{
	struct fx *f = fx_new(1, tune_ip1);
	struct throttle_state st;
	int i;

	(void)state;
	fake.down = 1;
	for (i = 0; i < 5; i++)
		assert_int_equal(check(f, "192.0.2.5", "alice"), THROTTLE_FAIL_OPEN);
	assert_int_equal(atomic_load(&f->ag.mc_down), 1);
	assert_int_equal(metrics_get(&f->ag.metrics, M_MEMCACHED_OUTAGES), 1);
	assert_int_equal(metrics_get(&f->ag.metrics, M_THROTTLE_FAIL_OPEN), 5);
	assert_int_equal(metrics_get(&f->ag.metrics, M_DEP_MEMCACHED_ERROR), 5);
	assert_int_equal(throttle_show(&f->w, "192.0.2.5", &st), -1);
	assert_int_equal(throttle_record_failure(&f->w, "192.0.2.5", NULL), 0); /* no fail limit */
	fake.down = 0;
	assert_int_equal(check(f, "192.0.2.5", "alice"), THROTTLE_ALLOW);
	assert_int_equal(atomic_load(&f->ag.mc_down), 0);
	fake.down = 1;
	assert_int_equal(check(f, "192.0.2.5", NULL), THROTTLE_FAIL_OPEN);
	assert_int_equal(metrics_get(&f->ag.metrics, M_MEMCACHED_OUTAGES), 2);
	fx_free(f);
}

static void
test_unlimited_needs_nothing(void **state)
{
	struct fx *f = fx_new(0, NULL);

	(void)state;
	assert_null(f->w.mc);
	assert_int_equal(check(f, "192.0.2.1", "alice"), THROTTLE_ALLOW);
	assert_int_equal(throttle_record_failure(&f->w, "192.0.2.1", "alice"), 0);
	assert_int_equal(throttle_record_success(&f->w, "192.0.2.1", "alice"), 0);
	assert_int_equal(fake.calls, 0);
	fx_free(f);
	/* limits but no handle: allowed, and said to be failing open */
	f = fx_new(0, tune_ip1);
	assert_int_equal(check(f, "192.0.2.1", NULL), THROTTLE_FAIL_OPEN);
	fx_free(f);
}

static void
test_bad_input(void **state)
{
	struct fx *f = fx_new(1, tune_ip1);
	struct throttle_state st;

	(void)state;
	assert_int_equal(check(f, "not-an-ip", NULL), THROTTLE_REJECT_IP);
	assert_int_equal(check(f, NULL, NULL), THROTTLE_REJECT_IP);
	assert_int_equal(check(f, "198.51.100.0/24", NULL), THROTTLE_REJECT_IP);
	assert_int_equal(check(f, "192.0.2.1", "bad\001name"), THROTTLE_REJECT_USER);
	assert_int_equal(check(f, "192.0.2.2", ""), THROTTLE_REJECT_USER);
	assert_int_equal(throttle_show(&f->w, "", &st), -1);
	assert_int_equal(throttle_clear(&f->w, "x\ny"), -1);
	assert_string_equal(throttle_verdict_name(THROTTLE_REJECT_USER_FAIL), "reject-user-fail");
	assert_string_equal(throttle_verdict_name(THROTTLE_FAIL_OPEN), "fail-open");
	fx_free(f);
}

/* Threads hammering one key through their own workers. */
struct hammer {
	struct agent *ag;
	_Atomic int *allowed;
};

static void *
hammer_main(void *arg)
{
	struct hammer *h = arg;
	struct agent_worker w;
	struct throttle_result r;
	int i;

	if (agent_worker_init(&w, h->ag) < 0)
		abort();
	for (i = 0; i < 25; i++)
		if (throttle_check(&w, "203.0.113.5", NULL, &r) == 0)
			atomic_fetch_add(h->allowed, 1);
	agent_worker_free(&w);
	return NULL;
}

static void
tune_ip50(struct cfg_throttle *t)
{
	t->ip_max = 50;
}

static void
test_threads_exact(void **state)
{
	struct fx *f = fx_new(1, tune_ip50);
	_Atomic int allowed = 0;
	struct hammer h = { &f->ag, &allowed };
	pthread_t tid[8];
	int i;

	(void)state;
	for (i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&tid[i], NULL, hammer_main, &h), 0);
	for (i = 0; i < 8; i++)
		pthread_join(tid[i], NULL);
	assert_int_equal(atomic_load(&allowed), 50);
	assert_int_equal(fake_value("gh:ti:203.0.113.5"), 200);
	fx_free(f);
}

static void
tune_fail_user(struct cfg_throttle *t)
{
	t->user_fail_max = 3;
}

/* The loop-safe phases decide only what needs no counter, and count nothing. */
static void
test_local_decisions(void **state)
{
	struct throttle_result r;
	struct fx *f = fx_new(1, NULL);

	(void)state;
	/* nothing limited: allowed without memcached, by both phases */
	assert_int_equal(throttle_local_ip(&f->ag, "192.0.2.1", &r), 0);
	assert_int_equal(r.verdict, THROTTLE_ALLOW);
	assert_int_equal(throttle_local_user(&f->ag, "192.0.2.1", "alice", &r), 0);
	assert_int_equal(throttle_records(&f->ag, 1), 0);
	assert_int_equal(throttle_records(&f->ag, 0), 0);
	/* unusable input is refused here too */
	assert_int_equal(throttle_local_ip(&f->ag, "not-an-ip", &r), 1);
	assert_int_equal(r.verdict, THROTTLE_REJECT_IP);
	assert_int_equal(fake.calls, 0);
	fx_free(f);

	/* limits: the blocking check must decide, and nothing was counted */
	f = fx_new(1, tune_wl);
	assert_int_equal(throttle_local_ip(&f->ag, "192.0.2.1", &r), -1);
	assert_int_equal(throttle_local_user(&f->ag, "192.0.2.1", "alice", &r), 0);
	/* ... unless the address is whitelisted */
	assert_int_equal(throttle_local_ip(&f->ag, "198.51.100.3", &r), 0);
	assert_int_equal(r.verdict, THROTTLE_WHITELISTED);
	assert_int_equal(fake.calls, 0);
	fx_free(f);

	f = fx_new(1, tune_ip1);
	assert_int_equal(throttle_local_ip(&f->ag, "192.0.2.1", &r), -1);
	assert_int_equal(throttle_local_user(&f->ag, "192.0.2.1", "alice", &r), -1);
	assert_int_equal(throttle_local_user(&f->ag, "192.0.2.1", "bad\001", &r), 1);
	assert_int_equal(r.verdict, THROTTLE_REJECT_USER);
	assert_int_equal(fake.calls, 0);
	fx_free(f);

	/* only failure limits make recording worth a job */
	f = fx_new(1, tune_fail_user);
	assert_int_equal(throttle_local_user(&f->ag, "192.0.2.1", "alice", &r), -1);
	assert_int_equal(throttle_records(&f->ag, 1), 0);
	assert_int_equal(throttle_records(&f->ag, 0), 1);
	fx_free(f);
	f = fx_new(1, tune_all);
	assert_int_equal(throttle_records(&f->ag, 1), 1);
	fx_free(f);
}

/* A login checked in two phases counts one verdict, allowed or not. */
static void
test_two_phases_count_once(void **state)
{
	struct throttle_result r;
	struct fx *f = fx_new(1, NULL);

	(void)state;
	assert_int_equal(throttle_local_ip(&f->ag, "192.0.2.1", &r), 0);
	assert_int_equal(metrics_get(&f->ag.metrics, M_THROTTLE_ALLOW), 0);
	assert_int_equal(throttle_local_user(&f->ag, "192.0.2.1", "alice", &r), 0);
	assert_int_equal(metrics_get(&f->ag.metrics, M_THROTTLE_ALLOW), 1);
	/* no such account: the second phase only concludes */
	assert_int_equal(throttle_check_ip(&f->w, "192.0.2.1", &r), 0);
	assert_int_equal(throttle_check_user(&f->w, "192.0.2.1", NULL, &r), 0);
	assert_int_equal(metrics_get(&f->ag.metrics, M_THROTTLE_ALLOW), 2);
	fx_free(f);

	f = fx_new(1, tune_wl);
	assert_int_equal(throttle_local_ip(&f->ag, "198.51.100.3", &r), 0);
	assert_int_equal(throttle_local_user(&f->ag, "198.51.100.3", NULL, &r), 0);
	assert_int_equal(r.verdict, THROTTLE_WHITELISTED);
	assert_int_equal(metrics_get(&f->ag.metrics, M_THROTTLE_WHITELISTED), 1);
	fx_free(f);

	/* counters: allowed by the IP phase, then by the account phase */
	f = fx_new(1, tune_all);
	assert_int_equal(throttle_check_ip(&f->w, "192.0.2.9", &r), 0);
	assert_int_equal(throttle_check_user(&f->w, "192.0.2.9", "erin", &r), 0);
	assert_int_equal(metrics_get(&f->ag.metrics, M_THROTTLE_ALLOW), 1);
	fx_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ip_limit),
		cmocka_unit_test(test_order_and_failures),
		cmocka_unit_test(test_whitelist),
		cmocka_unit_test(test_ipv6_grouping),
		cmocka_unit_test(test_fail_open_logged_once),
		cmocka_unit_test(test_unlimited_needs_nothing),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_threads_exact),
		cmocka_unit_test(test_local_decisions),
		cmocka_unit_test(test_two_phases_count_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
