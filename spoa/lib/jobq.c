/*
 * The job queue: blocking LDAP and memcached calls run on worker threads,
 * results come back to the submitting libev loop through an ev_async.
 *
 * One mutex (the queue's) guards the queues and every job's state; each
 * port has its own mutex for its completion list. A job's "cancelled" flag
 * is only ever set on its port's loop thread (by jobq_cancel()); a worker
 * only reads it, to skip the work of a job cancelled before it reached the
 * slow lane.
 *
 * A port keeps its loop alive only while it has jobs outstanding: an idle
 * port does not stop ev_run() from returning.
 *
 * Two lanes (see the header): a job that asks for the slow lane goes to the
 * back of the slow queue, keeping its submission number, and workers take
 * the oldest job they may run, a slow-lane job only while fewer than
 * slow_max workers run one. A third, the own lane, has threads of its own
 * (jobq_own_start()) that take nothing else, and the others never take its
 * jobs: waiting there costs the other lanes nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/sys/queue.h>

#include "jobq.h"
#include "log.h"
#include "metrics.h"

/* Where a job is in its life. */
enum job_state {
	JOB_QUEUED = 0,      /* in the fast queue, no worker has it */
	JOB_RUNNING,         /* a worker runs work(), or it is on the way back */
	JOB_STOPPED,         /* taken out of a queue by jobq_stop() */
	JOB_SLOWQ,           /* in the slow queue, no worker has it */
	JOB_OWNQ,            /* in the own lane's queue, no worker has it */
};

/* One submitted job. */
struct jobq_job {
	TAILQ_ENTRY(jobq_job) link;    /* queue, then the port's completion list */
	struct jobq_port *port;
	jobq_work_fn work;
	jobq_done_fn done;
	jobq_release_fn release;
	void *arg;
	_Atomic int state;             /* enum job_state; changed under the queue
	                                  mutex, never back to JOB_QUEUED (a
	                                  running job may go to JOB_SLOWQ once) */
	_Atomic int slow;              /* moved to the slow lane */
	_Atomic int own;               /* moved to the own lane */
	uint64_t seq;                  /* submission order, under the queue mutex */
	_Atomic int cancelled;         /* set on the loop thread; workers read it
	                                  to skip the slow lane of a dead job */
};

TAILQ_HEAD(job_list, jobq_job);

/* A worker thread and the handles it owns. */
struct jobq_thread {
	struct jobq *q;
	pthread_t tid;
	struct agent_worker w;
	int started;
	int own;                       /* an own-lane thread */
};

/* The queue shared by every worker and every port. */
struct jobq {
	struct agent *ag;
	pthread_mutex_t mu;
	pthread_cond_t cv;             /* signalled when a job may be taken or on stop */
	struct job_list queue;         /* the fast lane */
	struct job_list slowq;         /* the slow lane */
	unsigned capacity;             /* most jobs waiting in the queues (at submit) */
	unsigned nqueued, nrunning;    /* both lanes */
	unsigned nslow, slow_max;      /* workers running slow-lane work, and the cap */
	uint64_t seq;                  /* next submission number */
	_Atomic unsigned depth;        /* nqueued + nrunning, for jobq_depth() */
	int stopping;
	unsigned nthreads;
	struct jobq_thread *threads;
	struct job_list ownq;          /* the own lane */
	pthread_cond_t own_cv;         /* signalled when an own-lane job waits or on stop */
	unsigned nown;                 /* own-lane threads */
	struct jobq_thread *own;
	LIST_HEAD(, jobq_port) ports;  /* so that jobq_stop() can detach them */
};

/* The completion side of one event loop. */
struct jobq_port {
	struct jobq *q;                /* NULL once the queue is stopped */
	LIST_ENTRY(jobq_port) link;
	struct agent *ag;              /* for metrics; outlives the queue */
	struct ev_loop *loop;
	ev_async async;
	pthread_mutex_t mu;
	struct job_list done;          /* finished (or stopped) jobs to deliver */
	unsigned outstanding;          /* submitted, not yet delivered; loop thread */
};

