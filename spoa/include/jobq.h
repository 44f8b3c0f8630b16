/*
 * The job queue keeps blocking calls (LDAP, memcached) off event loops.
 * N worker threads, each with its own struct agent_worker, take jobs from
 * one bounded queue; results go back to the submitting libev loop through
 * an ev_async ("port"), where the done callback runs.
 *
 * Contract:
 * - jobq_submit() never blocks: when the queue is full it returns NULL at
 *   once (the caller answers "busy"), and neither callback is ever called.
 * - work(w, arg) runs on a worker thread; done(arg) runs later on the
 *   port's loop thread, exactly once, unless the job was cancelled.
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

typedef void (*jobq_work_fn)(struct agent_worker *w, void *arg);
typedef void (*jobq_done_fn)(void *arg);
typedef void (*jobq_release_fn)(void *arg);

/*
 * Start <nthreads> workers for <ag> with room for <capacity> queued jobs.
 * Returns the queue, or NULL (logged) on failure.
 */
struct jobq *jobq_start(struct agent *ag, unsigned nthreads, unsigned capacity);

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

/* Return the number of jobs queued or running in <q>. */
unsigned jobq_depth(const struct jobq *q);

#endif
