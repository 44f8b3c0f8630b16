/*
 * Unit tests for the configuration loader: defaults, a complete file, and
 * every error path (unknown section or key, bad values of each type,
 * duplicates, missing required parts, [server] errors, password file).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "cfg.h"

/* Temporary files made by a test, removed by teardown. */
struct tmpfiles {
	char path[32][64];
	int n;
};

static int
setup(void **state)
{
	struct tmpfiles *t = calloc(1, sizeof(*t));

	*state = t;
	return t ? 0 : -1;
}

static int
teardown(void **state)
{
	struct tmpfiles *t = *state;
	int i;

	for (i = 0; i < t->n; i++)
		unlink(t->path[i]);
	free(t);
	return 0;
}

/* Write <text> to a new temporary file and return its path. */
static const char *
write_tmp(struct tmpfiles *t, const char *text)
{
	char *p;
	int fd;
	size_t len = strlen(text);

	assert_true(t->n < 32);
	p = t->path[t->n++];
	snprintf(p, 64, "/tmp/gh-test-cfg-XXXXXX");
	fd = mkstemp(p);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return p;
}

/* Load <text> with <need>; return cfg_load's result and keep the message in <err>. */
static int
load(struct tmpfiles *t, const char *text, unsigned need, char *err, size_t errlen,
     struct gh_config **out)
{
	struct gh_config *cfg = cfg_new();
	int rc;

	assert_non_null(cfg);
	err[0] = '\0';
	rc = cfg_load(cfg, write_tmp(t, text), need, err, errlen);
	unlink(t->path[--t->n]);
	if (out)
		*out = cfg;
	else
		free(cfg);
	return rc;
}

/* Check that <text> fails to load with a message containing <what> (and <line> when > 0). */
static void
fails(void **state, const char *text, unsigned need, const char *what, int line)
{
	char err[512], at[16];

	assert_int_equal(load(*state, text, need, err, sizeof(err), NULL), -1);
	if (strstr(err, what) == NULL)
		fail_msg("error '%s' does not mention '%s'", err, what);
	if (line > 0) {
		snprintf(at, sizeof(at), ":%d:", line);
		if (strstr(err, at) == NULL)
			fail_msg("error '%s' does not name line %d", err, line);
	}
}

static void
test_defaults(void **state)
{
	struct gh_config *c = cfg_new();

	(void)state;
	assert_non_null(c);
	assert_string_equal(c->ldap.account_filter,
	                    "(&(objectClass=inetOrgPerson)(|(mail=%s)(mailLocalAddress=%s)))");
	assert_string_equal(c->ldap.id_filter, "(entryUUID=%s)");
	assert_string_equal(c->ldap.name_attr, "mail");
	assert_string_equal(c->ldap.host_attr, "mailHost");
	assert_string_equal(c->ldap.id_attr, "entryUUID");
	/* what the default account_filter matches besides name_attr */
	assert_int_equal(c->ldap.alias_attrs.n, 1);
	assert_string_equal(c->ldap.alias_attrs.item[0], "mailLocalAddress");
	assert_string_equal(c->ldap.default_domain, "");
	assert_int_equal(c->ldap.timeout_ms, 3000);
	assert_int_equal(c->ldap.uri.n, 0);
	assert_int_equal(c->memcached.ttl_s, 3600);
	assert_int_equal(c->memcached.negative_ttl_s, 60);
	assert_int_equal(c->memcached.timeout_ms, 500);
	assert_int_equal(c->memcached.retry_s, 10);
	assert_int_equal(c->memcached.local_ttl_ms, 10000);
	assert_int_equal(c->memcached.local_size, 65536);
	assert_int_equal(c->throttle.ip_max, 0);
	assert_int_equal(c->throttle.ipv6_prefix, 64);
	assert_int_equal(c->throttle.ip_ttl_s, 3600);
	assert_int_equal(c->spoa.threads, 4);
	assert_int_equal(c->spoa.deadline_ms, 400);
	assert_int_equal(c->spoa.strict_hosts, 0);
	assert_int_equal(c->spoa.haproxy_admin.n, 0);
	assert_int_equal(c->mailproxy.send_id, 1);
	assert_int_equal(c->mailproxy.cleartext_login, 0);
	assert_int_equal(c->mailproxy.imap_idle_timeout_ms, 30 * 60 * 1000);
	assert_string_equal(c->log.target, "stderr");
	assert_string_equal(c->log.level, "info");
	assert_int_equal(c->log.rate_limit, 10);
	assert_int_equal(c->log.rate_limit_interval_ms, 10000);
	assert_int_equal(c->nservers, 0);
	free(c);
}