/* Publish the queue depth gauge; call with the queue mutex held. */
static void
depth_update(struct jobq *q)
{
	atomic_store(&q->depth, q->nqueued + q->nrunning);
	atomic_store_explicit(&q->ag->metrics.queue_depth, (int64_t)(q->nqueued + q->nrunning),
	                      memory_order_relaxed);
}

/* Hand <job> back to its port's loop (any thread). */
static void
port_post(struct jobq_job *job)
{
	struct jobq_port *p = job->port;

	pthread_mutex_lock(&p->mu);
	TAILQ_INSERT_TAIL(&p->done, job, link);
	pthread_mutex_unlock(&p->mu);
	ev_async_send(p->loop, &p->async);
}

/* One job fewer outstanding on <p>: let the loop end when none is left. */
static void
port_settle(struct jobq_port *p)
{
	if (p->outstanding > 0 && --p->outstanding == 0)
		ev_unref(p->loop);
}

/*
 * Deliver every finished job of <p>: done() for live ones, release() for
 * cancelled or stopped ones. Runs on the port's loop thread.
 */
static void
port_drain(struct jobq_port *p)
{
	struct job_list batch;
	struct jobq_job *job;

	TAILQ_INIT(&batch);
	pthread_mutex_lock(&p->mu);
	TAILQ_CONCAT(&batch, &p->done, link);
	pthread_mutex_unlock(&p->mu);
	/* A done() callback may cancel a job that is still in <batch>: the
	 * flag is read only when that job's turn comes. */
	while ((job = TAILQ_FIRST(&batch)) != NULL) {
		jobq_done_fn done = job->done;
		jobq_release_fn release = job->release;
		void *arg = job->arg;
		int live = !job->cancelled && atomic_load(&job->state) != JOB_STOPPED;

		TAILQ_REMOVE(&batch, job, link);
		free(job);
		port_settle(p);
		if (live)
			done(arg);
		else if (release != NULL)
			release(arg);
	}
}

static void
port_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)loop;
	(void)revents;
	port_drain(w->data);
}

/*
 * Take the oldest job a worker may run now out of its queue, or return
 * NULL. A slow-lane job only while fewer than slow_max run. Call with the
 * queue mutex held.
 */
static struct jobq_job *
queue_take(struct jobq *q, int own)
{
	struct jobq_job *fast = own ? NULL : TAILQ_FIRST(&q->queue);
	struct jobq_job *slow = !own && q->nslow < q->slow_max ? TAILQ_FIRST(&q->slowq) : NULL;

	if (own) {
		if ((fast = TAILQ_FIRST(&q->ownq)) == NULL)
			return NULL;
		TAILQ_REMOVE(&q->ownq, fast, link);
	} else if (slow != NULL && (fast == NULL || slow->seq < fast->seq)) {
		TAILQ_REMOVE(&q->slowq, slow, link);
		q->nslow++;
		fast = slow;
	} else if (fast != NULL) {
		TAILQ_REMOVE(&q->queue, fast, link);
	} else {
		return NULL;
	}
	q->nqueued--;
	q->nrunning++;
	atomic_store(&fast->state, JOB_RUNNING);
	return fast;
}

/*
 * Move <job>, back from its fast-lane work, to the back of the own lane
 * (<own>) or of the slow lane, and wake a worker of that lane. Call with
 * the queue mutex held.
 */
static void
lane_move(struct jobq *q, struct jobq_job *job, int own)
{
	atomic_store(own ? &job->own : &job->slow, 1);
	atomic_store(&job->state, own ? JOB_OWNQ : JOB_SLOWQ);
	TAILQ_INSERT_TAIL(own ? &q->ownq : &q->slowq, job, link);
	q->nqueued++;
	depth_update(q);
	pthread_cond_signal(own ? &q->own_cv : &q->cv);
}

