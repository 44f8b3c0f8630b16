/*
 * Unit tests for virtual host names: Host header normalisation (ports,
 * case, trailing dot, IPv6 literals, junk) and list matching (exact and
 * wildcard); a check that needs LDAP is handed back by a cache-only worker
 * and fails open at once while LDAP is known down. The LDAP and cache path
 * itself is covered by the integration tests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agent.h"
#include "cfg.h"
#include "metrics.h"
#include "vhost.h"

static void
test_normalise(void **state)
{
	static const struct { const char *in, *out; } good[] = {
		{ "mail.example.com", "mail.example.com" },
		{ "Mail.Example.COM", "mail.example.com" },
		{ "mail.example.com:443", "mail.example.com" },
		{ "mail.example.com.", "mail.example.com" },
		{ "mail.example.com.:8443", "mail.example.com" },
		{ "192.0.2.7:80", "192.0.2.7" },
		{ "[2001:DB8::1]:443", "[2001:db8::1]" },
		{ "[::1]", "[::1]" },
		{ "under_score.example.com", "under_score.example.com" },
	};
	static const char *const bad[] = {
		"", ".", ":443", "mail.example.com:", "mail.example.com:99999",
		"mail.example.com:44x", "mail.example.com:1:2", "a b", "a\r\nX: y", "*)(cn=*",
		"[::1", "[::1]x", "[::1]:", ".example.com", "a..b", "a..", "a..:80", "exa\xc3\xa9mple.com", "a/b", "a%2e",
	};
	char out[VHOST_MAX], big[VHOST_MAX + 8];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(vhost_normalise(out, sizeof(out), good[i].in), strlen(good[i].out));
		assert_string_equal(out, good[i].out);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(vhost_normalise(out, sizeof(out), bad[i]), -1);
		assert_string_equal(out, "");
	}
	assert_int_equal(vhost_normalise(out, sizeof(out), NULL), -1);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(vhost_normalise(out, sizeof(out), big), -1);
	assert_int_equal(vhost_normalise(out, 4, "mail.example.com"), -1);
}

static void
test_in_list(void **state)
{
	struct cfg_list l;

	(void)state;
	memset(&l, 0, sizeof(l));
	l.n = 2;
	snprintf(l.item[0], sizeof(l.item[0]), "Mail.Example.com");
	snprintf(l.item[1], sizeof(l.item[1]), "*.example.net");
	assert_true(vhost_in_list(&l, "mail.example.com"));
	assert_true(vhost_in_list(&l, "a.example.net"));
	assert_true(vhost_in_list(&l, "a.b.example.net"));
	assert_false(vhost_in_list(&l, "example.net"));       /* a wildcard needs a label */
	assert_false(vhost_in_list(&l, "badexample.net"));
	assert_false(vhost_in_list(&l, "mail.example.com.evil"));
	assert_false(vhost_in_list(&l, "ail.example.com"));
	l.n = 0;
	assert_false(vhost_in_list(&l, "mail.example.com"));
	assert_string_equal(vhost_rc_name(VHOST_TEMPFAIL), "tempfail");
}

static void
test_ldap_deferred_or_down(void **state)
{
	struct gh_config *c = cfg_new();
	struct logger lg;
	struct agent ag;
	struct agent_worker w;

	(void)state;
	assert_non_null(c);
	c->ldap.uri.n = 1;
	snprintf(c->ldap.uri.item[0], sizeof(c->ldap.uri.item[0]), "ldap://127.0.0.1:1");
	snprintf(c->ldap.vhost_filter, sizeof(c->ldap.vhost_filter), "(associatedDomain=%%s)");
	c->ldap.probe_interval_ms = 600000;
	assert_int_equal(log_init(&lg, "test_vhost", "stderr", "err", NULL), 0);
	assert_int_equal(agent_init(&ag, c, &lg), 0);
	assert_int_equal(agent_worker_init(&w, &ag), 0);
	w.cache_only = 1;
	assert_int_equal(vhost_check(&w, "mail.example.com"), VHOST_UNDECIDED);
	assert_null(w.dir);
	assert_int_equal(metrics_get(&ag.metrics, M_VHOST_TEMPFAIL), 0);
	/* known down: tempfail (callers allow) at once, on any worker */
	agent_ldap_trouble(&ag, "timed out");
	assert_int_equal(vhost_check(&w, "mail.example.com"), VHOST_TEMPFAIL);
	w.cache_only = 0;
	assert_int_equal(vhost_check(&w, "mail.example.com"), VHOST_TEMPFAIL);
	assert_null(w.dir);
	assert_int_equal(metrics_get(&ag.metrics, M_VHOST_TEMPFAIL), 2);
	agent_worker_free(&w);
	agent_free(&ag);
	free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalise),
		cmocka_unit_test(test_in_list),
		cmocka_unit_test(test_ldap_deferred_or_down),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
