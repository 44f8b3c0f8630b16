/*
 * Unit tests for the agent context's LDAP breaker: closed, every lookup may
 * call LDAP; after a failure it opens, and only one probe at a time, every
 * probe_interval, may call LDAP until one reports LDAP answering again.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <cmocka.h>

#include "agent.h"
#include "cfg.h"
#include "metrics.h"

/* One agent and its configuration. */
struct fx {
	struct gh_config *cfg;
	struct logger lg;
	struct agent ag;
};

static struct fx *
fx_new(uint32_t probe_ms, uint32_t timeout_ms)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->cfg = cfg_new();
	assert_non_null(f->cfg);
	f->cfg->ldap.probe_interval_ms = probe_ms;
	f->cfg->ldap.timeout_ms = timeout_ms;
	assert_int_equal(log_init(&f->lg, "test_agent", "stderr", "err", NULL), 0);
	assert_int_equal(agent_init(&f->ag, f->cfg, &f->lg), 0);
	return f;
}

static void
fx_free(struct fx *f)
{
	agent_free(&f->ag);
	free(f->cfg);
	free(f);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Poll (at most 3 s) until a probe is admitted; return the seconds waited. */
static double
wait_probe(struct agent *ag)
{
	double t0 = now_s();
	int i;

	for (i = 0; i < 3000 && !agent_ldap_usable(ag); i++) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
	}
	assert_true(agent_ldap_admit(ag));
	return now_s() - t0;
}

static void
test_default_interval(void **state)
{
	struct gh_config *c = cfg_new();

	(void)state;
	assert_non_null(c);
	assert_int_equal(c->ldap.probe_interval_ms, 1000);
	free(c);
}

static void
test_breaker(void **state)
{
	struct fx *f = fx_new(100, 3000);
	struct agent *ag = &f->ag;
	int i;

	(void)state;
	/* closed: everyone may call LDAP */
	for (i = 0; i < 3; i++) {
		assert_true(agent_ldap_usable(ag));
		assert_true(agent_ldap_admit(ag));
	}
	/* a timeout opens it: no one may, at once */
	agent_ldap_trouble(ag, "timed out");
	assert_int_equal(metrics_get(&ag->metrics, M_DEP_LDAP_ERROR), 1);
	assert_false(agent_ldap_usable(ag));
	assert_false(agent_ldap_admit(ag));
	assert_false(agent_ldap_admit(ag));
	/* after the interval, one probe; the others still fail fast */
	assert_true(wait_probe(ag) >= 0.08);
	assert_false(agent_ldap_admit(ag));
	assert_false(agent_ldap_usable(ag));
	/* the probe failed: closed to all for another interval */
	agent_ldap_trouble(ag, "timed out");
	assert_false(agent_ldap_admit(ag));
	assert_true(wait_probe(ag) >= 0.08);
	/* the probe found LDAP answering: closed again, for everyone */
	agent_ldap_fine(ag);
	assert_int_equal(atomic_load(&ag->ldap_down), 0);
	for (i = 0; i < 3; i++) {
		assert_true(agent_ldap_usable(ag));
		assert_true(agent_ldap_admit(ag));
	}
	assert_int_equal(metrics_get(&ag->metrics, M_DEP_LDAP_ERROR), 2);
	fx_free(f);
}

/* A probe that never reports back does not keep the breaker open forever. */
static void
test_lost_probe(void **state)
{
	struct fx *f = fx_new(20, 40);   /* budget: 2 timeouts + interval = 100 ms */
	struct agent *ag = &f->ag;

	(void)state;
	agent_ldap_trouble(ag, "unreachable");
	(void)wait_probe(ag);
	assert_false(agent_ldap_admit(ag));
	assert_true(wait_probe(ag) >= 0.08);
	fx_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_interval),
		cmocka_unit_test(test_breaker),
		cmocka_unit_test(test_lost_probe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
