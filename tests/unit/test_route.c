/*
 * Unit tests for route lookup without any network: answers planted in the
 * in-process cache are mapped through the server table (refusing hosts
 * that are not configured and protocols a server does not serve), bad keys
 * are errors, an uncached name without LDAP is a temporary failure, a
 * cache-only worker hands lookups that need LDAP back (ROUTE_DEFER), a
 * lookup while LDAP is known down fails at once without asking it, and
 * purge clears the in-process entries (by an alias: the canonical name's too).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "agent.h"
#include "cfg.h"
#include "lcache.h"
#include "metrics.h"
#include "parse.h"
#include "route.h"

/* One agent with its configuration and one worker. */
struct fx {
	struct gh_config *cfg;
	struct logger lg;
	struct agent ag;
	struct agent_worker w;
};

static void
add_server(struct gh_config *c, const char *name, const char *addr, enum gh_proto p,
           uint16_t port)
{
	struct cfg_server *s = &c->servers[c->nservers++];

	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->address, sizeof(s->address), "%s", addr);
	assert_int_equal(parse_addr(addr, 1, &s->addr, &s->addrlen), 0);
	s->port[p] = port;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->cfg = cfg_new();
	assert_non_null(f->cfg);
	snprintf(f->cfg->ldap.default_domain, sizeof(f->cfg->ldap.default_domain), "example.com");
	add_server(f->cfg, "mbox1", "127.0.0.1", PROTO_IMAP, 7143);
	add_server(f->cfg, "mbox3", "::1", PROTO_IMAP, 7343);
	f->cfg->servers[1].port[PROTO_HTTP] = 8080;
	assert_int_equal(log_init(&f->lg, "test", "stderr", "err", NULL), 0);
	assert_int_equal(agent_init(&f->ag, f->cfg, &f->lg), 0);
	assert_non_null(f->ag.lcache);
	assert_int_equal(agent_worker_init(&f->w, &f->ag), 0);
	assert_null(f->w.mc);   /* no memcached servers configured */
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	agent_worker_free(&f->w);
	agent_free(&f->ag);
	free(f->cfg);
	free(f);
	return 0;
}

static void
plant(struct fx *f, const char *lkey, const char *val)
{
	assert_int_equal(lcache_put(f->ag.lcache, lkey, val, 60000), 0);
}

static void
test_cached_ok(void **state)
{
	struct fx *f = *state;
	struct route_result r;
	char buf[64];

	plant(f, "n:alice@example.com", "alice@example.com mbox1");
	assert_int_equal(route_cached(&f->ag, ROUTE_BY_NAME, " ALICE@Example.COM ", PROTO_IMAP, &r), 1);
	assert_int_equal(r.status, ROUTE_OK);
	assert_int_equal(r.source, ROUTE_SRC_LOCAL);
	assert_string_equal(r.account, "alice@example.com");
	assert_string_equal(r.server, "mbox1");
	assert_int_equal(r.port, 7143);
	assert_string_equal(parse_addr_str((struct sockaddr *)&r.addr, 1, buf, sizeof(buf)),
	                    "127.0.0.1:7143");
	/* the default domain is added before the cache is asked */
	assert_int_equal(route_cached(&f->ag, ROUTE_BY_NAME, "Alice", PROTO_IMAP, &r), 1);
	assert_int_equal(r.status, ROUTE_OK);
	/* by id, and an IPv6 server */
	plant(f, "i:0f1e-aa", "carol@example.org MBOX3");
	assert_int_equal(route_cached(&f->ag, ROUTE_BY_ID, "0F1E-AA", PROTO_HTTP, &r), 1);
	assert_int_equal(r.status, ROUTE_OK);
	assert_string_equal(r.server, "mbox3");
	assert_string_equal(parse_addr_str((struct sockaddr *)&r.addr, 1, buf, sizeof(buf)),
	                    "[::1]:8080");
	assert_int_equal(metrics_get(&f->ag.metrics, M_LOOKUP_LOCAL), 3);
	/* route_lookup answers from the same cache */
	assert_int_equal(route_lookup(&f->w, ROUTE_BY_NAME, "alice@example.com", PROTO_IMAP, &r), 0);
	assert_int_equal(r.source, ROUTE_SRC_LOCAL);
}

