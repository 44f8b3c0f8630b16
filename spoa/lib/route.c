/*
 * Route lookup: which mailbox server holds an account. The steps, each
 * skipped when an earlier one answered: normalise the key; the in-process
 * cache; memcached ("gh:n:<name>" / "gh:i:<id>" holding "<canonical name>
 * <server name>" or "-" for unknown); the route source ([lookup] source:
 * LDAP, or an auth_http service), whose answer is written back under the
 * name, the canonical name and the id; finally the server table, which
 * alone decides the address: neither an LDAP entry nor an auth_http answer
 * can ever send traffic to a host that is not a configured [server].
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "dir.h"
#include "httpsrc.h"
#include "keys.h"
#include "lcache.h"
#include "mc.h"
#include "metrics.h"
#include "name.h"
#include "parse.h"
#include "route.h"

#define ROUTE_VAL_MAX 512          /* a cache value read from memcached */
#define ROUTE_LKEY_MAX (NAME_MAX_LEN + 3)   /* "n:" + name + NUL */

/* A cached answer: "-" (unknown) or "<canonical> <server>". */
struct route_val {
	int unknown;
	char account[ROUTE_NAME_MAX];
	char server[CFG_NAME_MAX];
};

/*
 * Return the name a login as <key> is throttled under, given lookup result
 * <r>: its canonical account when known, else <key>.
 */
const char *
route_throttle_name(const struct route_result *r)
{
	if ((r->status == ROUTE_OK || r->status == ROUTE_REFUSED) && r->account[0] != '\0')
		return r->account;
	return r->name[0] != '\0' ? r->name : NULL;
}

/* Note in <out> the normalised name <norm> a lookup of <kind> was for. */
static void
route_note_name(struct route_result *out, enum route_kind kind, const char *norm)
{
	size_t n = strlen(norm);

	out->name[0] = '\0';
	if (kind == ROUTE_BY_NAME && n < sizeof(out->name))
		memcpy(out->name, norm, n + 1);
}

/* Return a short name for <s>. */
const char *
route_status_name(enum route_status s)
{
	switch (s) {
	case ROUTE_OK: return "ok";
	case ROUTE_UNKNOWN: return "unknown";
	case ROUTE_REFUSED: return "refused";
	case ROUTE_TEMPFAIL: return "tempfail";
	case ROUTE_ERROR: return "error";
	case ROUTE_UNUSABLE: return "unusable";
	case ROUTE_BUSY: return "busy";
	case ROUTE_DEFER: return "defer";
	}
	return "?";
}

/* Return a short name for <s>. */
const char *
route_source_name(enum route_source s)
{
	switch (s) {
	case ROUTE_SRC_NONE: return "none";
	case ROUTE_SRC_LOCAL: return "local";
	case ROUTE_SRC_MEMCACHED: return "memcached";
	case ROUTE_SRC_LDAP: return "ldap";
	case ROUTE_SRC_HTTP: return "http";
	}
	return "?";
}

/*
 * Parse cache value <s> into <v>. The server name is after the last space
 * (server names have none). Returns 0, or -1 when malformed.
 */
static int
route_val_parse(const char *s, struct route_val *v)
{
	const char *sp;
	size_t an, sn;

	v->unknown = 0;
	if (strcmp(s, "-") == 0) {
		v->unknown = 1;
		v->account[0] = v->server[0] = '\0';
		return 0;
	}
	sp = strrchr(s, ' ');
	if (sp == NULL)
		return -1;
	an = (size_t)(sp - s);
	sn = strlen(sp + 1);
	if (an == 0 || an >= sizeof(v->account) || sn == 0 || sn >= sizeof(v->server))
		return -1;
	memcpy(v->account, s, an);
	v->account[an] = '\0';
	memcpy(v->server, sp + 1, sn + 1);
	return 0;
}

