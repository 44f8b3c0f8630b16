/*
 * Unit tests for the job queue (both lanes): real worker threads and a real libev loop,
 * no network (the configuration has no memcached servers, and LDAP is only
 * opened on first use, which these jobs never do).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <semaphore.h>
#include <time.h>
#include <cmocka.h>

#include "agent.h"
#include "cfg.h"
#include "jobq.h"
#include "metrics.h"

/* Everything a test needs: config, agent, loop, queue, port. */
struct fixture {
	struct gh_config *cfg;
	struct logger lg;
	struct agent ag;
	struct ev_loop *loop;
	struct jobq *q;
	struct jobq_port *port;
	ev_timer watchdog;
	int timed_out;
};

/* One test job and what happened to it. */
struct tjob {
	_Atomic int work_calls;
	int done_calls;          /* loop thread only */
	int release_calls;       /* loop thread (or the stopping thread) */
	sem_t *gate;             /* work waits on it when set */
	sem_t *started;          /* work posts it when set */
	_Atomic int *counter;    /* incremented by work when set */
};

static enum jobq_next
work_fn(struct agent_worker *w, void *arg)
{
	struct tjob *j = arg;

	/* no cmocka asserts here: they cannot fail from another thread */
	if (w == NULL || w->ag == NULL)
		abort();
	atomic_fetch_add(&j->work_calls, 1);
	if (j->started != NULL)
		sem_post(j->started);
	if (j->gate != NULL)
		sem_wait(j->gate);
	if (j->counter != NULL)
		atomic_fetch_add(j->counter, 1);
	return JOBQ_DONE;
}

/* One job for the lane tests: asks for the slow lane, blocks there on a gate. */
struct ljob {
	struct tjob t;           /* done/release counts */
	int go_slow;
	_Atomic int fast_calls, slow_calls;
	_Atomic int bad_flag;    /* cache_only did not match the lane */
	sem_t *slow_gate;        /* the slow part waits on it when set */
	sem_t *slow_started;     /* the slow part posts it when set */
};

static enum jobq_next
lane_fn(struct agent_worker *w, void *arg)
{
	struct ljob *j = arg;

	if (w->cache_only) {
		atomic_fetch_add(&j->fast_calls, 1);
		if (atomic_load(&j->slow_calls) != 0)
			atomic_store(&j->bad_flag, 1);
		return j->go_slow ? JOBQ_SLOW : JOBQ_DONE;
	}
	atomic_fetch_add(&j->slow_calls, 1);
	if (atomic_load(&j->fast_calls) != 1 || !j->go_slow)
		atomic_store(&j->bad_flag, 1);
	if (j->slow_started != NULL)
		sem_post(j->slow_started);
	if (j->slow_gate != NULL)
		sem_wait(j->slow_gate);
	return JOBQ_SLOW;	/* on the slow lane: the same as done */
}

/* Poll (at most 2 s) until <*v> reaches <want>; return the last value. */
static int
wait_atomic(_Atomic int *v, int want)
{
	int i;

	for (i = 0; i < 2000 && atomic_load(v) < want; i++) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
	}
	return atomic_load(v);
}

static void
done_fn(void *arg)
{
	((struct tjob *)arg)->done_calls++;
}

static void
release_fn(void *arg)
{
	((struct tjob *)arg)->release_calls++;
}

static void
watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct fixture *f = w->data;

	(void)revents;
	f->timed_out = 1;
	ev_break(loop, EVBREAK_ALL);
}

/* Run the loop until no job is outstanding (or 5 s pass: a failure). */
static void
run_loop(struct fixture *f)
{
	ev_run(f->loop, 0);
	assert_false(f->timed_out);
}

static struct fixture *
setup_fixture(unsigned threads, unsigned capacity)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->cfg = cfg_new();
	assert_non_null(f->cfg);
	assert_int_equal(log_init(&f->lg, "test_jobq", "stderr", "warning", NULL), 0);
	assert_int_equal(agent_init(&f->ag, f->cfg, &f->lg), 0);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(f->loop);
	ev_timer_init(&f->watchdog, watchdog_cb, 5.0, 0.0);
	f->watchdog.data = f;
	ev_timer_start(f->loop, &f->watchdog);
	ev_unref(f->loop);	/* the watchdog alone must not keep the loop alive */
	f->q = jobq_start(&f->ag, threads, capacity);
	assert_non_null(f->q);
	f->port = jobq_port_new(f->q, f->loop);
	assert_non_null(f->port);
	return f;
}