static void
test_cached_refused(void **state)
{
	struct fx *f = *state;
	struct route_result r;

	/* a host that is not a configured server is never used */
	plant(f, "n:mallory@example.com", "mallory@example.com evil.example.net");
	assert_int_equal(route_cached(&f->ag, ROUTE_BY_NAME, "mallory@example.com", PROTO_IMAP, &r), 1);
	assert_int_equal(r.status, ROUTE_REFUSED);
	assert_int_equal(r.addrlen, 0);
	assert_int_equal(r.port, 0);
	/* a server that does not serve the protocol */
	plant(f, "n:alice@example.com", "alice@example.com mbox1");
	assert_int_equal(route_cached(&f->ag, ROUTE_BY_NAME, "alice@example.com", PROTO_POP3, &r), 1);
	assert_int_equal(r.status, ROUTE_REFUSED);
	assert_string_equal(r.server, "mbox1");
	assert_int_equal(r.port, 0);
	assert_int_equal(route_lookup(&f->w, ROUTE_BY_NAME, "alice@example.com", PROTO_POP3, &r), -1);
	assert_int_equal(r.status, ROUTE_REFUSED);
	assert_int_equal(metrics_get(&f->ag.metrics, M_LOOKUP_REFUSED), 3);
}

static void
test_cached_unknown_and_garbage(void **state)
{
	struct fx *f = *state;
	struct route_result r;

	plant(f, "n:nobody@example.com", "-");
	assert_int_equal(route_cached(&f->ag, ROUTE_BY_NAME, "nobody", PROTO_IMAP, &r), 1);
	assert_int_equal(r.status, ROUTE_UNKNOWN);
	assert_int_equal(metrics_get(&f->ag.metrics, M_LOOKUP_UNKNOWN), 1);
	/* malformed values are misses, never answers */
	plant(f, "n:g1@example.com", "no-space-here");
	plant(f, "n:g2@example.com", " mbox1");
	plant(f, "n:g3@example.com", "g3@example.com ");
	assert_int_equal(route_cached(&f->ag, ROUTE_BY_NAME, "g1@example.com", PROTO_IMAP, &r), 0);
	assert_int_equal(route_cached(&f->ag, ROUTE_BY_NAME, "g2@example.com", PROTO_IMAP, &r), 0);
	assert_int_equal(route_cached(&f->ag, ROUTE_BY_NAME, "g3@example.com", PROTO_IMAP, &r), 0);
	assert_int_equal(route_cached(&f->ag, ROUTE_BY_NAME, "absent@example.com", PROTO_IMAP, &r), 0);
}

static void
test_bad_input(void **state)
{
	struct fx *f = *state;
	struct route_result r;

	/* names no account can have are unknown, answered like any unknown name */
	assert_int_equal(route_lookup(&f->w, ROUTE_BY_NAME, "", PROTO_IMAP, &r), -1);
	assert_int_equal(r.status, ROUTE_UNKNOWN);
	assert_int_equal(route_lookup(&f->w, ROUTE_BY_NAME, "a\r\nb", PROTO_IMAP, &r), -1);
	assert_int_equal(r.status, ROUTE_UNKNOWN);
	/* an id that cannot be one, no key, no protocol: errors */
	assert_int_equal(route_lookup(&f->w, ROUTE_BY_ID, "a\r\nb", PROTO_IMAP, &r), -1);
	assert_int_equal(r.status, ROUTE_ERROR);
	assert_int_equal(route_lookup(&f->w, ROUTE_BY_NAME, NULL, PROTO_IMAP, &r), -1);
	assert_int_equal(r.status, ROUTE_ERROR);
	assert_int_equal(route_lookup(&f->w, ROUTE_BY_NAME, "a@b", PROTO__COUNT, &r), -1);
	assert_int_equal(r.status, ROUTE_ERROR);
	assert_int_equal(route_cached(&f->ag, ROUTE_BY_NAME, "", PROTO_IMAP, &r), 0);
	assert_int_equal(metrics_get(&f->ag.metrics, M_LOOKUP_ERROR), 3);
	assert_int_equal(metrics_get(&f->ag.metrics, M_LOOKUP_UNKNOWN), 2);
}