/* Format <v> as a cache value into <buf>. Returns 0 or -1. */
static int
route_val_format(const struct route_val *v, char *buf, size_t len)
{
	int n;

	if (v->unknown)
		n = snprintf(buf, len, "-");
	else
		n = snprintf(buf, len, "%s %s", v->account, v->server);
	return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

/* Build the in-process cache key of <kind> for normalised <norm>. */
static int
route_lkey(char *buf, size_t len, enum route_kind kind, const char *norm)
{
	const char *pfx = kind == ROUTE_BY_ID ? KEYS_ID : KEYS_NAME;
	size_t pn = strlen(pfx), nn = strlen(norm);

	if (pn + nn + 1 > len)
		return -1;
	memcpy(buf, pfx, pn);
	memcpy(buf + pn, norm, nn + 1);
	return 0;
}

/* Empty <out>: its scalars zeroed, its strings "" (no memset of the
 * string buffers: this runs for every request). */
void
route_result_reset(struct route_result *out)
{
	out->status = ROUTE_OK;
	out->source = ROUTE_SRC_NONE;
	out->account[0] = out->name[0] = out->server[0] = '\0';
	memset(&out->addr, 0, sizeof(out->addr));
	out->addrlen = 0;
	out->port = 0;
}

/* Normalise <key> of <kind> into <norm>. Returns 0 or -1. */
static int
route_normalise(struct agent *ag, enum route_kind kind, const char *key, char *norm, size_t len)
{
	/* ids are lower-cased too (UUIDs match case-insensitively) but get no domain */
	return name_normalise(norm, len, key,
	                      kind == ROUTE_BY_NAME ? ag->cfg->ldap.default_domain : NULL) < 0 ? -1 : 0;
}

/*
 * Turn cached or found answer <v> into <out> for <proto>: map the server
 * through the table. <loud> logs a refusal at warning level.
 */
static void
route_resolve(struct agent *ag, const struct route_val *v, enum gh_proto proto,
              struct route_result *out, int loud)
{
	const struct cfg_server *srv;

	if (v->unknown) {
		out->status = ROUTE_UNKNOWN;
		return;
	}
	memcpy(out->account, v->account, strlen(v->account) + 1);
	srv = cfg_server_find(ag->cfg, v->server);
	if (srv == NULL) {
		out->status = ROUTE_REFUSED;
		if (loud)
			log_limited(ag->log, LOG_WARNING, "route-refused",
			            "route: account %s: host '%s' is not a configured server: refused",
			            v->account, v->server);
		return;
	}
	memcpy(out->server, srv->name, strlen(srv->name) + 1);
	if (srv->port[proto] == 0) {
		out->status = ROUTE_REFUSED;
		if (loud)
			log_limited(ag->log, LOG_WARNING, "route-refused",
			            "route: account %s: server %s does not serve %s: refused",
			            v->account, srv->name, cfg_proto_name(proto));
		return;
	}
	memcpy(&out->addr, &srv->addr, srv->addrlen);
	out->addrlen = srv->addrlen;
	out->port = srv->port[proto];
	if (out->addr.ss_family == AF_INET)
		((struct sockaddr_in *)&out->addr)->sin_port = htons(out->port);
	else
		((struct sockaddr_in6 *)&out->addr)->sin6_port = htons(out->port);
	out->status = ROUTE_OK;
}

/* Count the outcome of <out> in <ag>'s metrics. */
static void
route_count(struct agent *ag, const struct route_result *out)
{
	enum metric m;

	switch (out->status) {
	case ROUTE_OK:
		m = out->source == ROUTE_SRC_LOCAL ? M_LOOKUP_LOCAL :
		    out->source == ROUTE_SRC_MEMCACHED ? M_LOOKUP_MEMCACHED :
		    out->source == ROUTE_SRC_HTTP ? M_LOOKUP_HTTP : M_LOOKUP_LDAP;
		break;
	case ROUTE_UNKNOWN: m = M_LOOKUP_UNKNOWN; break;
	case ROUTE_REFUSED: m = M_LOOKUP_REFUSED; break;
	case ROUTE_TEMPFAIL: m = M_LOOKUP_TEMPFAIL; break;
	default: m = M_LOOKUP_ERROR; break;
	}
	metrics_inc(&ag->metrics, m);
}

/* Put <val> under in-process key <lkey> for at most <life_ms> (and local_ttl). */
static void
route_local_put(struct agent *ag, const char *lkey, const char *val, uint64_t life_ms)
{
	uint32_t ttl = ag->cfg->memcached.local_ttl_ms;

	if (ag->lcache == NULL)
		return;
	if (life_ms < ttl)
		ttl = (uint32_t)life_ms;
	if (ttl > 0)
		(void)lcache_put(ag->lcache, lkey, val, ttl);
}

/* Return how long in ms the in-process cache may keep an entry, <unknown> or not. */
static uint64_t
route_local_life(const struct agent *ag, int unknown)
{
	return unknown ? (uint64_t)ag->cfg->memcached.negative_ttl_s * 1000 : UINT64_MAX;
}

/*
 * Store value <val> for <norm> of <kind> in memcached (when <use_mc>) and
 * the in-process cache: a route for [memcached] ttl, an unknown name ("-")
 * for <neg_s> seconds (not 0). Returns 0, or -1 when memcached failed.
 */
static int
route_store(struct agent_worker *w, enum route_kind kind, const char *norm, const char *val,
            uint32_t neg_s, int use_mc)
{
	struct agent *ag = w->ag;
	char key[KEYS_MAX], lkey[ROUTE_LKEY_MAX];
	uint32_t ttl = neg_s ? neg_s : ag->cfg->memcached.ttl_s;
	int rc = 0;

	if (norm[0] == '\0')
		return 0;
	if (route_lkey(lkey, sizeof(lkey), kind, norm) == 0)
		route_local_put(ag, lkey, val, neg_s ? (uint64_t)neg_s * 1000 : UINT64_MAX);
	if (!use_mc || w->mc == NULL || ttl == 0)
		return 0;
	if (keys_make(key, sizeof(key), kind == ROUTE_BY_ID ? KEYS_ID : KEYS_NAME, norm) < 0)
		return 0;
	if (mc_set(w->mc, key, val, ttl) != MC_OK) {
		agent_mc_trouble(ag);
		rc = -1;
	} else {
		agent_mc_fine(ag);
	}
	return rc;
}

/* Tell whether host value <h> can be cached and matched at all. */
static int
route_host_ok(const char *h)
{
	size_t n = strlen(h);

	return n > 0 && n < CFG_NAME_MAX && strchr(h, ' ') == NULL;
}

/*
 * Write answer <val> found for <norm> of <kind> under the key itself, then
 * under the canonical name <name> and the account id <id> ("" = none), so
 * that any of them hits next time.
 */
static void
route_store_found(struct agent_worker *w, enum route_kind kind, const char *norm,
                  const char *name, const char *id, const char *val, int use_mc)
{
	char idnorm[DIR_VAL_MAX];
	uint32_t ttl = 0;   /* a route: [memcached] ttl */

	if (route_store(w, kind, norm, val, ttl, use_mc) < 0)
		use_mc = 0;
	if (kind == ROUTE_BY_ID || strcmp(name, norm) != 0)
		if (route_store(w, ROUTE_BY_NAME, name, val, ttl, use_mc) < 0)
			use_mc = 0;
	if (id[0] != '\0' && name_normalise(idnorm, sizeof(idnorm), id, NULL) > 0 &&
	    (kind != ROUTE_BY_ID || strcmp(idnorm, norm) != 0))
		(void)route_store(w, ROUTE_BY_ID, idnorm, val, ttl, use_mc);
}

/*
 * Look up <norm> of <kind> in LDAP through <w> and write the caches.
 * Fills <v> and returns ROUTE_OK (v->unknown tells unknown), or another
 * status.
 */
static enum route_status
route_from_ldap(struct agent_worker *w, enum route_kind kind, const char *norm, int use_mc,
                struct route_val *v)
{
	struct agent *ag = w->ag;
	struct dir_entry e;
	char val[ROUTE_VAL_MAX];
	enum dir_rc rc;

	if (ag->cfg->ldap.uri.n == 0)
		return ROUTE_TEMPFAIL;
	/* a hung directory is not asked again until a probe finds it back;
	 * a cache-only worker gets here only when LDAP is known down */
	if (w->cache_only || !agent_ldap_admit(ag))
		return ROUTE_TEMPFAIL;
	if (w->dir == NULL) {
		w->dir = dir_new(&ag->cfg->ldap, ag->log);
		if (w->dir == NULL) {
			log_err(ag->log, "route: out of memory");
			return ROUTE_ERROR;
		}
	}
	rc = dir_lookup(w->dir, kind == ROUTE_BY_ID ? DIR_BY_ID : DIR_BY_NAME, norm, &e);
	switch (rc) {
	case DIR_TEMPFAIL:
		agent_ldap_trouble(ag, dir_last_error(w->dir));
		return ROUTE_TEMPFAIL;
	case DIR_ERROR:
		agent_ldap_fine(ag);   /* it answered */
		return ROUTE_ERROR;
	case DIR_UNUSABLE:
		agent_ldap_fine(ag);
		return ROUTE_UNUSABLE;
	case DIR_UNKNOWN:
		agent_ldap_fine(ag);
		v->unknown = 1;
		if (ag->cfg->memcached.negative_ttl_s > 0)
			(void)route_store(w, kind, norm, "-", ag->cfg->memcached.negative_ttl_s, use_mc);
		return ROUTE_OK;
	case DIR_OK:
		break;
	}
	agent_ldap_fine(ag);
	v->unknown = 0;
	if (e.name[0] == '\0') {
		if (kind == ROUTE_BY_ID) {
			log_limited(ag->log, LOG_ERR, "ldap-bad-entry", "route: entry for id %s has no %s",
			            norm, ag->cfg->ldap.name_attr);
			return ROUTE_UNUSABLE;
		}
		memcpy(e.name, norm, strlen(norm) + 1);
	}
	memcpy(v->account, e.name, strlen(e.name) + 1);
	if (!route_host_ok(e.host)) {
		/* not cacheable, and never a configured server: refuse */
		log_limited(ag->log, LOG_WARNING, "route-refused",
		            "route: account %s: host '%s' is not a configured server: refused",
		            e.name, e.host);
		v->server[0] = '\0';
		return ROUTE_REFUSED;
	}
	memcpy(v->server, e.host, strlen(e.host) + 1);
	if (route_val_format(v, val, sizeof(val)) < 0)
		return ROUTE_ERROR;
	/* the key itself, then the canonical name and the id, so any of them hits next time */
	route_store_found(w, kind, norm, e.name, e.id, val, use_mc);
	return ROUTE_OK;
}

/* Tell whether addresses <a> and <b> are the same (ports ignored). */
static int
route_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
		              &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		              &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
	return 0;
}