static void
teardown_fixture(struct fixture *f)
{
	if (f->q != NULL)
		jobq_stop(f->q);
	jobq_port_free(f->port);
	ev_ref(f->loop);
	ev_timer_stop(f->loop, &f->watchdog);
	ev_loop_destroy(f->loop);
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

static void
test_many_jobs(void **state)
{
	enum { N = 500 };
	struct fixture *f;
	struct tjob *jobs = calloc(N, sizeof(*jobs));
	_Atomic int counter = 0;
	int i;

	(void)state;
	assert_non_null(jobs);
	f = setup_fixture(4, N);
	for (i = 0; i < N; i++) {
		jobs[i].counter = &counter;
		assert_non_null(jobq_submit(f->port, work_fn, done_fn, release_fn, &jobs[i]));
	}
	assert_int_equal(metrics_get(&f->ag.metrics, M_QUEUE_SUBMITTED), N);
	run_loop(f);
	assert_int_equal(atomic_load(&counter), N);
	for (i = 0; i < N; i++) {
		assert_int_equal(atomic_load(&jobs[i].work_calls), 1);
		assert_int_equal(jobs[i].done_calls, 1);
		assert_int_equal(jobs[i].release_calls, 0);
	}
	assert_int_equal(jobq_depth(f->q), 0);
	assert_int_equal(atomic_load(&f->ag.metrics.queue_depth), 0);
	teardown_fixture(f);
	free(jobs);
}

static void
test_full_queue(void **state)
{
	struct fixture *f;
	struct tjob a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
	sem_t gate, started;
	double t0;

	(void)state;
	sem_init(&gate, 0, 0);
	sem_init(&started, 0, 0);
	f = setup_fixture(1, 2);
	a.gate = &gate;
	a.started = &started;
	assert_non_null(jobq_submit(f->port, work_fn, done_fn, release_fn, &a));
	sem_wait(&started);	/* the only worker is now busy with a */
	assert_non_null(jobq_submit(f->port, work_fn, done_fn, release_fn, &b));
	assert_non_null(jobq_submit(f->port, work_fn, done_fn, release_fn, &c));
	assert_int_equal(jobq_depth(f->q), 3);
	assert_int_equal(atomic_load(&f->ag.metrics.queue_depth), 3);
	t0 = now_s();
	assert_null(jobq_submit(f->port, work_fn, done_fn, release_fn, &d));
	assert_true(now_s() - t0 < 0.1);	/* immediate, never a stall */
	assert_int_equal(metrics_get(&f->ag.metrics, M_QUEUE_BUSY), 1);
	sem_post(&gate);
	run_loop(f);
	assert_int_equal(a.done_calls + b.done_calls + c.done_calls, 3);
	assert_int_equal(d.done_calls + d.release_calls + atomic_load(&d.work_calls), 0);
	/* room again */
	assert_non_null(jobq_submit(f->port, work_fn, done_fn, release_fn, &d));
	run_loop(f);
	assert_int_equal(d.done_calls, 1);
	teardown_fixture(f);
	sem_destroy(&gate);
	sem_destroy(&started);
}

static void
test_cancel_queued(void **state)
{
	struct fixture *f;
	struct tjob a = { 0 }, b = { 0 };
	struct jobq_job *jb;
	sem_t gate, started;

	(void)state;
	sem_init(&gate, 0, 0);
	sem_init(&started, 0, 0);
	f = setup_fixture(1, 4);
	a.gate = &gate;
	a.started = &started;
	assert_non_null(jobq_submit(f->port, work_fn, done_fn, release_fn, &a));
	sem_wait(&started);
	jb = jobq_submit(f->port, work_fn, done_fn, release_fn, &b);
	assert_non_null(jb);
	jobq_cancel(jb);
	/* queued: released at once, never run */
	assert_int_equal(b.release_calls, 1);
	assert_int_equal(jobq_depth(f->q), 1);
	sem_post(&gate);
	run_loop(f);
	assert_int_equal(a.done_calls, 1);
	assert_int_equal(b.done_calls, 0);
	assert_int_equal(b.release_calls, 1);
	assert_int_equal(atomic_load(&b.work_calls), 0);
	assert_int_equal(metrics_get(&f->ag.metrics, M_QUEUE_CANCELLED), 1);
	teardown_fixture(f);
	sem_destroy(&gate);
	sem_destroy(&started);
}

static void
test_cancel_running(void **state)
{
	struct fixture *f;
	struct tjob a = { 0 };
	struct jobq_job *ja;
	sem_t gate, started;

	(void)state;
	sem_init(&gate, 0, 0);
	sem_init(&started, 0, 0);
	f = setup_fixture(2, 4);
	a.gate = &gate;
	a.started = &started;
	ja = jobq_submit(f->port, work_fn, done_fn, release_fn, &a);
	assert_non_null(ja);
	sem_wait(&started);
	jobq_cancel(ja);
	/* the worker still uses the argument: no release yet */
	assert_int_equal(a.release_calls, 0);
	sem_post(&gate);
	run_loop(f);
	assert_int_equal(atomic_load(&a.work_calls), 1);
	assert_int_equal(a.done_calls, 0);
	assert_int_equal(a.release_calls, 1);
	teardown_fixture(f);
	assert_int_equal(a.release_calls, 1);
	sem_destroy(&gate);
	sem_destroy(&started);
}

/* Cancel after the job finished but before its completion was delivered. */
static void
test_cancel_finished(void **state)
{
	struct fixture *f;
	struct tjob a = { 0 };
	struct jobq_job *ja;
	int spins = 0;

	(void)state;
	f = setup_fixture(1, 4);
	ja = jobq_submit(f->port, work_fn, done_fn, release_fn, &a);
	assert_non_null(ja);
	while (jobq_depth(f->q) != 0 && spins++ < 5000) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
	}
	assert_int_equal(jobq_depth(f->q), 0);
	jobq_cancel(ja);
	run_loop(f);
	assert_int_equal(a.done_calls, 0);
	assert_int_equal(a.release_calls, 1);
	teardown_fixture(f);
}

