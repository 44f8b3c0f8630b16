/*
 * The agent library context: process-wide state (configuration, logger,
 * metrics, in-process cache) and per-thread handles for blocking calls.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "dir.h"
#include "httpsrc.h"
#include "lcache.h"
#include "mc.h"
#include "metrics.h"

/*
 * Initialise <ag> for <cfg> logging to <lg>: creates the in-process cache
 * when [memcached] local_ttl is not 0, parses the throttle whitelist once
 * (an entry that does not parse is skipped with a log line; the loader
 * refuses such files) and prepares libldap and libcurl. Returns 0, or -1
 * (logged).
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
	/* libcurl's global state (its TLS library, sockets) is the one piece of
	 * process-wide state the library sets up outside struct agent: libcurl
	 * requires it before any thread creates an easy handle, and counts the
	 * calls, so every agent_init() is paired with the cleanup in agent_free() */
	if (httpsrc_lib_init() < 0) {
		log_err(lg, "cannot initialise libcurl");
		return -1;
	}
	ag->curl_ready = 1;
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
	if (ag->curl_ready)
		httpsrc_lib_free();
	ag->curl_ready = 0;
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
	httpsrc_free(w->http);
	w->http = NULL;
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
 * Open the breaker <down>/<probe> (next probe <interval_ms> from now).
 * Returns 1 when it was closed: an outage starts.
 */
static int
agent_breaker_open(_Atomic int *down, _Atomic uint64_t *probe, uint32_t interval_ms)
{
	/* the probe time first: a thread seeing <down> must see it */
	atomic_store(probe, agent_now_ms() + interval_ms);
	return atomic_exchange(down, 1) == 0;
}

/* Close the breaker <down>. Returns 1 when it was open: an outage ends. */
static int
agent_breaker_close(_Atomic int *down)
{
	return atomic_load_explicit(down, memory_order_relaxed) && atomic_exchange(down, 0) == 1;
}

/* Tell whether the breaker <down>/<probe> lets a call through now. */
static int
agent_breaker_usable(const _Atomic int *down, const _Atomic uint64_t *probe)
{
	return !atomic_load(down) || agent_now_ms() >= atomic_load(probe);
}

/*
 * Tell whether this call may go through the breaker <down>/<probe>: yes
 * while closed; while open, only the one caller that moves the probe time
 * on, to <hold_ms> from now (should the probe never report, the next one
 * comes once the longest lookup is surely over).
 */
static int
agent_breaker_admit(_Atomic int *down, _Atomic uint64_t *probe, uint64_t hold_ms)
{
	uint64_t now, at;

	if (!atomic_load(down))
		return 1;
	now = agent_now_ms();
	at = atomic_load(probe);
	if (now < at)
		return 0;
	return atomic_compare_exchange_strong(probe, &at, now + hold_ms);
}

/*
 * Note an LDAP failure with reason <why>: count it; open the breaker (the
 * next probe after probe_interval); log when an outage starts.
 */
void
agent_ldap_trouble(struct agent *ag, const char *why)
{
	metrics_inc(&ag->metrics, M_DEP_LDAP_ERROR);
	if (agent_breaker_open(&ag->ldap_down, &ag->ldap_probe_ms, ag->cfg->ldap.probe_interval_ms))
		log_warnx(ag->log, "LDAP unavailable (%s): only cached answers are given, "
		          "others fail at once until a probe (every %u ms) finds it answering",
		          why, (unsigned)ag->cfg->ldap.probe_interval_ms);
}

/* Note a working LDAP: close the breaker; log when an outage ends. */
void
agent_ldap_fine(struct agent *ag)
{
	if (agent_breaker_close(&ag->ldap_down))
		log_notice(ag->log, "LDAP back: lookups complete again");
}

/* Tell whether LDAP may be called now (breaker closed, or a probe is due). */
int
agent_ldap_usable(const struct agent *ag)
{
	return agent_breaker_usable(&ag->ldap_down, &ag->ldap_probe_ms);
}

/*
 * Tell whether this lookup may call LDAP: yes while the breaker is closed;
 * while it is open, only the one caller that moves the probe time on.
 */
int
agent_ldap_admit(struct agent *ag)
{
	const struct cfg_ldap *c = &ag->cfg->ldap;

	/* a timeout per server and one more for the retry */
	return agent_breaker_admit(&ag->ldap_down, &ag->ldap_probe_ms,
	                           (uint64_t)c->timeout_ms * ((uint64_t)c->uri.n + 2) +
	                           c->probe_interval_ms);
}

/* Note an auth_http failure with reason <why>; see agent_ldap_trouble(). */
void
agent_http_trouble(struct agent *ag, const char *why)
{
	metrics_inc(&ag->metrics, M_DEP_HTTP_ERROR);
	if (agent_breaker_open(&ag->http_down, &ag->http_probe_ms, ag->cfg->lookup.probe_interval_ms))
		log_warnx(ag->log, "auth_http lookup service unavailable (%s): only cached answers "
		          "are given, others fail at once until a probe (every %u ms) finds it "
		          "answering", why, (unsigned)ag->cfg->lookup.probe_interval_ms);
}

/* Note an answering auth_http service; see agent_ldap_fine(). */
void
agent_http_fine(struct agent *ag)
{
	if (agent_breaker_close(&ag->http_down))
		log_notice(ag->log, "auth_http lookup service back: lookups complete again");
}

/* Tell whether the auth_http service may be called now. */
int
agent_http_usable(const struct agent *ag)
{
	return agent_breaker_usable(&ag->http_down, &ag->http_probe_ms);
}

/* Tell whether this lookup may call the auth_http service (taking the probe). */
int
agent_http_admit(struct agent *ag)
{
	const struct cfg_lookup *c = &ag->cfg->lookup;

	/* a timeout per URL, and one more */
	return agent_breaker_admit(&ag->http_down, &ag->http_probe_ms,
	                           (uint64_t)c->timeout_ms * ((uint64_t)c->urls.n + 1) +
	                           c->probe_interval_ms);
}