/*
 * Find the [server] an auth_http answer names: Auth-Server <host> (an
 * address, as nginx requires and Zimbra answers; or a [server] name) with
 * Auth-Port <port> as its port for <proto>. Returns it, or NULL.
 */
static const struct cfg_server *
route_http_server(const struct gh_config *cfg, const char *host, int port, enum gh_proto proto)
{
	struct sockaddr_storage ss;
	socklen_t len;
	const struct cfg_server *srv;
	int i;

	if (parse_addr(host, 1, &ss, &len) < 0) {
		srv = cfg_server_find(cfg, host);
		return srv != NULL && srv->port[proto] == port ? srv : NULL;
	}
	for (i = 0; i < cfg->nservers; i++)
		if (route_same_addr(&cfg->servers[i].addr, &ss) && cfg->servers[i].port[proto] == port)
			return &cfg->servers[i];
	return NULL;
}

/*
 * Ask the auth_http service about <norm> of <kind> for <proto> through <w>,
 * telling it what <cl> knows, and write the caches. A refusal is an
 * unknown name, cached for Auth-Wait seconds (at most negative_ttl; not at
 * all for 0). Fills <v> and returns ROUTE_OK (v->unknown tells unknown),
 * or another status.
 */
static enum route_status
route_from_http(struct agent_worker *w, enum route_kind kind, const char *norm,
                enum gh_proto proto, const struct route_client *cl, int use_mc,
                struct route_val *v)
{
	struct agent *ag = w->ag;
	const struct cfg_server *srv;
	struct httpsrc_ask ask;
	struct authhttp_answer a;
	char val[ROUTE_VAL_MAX], canon[NAME_MAX_LEN + 1];
	uint32_t neg;