static void
test_full(void **state)
{
	struct tmpfiles *t = *state;
	struct gh_config *c;
	const struct cfg_server *s;
	struct sockaddr_in sin;
	char err[512], text[1536];
	const char *pw = write_tmp(t, "s3cret\n");
	enum gh_proto p;

	snprintf(text, sizeof(text),
	         "; a comment\n"
	         "[log]\n"
	         "rate_limit = 0\n"
	         "rate_limit_interval = 2500ms\n"
	         "[ldap]\n"
	         "uri = ldap://127.0.0.1:389 ldap://127.0.0.2:389\n"
	         "uri = ldap://127.0.0.3\n"
	         "bind_dn = cn=gh,o=x\n"
	         "bind_password_file = %s\n"
	         "base = o=x\n"
	         "id_filter = (zimbraId=%%s)\n"
	         "default_domain = example.com\n"
	         "timeout = 1500ms\n"
	         "[memcached]\n"
	         "servers = 127.0.0.1:11211, 127.0.0.1:11212\n"
	         "ttl = 1h\n"
	         "local_ttl = 0\n"
	         "[throttle]\n"
	         "ip_max = 10\n"
	         "whitelist = 198.51.100.0/24 ::1/128\n"
	         "[spoa]\n"
	         "listen = 127.0.0.1:12345 [::1]:12345\n"
	         "strict_hosts = yes\n"
	         "haproxy_admin = /run/haproxy/admin.sock /run/h2/admin.sock\n"
	         "[cluster]\n"
	         "spoa_metrics = 127.0.0.11:9101 127.0.0.12:9101\n"
	         "mailproxy_metrics = 127.0.0.12:9102\n"
	         "[server mbox1]\n"
	         "address = 192.0.2.10\n"
	         "imap = 7143\n"
	         "http = 8080\n"
	         "admin = 7071\n"
	         "[server MBOX2]\n"
	         "address = 2001:db8::2\n"
	         "pop3s = 7995\n"
	         "tls_name = mbox2.internal\n", pw);
	assert_int_equal(load(t, text, CFG_NEED_LDAP | CFG_NEED_SERVERS | CFG_NEED_SPOA, err,
	                      sizeof(err), &c), 0);
	assert_int_equal(c->log.rate_limit, 0);
	assert_int_equal(c->log.rate_limit_interval_ms, 2500);
	assert_int_equal(c->ldap.uri.n, 3);
	assert_string_equal(c->ldap.uri.item[2], "ldap://127.0.0.3");
	assert_string_equal(c->ldap.bind_password, "s3cret");
	assert_string_equal(c->ldap.id_filter, "(zimbraId=%s)");
	assert_int_equal(c->ldap.timeout_ms, 1500);
	assert_int_equal(c->memcached.servers.n, 2);
	assert_string_equal(c->memcached.servers.item[1], "127.0.0.1:11212");
	assert_int_equal(c->memcached.ttl_s, 3600);
	assert_int_equal(c->memcached.local_ttl_ms, 0);
	assert_int_equal(c->throttle.whitelist.n, 2);
	assert_int_equal(c->spoa.listen.n, 2);
	assert_int_equal(c->spoa.strict_hosts, 1);
	assert_int_equal(c->spoa.haproxy_admin.n, 2);
	assert_string_equal(c->spoa.haproxy_admin.item[1], "/run/h2/admin.sock");
	assert_int_equal(c->cluster.spoa_metrics.n, 2);
	assert_string_equal(c->cluster.spoa_metrics.item[1], "127.0.0.12:9101");
	assert_int_equal(c->cluster.mailproxy_metrics.n, 1);
	assert_int_equal(c->nservers, 2);
	s = cfg_server_find(c, "MBox1");
	assert_non_null(s);
	assert_string_equal(s->name, "mbox1");
	assert_string_equal(s->tls_name, "mbox1");
	assert_int_equal(s->port[PROTO_IMAP], 7143);
	assert_int_equal(s->port[PROTO_HTTP], 8080);
	assert_int_equal(s->port[PROTO_POP3], 0);
	assert_int_equal(s->admin_port, 7071);
	s = cfg_server_find(c, "mbox2");
	assert_non_null(s);
	assert_int_equal(s->admin_port, 0);
	assert_string_equal(s->tls_name, "mbox2.internal");
	assert_int_equal(s->addr.ss_family, AF_INET6);
	assert_null(cfg_server_find(c, "mbox3"));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(999);
	inet_pton(AF_INET, "192.0.2.10", &sin.sin_addr);
	assert_ptr_equal(cfg_server_by_addr(c, (struct sockaddr *)&sin), cfg_server_find(c, "mbox1"));
	inet_pton(AF_INET, "192.0.2.11", &sin.sin_addr);
	assert_null(cfg_server_by_addr(c, (struct sockaddr *)&sin));
	assert_int_equal(cfg_proto_parse("IMAPS", &p), 0);
	assert_int_equal(p, PROTO_IMAPS);
	assert_int_equal(cfg_proto_parse("smtp", &p), -1);
	assert_string_equal(cfg_proto_name(PROTO_POP3), "pop3");
	assert_string_equal(cfg_proto_name(PROTO__COUNT), "?");
	free(c);
}