static void
test_no_backends_tempfail(void **state)
{
	struct fx *f = *state;
	struct route_result r;

	/* no memcached, no LDAP: an uncached name is a temporary failure, not unknown */
	assert_int_equal(route_lookup(&f->w, ROUTE_BY_NAME, "bob@example.com", PROTO_IMAP, &r), -1);
	assert_int_equal(r.status, ROUTE_TEMPFAIL);
	assert_int_equal(r.source, ROUTE_SRC_NONE);
	assert_int_equal(metrics_get(&f->ag.metrics, M_LOOKUP_TEMPFAIL), 1);
	/* and nothing negative was cached */
	assert_int_equal(route_cached(&f->ag, ROUTE_BY_NAME, "bob@example.com", PROTO_IMAP, &r), 0);
}

/* Sum of every lookup outcome counted in <ag>. */
static uint64_t
lookups_counted(struct agent *ag)
{
	return metrics_get(&ag->metrics, M_LOOKUP_LOCAL) + metrics_get(&ag->metrics, M_LOOKUP_MEMCACHED) +
	       metrics_get(&ag->metrics, M_LOOKUP_LDAP) + metrics_get(&ag->metrics, M_LOOKUP_UNKNOWN) +
	       metrics_get(&ag->metrics, M_LOOKUP_REFUSED) + metrics_get(&ag->metrics, M_LOOKUP_TEMPFAIL) +
	       metrics_get(&ag->metrics, M_LOOKUP_ERROR);
}

/* Give <f> an LDAP server (never contacted by these tests). */
static void
with_ldap(struct fx *f)
{
	f->cfg->ldap.uri.n = 1;
	snprintf(f->cfg->ldap.uri.item[0], sizeof(f->cfg->ldap.uri.item[0]), "ldap://127.0.0.1:1");
}

static void
test_cache_only_defers_ldap(void **state)
{
	struct fx *f = *state;
	struct route_result r;

	with_ldap(f);
	f->w.cache_only = 1;
	/* a cache answer is given on a cache-only worker */
	plant(f, "n:alice@example.com", "alice@example.com mbox1");
	assert_int_equal(route_lookup(&f->w, ROUTE_BY_NAME, "alice", PROTO_IMAP, &r), 0);
	assert_int_equal(r.source, ROUTE_SRC_LOCAL);
	/* one that needs LDAP is handed back, not counted, LDAP untouched */
	assert_int_equal(route_lookup(&f->w, ROUTE_BY_NAME, "bob", PROTO_IMAP, &r), -1);
	assert_int_equal(r.status, ROUTE_DEFER);
	assert_string_equal(route_status_name(r.status), "defer");
	assert_null(f->w.dir);
	assert_int_equal(lookups_counted(&f->ag), 1);
}

static void
test_ldap_down_fails_fast(void **state)
{
	struct fx *f = *state;
	struct route_result r;

	with_ldap(f);
	f->cfg->ldap.probe_interval_ms = 600000;
	agent_ldap_trouble(&f->ag, "timed out");
	/* LDAP known down: a temporary failure at once, LDAP never asked */
	assert_int_equal(route_lookup(&f->w, ROUTE_BY_NAME, "bob", PROTO_IMAP, &r), -1);
	assert_int_equal(r.status, ROUTE_TEMPFAIL);
	assert_int_equal(r.source, ROUTE_SRC_NONE);
	assert_null(f->w.dir);
	/* the same on a cache-only worker: nothing to defer to */
	f->w.cache_only = 1;
	assert_int_equal(route_lookup(&f->w, ROUTE_BY_NAME, "bob", PROTO_IMAP, &r), -1);
	assert_int_equal(r.status, ROUTE_TEMPFAIL);
	assert_int_equal(metrics_get(&f->ag.metrics, M_LOOKUP_TEMPFAIL), 2);
	/* cached answers keep working, and nothing negative was cached */
	plant(f, "n:alice@example.com", "alice@example.com mbox1");
	assert_int_equal(route_lookup(&f->w, ROUTE_BY_NAME, "alice", PROTO_IMAP, &r), 0);
	assert_int_equal(route_cached(&f->ag, ROUTE_BY_NAME, "bob", PROTO_IMAP, &r), 0);
	/* back: cache-only workers defer to LDAP again */
	agent_ldap_fine(&f->ag);
	assert_int_equal(route_lookup(&f->w, ROUTE_BY_NAME, "bob", PROTO_IMAP, &r), -1);
	assert_int_equal(r.status, ROUTE_DEFER);
	assert_null(f->w.dir);
}