/* A worker: take jobs until the queue stops. */
static void *
worker_main(void *arg)
{
	struct jobq_thread *t = arg;
	struct jobq *q = t->q;
	struct jobq_job *job;
	enum jobq_next next;
	int slow, own;

	for (;;) {
		job = NULL;
		pthread_mutex_lock(&q->mu);
		while (!q->stopping && (job = queue_take(q, t->own)) == NULL)
			pthread_cond_wait(t->own ? &q->own_cv : &q->cv, &q->mu);
		if (q->stopping || job == NULL) {
			pthread_mutex_unlock(&q->mu);
			break;
		}
		pthread_mutex_unlock(&q->mu);

		/* the job may be cancelled meanwhile; its arg stays valid until
		 * the loop thread sees it come back and calls release() */
		slow = atomic_load(&job->slow);
		own = atomic_load(&job->own);
		t->w.cache_only = !slow && !own;
		if ((slow || own) && atomic_load(&job->cancelled))
			next = JOBQ_DONE;	/* nobody waits for the slow call */
		else
			next = job->work(&t->w, job->arg);

		pthread_mutex_lock(&q->mu);
		q->nrunning--;
		if (slow) {
			q->nslow--;
			/* a slow-lane slot is free: a waiting worker may take one */
			if (!TAILQ_EMPTY(&q->slowq))
				pthread_cond_signal(&q->cv);
		}
		if ((next == JOBQ_SLOW || next == JOBQ_OWN) && !slow && !own) {
			if (q->stopping) {
				/* jobq_stop() already took the queues: never run again */
				atomic_store(&job->state, JOB_STOPPED);
				metrics_inc(&q->ag->metrics, M_QUEUE_CANCELLED);
			} else {
				lane_move(q, job, next == JOBQ_OWN && q->nown > 0);
				pthread_mutex_unlock(&q->mu);
				continue;
			}
		}
		depth_update(q);
		pthread_mutex_unlock(&q->mu);
		port_post(job);
	}
	return NULL;
}

/*
 * Start <nthreads> workers for <ag> with room for <capacity> queued jobs.
 * Returns the queue, or NULL (logged) on failure.
 */
struct jobq *
jobq_start(struct agent *ag, unsigned nthreads, unsigned capacity)
{
	struct jobq *q;
	unsigned i;
	int rc;

	if (nthreads == 0 || capacity == 0) {
		log_err(ag->log, "job queue: need at least one thread and one slot");
		return NULL;
	}
	q = calloc(1, sizeof(*q));
	if (q == NULL || (q->threads = calloc(nthreads, sizeof(*q->threads))) == NULL) {
		log_err(ag->log, "job queue: out of memory");
		free(q);
		return NULL;
	}
	q->ag = ag;
	q->capacity = capacity;
	q->slow_max = nthreads > 1 ? nthreads - 1 : 1;
	TAILQ_INIT(&q->queue);
	TAILQ_INIT(&q->slowq);
	TAILQ_INIT(&q->ownq);
	LIST_INIT(&q->ports);
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	pthread_cond_init(&q->own_cv, NULL);
	for (i = 0; i < nthreads; i++) {
		struct jobq_thread *t = &q->threads[i];

		t->q = q;
		if (agent_worker_init(&t->w, ag) < 0)
			break;
		rc = pthread_create(&t->tid, NULL, worker_main, t);
		if (rc != 0) {
			errno = rc;
			log_warn(ag->log, "job queue: cannot start worker thread");
			agent_worker_free(&t->w);
			break;
		}
		t->started = 1;
		q->nthreads++;
	}
	if (q->nthreads < nthreads) {
		jobq_stop(q);
		return NULL;
	}
	return q;
}

/*
 * Start the own lane of <q>: <nthreads> threads that run only the jobs
 * whose work asked for it (JOBQ_OWN), on the loop thread of its ports,
 * once. Returns 0, or -1 (logged) when it cannot.
 */
