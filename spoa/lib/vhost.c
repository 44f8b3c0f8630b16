/*
 * Virtual host checks: the configured list first, then (when [ldap]
 * vhost_filter is set) the in-process cache, memcached and LDAP. A cached
 * answer is "1" (allowed) or "0" (refused); refusals live for the negative
 * TTL so that a name added in LDAP is seen soon.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dir.h"
#include "keys.h"
#include "lcache.h"
#include "mc.h"
#include "metrics.h"
#include "vhost.h"

/* Tell whether <c> may appear in a host name or an IP literal. */
static int
host_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
	       c == '_' || c == ':' || c == '[' || c == ']';
}

/* Tell whether <s> is a decimal port (0 to 65535). */
static int
port_ok(const char *s)
{
	size_t n = strspn(s, "0123456789"), i;
	unsigned long v = 0;

	if (n < 1 || n > 5 || s[n] != '\0')
		return 0;
	for (i = 0; i < n; i++)
		v = v * 10 + (unsigned long)(s[i] - '0');
	return v <= 65535;
}

/*
 * Normalise Host value <host> into <out>: port removed, lower case,
 * trailing dot dropped. Returns the length, or -1 on a bad name.
 */
int
vhost_normalise(char *out, size_t outlen, const char *host)
{
	size_t n = 0, i;
	const char *end;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	if (host == NULL || host[0] == '\0')
		return -1;
	if (host[0] == '[') {
		/* IPv6 literal: keep the brackets, the port may follow */
		if ((end = strchr(host, ']')) == NULL)
			return -1;
		if (end[1] != '\0' && (end[1] != ':' || !port_ok(end + 2)))
			return -1;
		n = (size_t)(end - host) + 1;
	} else if ((end = strchr(host, ':')) != NULL) {
		if (!port_ok(end + 1))
			return -1;
		n = (size_t)(end - host);
	} else {
		n = strlen(host);
	}
	if (n > 0 && host[n - 1] == '.')
		n--;
	if (n == 0 || n >= outlen || n >= VHOST_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)host[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + ('a' - 'A'));
		if (!host_char(c) || ((c == ':' || c == '[' || c == ']') && host[0] != '[')) {
			out[0] = '\0';
			return -1;
		}
		out[i] = (char)c;
	}
	out[n] = '\0';
	/* no empty label: ".x", "x..y", "x.." */
	if (host[0] != '[' && (out[0] == '.' || out[n - 1] == '.' || strstr(out, "..") != NULL)) {
		out[0] = '\0';
		return -1;
	}
	return (int)n;
}

/* Tell whether normalised <h> is in list <l> (exact or "*.domain"). */
int
vhost_in_list(const struct cfg_list *l, const char *h)
{
	size_t n = strlen(h);
	int i;

	for (i = 0; i < l->n; i++) {
		const char *v = l->item[i];

		if (v[0] == '*' && v[1] == '.') {
			size_t vl = strlen(v + 1);   /* ".domain" */

			if (n > vl && strcasecmp(h + n - vl, v + 1) == 0)
				return 1;
		} else if (strcasecmp(h, v) == 0) {
			return 1;
		}
	}
	return 0;
}

/* Count and return <rc>. */
static enum vhost_rc
vhost_done(struct agent *ag, enum vhost_rc rc)
{
	metrics_inc(&ag->metrics, rc == VHOST_ALLOWED ? M_VHOST_ALLOWED
	                          : rc == VHOST_REFUSED ? M_VHOST_REFUSED : M_VHOST_TEMPFAIL);
	return rc;
}

/* Decide <h> (normalised) from the list and the in-process cache. */
static enum vhost_rc
vhost_local(struct agent *ag, const char *h)
{
	char lkey[VHOST_MAX + 8], val[8];

	if (vhost_in_list(&ag->cfg->spoa.vhosts, h))
		return VHOST_ALLOWED;
	if (ag->cfg->ldap.vhost_filter[0] == '\0')
		return VHOST_REFUSED;
	snprintf(lkey, sizeof(lkey), "%s%s", KEYS_VHOST, h);
	if (ag->lcache != NULL && lcache_get(ag->lcache, lkey, val, sizeof(val)))
		return val[0] == '1' ? VHOST_ALLOWED : VHOST_REFUSED;
	return VHOST_UNDECIDED;
}