/* The auth_http source has its own breaker: LDAP's state does not matter. */
static void
test_http_source_down_fails_fast(void **state)
{
	struct fx *f = *state;
	struct route_result r;

	with_ldap(f);
	f->cfg->lookup.source = LOOKUP_HTTP;
	f->cfg->lookup.urls.n = 1;
	snprintf(f->cfg->lookup.urls.item[0], sizeof(f->cfg->lookup.urls.item[0]),
	         "https://127.0.0.1:1/lookup");
	f->cfg->lookup.probe_interval_ms = 600000;
	/* cache-only worker: the lookup is handed to a worker that may wait */
	f->w.cache_only = 1;
	assert_int_equal(route_lookup(&f->w, ROUTE_BY_NAME, "bob", PROTO_IMAP, &r), -1);
	assert_int_equal(r.status, ROUTE_DEFER);
	/* LDAP down changes nothing for this source */
	agent_ldap_trouble(&f->ag, "timed out");
	assert_int_equal(route_lookup(&f->w, ROUTE_BY_NAME, "bob", PROTO_IMAP, &r), -1);
	assert_int_equal(r.status, ROUTE_DEFER);
	/* the service known down: a temporary failure at once, never asked */
	agent_http_trouble(&f->ag, "timed out");
	assert_int_equal(metrics_get(&f->ag.metrics, M_DEP_HTTP_ERROR), 1);
	f->w.cache_only = 0;
	assert_int_equal(route_lookup(&f->w, ROUTE_BY_NAME, "bob", PROTO_IMAP, &r), -1);
	assert_int_equal(r.status, ROUTE_TEMPFAIL);
	assert_null(f->w.http);
	assert_null(f->w.dir);
	/* cached answers keep working */
	plant(f, "n:alice@example.com", "alice@example.com mbox1");
	assert_int_equal(route_lookup(&f->w, ROUTE_BY_NAME, "alice", PROTO_IMAP, &r), 0);
	agent_http_fine(&f->ag);
	f->w.cache_only = 1;
	assert_int_equal(route_lookup(&f->w, ROUTE_BY_NAME, "bob", PROTO_IMAP, &r), -1);
	assert_int_equal(r.status, ROUTE_DEFER);
	assert_string_equal(route_source_name(ROUTE_SRC_HTTP), "http");
}

static void
test_purge_local(void **state)
{
	struct fx *f = *state;
	struct route_result r;

	plant(f, "n:alice@example.com", "alice@example.com mbox1");
	assert_int_equal(route_purge(&f->w, "ALICE"), 0);   /* no memcached: nothing deleted there */
	assert_int_equal(route_cached(&f->ag, ROUTE_BY_NAME, "alice@example.com", PROTO_IMAP, &r), 0);
	assert_int_equal(route_purge(&f->w, ""), -1);
}

/*
 * Purging by an alias also clears the canonical name the cache holds for
 * it (issue 10: aliases kept a moved account's old server), and an
 * "unknown" entry for the name given goes too.
 */
static void
test_purge_by_alias_local(void **state)
{
	struct fx *f = *state;
	struct route_result r;

	plant(f, "n:caroline@example.com", "carol@example.com mbox3");
	plant(f, "n:carol@example.com", "carol@example.com mbox3");
	plant(f, "n:bob@example.com", "bob@example.com mbox1");
	assert_int_equal(route_purge(&f->w, " Caroline "), 0);
	assert_int_equal(route_cached(&f->ag, ROUTE_BY_NAME, "caroline@example.com", PROTO_IMAP, &r), 0);
	assert_int_equal(route_cached(&f->ag, ROUTE_BY_NAME, "carol@example.com", PROTO_IMAP, &r), 0);
	/* other accounts stay */
	assert_int_equal(route_cached(&f->ag, ROUTE_BY_NAME, "bob@example.com", PROTO_IMAP, &r), 1);
	plant(f, "n:later@example.com", "-");
	assert_int_equal(route_purge(&f->w, "LATER@example.com"), 0);
	assert_int_equal(route_cached(&f->ag, ROUTE_BY_NAME, "later@example.com", PROTO_IMAP, &r), 0);
	assert_int_equal(route_purge(&f->w, NULL), -1);
	assert_int_equal(route_purge(&f->w, "a\r\nb"), -1);
}

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(route_status_name(ROUTE_OK), "ok");
	assert_string_equal(route_status_name(ROUTE_UNKNOWN), "unknown");
	assert_string_equal(route_status_name(ROUTE_REFUSED), "refused");
	assert_string_equal(route_status_name(ROUTE_TEMPFAIL), "tempfail");
	assert_string_equal(route_status_name(ROUTE_ERROR), "error");
	assert_string_equal(route_status_name(ROUTE_BUSY), "busy");
	assert_string_equal(route_source_name(ROUTE_SRC_LOCAL), "local");
	assert_string_equal(route_source_name(ROUTE_SRC_MEMCACHED), "memcached");
	assert_string_equal(route_source_name(ROUTE_SRC_LDAP), "ldap");
	assert_string_equal(route_source_name(ROUTE_SRC_NONE), "none");
}