	if (ag->cfg->lookup.urls.n == 0 || w->cache_only || !agent_http_admit(ag))
		return ROUTE_TEMPFAIL;
	if (w->http == NULL) {
		w->http = httpsrc_new(&ag->cfg->lookup, ag->log);
		if (w->http == NULL) {
			log_err(ag->log, "route: out of memory");
			return ROUTE_ERROR;
		}
	}
	memset(&ask, 0, sizeof(ask));
	ask.key = norm;
	ask.by_id = kind == ROUTE_BY_ID;
	ask.proto = proto;
	if (cl != NULL) {
		ask.client_ip = cl->ip;
		ask.password = cl->password;
		ask.attempt = cl->attempt;
	}
	switch (httpsrc_lookup(w->http, &ask, &a)) {
	case HTTPSRC_TEMPFAIL:
		agent_http_trouble(ag, httpsrc_last_error(w->http));
		return ROUTE_TEMPFAIL;
	case HTTPSRC_ERROR:
		log_limited(ag->log, LOG_ERR, "auth-http-error", "route: %s",
		            httpsrc_last_error(w->http));
		return ROUTE_ERROR;
	case HTTPSRC_REFUSED:
		agent_http_fine(ag);
		log_debug(ag->log, "auth_http refused %s: '%s' (Auth-Wait %d)", norm, a.status,
		          a.wait_s);
		v->unknown = 1;
		/* a refusal of a login that carried its password may be about the
		 * password: cached, anyone could lock the name out with a wrong one */
		if (ask.password != NULL && ag->cfg->lookup.send_password)
			return ROUTE_OK;
		neg = ag->cfg->memcached.negative_ttl_s;
		if (a.wait_s >= 0 && (uint32_t)a.wait_s < neg)
			neg = (uint32_t)a.wait_s;
		if (neg > 0)
			(void)route_store(w, kind, norm, "-", neg, use_mc);
		return ROUTE_OK;
	case HTTPSRC_ROUTE:
		break;
	}
	agent_http_fine(ag);
	v->unknown = 0;
	/* the canonical name: Zimbra's Auth-User, else the name asked about */
	if (a.user[0] == '\0' ||
	    name_normalise(canon, sizeof(canon), a.user, ag->cfg->ldap.default_domain) < 0)
		memcpy(canon, norm, strlen(norm) + 1);
	if (strlen(canon) >= sizeof(v->account))
		return ROUTE_UNUSABLE;
	memcpy(v->account, canon, strlen(canon) + 1);
	srv = route_http_server(ag->cfg, a.server, a.port, proto);
	if (srv == NULL) {
		/* not cacheable, and never a configured server: refuse */
		log_limited(ag->log, LOG_WARNING, "route-refused",
		            "route: account %s: auth_http answered %s port %d, not a configured "
		            "server's %s port: refused", canon, a.server, a.port,
		            cfg_proto_name(proto));
		v->server[0] = '\0';
		return ROUTE_REFUSED;
	}
	memcpy(v->server, srv->name, strlen(srv->name) + 1);
	if (route_val_format(v, val, sizeof(val)) < 0)
		return ROUTE_ERROR;
	if (kind == ROUTE_BY_ID && a.user[0] == '\0')
		(void)route_store(w, kind, norm, val, 0, use_mc);   /* no name known to cache under */
	else
		route_store_found(w, kind, norm, canon, "", val, use_mc);
	return ROUTE_OK;
}

