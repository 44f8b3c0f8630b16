/*
 * Unit tests for configuration generations on a real libev loop and real
 * job queues (no network: no memcached servers, and LDAP is only opened on
 * first use, which these jobs never do): holders keep their generation
 * across a reload, the last reference frees it from a fresh loop
 * iteration, jobs run on the generation they were submitted to, counters
 * carry over, restart-only keys are kept, stop frees everything.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <semaphore.h>
#include <cmocka.h>

#include "cfg.h"
#include "gen.h"
#include "metrics.h"

/* A loop, a logger and a controller. */
struct fixture {
	struct ev_loop *loop;
	struct logger lg;
	struct gen_ctl gc;
	ev_timer watchdog;
	int timed_out;
};

static void
watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct fixture *f = w->data;

	(void)revents;
	f->timed_out = 1;
	ev_break(loop, EVBREAK_ALL);
}

static struct fixture *
setup(void)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(log_init(&f->lg, "test_gen", "stderr", "err", NULL), 0);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(f->loop);
	ev_timer_init(&f->watchdog, watchdog_cb, 5.0, 0.0);
	f->watchdog.data = f;
	ev_timer_start(f->loop, &f->watchdog);
	ev_unref(f->loop);	/* the watchdog alone must not keep the loop alive */
	gen_ctl_init(&f->gc, f->loop, &f->lg);
	return f;
}

static void
teardown(struct fixture *f)
{
	gen_ctl_stop(&f->gc);
	assert_int_equal(f->gc.ngens, 0);
	ev_ref(f->loop);
	ev_timer_stop(f->loop, &f->watchdog);
	ev_loop_destroy(f->loop);
	free(f);
}

/* Run the loop until nothing is pending (jobs, deferred frees). */
static void
run(struct fixture *f)
{
	ev_run(f->loop, 0);
	assert_false(f->timed_out);
}

/* A generation whose [throttle] user_max is <user_max>. */
static struct gen *
make_gen(struct fixture *f, uint32_t user_max)
{
	struct gh_config *cfg = cfg_new();
	struct gen *g;
	char err[256];

	assert_non_null(cfg);
	cfg->throttle.user_max = user_max;
	g = gen_new(&f->gc, cfg, 1, 8, err, sizeof(err));
	assert_non_null(g);
	assert_int_equal(g->refs, 1);
	return g;
}

static void
test_holder_keeps_its_generation(void **state)
{
	struct fixture *f = setup();
	struct gen *g1, *g2, *held;

	(void)state;
	assert_null(gen_get(&f->gc));
	g1 = make_gen(f, 5);
	gen_install(&f->gc, g1);
	held = gen_get(&f->gc);                 /* a session accepted now */
	assert_ptr_equal(held, g1);
	assert_int_equal(g1->refs, 2);
	g2 = make_gen(f, 7);
	gen_install(&f->gc, g2);                 /* SIGHUP */
	assert_ptr_equal(f->gc.cur, g2);
	assert_int_equal(g1->refs, 1);           /* only the session's */
	assert_int_equal(held->cfg->throttle.user_max, 5);
	/* what starts now gets the new one */
	struct gen *now = gen_get(&f->gc);
	assert_int_equal(now->cfg->throttle.user_max, 7);
	gen_put(now);
	assert_int_equal(f->gc.ngens, 2);
	/* the last reference frees it, from the loop, not at once */
	gen_put(held);
	assert_int_equal(f->gc.ngens, 2);
	run(f);
	assert_int_equal(f->gc.ngens, 1);
	assert_ptr_equal(f->gc.cur, g2);
	teardown(f);
}

/* A job recording which agent its worker used; it holds a generation. */
struct tjob {
	struct gen *gen;
	const struct agent *seen;
	struct fixture *f;
	unsigned ngens_in_done;     /* generations alive inside done() */
	int done, released;
};