/* Decide Host <host> without blocking. */
enum vhost_rc
vhost_cached(struct agent *ag, const char *host)
{
	char h[VHOST_MAX];
	enum vhost_rc rc;

	if (vhost_normalise(h, sizeof(h), host) < 0)
		return vhost_done(ag, VHOST_REFUSED);
	rc = vhost_local(ag, h);
	return rc == VHOST_UNDECIDED ? rc : vhost_done(ag, rc);
}

/* Remember answer <ok> for <h> in the in-process cache and memcached. */
static void
vhost_store(struct agent_worker *w, const char *h, int ok, int use_mc)
{
	struct agent *ag = w->ag;
	const struct cfg_memcached *mc = &ag->cfg->memcached;
	char lkey[VHOST_MAX + 8], key[KEYS_MAX];
	uint32_t local = mc->local_ttl_ms, ttl = ok ? mc->ttl_s : mc->negative_ttl_s;

	if (!ok && (uint64_t)mc->negative_ttl_s * 1000 < local)
		local = mc->negative_ttl_s * 1000;
	snprintf(lkey, sizeof(lkey), "%s%s", KEYS_VHOST, h);
	if (ag->lcache != NULL && local > 0)
		(void)lcache_put(ag->lcache, lkey, ok ? "1" : "0", local);
	if (!use_mc || ttl == 0 || keys_make(key, sizeof(key), KEYS_VHOST, h) < 0)
		return;
	if (mc_set(w->mc, key, ok ? "1" : "0", ttl) != MC_OK)
		agent_mc_trouble(ag);
	else
		agent_mc_fine(ag);
}

/* Decide Host <host> through the caches and LDAP. */
enum vhost_rc
vhost_check(struct agent_worker *w, const char *host)
{
	struct agent *ag = w->ag;
	char h[VHOST_MAX], key[KEYS_MAX], val[8];
	struct dir_entry e;
	enum vhost_rc rc;
	enum dir_rc drc;
	int use_mc = w->mc != NULL;

	if (vhost_normalise(h, sizeof(h), host) < 0)
		return vhost_done(ag, VHOST_REFUSED);
	if ((rc = vhost_local(ag, h)) != VHOST_UNDECIDED)
		return vhost_done(ag, rc);
	if (use_mc && keys_make(key, sizeof(key), KEYS_VHOST, h) == 0) {
		enum mc_rc mrc = mc_get(w->mc, key, val, sizeof(val));

		if (mrc == MC_ERR && mc_failed(w->mc)) {
			agent_mc_trouble(ag);
			use_mc = 0;      /* do not pay for the write either */
		} else if (mrc != MC_ERR) {
			agent_mc_fine(ag);
		}
		if (mrc == MC_OK && (val[0] == '1' || val[0] == '0') && val[1] == '\0') {
			vhost_store(w, h, val[0] == '1', 0);
			return vhost_done(ag, val[0] == '1' ? VHOST_ALLOWED : VHOST_REFUSED);
		}
	}
	if (ag->cfg->ldap.uri.n == 0)
		return vhost_done(ag, VHOST_TEMPFAIL);
	if (w->cache_only && agent_ldap_usable(ag))
		return VHOST_UNDECIDED;   /* the caller asks again where LDAP may be called */
	if (w->cache_only || !agent_ldap_admit(ag))
		return vhost_done(ag, VHOST_TEMPFAIL);   /* known down: fail open at once */
	if (w->dir == NULL && (w->dir = dir_new(&ag->cfg->ldap, ag->log)) == NULL)
		return vhost_done(ag, VHOST_TEMPFAIL);
	drc = dir_lookup(w->dir, DIR_BY_VHOST, h, &e);
	if (drc == DIR_OK || drc == DIR_UNKNOWN) {
		agent_ldap_fine(ag);
		vhost_store(w, h, drc == DIR_OK, use_mc);
		return vhost_done(ag, drc == DIR_OK ? VHOST_ALLOWED : VHOST_REFUSED);
	}
	/* DIR_ERROR was logged by dir_lookup() */
	if (drc == DIR_TEMPFAIL)
		agent_ldap_trouble(ag, dir_last_error(w->dir));
	else
		agent_ldap_fine(ag);   /* it answered (refusing the filter or base) */
	return vhost_done(ag, VHOST_TEMPFAIL);
}

/* Return a short name for <rc>. */
const char *
vhost_rc_name(enum vhost_rc rc)
{
	switch (rc) {
	case VHOST_REFUSED: return "refused";
	case VHOST_ALLOWED: return "allowed";
	case VHOST_TEMPFAIL: return "tempfail";
	case VHOST_UNDECIDED: return "undecided";
	}
	return "?";
}
