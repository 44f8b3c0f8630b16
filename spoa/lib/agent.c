/*
 * The agent library context: process-wide state (configuration, logger,
 * metrics, in-process cache) and per-thread handles for blocking calls.
 */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "dir.h"
#include "lcache.h"
#include "mc.h"

/*
 * Initialise <ag> for <cfg> logging to <lg>: creates the in-process cache
 * when [memcached] local_ttl is not 0 and prepares libldap. Returns 0, or
 * -1 (logged).
 */
int
agent_init(struct agent *ag, const struct gh_config *cfg, const struct logger *lg)
{
	memset(ag, 0, sizeof(*ag));
	ag->cfg = cfg;
	ag->log = lg;
	if (dir_lib_init() < 0) {
		log_err(lg, "cannot initialise libldap");
		return -1;
	}
	if (cfg->memcached.local_ttl_ms > 0 && cfg->memcached.local_size > 0) {
		ag->lcache = lcache_new(cfg->memcached.local_size);
		if (ag->lcache == NULL) {
			log_err(lg, "cannot allocate the in-process cache (%u entries)",
			        cfg->memcached.local_size);
			return -1;
		}
	}
	return 0;
}

/* Release what <ag> owns. */
void
agent_free(struct agent *ag)
{
	lcache_free(ag->lcache);
	ag->lcache = NULL;
}

/*
 * Initialise worker <w> of <ag>: its memcached handle now, its LDAP
 * connection on first use. Returns 0, or -1 (logged).
 */
int
agent_worker_init(struct agent_worker *w, struct agent *ag)
{
	memset(w, 0, sizeof(*w));
	w->ag = ag;
	if (ag->cfg->memcached.servers.n > 0) {
		w->mc = mc_new(&ag->cfg->memcached, ag->log);
		if (w->mc == NULL)
			return -1;
	}
	return 0;
}

/* Close <w>'s connections and free its handles. */
void
agent_worker_free(struct agent_worker *w)
{
	dir_free(w->dir);
	w->dir = NULL;
	mc_free(w->mc);
	w->mc = NULL;
}
