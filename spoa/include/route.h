/*
 * Route lookup: in-process cache, then memcached, then LDAP, then the
 * server table. See DESIGN.md "Route lookup" for the steps and cache keys.
 */
#ifndef GH_ROUTE_H
#define GH_ROUTE_H

#include "agent.h"
#include "route-t.h"

/*
 * Look up <key> of <kind> for protocol <proto> using worker <w>'s handles.
 * Blocking (memcached, LDAP or the auth_http service): call it on a worker
 * thread, never on an event loop. When the answer needs the route source
 * ([lookup] source): a temporary failure at once while it is known to be
 * down (agent_ldap_admit(), agent_http_admit()), ROUTE_DEFER when
 * w->cache_only is set. Always fills <out> (status and source); returns 0
 * when out->status is ROUTE_OK, -1 otherwise.
 */
int route_lookup(struct agent_worker *w, enum route_kind kind, const char *key,
                 enum gh_proto proto, struct route_result *out);

/*
 * Do what route_lookup() does, telling the route source what <cl> (NULL:
 * nothing) knows of the login: the auth_http service gets its address,
 * attempt number and, when [lookup] allows, its password.
 */
/* Empty <out> (status OK, no source, every string ""), cheaply. */
void route_result_reset(struct route_result *out);

int route_lookup_client(struct agent_worker *w, enum route_kind kind, const char *key,
                        enum gh_proto proto, const struct route_client *cl,
                        struct route_result *out);

/*
 * Answer <key> from the in-process cache of <ag> only. Never blocks on the
 * network: safe on an event loop. Returns 1 and fills <out> (status OK,
 * UNKNOWN or REFUSED) on a hit, 0 on a miss.
 */
int route_cached(struct agent *ag, enum route_kind kind, const char *key,
                 enum gh_proto proto, struct route_result *out);

/*
 * Remove every cached entry for the account known as <name> (a login name
 * or an alias) from memcached and the in-process cache: the name itself
 * (also an "unknown" entry), the canonical name found in the caches and in
 * LDAP, every alias LDAP lists in [ldap] alias_attrs, and the account id.
 * Blocking. Returns the number of memcached entries deleted, or -1 when
 * memcached could not be reached.
 */
int route_purge(struct agent_worker *w, const char *name);

/*
 * Return the name under which the throttle counts a login whose lookup gave
 * <r>: the canonical account when the lookup found one (so aliases share
 * one budget), else the normalised name that was looked up, so that a name
 * that is not an account is counted exactly like one that is (no existence
 * oracle). NULL when no account can have the name (nothing to count).
 */
const char *route_throttle_name(const struct route_result *r);

/* Return a short name for <s> ("ok", "unknown", ...). */
const char *route_status_name(enum route_status s);

/* Return a short name for <s> ("local", "memcached", "ldap", "http", "none"). */
const char *route_source_name(enum route_source s);

#endif
