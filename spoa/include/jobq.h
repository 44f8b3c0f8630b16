/*
 * The job queue keeps blocking calls (LDAP, memcached) off event loops.
 * N worker threads, each with its own struct agent_worker, take jobs from
 * one bounded queue; results go back to the submitting libev loop through
 * an ev_async ("port"), where the done callback runs.
 *
 * Two lanes: every job starts on the fast lane, where work must not make
 * a call that can hang (LDAP); work that finds it needs one returns
 * JOBQ_SLOW and runs again, from the start, on the slow lane. At most
 * nthreads - 1 workers (1 when nthreads is 1) run slow-lane work at once,
 * so with two threads or more a hung directory never holds every worker
 * and cache-only answers never wait behind it. Each worker takes the
 * oldest job it may run, whichever lane it is on. A third lane, the own
 * lane (jobq_own_start()), has threads of its own for another kind of call
 * that may hang (Kerberos files): work returns JOBQ_OWN to go there.
 *
 * Contract:
 * - jobq_submit() never blocks: when the queue is full it returns NULL at
 *   once (the caller answers "busy"), and neither callback is ever called.
 *   Moving a job to the slow lane never fails and needs no room.
 * - work(w, arg) runs on a worker thread (once on the fast lane, and once
 *   more on the slow lane when it asked for it: it must skip the steps it
 *   already finished); w->cache_only is 1 on the fast lane, 0 on the slow
 *   one. done(arg) runs later on the port's loop thread, exactly once,
 *   unless the job was cancelled.
 * - jobq_cancel(job): done is never called; the queue calls release(arg)
 *   (if not NULL) once no worker uses <arg> any more. After cancel the
 *   caller must not touch <arg> or <job>.
 * - After done(arg) returns, <job> is invalid; <arg> is the caller's.
 */
#ifndef GH_JOBQ_H
#define GH_JOBQ_H

#include <ev.h>

#include "agent.h"

struct jobq;
struct jobq_port;
struct jobq_job;

/* What work() returns: finished, or run me again on the slow lane. */
enum jobq_next {
	JOBQ_DONE = 0,
	JOBQ_SLOW,           /* on the slow lane, the same as JOBQ_DONE */
	JOBQ_OWN,            /* run me again on the own lane (the slow lane when it has
	                        no threads); there, the same as JOBQ_DONE */
};

typedef enum jobq_next (*jobq_work_fn)(struct agent_worker *w, void *arg);
typedef void (*jobq_done_fn)(void *arg);
typedef void (*jobq_release_fn)(void *arg);

/*
 * Start <nthreads> workers for <ag> with room for <capacity> queued jobs;
 * at most nthreads - 1 of them (at least 1) run slow-lane work at once.
 * Returns the queue, or NULL (logged) on failure.
 */
struct jobq *jobq_start(struct agent *ag, unsigned nthreads, unsigned capacity);

/*
 * Start the own lane of <q>: <nthreads> threads of its own that run only
 * work that returned JOBQ_OWN on the fast lane (with cache_only 0), so a
 * kind of call that may hang (Kerberos files) never takes a thread from
 * the other lanes, nor they from it. Once, on the ports' loop thread.
 * Returns 0, or -1 when not every thread started (those that did serve).
 */
int jobq_own_start(struct jobq *q, unsigned nthreads);

/*
 * Stop <q>: queued jobs are cancelled (release called), running ones
 * finish, workers are joined and their handles freed. Ports must be freed
 * after this.
 */
void jobq_stop(struct jobq *q);

/*
 * Create the port through which jobs submitted from <loop> complete. Must
 * be called on <loop>'s thread. Returns NULL on failure.
 */
struct jobq_port *jobq_port_new(struct jobq *q, struct ev_loop *loop);

/* Stop and free port <p> (on its loop's thread, after jobq_stop()). */
void jobq_port_free(struct jobq_port *p);

/*
 * Queue work(arg) and then done(arg) on <p>'s loop. Returns a handle for
 * jobq_cancel(), or NULL when the queue is full or stopping ("busy").
 */
struct jobq_job *jobq_submit(struct jobq_port *p, jobq_work_fn work, jobq_done_fn done,
                             jobq_release_fn release, void *arg);

/* Cancel <job> (on the port's loop thread): see the contract above. */
void jobq_cancel(struct jobq_job *job);

/*
 * Tell whether <job> went to the slow lane (its work waits for or runs a
 * call that may hang). On the port's loop thread, before done or cancel.
 */
int jobq_job_slow(const struct jobq_job *job);

/* Return the number of jobs queued or running in <q>. */
unsigned jobq_depth(const struct jobq *q);

#endif
