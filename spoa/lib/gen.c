/*
 * Configuration generations: build one from a loaded configuration, make
 * it current, count its holders, and tear it down from a fresh loop
 * iteration once nothing holds it, folding what it counted meanwhile into
 * the current generation's counters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "metrics.h"

#define GEN_FREE_RETRY_S 0.05   /* while an unheld generation's workers still run */

/* Set up controller <gc>. */
void
gen_ctl_init(struct gen_ctl *gc, struct ev_loop *loop, const struct logger *lg)
{
	memset(gc, 0, sizeof(*gc));
	gc->loop = loop;
	gc->log = lg;
	LIST_INIT(&gc->gens);
}

static void gen_free_cb(struct ev_loop *loop, ev_timer *w, int revents);

/*
 * Build a generation from <cfg> (owned from now on) with <threads> workers
 * and a queue of <queue> jobs. Returns it with one reference, or NULL with
 * <err>.
 */
struct gen *
gen_new(struct gen_ctl *gc, struct gh_config *cfg, unsigned threads, unsigned queue,
        char *err, size_t errlen)
{
	struct gen *g = calloc(1, sizeof(*g));
	int ag_ok = 0;

	if (g == NULL) {
		snprintf(err, errlen, "out of memory");
		free(cfg);
		return NULL;
	}
	g->cfg = cfg;
	g->ctl = gc;
	if (agent_init(&g->ag, g->cfg, gc->log) < 0) {
		snprintf(err, errlen, "cannot initialise the agent library");
		goto fail;
	}
	ag_ok = 1;
	g->q = jobq_start(&g->ag, threads ? threads : 1, queue ? queue : 1);
	if (g->q == NULL) {
		snprintf(err, errlen, "cannot start the job queue");
		goto fail;
	}
	g->port = jobq_port_new(g->q, gc->loop);
	if (g->port == NULL) {
		snprintf(err, errlen, "cannot create the job queue port");
		goto fail;
	}
	g->refs = 1;
	ev_timer_init(&g->free_w, gen_free_cb, 0., 0.);
	g->free_w.data = g;
	LIST_INSERT_HEAD(&gc->gens, g, link);
	gc->ngens++;
	return g;
fail:
	jobq_stop(g->q);
	if (ag_ok)
		agent_free(&g->ag);
	free(g->cfg);
	free(g);
	return NULL;
}

/* Copy every library counter of <from> into <to>. */
static void
metrics_copy(struct metrics *to, const struct metrics *from)
{
	int i;

	for (i = 0; i < M__COUNT; i++)
		atomic_store(&to->c[i], atomic_load(&from->c[i]));
}

/* Make <g> current in <gc>; the old one keeps what else holds it. */
void
gen_install(struct gen_ctl *gc, struct gen *g)
{
	struct gen *old = gc->cur;

	gc->cur = g;
	if (old == NULL)
		return;
	/* the counters go on from where the old generation is */
	metrics_copy(&g->ag.metrics, &old->ag.metrics);
	metrics_copy(&old->at_retire, &old->ag.metrics);
	old->retired = 1;
	gen_put(old);
}

/* Take a reference to the current generation of <gc>. */
struct gen *
gen_get(struct gen_ctl *gc)
{
	if (gc->cur == NULL)
		return NULL;
	gc->cur->refs++;
	return gc->cur;
}

/* Take one more reference to <g>. */
struct gen *
gen_ref(struct gen *g)
{
	g->refs++;
	return g;
}

/* Free <g>: its queue, port, agent and configuration. */
static void
gen_free(struct gen *g)
{
	struct gen_ctl *gc = g->ctl;
	int i;

	ev_timer_stop(gc->loop, &g->free_w);
	LIST_REMOVE(g, link);
	gc->ngens--;
	/* running jobs finish, queued ones are released through the port */
	jobq_stop(g->q);
	jobq_port_free(g->port);
	/* what it counted since it was replaced goes to the current one */
	if (g->retired && gc->cur != NULL && gc->cur != g)
		for (i = 0; i < M__COUNT; i++)
			atomic_fetch_add(&gc->cur->ag.metrics.c[i],
			                 atomic_load(&g->ag.metrics.c[i]) -
			                 atomic_load(&g->at_retire.c[i]));
	agent_free(&g->ag);
	free(g->cfg);
	free(g);
}

static void
gen_free_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gen *g = w->data;

	(void)revents;
	if (g->refs > 0)
		return;
	/* A cancelled job may still run on a worker (a slow LDAP call):
	 * joining it now would stall the loop, so look again later. */
	if (jobq_depth(g->q) > 0) {
		ev_timer_set(w, GEN_FREE_RETRY_S, 0.);
		ev_timer_start(loop, w);
		return;
	}
	gen_free(g);
}

/* Drop a reference to <g>; the last frees it (deferred while the loop runs). */
void
gen_put(struct gen *g)
{
	if (g == NULL || g->refs == 0 || --g->refs > 0)
		return;
	if (g->ctl->stopped) {
		gen_free(g);
		return;
	}
	/* The last reference may go inside one of this generation's own job
	 * callbacks: tear down from a fresh loop iteration. */
	ev_timer_start(g->ctl->loop, &g->free_w);
}

/* Log that [<section>] <key> needs a restart and keeps its running value. */
static void
gen_keep_log(struct gen_ctl *gc, const char *section, const char *key)
{
	log_warnx(gc->log, "reload: [%s] %s changed: it takes effect at the next restart; "
	          "the running value is kept", section, key);
}

/* Keep restart-only field <running> over <next> (<size> bytes). Returns 1 when they differed. */
int
gen_keep(struct gen_ctl *gc, const char *section, const char *key, const void *running,
         void *next, size_t size)
{
	if (memcmp(running, next, size) == 0)
		return 0;
	gen_keep_log(gc, section, key);
	memcpy(next, running, size);
	return 1;
}

/* Keep restart-only string <running> over <next> (<size> bytes). Returns 1 when they differed. */
int
gen_keep_str(struct gen_ctl *gc, const char *section, const char *key, const char *running,
             char *next, size_t size)
{
	if (strcmp(running, next) == 0)
		return 0;
	gen_keep_log(gc, section, key);
	memcpy(next, running, size);
	return 1;
}

/* Stop <gc> after its loop: stop every queue, deliver, free what nobody holds. */
void
gen_ctl_stop(struct gen_ctl *gc)
{
	struct gen *g, *tmp;

	gc->stopped = 1;
	/* hold every generation while job callbacks drop their references */
	LIST_FOREACH(g, &gc->gens, link) {
		ev_timer_stop(gc->loop, &g->free_w);
		g->refs++;
		jobq_stop(g->q);
		g->q = NULL;
	}
	LIST_FOREACH(g, &gc->gens, link) {
		jobq_port_free(g->port);
		g->port = NULL;
	}
	g = gc->cur;
	gc->cur = NULL;
	gen_put(g);
	LIST_FOREACH_SAFE(g, &gc->gens, link, tmp)
		gen_put(g);
}