/* Tell whether <ag>'s route source ([lookup] source) is configured at all. */
static int
route_source_set(const struct agent *ag)
{
	return ag->cfg->lookup.source == LOOKUP_HTTP ? ag->cfg->lookup.urls.n > 0
	                                             : ag->cfg->ldap.uri.n > 0;
}

/* Tell whether <ag>'s route source may be called now (its breaker). */
static int
route_source_usable(const struct agent *ag)
{
	return ag->cfg->lookup.source == LOOKUP_HTTP ? agent_http_usable(ag)
	                                             : agent_ldap_usable(ag);
}

/*
 * Look up <key> of <kind> for <proto> with <w>'s handles, telling the
 * source <cl>. Fills <out>; returns 0 when out->status is ROUTE_OK, -1
 * otherwise.
 */
static int
route_lookup_norm(struct agent_worker *w, enum route_kind kind, const char *norm,
                  enum gh_proto proto, const struct route_client *cl, struct route_result *out);

int
route_lookup(struct agent_worker *w, enum route_kind kind, const char *key,
             enum gh_proto proto, struct route_result *out)
{
	return route_lookup_client(w, kind, key, proto, NULL, out);
}

int
route_lookup_client(struct agent_worker *w, enum route_kind kind, const char *key,
                    enum gh_proto proto, const struct route_client *cl, struct route_result *out)
{
	struct agent *ag = w->ag;
	char norm[NAME_MAX_LEN + 1];
	int rc;