static enum jobq_next
tjob_work(struct agent_worker *w, void *arg)
{
	((struct tjob *)arg)->seen = w->ag;
	return JOBQ_DONE;
}

static void
tjob_done(void *arg)
{
	struct tjob *j = arg;

	j->done++;
	gen_put(j->gen);                         /* maybe the last reference */
	j->ngens_in_done = j->f->gc.ngens;
}

static void
tjob_release(void *arg)
{
	struct tjob *j = arg;

	j->released++;
	gen_put(j->gen);
}

static void
test_job_runs_on_its_generation(void **state)
{
	struct fixture *f = setup();
	struct tjob j = { .f = f };
	struct gen *g1, *g2;

	(void)state;
	g1 = make_gen(f, 1);
	gen_install(&f->gc, g1);
	j.gen = gen_ref(g1);
	assert_non_null(jobq_submit(g1->port, tjob_work, tjob_done, tjob_release, &j));
	g2 = make_gen(f, 2);
	gen_install(&f->gc, g2);                 /* g1 lives on: the job holds it */
	assert_int_equal(f->gc.ngens, 2);
	run(f);
	assert_int_equal(j.done, 1);
	assert_int_equal(j.released, 0);
	assert_ptr_equal(j.seen, &g1->ag);       /* g1 was still valid then */
	/* the last reference went inside the job's own callback: not freed there */
	assert_int_equal(j.ngens_in_done, 2);
	assert_int_equal(f->gc.ngens, 1);
	teardown(f);
}

static void
test_counters_carry_over(void **state)
{
	struct fixture *f = setup();
	struct gen *g1, *g2, *held;
	int i;

	(void)state;
	g1 = make_gen(f, 1);
	gen_install(&f->gc, g1);
	for (i = 0; i < 3; i++)
		metrics_inc(&g1->ag.metrics, M_LOOKUP_LDAP);
	held = gen_get(&f->gc);
	g2 = make_gen(f, 2);
	gen_install(&f->gc, g2);
	/* the new one goes on from the old count */
	assert_int_equal(metrics_get(&g2->ag.metrics, M_LOOKUP_LDAP), 3);
	/* the old one still counts for its holders; so does the new one */
	metrics_inc(&g1->ag.metrics, M_LOOKUP_LDAP);
	metrics_inc(&g1->ag.metrics, M_LOOKUP_LDAP);
	metrics_inc(&g2->ag.metrics, M_LOOKUP_LDAP);
	gen_put(held);
	run(f);
	assert_int_equal(f->gc.ngens, 1);
	/* nothing lost when the old one goes */
	assert_int_equal(metrics_get(&f->gc.cur->ag.metrics, M_LOOKUP_LDAP), 6);
	teardown(f);
}

static void
test_stop_delivers_and_frees(void **state)
{
	struct fixture *f = setup();
	struct tjob j = { .f = f };
	struct gen *g1, *g2, *held;

	(void)state;
	g1 = make_gen(f, 1);
	gen_install(&f->gc, g1);
	held = gen_get(&f->gc);
	j.gen = gen_ref(g1);
	assert_non_null(jobq_submit(g1->port, tjob_work, tjob_done, tjob_release, &j));
	g2 = make_gen(f, 2);
	gen_install(&f->gc, g2);
	gen_put(held);                           /* deferred: the loop never runs again */
	/* the loop is over: the job is delivered one way or the other, and
	 * every generation is freed (checked in teardown, and by ASan) */
	gen_ctl_stop(&f->gc);
	assert_int_equal(j.done + j.released, 1);
	assert_int_equal(f->gc.ngens, 0);
	assert_null(f->gc.cur);
	teardown(f);
}

