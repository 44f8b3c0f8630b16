/*
 * Configuration generations, one reload model for both daemons. A
 * generation is everything built from one reading of gatehouse.conf: the
 * parsed file, the agent library context, the job queue (its worker
 * threads and their LDAP and memcached handles) and the loop's port.
 *
 * Contract:
 * - One generation is current (struct gen_ctl). Work that starts (an SPOP
 *   request, a mail session) takes a reference with gen_get() and keeps
 *   using that generation until it ends and calls gen_put(), whatever
 *   reloads happen meanwhile. A job submitted on a generation's port that
 *   outlives its submitter (fire and forget) holds its own gen_ref().
 * - SIGHUP builds a new generation with gen_new(); a failure changes
 *   nothing (the caller logs it and the current one keeps serving).
 *   gen_install() makes the new one current and drops the controller's
 *   reference to the old one.
 * - The last gen_put() frees a generation from a fresh loop iteration
 *   (never inside one of its own job callbacks), once none of its workers
 *   runs a job any more (a cancelled one may still be in a slow call: the
 *   loop never waits for it); after gen_ctl_stop(), at once.
 * - The library counters carry over: a new generation starts from the
 *   counts of the one it replaces, and what an old one counts after that
 *   is added to the current one when it is freed, so the rendered counters
 *   never go back.
 * Everything runs on the controller's loop thread.
 */
#ifndef GH_GEN_H
#define GH_GEN_H

#include <ev.h>
#include <bsd/sys/queue.h>

#include "agent.h"
#include "cfg-t.h"
#include "jobq.h"
#include "log.h"
#include "metrics-t.h"

struct gen_ctl;

/* One configuration generation. */
struct gen {
	struct gh_config *cfg;         /* owned */
	struct agent ag;               /* built from <cfg> */
	struct jobq *q;                /* its workers */
	struct jobq_port *port;        /* submit here */
	struct gen_ctl *ctl;
	unsigned refs;                 /* holders, the controller's included */
	struct metrics at_retire;      /* counters when it stopped being current */
	int retired;                   /* no longer current */
	ev_timer free_w;               /* deferred teardown */
	LIST_ENTRY(gen) link;          /* every generation not yet freed */
};

/* A daemon's generations: the current one and those still in use. */
struct gen_ctl {
	struct ev_loop *loop;
	const struct logger *log;
	struct gen *cur;               /* holds one reference; NULL before the first install */
	int stopped;                   /* the loop is over: free at once */
	unsigned ngens;                /* generations not yet freed */
	LIST_HEAD(, gen) gens;
};

/* Set up controller <gc> for generations completing on <loop>, logging to <lg>. */
void gen_ctl_init(struct gen_ctl *gc, struct ev_loop *loop, const struct logger *lg);

/*
 * Build a generation of <gc> from loaded configuration <cfg> (taken over:
 * freed on failure too) with <threads> workers and room for <queue> jobs.
 * Returns it with one reference (the caller's, given to gen_install()), or
 * NULL with the reason in <err> (<errlen> bytes).
 */
struct gen *gen_new(struct gen_ctl *gc, struct gh_config *cfg, unsigned threads,
                    unsigned queue, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Make <g> the current generation of <gc>, taking over the caller's
 * reference; the previous one loses the controller's reference and lives
 * on while anything else holds one.
 */
void gen_install(struct gen_ctl *gc, struct gen *g);

/* Take a reference to the current generation of <gc> and return it. */
struct gen *gen_get(struct gen_ctl *gc);

/* Take one more reference to <g> (for a job that outlives its submitter). Returns <g>. */
struct gen *gen_ref(struct gen *g);

/* Drop a reference to <g> (NULL: nothing); the last one frees it. */
void gen_put(struct gen *g);

/*
 * For a reload: keep the running value of [<section>] <key>, which only a
 * restart changes. When <next> (the new configuration's field, <size>
 * bytes) differs from <running>, log a warning naming the key and copy
 * <running> over <next>, so the new generation states what is in effect.
 * Returns 1 when it differed, else 0.
 */
int gen_keep(struct gen_ctl *gc, const char *section, const char *key, const void *running,
             void *next, size_t size);

/* Like gen_keep() for a string field (compared up to its NUL). */
int gen_keep_str(struct gen_ctl *gc, const char *section, const char *key, const char *running,
                 char *next, size_t size);

/*
 * Stop <gc> once its loop no longer runs: every job queue is stopped, its
 * finished and cancelled jobs are delivered (their references dropped),
 * the controller's reference is dropped, and every generation nothing
 * holds any more is freed.
 */
void gen_ctl_stop(struct gen_ctl *gc);

#endif