/* Open <arg>'s gate after 50 ms, while the main thread is in jobq_stop(). */
static void *
late_opener(void *arg)
{
	struct timespec ts = { 0, 50000000 };

	nanosleep(&ts, NULL);
	sem_post(arg);
	return NULL;
}

static void
test_stop_with_queued(void **state)
{
	struct fixture *f;
	struct tjob a = { 0 }, b = { 0 }, c = { 0 };
	sem_t gate, started;
	pthread_t opener;

	(void)state;
	sem_init(&gate, 0, 0);
	sem_init(&started, 0, 0);
	f = setup_fixture(1, 4);
	a.gate = &gate;
	a.started = &started;
	assert_non_null(jobq_submit(f->port, work_fn, done_fn, release_fn, &a));
	sem_wait(&started);
	assert_non_null(jobq_submit(f->port, work_fn, done_fn, release_fn, &b));
	assert_non_null(jobq_submit(f->port, work_fn, done_fn, release_fn, &c));
	assert_int_equal(pthread_create(&opener, NULL, late_opener, &gate), 0);
	jobq_stop(f->q);	/* waits for a; b and c never run */
	f->q = NULL;
	pthread_join(opener, NULL);
	/* the port outlives the queue: submits are refused, never a crash */
	assert_null(jobq_submit(f->port, work_fn, done_fn, release_fn, &c));
	jobq_port_free(f->port);	/* delivers what is left */
	f->port = NULL;
	assert_int_equal(a.done_calls, 1);
	assert_int_equal(a.release_calls, 0);
	assert_int_equal(b.done_calls + c.done_calls, 0);
	assert_int_equal(b.release_calls, 1);
	assert_int_equal(c.release_calls, 1);
	assert_int_equal(atomic_load(&b.work_calls) + atomic_load(&c.work_calls), 0);
	teardown_fixture(f);
	sem_destroy(&gate);
	sem_destroy(&started);
}

