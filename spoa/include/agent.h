/*
 * The agent library context. A process creates one struct agent from its
 * configuration; every thread that calls blocking lookups owns one
 * struct agent_worker (its own LDAP and memcached handles). Nothing in the
 * library is global: every call takes one of these.
 */
#ifndef GH_AGENT_H
#define GH_AGENT_H

#include <stdatomic.h>

#include "cfg-t.h"
#include "cidr.h"
#include "log.h"
#include "metrics-t.h"

struct lcache;   /* in-process route cache */
struct dir;      /* one LDAP connection */
struct mc;       /* one memcached handle */
struct httpsrc;  /* one auth_http client (libcurl easy handle) */

/* Process-wide library state. */
struct agent {
	const struct gh_config *cfg;   /* not owned; must outlive the agent */
	const struct logger *log;      /* not owned */
	struct metrics metrics;
	struct lcache *lcache;         /* owned; NULL when local_ttl is 0 */
	struct cidr_list whitelist;    /* [throttle] whitelist, parsed once */
	_Atomic int mc_down;           /* memcached outage in progress (log once) */
	_Atomic int ldap_down;         /* LDAP outage in progress: the breaker is
	                                  open (uncached lookups fail at once) */
	_Atomic uint64_t ldap_probe_ms;/* while down: monotonic ms from which the
	                                  next probe may call LDAP */
	_Atomic int http_down;         /* the same breaker for the auth_http service */
	_Atomic uint64_t http_probe_ms;
	int curl_ready;                /* libcurl's global init done (undone by agent_free()) */
};

/* Per-thread handles for blocking calls; used by one thread at a time. */
struct agent_worker {
	struct agent *ag;
	struct dir *dir;               /* NULL until first used */
	struct mc *mc;                 /* NULL when no memcached servers */
	struct httpsrc *http;          /* [lookup] source = http; NULL until first used */
	int cache_only;                /* set by the job queue on its fast lane:
	                                  a lookup that needs LDAP stops and says so */
};

/*
 * Note a failed memcached operation in <ag>: counted; the start of an
 * outage is logged and counted once, not per request. Thread-safe.
 */
void agent_mc_trouble(struct agent *ag);

/* Note a working memcached in <ag>: the end of an outage is logged once. */
void agent_mc_fine(struct agent *ag);

/*
 * Note a failed LDAP lookup in <ag> (reason <why>: timed out, unreachable,
 * busy): counted, logged once per outage, and the breaker opens: until a
 * probe finds LDAP answering, lookups that need it fail at once
 * (agent_ldap_admit()). Thread-safe.
 */
void agent_ldap_trouble(struct agent *ag, const char *why);

/* Note a working LDAP in <ag>: the breaker closes; the end of an outage is logged once. */
void agent_ldap_fine(struct agent *ag);

/*
 * Tell whether a lookup may call LDAP now in <ag>: 1 when the breaker is
 * closed, or when it is open and this call is the probe ([ldap]
 * probe_interval after the last failure, one at a time); 0 when the caller
 * must answer a temporary failure at once. A caller given 1 reports the
 * outcome with agent_ldap_fine() or agent_ldap_trouble(). Thread-safe.
 */
int agent_ldap_admit(struct agent *ag);

/*
 * Tell whether LDAP may be called now, like agent_ldap_admit() but
 * without taking the probe: 0 means fail at once. Thread-safe.
 */
int agent_ldap_usable(const struct agent *ag);

/*
 * The same breaker for the auth_http service ([lookup] source = http), with
 * [lookup] probe_interval: note a failure (<why>: no URL answered), note an
 * answer, ask whether a lookup may call it (taking the probe), or whether
 * it may be called without taking the probe. Thread-safe.
 */
void agent_http_trouble(struct agent *ag, const char *why);
void agent_http_fine(struct agent *ag);
int agent_http_admit(struct agent *ag);
int agent_http_usable(const struct agent *ag);

/*
 * Initialise <ag> for configuration <cfg> logging to <lg>. Both must stay
 * valid until agent_free(). Returns 0, or -1 (logged) on failure.
 */
int agent_init(struct agent *ag, const struct gh_config *cfg, const struct logger *lg)
	__attribute__((warn_unused_result));

/* Release what <ag> owns. Workers must have been freed first. */
void agent_free(struct agent *ag);

/*
 * Initialise worker <w> of <ag>: creates its memcached handle; the LDAP
 * connection is opened on first use. Returns 0, or -1 (logged).
 */
int agent_worker_init(struct agent_worker *w, struct agent *ag)
	__attribute__((warn_unused_result));

/* Close <w>'s connections (LDAP, memcached, auth_http) and free its handles. */
void agent_worker_free(struct agent_worker *w);

#endif