static void
test_keep_restart_only_keys(void **state)
{
	struct fixture *f = setup();
	uint32_t running = 4, next = 4;
	char rs[16] = "syslog", ns[16] = "stderr";

	(void)state;
	assert_int_equal(gen_keep(&f->gc, "spoa", "threads", &running, &next, sizeof(next)), 0);
	next = 8;
	assert_int_equal(gen_keep(&f->gc, "spoa", "threads", &running, &next, sizeof(next)), 1);
	assert_int_equal(next, 4);
	assert_int_equal(gen_keep_str(&f->gc, "log", "target", rs, ns, sizeof(ns)), 1);
	assert_string_equal(ns, "syslog");
	assert_int_equal(gen_keep_str(&f->gc, "log", "target", rs, ns, sizeof(ns)), 0);
	teardown(f);
}

static void
test_put_null_and_get_before_install(void **state)
{
	struct fixture *f = setup();
	struct gen *g;

	(void)state;
	gen_put(NULL);
	assert_null(gen_get(&f->gc));
	/* built but never installed: the caller's reference is the only one */
	g = make_gen(f, 1);
	assert_int_equal(f->gc.ngens, 1);
	gen_put(g);
	run(f);
	assert_int_equal(f->gc.ngens, 0);
	teardown(f);
}

/* A job whose work waits on <gate>, as a slow LDAP call would. */
struct slow_job {
	sem_t gate;
	_Atomic int started;
	int released;
};

static enum jobq_next
slow_work(struct agent_worker *w, void *arg)
{
	struct slow_job *j = arg;

	(void)w;
	atomic_store(&j->started, 1);
	sem_wait(&j->gate);
	return JOBQ_DONE;
}

static void
slow_done(void *arg)
{
	(void)arg;
	fail_msg("done() of a cancelled job");
}

static void
slow_release(void *arg)
{
	((struct slow_job *)arg)->released++;
}

/* What the check timer saw, and the job it lets go. */
struct check {
	struct fixture *f;
	struct slow_job *j;
	unsigned ngens;
	int ticks;
};

static void
check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct check *c = w->data;

	(void)revents;
	/* the loop kept running while the worker was busy: the generation waits */
	c->ngens = c->f->gc.ngens;
	c->ticks++;
	sem_post(&c->j->gate);
	ev_timer_stop(loop, w);
}

static void
test_free_waits_for_running_job_without_blocking(void **state)
{
	struct fixture *f = setup();
	struct slow_job j = { .released = 0 };
	struct check c = { .f = f, .j = &j };
	struct jobq_job *job;
	struct gen *g;
	ev_timer t;
	int i;

	(void)state;
	assert_int_equal(sem_init(&j.gate, 0, 0), 0);
	g = make_gen(f, 1);
	gen_install(&f->gc, g);
	job = jobq_submit(g->port, slow_work, slow_done, slow_release, &j);
	assert_non_null(job);
	for (i = 0; i < 2000 && !atomic_load(&j.started); i++) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
	}
	assert_true(atomic_load(&j.started));
	/* the session goes: its job is cancelled while it runs, the
	 * generation loses its last reference (a reload replaced it) */
	jobq_cancel(job);
	gen_install(&f->gc, make_gen(f, 2));
	ev_timer_init(&t, check_cb, 0.3, 0.);
	t.data = &c;
	ev_timer_start(f->loop, &t);
	run(f);
	assert_int_equal(c.ticks, 1);
	assert_int_equal(c.ngens, 2);        /* not freed (nor joined) while it ran */
	assert_int_equal(j.released, 1);
	assert_int_equal(f->gc.ngens, 1);    /* freed once it was done */
	sem_destroy(&j.gate);
	teardown(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_holder_keeps_its_generation),
		cmocka_unit_test(test_job_runs_on_its_generation),
		cmocka_unit_test(test_counters_carry_over),
		cmocka_unit_test(test_stop_delivers_and_frees),
		cmocka_unit_test(test_keep_restart_only_keys),
		cmocka_unit_test(test_put_null_and_get_before_install),
		cmocka_unit_test(test_free_waits_for_running_job_without_blocking),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