	route_result_reset(out);
	out->status = ROUTE_ERROR;
	if (key == NULL || (int)proto < 0 || proto >= PROTO__COUNT) {
		route_count(ag, out);
		return -1;
	}
	if (route_normalise(ag, kind, key, norm, sizeof(norm)) < 0) {
		/* no account can have this name (or id): unknown, not an error,
		 * so it is answered like any unknown name; not cached */
		out->status = kind == ROUTE_BY_NAME ? ROUTE_UNKNOWN : ROUTE_ERROR;
		route_count(ag, out);
		return -1;
	}
	rc = route_lookup_norm(w, kind, norm, proto, cl, out);
	route_note_name(out, kind, norm);
	return rc;
}

/* route_lookup() for normalised <norm>. */
static int
route_lookup_norm(struct agent_worker *w, enum route_kind kind, const char *norm,
                  enum gh_proto proto, const struct route_client *cl, struct route_result *out)
{
	struct agent *ag = w->ag;
	char mkey[KEYS_MAX], val[ROUTE_VAL_MAX];
	struct route_val v;
	enum route_status st;
	enum mc_rc mrc;
	int use_mc = w->mc != NULL;

	if (route_cached(ag, kind, norm, proto, out))
		return out->status == ROUTE_OK ? 0 : -1;   /* counted there */
	route_result_reset(out);
	if (use_mc && keys_make(mkey, sizeof(mkey), kind == ROUTE_BY_ID ? KEYS_ID : KEYS_NAME,
	                        norm) == 0) {
		mrc = mc_get(w->mc, mkey, val, sizeof(val));
		if (mrc == MC_OK && route_val_parse(val, &v) == 0) {
			char lkey[ROUTE_LKEY_MAX];

			agent_mc_fine(ag);
			if (route_lkey(lkey, sizeof(lkey), kind, norm) == 0)
				route_local_put(ag, lkey, val, route_local_life(ag, v.unknown));
			out->source = ROUTE_SRC_MEMCACHED;
			route_resolve(ag, &v, proto, out, 1);
			route_count(ag, out);
			return out->status == ROUTE_OK ? 0 : -1;
		}
		if (mrc == MC_OK)
			log_debug(ag->log, "ignoring malformed cache value for %s", mkey);
		if (mrc == MC_ERR && mc_failed(w->mc)) {
			agent_mc_trouble(ag);
			use_mc = 0;      /* do not pay for writes either */
		} else if (mrc != MC_ERR) {
			agent_mc_fine(ag);
		}
	}
	if (w->cache_only && route_source_set(ag) && route_source_usable(ag)) {
		/* the caller moves the lookup to a worker that may wait for the source */
		out->status = ROUTE_DEFER;
		return -1;
	}
	if (ag->cfg->lookup.source == LOOKUP_HTTP) {
		out->source = ROUTE_SRC_HTTP;
		st = route_from_http(w, kind, norm, proto, cl, use_mc, &v);
	} else {
		out->source = ROUTE_SRC_LDAP;
		st = route_from_ldap(w, kind, norm, use_mc, &v);
	}
	if (st == ROUTE_OK) {
		route_resolve(ag, &v, proto, out, 1);
	} else {
		out->status = st;
		if (st == ROUTE_REFUSED)
			memcpy(out->account, v.account, strlen(v.account) + 1);
		if (st == ROUTE_TEMPFAIL)
			out->source = ROUTE_SRC_NONE;
	}
	route_count(ag, out);
	return out->status == ROUTE_OK ? 0 : -1;
}