/*
 * A job stuck on the slow lane (a hung LDAP) never delays fast-lane work,
 * and at most threads - 1 workers are ever on the slow lane.
 */
static void
test_slow_lane_does_not_block_fast(void **state)
{
	enum { N = 50 };
	struct fixture *f;
	struct ljob s1 = { 0 }, s2 = { 0 };
	struct tjob fast[N];
	_Atomic int counter = 0;
	struct jobq_job *j1, *j2;
	sem_t gate, started;
	int i;

	(void)state;
	memset(fast, 0, sizeof(fast));
	sem_init(&gate, 0, 0);
	sem_init(&started, 0, 0);
	f = setup_fixture(2, 2 * N);
	s1.go_slow = s2.go_slow = 1;
	s1.slow_gate = s2.slow_gate = &gate;
	s1.slow_started = &started;
	j1 = jobq_submit(f->port, lane_fn, done_fn, release_fn, &s1);
	assert_non_null(j1);
	sem_wait(&started);	/* one worker is now stuck on the slow lane */
	assert_true(jobq_job_slow(j1));
	j2 = jobq_submit(f->port, lane_fn, done_fn, release_fn, &s2);
	assert_non_null(j2);
	assert_int_equal(wait_atomic(&s2.fast_calls, 1), 1);
	for (i = 0; i < N; i++) {
		fast[i].counter = &counter;
		assert_non_null(jobq_submit(f->port, work_fn, done_fn, release_fn, &fast[i]));
	}
	/* every fast job runs while the slow one is stuck */
	assert_int_equal(wait_atomic(&counter, N), N);
	/* s2 waits for the only slow-lane slot of two threads */
	assert_true(jobq_job_slow(j2));
	assert_int_equal(atomic_load(&s2.slow_calls), 0);
	sem_post(&gate);
	sem_post(&gate);
	run_loop(f);
	for (i = 0; i < N; i++)
		assert_int_equal(fast[i].done_calls, 1);
	assert_int_equal(atomic_load(&s1.fast_calls), 1);
	assert_int_equal(atomic_load(&s1.slow_calls), 1);
	assert_int_equal(atomic_load(&s2.slow_calls), 1);
	assert_int_equal(atomic_load(&s1.bad_flag) + atomic_load(&s2.bad_flag), 0);
	assert_int_equal(s1.t.done_calls + s2.t.done_calls, 2);
	assert_int_equal(s1.t.release_calls + s2.t.release_calls, 0);
	assert_int_equal(jobq_depth(f->q), 0);
	teardown_fixture(f);
	sem_destroy(&gate);
	sem_destroy(&started);
}

/* One job for the own lane: asks for it, then blocks there on a gate. */
struct ojob {
	struct tjob t;
	_Atomic int fast_calls, own_calls;
	sem_t *gate, *started;
};

static enum jobq_next
own_fn(struct agent_worker *w, void *arg)
{
	struct ojob *j = arg;

	if (w->cache_only) {
		atomic_fetch_add(&j->fast_calls, 1);
		return JOBQ_OWN;
	}
	atomic_fetch_add(&j->own_calls, 1);
	if (j->started != NULL)
		sem_post(j->started);
	if (j->gate != NULL)
		sem_wait(j->gate);
	return JOBQ_DONE;
}

/*
 * Own-lane jobs stuck on their only thread take nothing from the others:
 * with two threads, a slow-lane job and fast jobs all run meanwhile; a
 * second own-lane job waits for the lane's thread, never for another.
 */