int
jobq_own_start(struct jobq *q, unsigned nthreads)
{
	unsigned i;
	int rc;

	if (nthreads == 0 || q->own != NULL)
		return -1;
	if ((q->own = calloc(nthreads, sizeof(*q->own))) == NULL) {
		log_err(q->ag->log, "job queue: out of memory");
		return -1;
	}
	for (i = 0; i < nthreads; i++) {
		struct jobq_thread *t = &q->own[i];

		t->q = q;
		t->own = 1;
		if (agent_worker_init(&t->w, q->ag) < 0)
			break;
		rc = pthread_create(&t->tid, NULL, worker_main, t);
		if (rc != 0) {
			errno = rc;
			log_warn(q->ag->log, "job queue: cannot start worker thread");
			agent_worker_free(&t->w);
			break;
		}
		t->started = 1;
		pthread_mutex_lock(&q->mu);
		q->nown++;
		pthread_mutex_unlock(&q->mu);
	}
	/* the threads that did start serve the lane; none: the slow lane does */
	return q->nown == nthreads ? 0 : -1;
}

/*
 * Stop <q>: queued jobs go back to their ports as stopped (their release
 * runs on the port's loop, or in jobq_port_free()), running ones finish,
 * workers are joined and their handles freed. <q> is freed; its ports stay
 * usable until freed, and answer every later submit with NULL ("busy").
 * Call it on the loop thread of the ports (not concurrently with
 * jobq_submit() or jobq_cancel()).
 */
void
jobq_stop(struct jobq *q)
{
	struct job_list stopped;
	struct jobq_job *job;
	struct jobq_port *p;
	unsigned i;

	if (q == NULL)
		return;
	TAILQ_INIT(&stopped);
	pthread_mutex_lock(&q->mu);
	q->stopping = 1;
	/* ports outlive the queue: later submits answer "busy" */
	while ((p = LIST_FIRST(&q->ports)) != NULL) {
		LIST_REMOVE(p, link);
		p->q = NULL;
	}
	TAILQ_CONCAT(&stopped, &q->queue, link);
	TAILQ_CONCAT(&stopped, &q->slowq, link);
	TAILQ_CONCAT(&stopped, &q->ownq, link);
	TAILQ_FOREACH(job, &stopped, link)
		atomic_store(&job->state, JOB_STOPPED);
	q->nqueued = 0;
	depth_update(q);
	pthread_cond_broadcast(&q->cv);
	pthread_cond_broadcast(&q->own_cv);
	pthread_mutex_unlock(&q->mu);
	while ((job = TAILQ_FIRST(&stopped)) != NULL) {
		TAILQ_REMOVE(&stopped, job, link);
		metrics_inc(&q->ag->metrics, M_QUEUE_CANCELLED);
		port_post(job);
	}
	for (i = 0; i < q->nthreads; i++) {
		pthread_join(q->threads[i].tid, NULL);
		agent_worker_free(&q->threads[i].w);
	}
	for (i = 0; i < q->nown; i++) {
		pthread_join(q->own[i].tid, NULL);
		agent_worker_free(&q->own[i].w);
	}
	free(q->own);
	pthread_cond_destroy(&q->own_cv);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q->threads);
	free(q);
}

/*
 * Create the port for jobs submitted from <loop> (on its thread). Returns
 * the port or NULL.
 */
struct jobq_port *
jobq_port_new(struct jobq *q, struct ev_loop *loop)
{
	struct jobq_port *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->q = q;
	p->ag = q->ag;
	p->loop = loop;
	pthread_mutex_init(&p->mu, NULL);
	TAILQ_INIT(&p->done);
	ev_async_init(&p->async, port_cb);
	p->async.data = p;
	ev_async_start(loop, &p->async);
	ev_unref(loop);		/* idle ports do not keep the loop running */
	pthread_mutex_lock(&q->mu);
	LIST_INSERT_HEAD(&q->ports, p, link);
	pthread_mutex_unlock(&q->mu);
	return p;
}

/*
 * Stop and free port <p>, on its loop thread, after jobq_stop(): jobs that
 * finished but were not delivered yet are delivered now (done() or
 * release()).
 */