static void
test_throttle_name(void **state)
{
	struct route_result r;

	(void)state;
	memset(&r, 0, sizeof(r));
	strcpy(r.name, "al@example.com");
	/* found: the canonical account, whatever alias was typed */
	r.status = ROUTE_OK;
	strcpy(r.account, "alice@example.com");
	assert_string_equal(route_throttle_name(&r), "alice@example.com");
	r.status = ROUTE_REFUSED;
	assert_string_equal(route_throttle_name(&r), "alice@example.com");
	/* not an account (or not known now): the name looked up, so unknown
	 * names are counted exactly like accounts */
	r.account[0] = '\0';
	r.status = ROUTE_UNKNOWN;
	strcpy(r.name, "nosuch@example.com");
	assert_string_equal(route_throttle_name(&r), "nosuch@example.com");
	r.status = ROUTE_UNUSABLE;
	assert_string_equal(route_throttle_name(&r), "nosuch@example.com");
	r.status = ROUTE_TEMPFAIL;
	assert_string_equal(route_throttle_name(&r), "nosuch@example.com");
	r.status = ROUTE_REFUSED;    /* refused before the account was read */
	assert_string_equal(route_throttle_name(&r), "nosuch@example.com");
	/* a name no account can have: nothing to count it under */
	r.name[0] = '\0';
	r.status = ROUTE_UNKNOWN;
	assert_null(route_throttle_name(&r));
}

static void
test_lookup_notes_the_name(void **state)
{
	struct fx *f = *state;
	struct route_result r;

	/* looked up: the normalised name is noted (default domain added) */
	route_lookup(&f->w, ROUTE_BY_NAME, "Nobody-Here", PROTO_IMAP, &r);
	assert_int_equal(r.status, ROUTE_TEMPFAIL);
	assert_string_equal(r.name, "nobody-here@example.com");
	assert_string_equal(route_throttle_name(&r), "nobody-here@example.com");
	/* no account can have it: unknown (answered like any unknown name) */
	route_lookup(&f->w, ROUTE_BY_NAME, "bad\r\nname@example.com", PROTO_IMAP, &r);
	assert_int_equal(r.status, ROUTE_UNKNOWN);
	assert_string_equal(r.name, "");
	assert_null(route_throttle_name(&r));
}

static void
test_no_local_cache(void **state)
{
	struct gh_config *c = cfg_new();
	struct logger lg;
	struct agent ag;
	struct route_result r;

	(void)state;
	c->memcached.local_ttl_ms = 0;
	assert_int_equal(log_init(&lg, "test", "stderr", "err", NULL), 0);
	assert_int_equal(agent_init(&ag, c, &lg), 0);
	assert_null(ag.lcache);
	assert_int_equal(route_cached(&ag, ROUTE_BY_NAME, "alice@example.com", PROTO_IMAP, &r), 0);
	agent_free(&ag);
	free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cached_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cached_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cached_unknown_and_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_backends_tempfail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_only_defers_ldap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ldap_down_fails_fast, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http_source_down_fails_fast, setup, teardown),
		cmocka_unit_test_setup_teardown(test_purge_local, setup, teardown),
		cmocka_unit_test_setup_teardown(test_purge_by_alias_local, setup, teardown),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_throttle_name),
		cmocka_unit_test_setup_teardown(test_lookup_notes_the_name, setup, teardown),
		cmocka_unit_test(test_no_local_cache),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