static void
test_unknown(void **state)
{
	fails(state, "[ldap]\nbase = o=x\n[nosuch]\nkey = 1\n", 0, "unknown section", 4);
	fails(state, "[ldap]\nbase = o=x\nnosuch = 1\n", 0, "unknown key", 3);
	fails(state, "[ldap]\nbase = o=x\nnosuch = 1\n", 0, "nosuch", 3);
	fails(state, "top = 1\n", 0, "unknown section", 1);
	fails(state, "[server]\naddress = 127.0.0.1\n", 0, "unknown section", 2);
}

static void
test_bad_values(void **state)
{
	/* KW_U32 */
	fails(state, "[spoa]\nthreads = many\n", 0, "threads", 2);
	fails(state, "[spoa]\nthreads = 257\n", 0, "whole number", 2);
	fails(state, "[spoa]\nthreads = -1\n", 0, "threads", 2);
	fails(state, "[spoa]\nthreads =\n", 0, "threads", 2);
	fails(state, "[throttle]\nip_max = 99999999999\n", 0, "ip_max", 2);
	fails(state, "[log]\nrate_limit = lots\n", 0, "rate_limit", 2);
	fails(state, "[log]\nrate_limit = 1000001\n", 0, "rate_limit", 2);
	/* what the logger refuses at start is refused at load (-t) */
	fails(state, "[log]\nlevel = loud\n", 0, "[log] level", 0);
	fails(state, "[log]\nfacility = kitchen\n", 0, "facility", 0);
	fails(state, "[log]\ntarget = /var/log/x\n", 0, "[log] target", 0);
	/* KW_MS */
	fails(state, "[ldap]\ntimeout = 5x\n", 0, "duration", 2);
	fails(state, "[ldap]\ntimeout = 11m\n", 0, "duration", 2);
	fails(state, "[log]\nrate_limit_interval = 10 s\n", 0, "rate_limit_interval", 2);
	fails(state, "[log]\nrate_limit_interval = 2h\n", 0, "duration", 2);
	/* KW_SEC: whole seconds only, and a maximum */
	fails(state, "[memcached]\nttl = 1500ms\n", 0, "ttl", 2);
	fails(state, "[memcached]\nttl = 31d\n", 0, "ttl", 2);
	/* KW_BOOL */
	fails(state, "[spoa]\nstrict_hosts = maybe\n", 0, "yes or no", 2);
	/* KW_ADDRLIST */
	fails(state, "[spoa]\nlisten = localhost:1234\n", 0, "ip:port", 2);
	fails(state, "[mailproxy]\nimap = 127.0.0.1\n", 0, "imap", 2);
	fails(state, "[cluster]\nspoa_metrics = node2:9101\n", 0, "spoa_metrics", 2);
	/* KW_FILTER */
	fails(state, "[ldap]\naccount_filter = (mail=*)\n", 0, "%s", 2);
	fails(state, "[ldap]\nid_filter = (x=%d)\n", 0, "id_filter", 2);
	fails(state, "[ldap]\nid_filter = (x=%s)%\n", 0, "id_filter", 2);
	/* KW_CIDRLIST: every whitelist entry must be an address or CIDR */
	fails(state, "[throttle]\nwhitelist = 198.51.100.0/24 office\n", 0, "CIDR", 2);
	fails(state, "[throttle]\nwhitelist = 198.51.100.0/33\n", 0, "whitelist", 2);
	fails(state, "[throttle]\nwhitelist = ::1/129\n", 0, "whitelist", 2);
	/* KW_LIST: too many entries */
	fails(state, "[memcached]\nservers = a b c d e f g h i j k l m n o p q\n", 0, "too many", 2);
	/* KW_STR: too long for the field */
	fails(state, "[ldap]\nname_attr = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	      0, "too long", 2);
}

static void
test_duplicates(void **state)
{
	struct gh_config *c;
	char err[512];

	fails(state, "[ldap]\nbase = o=x\nbase = o=y\n", 0, "duplicate", 3);
	fails(state, "[ldap]\ntimeout = 1s\n[memcached]\n[ldap]\ntimeout = 2s\n", 0, "duplicate", 5);
	/* list keys accumulate instead */
	assert_int_equal(load(*state, "[memcached]\nservers = a:1\nservers = b:2\n", 0, err,
	                      sizeof(err), &c), 0);
	assert_int_equal(c->memcached.servers.n, 2);
	free(c);
}

static void
test_alias_attrs(void **state)
{
	struct gh_config *c;
	char err[512];

	/* replaces the default; a repeated key adds to the list */
	assert_int_equal(load(*state, "[ldap]\nalias_attrs = zimbraMailAlias\n"
	                      "alias_attrs = mailAlternateAddress, x-alias;lang-en 1.2.3.4\n",
	                      0, err, sizeof(err), &c), 0);
	assert_int_equal(c->ldap.alias_attrs.n, 4);
	assert_string_equal(c->ldap.alias_attrs.item[0], "zimbraMailAlias");
	assert_string_equal(c->ldap.alias_attrs.item[1], "mailAlternateAddress");
	assert_string_equal(c->ldap.alias_attrs.item[3], "1.2.3.4");
	free(c);
	/* empty: the directory lists no aliases */
	assert_int_equal(load(*state, "[ldap]\nalias_attrs =\n", 0, err, sizeof(err), &c), 0);
	assert_int_equal(c->ldap.alias_attrs.n, 0);
	free(c);
	fails(state, "[ldap]\nalias_attrs = mailLocalAddress=%s\n", 0, "alias_attrs", 2);
	fails(state, "[ldap]\nalias_attrs = (mail)\n", 0, "attribute", 2);
	fails(state, "[ldap]\nalias_attrs = -x\n", 0, "alias_attrs", 2);
	fails(state, "[ldap]\nalias_attrs = a b c d e f g h i j k l m n o p q\n", 0, "alias_attrs", 2);
	fails(state, "[ldap]\nalias_attr = mailLocalAddress\n", 0, "unknown key", 2);
}

static void
test_required(void **state)
{
	fails(state, "[ldap]\nbase = o=x\n", CFG_NEED_LDAP, "[ldap] uri", 0);
	fails(state, "[ldap]\nuri = ldap://h\n", CFG_NEED_LDAP, "[ldap] base", 0);
	fails(state, "[ldap]\nuri = ldap://h\nbase = o=x\n", CFG_NEED_SERVERS, "[server NAME]", 0);
	fails(state, "[spoa]\nthreads = 2\n", CFG_NEED_SPOA, "[spoa] listen", 0);
	fails(state, "[mailproxy]\nthreads = 2\n", CFG_NEED_MAILPROXY, "[mailproxy]", 0);
	fails(state, "[throttle]\nuser_max = 5\n", 0, "[memcached] servers", 0);
	fails(state, "[ldap]\nbind_dn = cn=x\n", 0, "bind_password_file", 0);
}

static void
test_lookup(void **state)
{
	struct gh_config *c = NULL;
	char err[512];

	assert_int_equal(load(*state, "[lookup]\nsource = http\n"
	                      "urls = https://192.0.2.1:7072/service/extension/nginx-lookup\n"
	                      "urls = http://192.0.2.2:7072/x\ntimeout = 2s\nsend_password = yes\n"
	                      "ca_file = /etc/ssl/ca.pem\n", CFG_NEED_LDAP, err, sizeof(err), &c), 0);
	assert_int_equal(c->lookup.source, LOOKUP_HTTP);
	assert_int_equal(c->lookup.urls.n, 2);
	assert_string_equal(c->lookup.urls.item[1], "http://192.0.2.2:7072/x");
	assert_int_equal(c->lookup.timeout_ms, 2000);
	assert_int_equal(c->lookup.probe_interval_ms, 1000);
	assert_int_equal(c->lookup.send_password, 1);
	assert_int_equal(c->lookup.allow_plain_http, 0);
	assert_string_equal(c->lookup.ca_file, "/etc/ssl/ca.pem");
	free(c);
	/* defaults: LDAP, the password never sent */
	c = cfg_new();
	assert_non_null(c);
	assert_int_equal(c->lookup.source, LOOKUP_LDAP);
	assert_int_equal(c->lookup.send_password, 0);
	assert_int_equal(c->lookup.allow_plain_http, 0);
	free(c);
	fails(state, "[lookup]\nsource = sql\n", 0, "ldap or http", 2);
	fails(state, "[lookup]\nurls = ftp://h/x\n", 0, "urls", 2);
	fails(state, "[lookup]\nurls = 192.0.2.1:7072\n", 0, "urls", 2);
	fails(state, "[lookup]\nurls = https:///x\n", 0, "urls", 2);
	/* source = http needs urls, and no [ldap] then */
	fails(state, "[lookup]\nsource = http\n", CFG_NEED_LDAP, "[lookup] urls", 0);
	fails(state, "[lookup]\nsource = ldap\n", CFG_NEED_LDAP, "[ldap] uri", 0);
}

static void
test_server_errors(void **state)
{
	fails(state, "[server a]\nimap = 143\n", 0, "address", 1);
	fails(state, "[server a]\naddress = 127.0.0.1\n", 0, "no port", 1);
	fails(state, "[server a]\naddress = 127.0.0.1\nimap = 0\n", 0, "port number", 3);
	fails(state, "[server a]\naddress = 127.0.0.1\nimap = 70000\n", 0, "port number", 3);
	fails(state, "[server a]\naddress = 127.0.0.1\nimap = x\n", 0, "port number", 3);
	fails(state, "[server a]\naddress = 127.0.0.1\nadmin = 0\n", 0, "port number", 3);
	fails(state, "[server a]\naddress = 127.0.0.1\nadmin = 1\nadmin = 2\n", 0, "duplicate", 4);
	fails(state, "[server a]\naddress = mail.example.com\nimap = 1\n", 0, "IP address", 2);
	fails(state, "[server a]\naddress = 127.0.0.1\nsmtp = 25\n", 0, "unknown key", 3);
	fails(state, "[server a]\naddress = 127.0.0.1\nimap = 1\nimap = 2\n", 0, "duplicate", 4);
	fails(state, "[server a]\naddress = 127.0.0.1\naddress = 127.0.0.2\n", 0, "duplicate", 3);
	fails(state, "[server a/b]\naddress = 127.0.0.1\n", 0, "bad server name", 2);
	fails(state, "[server a]\naddress = 127.0.0.1\nimap = 1\n[server A]\naddress = 127.0.0.2\n",
	      0, "declared twice", 5);
	/* the first server is checked when the next one starts */
	fails(state, "[server a]\nimap = 1\n[server b]\naddress = 127.0.0.1\nimap = 1\n", 0,
	      "address", 1);
}

static void
test_files(void **state)
{
	struct gh_config *c = cfg_new();
	char err[512];

	(void)state;
	assert_int_equal(cfg_load(c, "/nonexistent/gatehouse.conf", 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/gatehouse.conf"));
	free(c);
	fails(state, "[ldap]\nuri = ldap://h\nbase = o=x\nbind_dn = cn=x\n"
	      "bind_password_file = /nonexistent/pw\n", CFG_NEED_LDAP, "cannot read", 0);
	fails(state, "[ldap]\nthis line has no equals sign\n", 0, "syntax error", 2);
}

static void
test_password_trimmed(void **state)
{
	struct tmpfiles *t = *state;
	struct gh_config *c;
	char err[512], text[256];
	const char *pw = write_tmp(t, "pa ss\r\n");

	snprintf(text, sizeof(text), "[ldap]\nbind_dn = cn=x\nbind_password_file = %s\n", pw);
	assert_int_equal(load(t, text, 0, err, sizeof(err), &c), 0);
	assert_string_equal(c->ldap.bind_password, "pa ss");
	/* the password never appears in an error message */
	assert_null(strstr(err, "pa ss"));
	free(c);
}

static void
test_password_bad(void **state)
{
	struct tmpfiles *t = *state;
	char text[256], big[700];

	snprintf(text, sizeof(text), "[ldap]\nbind_dn = cn=x\nbind_password_file = %s\n",
	         write_tmp(t, "\n"));
	fails(state, text, 0, "empty", 0);
	memset(big, 'p', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(text, sizeof(text), "[ldap]\nbind_dn = cn=x\nbind_password_file = %s\n",
	         write_tmp(t, big));
	fails(state, text, 0, "too long", 0);
}

static void
test_long_line(void **state)
{
	struct gh_config *c;
	char err[512], text[1024], filter[400];
	size_t n;

	/* a 300-byte filter: longer than libinih's default line buffer */
	snprintf(filter, sizeof(filter), "(&(objectClass=zimbraAccount)(|(zimbraMailDeliveryAddress=%%s)"
	         "(zimbraMailAlias=%%s)(zimbraMailCanonicalAddress=%%s)(zimbraForeignPrincipal=%%s)"
	         "(uid=%%s)(mail=%%s)))");
	n = strlen(filter);
	while (n < 300)
		filter[n++] = ' ';
	filter[n] = '\0';
	snprintf(text, sizeof(text), "[ldap]\naccount_filter = %s\nbase = o=x\n", filter);
	if (load(*state, text, 0, err, sizeof(err), &c) == 0) {
		/* accepted: then it must be whole (trailing blanks trimmed) */
		assert_string_equal(c->ldap.account_filter,
		                    "(&(objectClass=zimbraAccount)(|(zimbraMailDeliveryAddress=%s)"
		                    "(zimbraMailAlias=%s)(zimbraMailCanonicalAddress=%s)"
		                    "(zimbraForeignPrincipal=%s)(uid=%s)(mail=%s)))");
		assert_string_equal(c->ldap.base, "o=x");
		free(c);
	} else {
		free(c);
		/* or refused with a clear message naming the line */
		assert_non_null(strstr(err, ":2:"));
		assert_non_null(strstr(err, "too long"));
	}
	/* a line of exactly 199 bytes (libinih's limit) is whole */
	memset(filter, 'b', 199 - 7);
	filter[199 - 7] = '\0';
	snprintf(text, sizeof(text), "[ldap]\nbase = %s\nuri = ldap://h\n", filter);
	assert_int_equal(strlen(strchr(text, '\n') + 1), 199 + 1 + 15);
	assert_int_equal(load(*state, text, CFG_NEED_LDAP, err, sizeof(err), &c), 0);
	assert_string_equal(c->ldap.base, filter);
	assert_int_equal(c->ldap.uri.n, 1);
	free(c);
	/* a line too long for any value is refused, naming its line */
	memset(filter, 'x', sizeof(filter) - 1);
	filter[sizeof(filter) - 1] = '\0';
	snprintf(text, sizeof(text), "[ldap]\nbase = o=x\nbind_dn = cn=%s\n", filter);
	fails(state, text, 0, "too long", 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test_setup_teardown(test_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alias_attrs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_required, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_password_trimmed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_password_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_line, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