void
jobq_port_free(struct jobq_port *p)
{
	if (p == NULL)
		return;
	port_drain(p);
	if (p->q != NULL) {
		/* freed before jobq_stop(): only safe with no job outstanding */
		pthread_mutex_lock(&p->q->mu);
		LIST_REMOVE(p, link);
		pthread_mutex_unlock(&p->q->mu);
	}
	if (p->outstanding == 0)
		ev_ref(p->loop);	/* libev: re-reference before stopping */
	ev_async_stop(p->loop, &p->async);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/*
 * Queue work(arg) then done(arg) on <p>'s loop. Returns the job, or NULL
 * when the queue is full or stopping (nothing is called then).
 */
struct jobq_job *
jobq_submit(struct jobq_port *p, jobq_work_fn work, jobq_done_fn done,
            jobq_release_fn release, void *arg)
{
	struct jobq *q = p->q;
	struct jobq_job *job;

	job = q != NULL ? calloc(1, sizeof(*job)) : NULL;
	if (job == NULL) {
		metrics_inc(&p->ag->metrics, M_QUEUE_BUSY);
		return NULL;
	}
	job->port = p;
	job->work = work;
	job->done = done;
	job->release = release;
	job->arg = arg;
	atomic_init(&job->state, JOB_QUEUED);

	pthread_mutex_lock(&q->mu);
	if (q->stopping || q->nqueued >= q->capacity) {
		pthread_mutex_unlock(&q->mu);
		free(job);
		metrics_inc(&q->ag->metrics, M_QUEUE_BUSY);
		return NULL;
	}
	job->seq = q->seq++;
	TAILQ_INSERT_TAIL(&q->queue, job, link);
	q->nqueued++;
	depth_update(q);
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);

	if (p->outstanding++ == 0)
		ev_ref(p->loop);
	metrics_inc(&q->ag->metrics, M_QUEUE_SUBMITTED);
	return job;
}

/*
 * Cancel <job> on its port's loop thread: a queued job is released at
 * once; a running one is released when its worker is done with it.
 */
void
jobq_cancel(struct jobq_job *job)
{
	struct jobq_port *p = job->port;
	int queued = 0, st;

	if (job->cancelled)
		return;
	/* A queued job (either lane) is only ever queued while the queue
	 * runs: jobq_stop(), on this thread, turns every queued job into
	 * JOB_STOPPED, and no worker queues one after it. So when the job is
	 * neither, the queue (which may be stopped and freed) is not touched;
	 * a worker that moves it to the slow lane after this check leaves it
	 * to the completion callback through the flag below. */
	st = atomic_load(&job->state);
	if (st == JOB_QUEUED || st == JOB_SLOWQ || st == JOB_OWNQ) {
		struct jobq *q = p->q;

		pthread_mutex_lock(&q->mu);
		st = atomic_load(&job->state);
		if (st == JOB_QUEUED || st == JOB_SLOWQ || st == JOB_OWNQ) {
			if (st == JOB_QUEUED)
				TAILQ_REMOVE(&q->queue, job, link);
			else if (st == JOB_SLOWQ)
				TAILQ_REMOVE(&q->slowq, job, link);
			else
				TAILQ_REMOVE(&q->ownq, job, link);
			q->nqueued--;
			depth_update(q);
			queued = 1;
		}
		pthread_mutex_unlock(&q->mu);
	}
	metrics_inc(&p->ag->metrics, M_QUEUE_CANCELLED);
	if (queued) {
		jobq_release_fn release = job->release;
		void *arg = job->arg;

		free(job);
		port_settle(p);
		if (release != NULL)
			release(arg);
		return;
	}
	/* running, finished or stopped: the completion callback releases it */
	job->cancelled = 1;
}

/* Tell whether <job> went to the slow lane. */
int
jobq_job_slow(const struct jobq_job *job)
{
	return atomic_load(&job->slow);
}

/* Return the number of jobs queued or running in <q>. */
unsigned
jobq_depth(const struct jobq *q)
{
	return atomic_load(&q->depth);
}
