/*
 * Virtual host names: is the Host a client asked for one this site
 * serves? The allowed names come from [spoa] vhosts (exact names and
 * "*.domain" wildcards) and, when [ldap] vhost_filter is set, from LDAP
 * (any entry matching the filter allows the name; Zimbra keeps them in
 * zimbraVirtualHostname). LDAP answers are cached in memcached
 * ("gh:v:<host>") and in the in-process cache like routes.
 */
#ifndef GH_VHOST_H
#define GH_VHOST_H

#include <stddef.h>

#include "agent.h"
#include "cfg-t.h"

#define VHOST_MAX 256    /* longest host name kept, bytes incl. NUL */

/* What a check found. */
enum vhost_rc {
	VHOST_REFUSED = 0,   /* not an allowed virtual host */
	VHOST_ALLOWED = 1,
	VHOST_TEMPFAIL = 2,  /* LDAP needed but unreachable: callers allow, it is counted */
	VHOST_UNDECIDED = 3, /* vhost_cached(), or vhost_check() on a cache-only
	                        worker: a worker that may call LDAP must ask */
};

/*
 * Normalise a Host header value <host> into <out> (<outlen> bytes): the
 * port removed (not from inside a bracketed IPv6 literal), lower case, a
 * trailing dot dropped. Returns the length, or -1 when empty, too long or
 * holding bytes no host name has.
 */
int vhost_normalise(char *out, size_t outlen, const char *host)
	__attribute__((warn_unused_result));

/*
 * Tell whether normalised host <h> is in list <l> of exact names and
 * "*.domain" wildcards (a wildcard needs at least one more label).
 * Returns 1 or 0.
 */
int vhost_in_list(const struct cfg_list *l, const char *h);

/*
 * Decide Host <host> without blocking: from the configured list, then the
 * in-process cache. Safe on an event loop. Returns VHOST_ALLOWED,
 * VHOST_REFUSED, or VHOST_UNDECIDED when vhost_check() must ask LDAP.
 */
enum vhost_rc vhost_cached(struct agent *ag, const char *host);

/*
 * Decide Host <host>: the configured list, the in-process cache,
 * memcached, then LDAP ([ldap] vhost_filter), writing the caches.
 * Blocking: call on a worker thread. While LDAP is known to be down
 * (agent_ldap_admit()) the answer is VHOST_TEMPFAIL at once; on a
 * cache-only worker (w->cache_only) a check that needs LDAP returns
 * VHOST_UNDECIDED, not counted. Returns VHOST_ALLOWED, VHOST_REFUSED,
 * VHOST_TEMPFAIL or VHOST_UNDECIDED.
 */
enum vhost_rc vhost_check(struct agent_worker *w, const char *host);

/* Return a short name for <rc> ("allowed", "refused", ...). */
const char *vhost_rc_name(enum vhost_rc rc);

#endif
