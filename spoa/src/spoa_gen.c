/*
 * Configuration generations. Each holds a loaded gatehouse.conf, the agent
 * library context built from it, the job queue and this loop's port.
 * Requests hold a reference to the generation they started in, so SIGHUP
 * can swap in a new one while old lookups finish on the old one.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cfg.h"
#include "spoa.h"

/*
 * Load the configuration of <sp> and build a generation from it (agent,
 * job queue, port). Returns it with one reference, or NULL with the
 * reason in <err> (<errlen> bytes).
 */
struct spoa_gen *
spoa_gen_new(struct spoa *sp, char *err, size_t errlen)
{
	struct spoa_gen *g = calloc(1, sizeof(*g));

	if (g == NULL || (g->cfg = cfg_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(g);
		return NULL;
	}
	if (cfg_load(g->cfg, sp->conf_path, CFG_NEED_SPOA | CFG_NEED_SERVERS, err, errlen) < 0)
		goto fail;
	if (agent_init(&g->ag, g->cfg, &sp->log) < 0) {
		snprintf(err, errlen, "cannot initialise the agent library");
		goto fail;
	}
	g->ag_ok = 1;
	g->q = jobq_start(&g->ag, g->cfg->spoa.threads ? g->cfg->spoa.threads : 1,
	                  g->cfg->spoa.queue_size ? g->cfg->spoa.queue_size : 1);
	if (g->q == NULL) {
		snprintf(err, errlen, "cannot start the job queue");
		goto fail;
	}
	g->port = jobq_port_new(g->q, sp->loop);
	if (g->port == NULL) {
		snprintf(err, errlen, "cannot create the job queue port");
		goto fail;
	}
	g->refs = 1;
	return g;
fail:
	g->refs = 0;
	if (g->q != NULL)
		jobq_stop(g->q);
	if (g->ag_ok)
		agent_free(&g->ag);
	free(g->cfg);
	free(g);
	return NULL;
}

/* Free generation <g> now that nothing refers to it. */
static void
gen_free(struct spoa_gen *g)
{
	jobq_stop(g->q);
	jobq_port_free(g->port);
	agent_free(&g->ag);
	free(g->cfg);
	free(g);
}

static void
gen_free_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	gen_free(w->data);
}

/*
 * Drop one reference to <g> of <sp>; the last one frees it (from a fresh
 * loop iteration while the loop runs).
 */
void
spoa_gen_put(struct spoa *sp, struct spoa_gen *g)
{
	if (g == NULL || --g->refs > 0)
		return;
	/* The last reference may be dropped inside one of this generation's
	 * own job queue callbacks: tear down from a fresh loop iteration. */
	if (sp->loop != NULL && !sp->stopped) {
		ev_timer_init(&g->free_w, gen_free_cb, 0., 0.);
		g->free_w.data = g;
		ev_timer_start(sp->loop, &g->free_w);
		return;
	}
	gen_free(g);
}