/*
 * Answer <key> of <kind> for <proto> from <ag>'s in-process cache only.
 * Returns 1 and fills <out> on a hit, 0 on a miss.
 */
int
route_cached(struct agent *ag, enum route_kind kind, const char *key, enum gh_proto proto,
             struct route_result *out)
{
	char norm[NAME_MAX_LEN + 1], lkey[ROUTE_LKEY_MAX], val[LCACHE_VAL_MAX];
	struct route_val v;

	if (ag->lcache == NULL || key == NULL || (int)proto < 0 || proto >= PROTO__COUNT)
		return 0;
	if (route_normalise(ag, kind, key, norm, sizeof(norm)) < 0 ||
	    route_lkey(lkey, sizeof(lkey), kind, norm) < 0)
		return 0;
	if (!lcache_get(ag->lcache, lkey, val, sizeof(val)) || route_val_parse(val, &v) < 0)
		return 0;
	route_result_reset(out);
	out->source = ROUTE_SRC_LOCAL;
	route_resolve(ag, &v, proto, out, 0);
	route_note_name(out, kind, norm);
	route_count(ag, out);
	return 1;
}

/* Delete <norm> of <kind> from memcached and the in-process cache; count in <n>. */
static int
route_forget(struct agent_worker *w, enum route_kind kind, const char *norm, int *n)
{
	char key[KEYS_MAX], lkey[ROUTE_LKEY_MAX];
	enum mc_rc rc;

	if (norm[0] == '\0')
		return 0;
	if (w->ag->lcache != NULL && route_lkey(lkey, sizeof(lkey), kind, norm) == 0)
		(void)lcache_del(w->ag->lcache, lkey);
	if (w->mc == NULL)
		return 0;
	if (keys_make(key, sizeof(key), kind == ROUTE_BY_ID ? KEYS_ID : KEYS_NAME, norm) < 0)
		return 0;
	rc = mc_delete(w->mc, key);
	if (rc == MC_OK)
		(*n)++;
	return rc == MC_ERR ? -1 : 0;
}

/* What route_purge() has removed so far. */
struct route_purge {
	struct agent_worker *w;
	char done[4][NAME_MAX_LEN + 1];   /* names already removed (the first few) */
	int ndone;
	int n;                            /* memcached entries deleted */
	int fail;                         /* memcached could not be reached */
};

/* Remove name <norm> (normalised) through <p>, once. */
static void
route_purge_name(struct route_purge *p, const char *norm)
{
	int i;

	if (norm[0] == '\0')
		return;
	for (i = 0; i < p->ndone; i++)
		if (strcmp(p->done[i], norm) == 0)
			return;
	if (p->ndone < (int)(sizeof(p->done) / sizeof(p->done[0])) &&
	    strlen(norm) < sizeof(p->done[0]))
		memcpy(p->done[p->ndone++], norm, strlen(norm) + 1);
	p->fail |= route_forget(p->w, ROUTE_BY_NAME, norm, &p->n);
}