static void
test_own_lane_takes_nothing_from_the_others(void **state)
{
	enum { N = 20 };
	struct fixture *f;
	struct ojob o1 = { 0 }, o2 = { 0 };
	struct ljob sl = { 0 };
	struct tjob fast[N];
	_Atomic int counter = 0;
	sem_t gate, started, slow_started;
	int i;

	(void)state;
	memset(fast, 0, sizeof(fast));
	sem_init(&gate, 0, 0);
	sem_init(&started, 0, 0);
	sem_init(&slow_started, 0, 0);
	f = setup_fixture(2, 2 * N);
	assert_int_equal(jobq_own_start(f->q, 1), 0);
	assert_int_equal(jobq_own_start(f->q, 1), -1);     /* once */
	o1.gate = o2.gate = &gate;
	o1.started = &started;
	assert_non_null(jobq_submit(f->port, own_fn, done_fn, release_fn, &o1));
	sem_wait(&started);     /* the own lane's only thread is stuck */
	assert_non_null(jobq_submit(f->port, own_fn, done_fn, release_fn, &o2));
	assert_int_equal(wait_atomic(&o2.fast_calls, 1), 1);
	/* a slow-lane job gets a regular thread */
	sl.go_slow = 1;
	sl.slow_started = &slow_started;
	assert_non_null(jobq_submit(f->port, lane_fn, done_fn, release_fn, &sl));
	sem_wait(&slow_started);
	for (i = 0; i < N; i++) {
		fast[i].counter = &counter;
		assert_non_null(jobq_submit(f->port, work_fn, done_fn, release_fn, &fast[i]));
	}
	assert_int_equal(wait_atomic(&counter, N), N);
	/* o2 waits for the own lane: no other thread ran it */
	assert_int_equal(atomic_load(&o2.own_calls), 0);
	sem_post(&gate);
	sem_post(&gate);
	run_loop(f);
	assert_int_equal(atomic_load(&o1.own_calls) + atomic_load(&o2.own_calls), 2);
	assert_int_equal(o1.t.done_calls + o2.t.done_calls + sl.t.done_calls, 3);
	assert_int_equal(jobq_depth(f->q), 0);
	teardown_fixture(f);
	sem_destroy(&gate);
	sem_destroy(&started);
	sem_destroy(&slow_started);
}

/* Without own-lane threads, JOBQ_OWN runs on the slow lane. */
static void
test_own_without_threads_is_slow(void **state)
{
	struct fixture *f;
	struct ojob o = { 0 };

	(void)state;
	f = setup_fixture(2, 8);
	assert_non_null(jobq_submit(f->port, own_fn, done_fn, release_fn, &o));
	run_loop(f);
	assert_int_equal(atomic_load(&o.fast_calls), 1);
	assert_int_equal(atomic_load(&o.own_calls), 1);
	assert_int_equal(o.t.done_calls, 1);
	teardown_fixture(f);
}

/* Stopping with own-lane jobs queued releases them. */
static void
test_stop_with_own_queued(void **state)
{
	struct fixture *f;
	struct ojob o1 = { 0 }, o2 = { 0 };
	sem_t gate, started;
	pthread_t opener;

	(void)state;
	sem_init(&gate, 0, 0);
	sem_init(&started, 0, 0);
	f = setup_fixture(2, 8);
	assert_int_equal(jobq_own_start(f->q, 1), 0);
	o1.gate = &gate;
	o1.started = &started;
	assert_non_null(jobq_submit(f->port, own_fn, done_fn, release_fn, &o1));
	sem_wait(&started);
	assert_non_null(jobq_submit(f->port, own_fn, done_fn, release_fn, &o2));
	assert_int_equal(wait_atomic(&o2.fast_calls, 1), 1);
	/* o1 is let go only once the queue is stopping: o2, queued behind it
	 * (or still on its way there), is never run */
	assert_int_equal(pthread_create(&opener, NULL, late_opener, &gate), 0);
	jobq_stop(f->q);
	f->q = NULL;
	pthread_join(opener, NULL);
	jobq_port_free(f->port);
	f->port = NULL;
	assert_int_equal(atomic_load(&o2.own_calls), 0);
	assert_int_equal(o2.t.release_calls, 1);
	assert_int_equal(o1.t.done_calls, 1);
	teardown_fixture(f);
	sem_destroy(&gate);
	sem_destroy(&started);
}

