/*
 * The agent library context: process-wide state (configuration, logger,
 * metrics, in-process cache) and per-thread handles for blocking calls.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "dir.h"
#include "lcache.h"
#include "mc.h"
#include "metrics.h"

/*
 * Initialise <ag> for <cfg> logging to <lg>: creates the in-process cache
 * when [memcached] local_ttl is not 0, parses the throttle whitelist once
 * (an entry that does not parse is skipped with a log line; the loader
 * refuses such files) and prepares libldap. Returns 0, or -1 (logged).
 */
int
agent_init(struct agent *ag, const struct gh_config *cfg, const struct logger *lg)
{
	int i;

	memset(ag, 0, sizeof(*ag));
	ag->cfg = cfg;
	ag->log = lg;
	for (i = 0; i < cfg->throttle.whitelist.n; i++) {
		if (cidr_parse(cfg->throttle.whitelist.item[i], &ag->whitelist.item[ag->whitelist.n]) == 0)
			ag->whitelist.n++;
		else
			log_warnx(lg, "throttle: whitelist entry '%s' is not a CIDR: skipped",
			          cfg->throttle.whitelist.item[i]);
	}
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

/* Note a memcached failure: count it; log and count when an outage starts. */
void
agent_mc_trouble(struct agent *ag)
{
	metrics_inc(&ag->metrics, M_DEP_MEMCACHED_ERROR);
	if (atomic_exchange(&ag->mc_down, 1) == 0) {
		metrics_inc(&ag->metrics, M_MEMCACHED_OUTAGES);
		log_warnx(ag->log, "memcached unavailable: login throttling fails open and "
		          "lookups go to LDAP directly until it is back");
	}
}

/* Note a memcached success: log when an outage ends. */
void
agent_mc_fine(struct agent *ag)
{
	if (atomic_load_explicit(&ag->mc_down, memory_order_relaxed) &&
	    atomic_exchange(&ag->mc_down, 0) == 1)
		log_notice(ag->log, "memcached back: login throttling and caches in use again");
}

/* Return the monotonic clock in milliseconds. */
static uint64_t
agent_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Note an LDAP failure with reason <why>: count it; open the breaker (the
 * next probe after probe_interval); log when an outage starts.
 */
void
agent_ldap_trouble(struct agent *ag, const char *why)
{
	metrics_inc(&ag->metrics, M_DEP_LDAP_ERROR);
	/* the probe time first: a thread seeing ldap_down must see it */
	atomic_store(&ag->ldap_probe_ms, agent_now_ms() + ag->cfg->ldap.probe_interval_ms);
	if (atomic_exchange(&ag->ldap_down, 1) == 0)
		log_warnx(ag->log, "LDAP unavailable (%s): only cached answers are given, "
		          "others fail at once until a probe (every %u ms) finds it answering",
		          why, (unsigned)ag->cfg->ldap.probe_interval_ms);
}

/* Note a working LDAP: close the breaker; log when an outage ends. */
void
agent_ldap_fine(struct agent *ag)
{
	if (atomic_load_explicit(&ag->ldap_down, memory_order_relaxed) &&
	    atomic_exchange(&ag->ldap_down, 0) == 1)
		log_notice(ag->log, "LDAP back: lookups complete again");
}

/* Tell whether LDAP may be called now (breaker closed, or a probe is due). */
int
agent_ldap_usable(const struct agent *ag)
{
	return !atomic_load(&ag->ldap_down) || agent_now_ms() >= atomic_load(&ag->ldap_probe_ms);
}

/*
 * Tell whether this lookup may call LDAP: yes while the breaker is closed;
 * while it is open, only the one caller that moves the probe time on.
 */
int
agent_ldap_admit(struct agent *ag)
{
	const struct cfg_ldap *c = &ag->cfg->ldap;
	uint64_t now, at;

	if (!atomic_load(&ag->ldap_down))
		return 1;
	now = agent_now_ms();
	at = atomic_load(&ag->ldap_probe_ms);
	if (now < at)
		return 0;
	/* The probe's own outcome moves the time again; should it never
	 * report one, the next probe comes once the longest lookup (a
	 * timeout per server and one more for the retry) is surely over. */
	return atomic_compare_exchange_strong(&ag->ldap_probe_ms, &at,
	                                      now + (uint64_t)c->timeout_ms * ((uint64_t)c->uri.n + 2) +
	                                      c->probe_interval_ms);
}