/* Remove alias <alias> of the account (a value from LDAP) through <arg>. */
static void
route_purge_alias(const char *alias, void *arg)
{
	struct route_purge *p = arg;
	char norm[NAME_MAX_LEN + 1];

	/* normalised as a login would be, so that it meets the key a lookup wrote */
	if (route_normalise(p->w->ag, ROUTE_BY_NAME, alias, norm, sizeof(norm)) == 0)
		route_purge_name(p, norm);
}

/*
 * Find the canonical name that the caches hold for name <norm> into <canon>
 * (<len> bytes); "" when neither memcached nor the in-process cache has a
 * positive entry.
 */
static void
route_purge_canon(struct agent_worker *w, const char *norm, char *canon, size_t len)
{
	char mkey[KEYS_MAX], lkey[ROUTE_LKEY_MAX], val[ROUTE_VAL_MAX];
	struct route_val v;
	int found = 0;

	canon[0] = '\0';
	if (w->mc != NULL && keys_make(mkey, sizeof(mkey), KEYS_NAME, norm) == 0 &&
	    mc_get(w->mc, mkey, val, sizeof(val)) == MC_OK)
		found = 1;
	if (!found && w->ag->lcache != NULL &&
	    route_lkey(lkey, sizeof(lkey), ROUTE_BY_NAME, norm) == 0 &&
	    lcache_get(w->ag->lcache, lkey, val, sizeof(val)))
		found = 1;
	if (found && route_val_parse(val, &v) == 0 && !v.unknown && strlen(v.account) < len)
		memcpy(canon, v.account, strlen(v.account) + 1);
}

/*
 * Remove the cached entries for account <name>: every name it is known by
 * (the name given, the canonical name the caches and LDAP hold, every alias
 * LDAP lists in [ldap] alias_attrs) and its id. Returns the number of
 * memcached entries deleted, or -1 when memcached could not be reached.
 */
int
route_purge(struct agent_worker *w, const char *name)
{
	struct agent *ag = w->ag;
	char norm[NAME_MAX_LEN + 1], canon[ROUTE_NAME_MAX], idnorm[DIR_VAL_MAX];
	struct route_purge p;
	struct dir_entry e;
	enum dir_rc drc;

	if (name == NULL || route_normalise(ag, ROUTE_BY_NAME, name, norm, sizeof(norm)) < 0)
		return -1;
	memset(&p, 0, sizeof(p));
	p.w = w;
	idnorm[0] = '\0';
	/* what the cache says the canonical name is, before its entry goes */
	route_purge_canon(w, norm, canon, sizeof(canon));
	/* the name itself, whatever it holds (a route, or "-" for unknown) */
	route_purge_name(&p, norm);
	route_purge_name(&p, canon);
	/* LDAP knows the aliases and the id (and the canonical name, even after a rename) */
	if (ag->cfg->ldap.uri.n > 0) {
		if (w->dir == NULL)
			w->dir = dir_new(&ag->cfg->ldap, ag->log);
		drc = w->dir == NULL ? DIR_ERROR
		    : dir_lookup_aliases(w->dir, norm, &e, route_purge_alias, &p);
		/* an alias the directory no longer has: the account the cache named */
		if (drc == DIR_UNKNOWN && canon[0] != '\0' && strcmp(canon, norm) != 0)
			drc = dir_lookup_aliases(w->dir, canon, &e, route_purge_alias, &p);
		if (drc == DIR_OK) {
			route_purge_name(&p, e.name);
			if (e.id[0] != '\0' && name_normalise(idnorm, sizeof(idnorm), e.id, NULL) < 0)
				idnorm[0] = '\0';
		} else if (drc != DIR_UNKNOWN) {
			log_warnx(ag->log, "purge: %s: LDAP lookup failed (%s): its aliases and "
			          "account id may stay cached until they expire", norm,
			          w->dir ? dir_last_error(w->dir) : "out of memory");
		}
	}
	p.fail |= route_forget(w, ROUTE_BY_ID, idnorm, &p.n);
	if (p.fail) {
		agent_mc_trouble(ag);
		return -1;
	}
	return p.n;
}