/* A job waiting in the slow queue is cancelled like a queued one. */
static void
test_cancel_slow_queued(void **state)
{
	struct fixture *f;
	struct ljob s1 = { 0 }, s2 = { 0 };
	struct jobq_job *j2;
	sem_t gate, started;
	int i;

	(void)state;
	sem_init(&gate, 0, 0);
	sem_init(&started, 0, 0);
	f = setup_fixture(2, 4);
	s1.go_slow = s2.go_slow = 1;
	s1.slow_gate = &gate;
	s1.slow_started = &started;
	assert_non_null(jobq_submit(f->port, lane_fn, done_fn, release_fn, &s1));
	sem_wait(&started);
	j2 = jobq_submit(f->port, lane_fn, done_fn, release_fn, &s2);
	assert_non_null(j2);
	assert_int_equal(wait_atomic(&s2.fast_calls, 1), 1);
	/* the fast part returned: poll until the job is in the slow queue */
	for (i = 0; i < 2000 && !jobq_job_slow(j2); i++) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
	}
	assert_true(jobq_job_slow(j2));
	jobq_cancel(j2);
	assert_int_equal(s2.t.release_calls, 1);	/* at once */
	sem_post(&gate);
	run_loop(f);
	assert_int_equal(s1.t.done_calls, 1);
	assert_int_equal(s2.t.done_calls, 0);
	assert_int_equal(s2.t.release_calls, 1);
	assert_int_equal(atomic_load(&s2.slow_calls), 0);
	assert_int_equal(jobq_depth(f->q), 0);
	teardown_fixture(f);
	sem_destroy(&gate);
	sem_destroy(&started);
}

/* Stopping the queue releases jobs waiting in the slow queue. */
static void
test_stop_with_slow_queued(void **state)
{
	struct fixture *f;
	struct ljob s1 = { 0 }, s2 = { 0 };
	struct jobq_job *j2;
	sem_t gate, started;
	pthread_t opener;
	int i;

	(void)state;
	sem_init(&gate, 0, 0);
	sem_init(&started, 0, 0);
	f = setup_fixture(2, 4);
	s1.go_slow = s2.go_slow = 1;
	s1.slow_gate = &gate;
	s1.slow_started = &started;
	assert_non_null(jobq_submit(f->port, lane_fn, done_fn, release_fn, &s1));
	sem_wait(&started);
	j2 = jobq_submit(f->port, lane_fn, done_fn, release_fn, &s2);
	assert_non_null(j2);
	for (i = 0; i < 2000 && !jobq_job_slow(j2); i++) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
	}
	assert_true(jobq_job_slow(j2));
	assert_int_equal(pthread_create(&opener, NULL, late_opener, &gate), 0);
	jobq_stop(f->q);
	f->q = NULL;
	pthread_join(opener, NULL);
	jobq_port_free(f->port);
	f->port = NULL;
	assert_int_equal(s1.t.done_calls, 1);
	assert_int_equal(s2.t.done_calls, 0);
	assert_int_equal(s2.t.release_calls, 1);
	assert_int_equal(atomic_load(&s2.slow_calls), 0);
	teardown_fixture(f);
	sem_destroy(&gate);
	sem_destroy(&started);
}

static void
test_bad_start(void **state)
{
	struct gh_config *cfg = cfg_new();
	struct logger lg;
	struct agent ag;

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(log_init(&lg, "test_jobq", "stderr", "err", NULL), 0);
	assert_int_equal(agent_init(&ag, cfg, &lg), 0);
	assert_null(jobq_start(&ag, 0, 4));
	assert_null(jobq_start(&ag, 2, 0));
	agent_free(&ag);
	free(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_jobs),
		cmocka_unit_test(test_full_queue),
		cmocka_unit_test(test_cancel_queued),
		cmocka_unit_test(test_cancel_running),
		cmocka_unit_test(test_cancel_finished),
		cmocka_unit_test(test_stop_with_queued),
		cmocka_unit_test(test_slow_lane_does_not_block_fast),
		cmocka_unit_test(test_cancel_slow_queued),
		cmocka_unit_test(test_stop_with_slow_queued),
		cmocka_unit_test(test_own_lane_takes_nothing_from_the_others),
		cmocka_unit_test(test_own_without_threads_is_slow),
		cmocka_unit_test(test_stop_with_own_queued),
		cmocka_unit_test(test_bad_start),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
