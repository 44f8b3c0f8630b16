/*
 * gatehouse.conf loader. The file is INI (libinih does the tokenising); one
 * keyword table below names every key with its section, type, destination
 * and default. Defaults are applied by parsing the default strings through
 * the same setters, so a default can never disagree with the syntax.
 */
#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg.h"
#include "cidr.h"
#include "log.h"
#include "parse.h"
#include "secret.h"

enum kw_type {
	KW_STR,       /* char[CFG_STR_MAX] or char[CFG_NAME_MAX] (size in kw) */
	KW_LIST,      /* struct cfg_list: space-separated, repeatable */
	KW_U32,       /* uint32_t, 0..max */
	KW_MS,        /* duration into uint32_t milliseconds */
	KW_SEC,       /* duration into uint32_t seconds */
	KW_BOOL,      /* int 0/1 */
	KW_ADDRLIST,  /* struct cfg_list of "ip:port" checked at load */
	KW_LISTENLIST,/* the same, or "unix@/path" */
	KW_FILTER,    /* a filter with at least one %s and no other % */
	KW_CIDRLIST,  /* struct cfg_list of CIDRs or addresses, checked at load */
	KW_ATTRLIST,  /* struct cfg_list of LDAP attribute names, checked at load */
	KW_URLLIST,   /* struct cfg_list of http:// or https:// URLs */
	KW_SOURCE,    /* int: enum cfg_lookup_source, "ldap" or "http" */
};

/* One configuration key. */
struct kw {
	const char *section;
	const char *name;
	enum kw_type type;
	size_t off;          /* offset in struct gh_config */
	size_t size;         /* destination size for strings */
	uint64_t max;        /* maximum for numbers */
	const char *def;     /* default, parsed by the same setter; NULL = empty */
};

#define S(sec, field) offsetof(struct gh_config, sec.field), sizeof(((struct gh_config *)0)->sec.field)

static const struct kw keywords[] = {
	{ "log", "target", KW_STR, S(log, target), 0, "stderr" },
	{ "log", "level", KW_STR, S(log, level), 0, "info" },
	{ "log", "facility", KW_STR, S(log, facility), 0, "mail" },
	{ "log", "rate_limit", KW_U32, S(log, rate_limit), 1000000, "10" },
	{ "log", "rate_limit_interval", KW_MS, S(log, rate_limit_interval_ms), 3600000, "10s" },

	{ "ldap", "uri", KW_LIST, S(ldap, uri), 0, NULL },
	{ "ldap", "bind_dn", KW_STR, S(ldap, bind_dn), 0, NULL },
	{ "ldap", "bind_password_file", KW_STR, S(ldap, bind_password_file), 0, NULL },
	{ "ldap", "base", KW_STR, S(ldap, base), 0, NULL },
	{ "ldap", "account_filter", KW_FILTER, S(ldap, account_filter), 0,
	  "(&(objectClass=inetOrgPerson)(|(mail=%s)(mailLocalAddress=%s)))" },
	{ "ldap", "id_filter", KW_FILTER, S(ldap, id_filter), 0, "(entryUUID=%s)" },
	{ "ldap", "vhost_filter", KW_FILTER, S(ldap, vhost_filter), 0, NULL },
	{ "ldap", "name_attr", KW_STR, S(ldap, name_attr), 0, "mail" },
	{ "ldap", "host_attr", KW_STR, S(ldap, host_attr), 0, "mailHost" },
	{ "ldap", "id_attr", KW_STR, S(ldap, id_attr), 0, "entryUUID" },
	{ "ldap", "alias_attrs", KW_ATTRLIST, S(ldap, alias_attrs), 0, "mailLocalAddress" },
	{ "ldap", "default_domain", KW_STR, S(ldap, default_domain), 0, NULL },
	{ "ldap", "timeout", KW_MS, S(ldap, timeout_ms), 600000, "3s" },
	{ "ldap", "probe_interval", KW_MS, S(ldap, probe_interval_ms), 600000, "1s" },

	{ "lookup", "source", KW_SOURCE, S(lookup, source), 0, "ldap" },
	{ "lookup", "urls", KW_URLLIST, S(lookup, urls), 0, NULL },
	{ "lookup", "timeout", KW_MS, S(lookup, timeout_ms), 600000, "3s" },
	{ "lookup", "probe_interval", KW_MS, S(lookup, probe_interval_ms), 600000, "1s" },
	{ "lookup", "send_password", KW_BOOL, S(lookup, send_password), 0, "no" },
	{ "lookup", "allow_plain_http", KW_BOOL, S(lookup, allow_plain_http), 0, "no" },
	{ "lookup", "ca_file", KW_STR, S(lookup, ca_file), 0, NULL },

	{ "memcached", "servers", KW_LIST, S(memcached, servers), 0, NULL },
	{ "memcached", "ttl", KW_SEC, S(memcached, ttl_s), 2592000, "3600" },
	{ "memcached", "negative_ttl", KW_SEC, S(memcached, negative_ttl_s), 2592000, "60" },
	{ "memcached", "timeout", KW_MS, S(memcached, timeout_ms), 60000, "500ms" },
	{ "memcached", "retry", KW_SEC, S(memcached, retry_s), 86400, "10" },
	{ "memcached", "local_ttl", KW_MS, S(memcached, local_ttl_ms), 3600000, "10s" },
	{ "memcached", "local_size", KW_U32, S(memcached, local_size), 10000000, "65536" },

	{ "throttle", "ip_max", KW_U32, S(throttle, ip_max), UINT32_MAX, "0" },
	{ "throttle", "ip_ttl", KW_SEC, S(throttle, ip_ttl_s), 2592000, "3600" },
	{ "throttle", "user_max", KW_U32, S(throttle, user_max), UINT32_MAX, "0" },
	{ "throttle", "user_ttl", KW_SEC, S(throttle, user_ttl_s), 2592000, "3600" },
	{ "throttle", "ip_fail_max", KW_U32, S(throttle, ip_fail_max), UINT32_MAX, "0" },
	{ "throttle", "ip_fail_ttl", KW_SEC, S(throttle, ip_fail_ttl_s), 2592000, "900" },
	{ "throttle", "user_fail_max", KW_U32, S(throttle, user_fail_max), UINT32_MAX, "0" },
	{ "throttle", "user_fail_ttl", KW_SEC, S(throttle, user_fail_ttl_s), 2592000, "900" },
	{ "throttle", "ipv6_prefix", KW_U32, S(throttle, ipv6_prefix), 128, "64" },
	{ "throttle", "ip_reject_message", KW_STR, S(throttle, ip_reject_message), 0,
	  "Login rejected for this location" },
	{ "throttle", "user_reject_message", KW_STR, S(throttle, user_reject_message), 0,
	  "Login rejected for this user" },
	{ "throttle", "whitelist", KW_CIDRLIST, S(throttle, whitelist), 0, NULL },

	{ "spoa", "listen", KW_LISTENLIST, S(spoa, listen), 0, NULL },
	{ "spoa", "threads", KW_U32, S(spoa, threads), 256, "4" },
	{ "spoa", "queue_size", KW_U32, S(spoa, queue_size), 1000000, "4096" },
	{ "spoa", "max_frame_size", KW_U32, S(spoa, max_frame_size), 1048576, "16380" },
	{ "spoa", "deadline", KW_MS, S(spoa, deadline_ms), 600000, "400ms" },
	{ "spoa", "idle_timeout", KW_MS, S(spoa, idle_timeout_ms), 86400000, "60s" },
	{ "spoa", "max_connections", KW_U32, S(spoa, max_connections), 1000000, "10000" },
	{ "spoa", "metrics", KW_STR, S(spoa, metrics), 0, NULL },
	{ "spoa", "auth_http", KW_STR, S(spoa, auth_http), 0, NULL },
	{ "spoa", "strict_hosts", KW_BOOL, S(spoa, strict_hosts), 0, "no" },
	{ "spoa", "vhosts", KW_LIST, S(spoa, vhosts), 0, NULL },
	{ "spoa", "haproxy_admin", KW_LIST, S(spoa, haproxy_admin), 0, NULL },

	{ "mailproxy", "imap", KW_ADDRLIST, S(mailproxy, imap), 0, NULL },
	{ "mailproxy", "imaps", KW_ADDRLIST, S(mailproxy, imaps), 0, NULL },
	{ "mailproxy", "pop3", KW_ADDRLIST, S(mailproxy, pop3), 0, NULL },
	{ "mailproxy", "pop3s", KW_ADDRLIST, S(mailproxy, pop3s), 0, NULL },
	{ "mailproxy", "certs", KW_STR, S(mailproxy, certs), 0, "certs" },
	{ "mailproxy", "cleartext_login", KW_BOOL, S(mailproxy, cleartext_login), 0, "no" },
	{ "mailproxy", "upstream_tls", KW_BOOL, S(mailproxy, upstream_tls), 0, "no" },
	{ "mailproxy", "upstream_ca", KW_STR, S(mailproxy, upstream_ca), 0, NULL },
	{ "mailproxy", "upstream_verify", KW_BOOL, S(mailproxy, upstream_verify), 0, "yes" },
	{ "mailproxy", "send_id", KW_BOOL, S(mailproxy, send_id), 0, "yes" },
	{ "mailproxy", "send_xoip", KW_BOOL, S(mailproxy, send_xoip), 0, "yes" },
	{ "mailproxy", "threads", KW_U32, S(mailproxy, threads), 256, "4" },
	{ "mailproxy", "queue_size", KW_U32, S(mailproxy, queue_size), 1000000, "4096" },
	{ "mailproxy", "connect_timeout", KW_MS, S(mailproxy, connect_timeout_ms), 600000, "5s" },
	{ "mailproxy", "upstream_timeout", KW_MS, S(mailproxy, upstream_timeout_ms), 600000, "15s" },
	{ "mailproxy", "login_timeout", KW_MS, S(mailproxy, login_timeout_ms), 3600000, "60s" },
	{ "mailproxy", "failure_delay", KW_MS, S(mailproxy, failure_delay_ms), 60000, "2s" },
	{ "mailproxy", "handshake_timeout", KW_MS, S(mailproxy, handshake_timeout_ms), 600000, "10s" },
	{ "mailproxy", "imap_idle_timeout", KW_MS, S(mailproxy, imap_idle_timeout_ms), 86400000, "30m" },
	{ "mailproxy", "pop3_idle_timeout", KW_MS, S(mailproxy, pop3_idle_timeout_ms), 86400000, "10m" },
	{ "mailproxy", "shutdown_grace", KW_MS, S(mailproxy, shutdown_grace_ms), 86400000, "30s" },
	{ "mailproxy", "max_connections", KW_U32, S(mailproxy, max_connections), 10000000, "10000" },
	{ "mailproxy", "max_handshakes", KW_U32, S(mailproxy, max_handshakes), 1000000, "256" },
	{ "mailproxy", "max_bad_commands", KW_U32, S(mailproxy, max_bad_commands), 1000, "3" },
	{ "mailproxy", "upstream_retries", KW_U32, S(mailproxy, upstream_retries), 10, "2" },
	{ "mailproxy", "buffer_size", KW_U32, S(mailproxy, buffer_size), 16777216, "65536" },
	{ "mailproxy", "greeting_imap", KW_STR, S(mailproxy, greeting_imap), 0, "gatehouse IMAP proxy ready" },
	{ "mailproxy", "greeting_pop3", KW_STR, S(mailproxy, greeting_pop3), 0, "gatehouse POP3 proxy ready" },
	{ "mailproxy", "metrics", KW_STR, S(mailproxy, metrics), 0, NULL },
	{ "mailproxy", "audit_log", KW_STR, S(mailproxy, audit_log), 0, NULL },
	{ "mailproxy", "gssapi_keytab", KW_STR, S(mailproxy, gssapi_keytab), 0, NULL },
	{ "mailproxy", "gssapi_hostname", KW_STR, S(mailproxy, gssapi_hostname), 0, NULL },
	{ "mailproxy", "gssapi_realm", KW_STR, S(mailproxy, gssapi_realm), 0, NULL },
	{ "mailproxy", "gssapi_realms", KW_LIST, S(mailproxy, gssapi_realms), 0, NULL },
	{ "mailproxy", "gssapi_threads", KW_U32, S(mailproxy, gssapi_threads), 64, "2" },
	{ "mailproxy", "master_user", KW_STR, S(mailproxy, master_user), 0, NULL },
	{ "mailproxy", "master_password_file", KW_STR, S(mailproxy, master_password_file), 0, NULL },
	{ "mailproxy", "master_cleartext_loopback", KW_BOOL, S(mailproxy, master_cleartext_loopback),
	  0, "no" },

	{ "cluster", "spoa_metrics", KW_ADDRLIST, S(cluster, spoa_metrics), 0, NULL },
	{ "cluster", "mailproxy_metrics", KW_ADDRLIST, S(cluster, mailproxy_metrics), 0, NULL },
};

/* Keys of a [server NAME] section, by protocol. */
static const char *server_port_keys[PROTO__COUNT] = {
	"http", "https", "imap", "imaps", "pop3", "pop3s"
};

/* The other keys of a [server NAME] section (listed by cfg_key()). */
static const char *server_other_keys[] = { "address", "tls_name", "admin" };

/* Parser state passed through libinih. */
struct load {
	struct gh_config *cfg;
	const char *path;
	FILE *fp;
	int line;                    /* line of the last line read */
	int section_line;            /* line of the last [section] header */
	int failed;
	char *err;
	size_t errlen;
	unsigned char seen[sizeof(keywords) / sizeof(keywords[0])];
	struct cfg_server *server;   /* current [server NAME], or NULL */
	unsigned server_seen;        /* bit per key of the current server */
};

static void
load_fail(struct load *ld, const char *key, const char *fmt, const char *arg)
{
	char why[256];
	int n;

	if (ld->failed++)
		return;
	n = snprintf(why, sizeof(why), fmt, arg ? arg : "");
	if (n < 0)
		why[0] = '\0';
	snprintf(ld->err, ld->errlen, "%s:%d: %s: %s", ld->path, ld->line, key, why);
}

static int
set_string(char *dst, size_t size, const char *value)
{
	size_t n = strlen(value);

	if (n >= size)
		return -1;
	memcpy(dst, value, n + 1);
	return 0;
}

/*
 * Tell whether <s> is an LDAP attribute description: a name or OID of
 * letters, digits, '-' and '.' starting with a letter or digit, with ';'
 * options, shorter than CFG_NAME_MAX.
 */
static int
valid_attr(const char *s)
{
	const char *p;

	if (strlen(s) >= CFG_NAME_MAX ||
	    !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
		return 0;
	for (p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == ';'))
			return 0;
	return 1;
}

/* Tell whether <s> is an http:// or https:// URL with a host. */
static int
valid_url(const char *s)
{
	size_t n = strncasecmp(s, "https://", 8) == 0 ? 8 : strncasecmp(s, "http://", 7) == 0 ? 7 : 0;

	return n > 0 && s[n] != '\0' && s[n] != '/';
}

/*
 * Append the space-separated words of <value> to <list>; <check> 1 requires
 * each to be ip:port, 2 an address or CIDR, 3 an LDAP attribute name, 4 a
 * listen address, 5 an http(s) URL.
 */
static int
set_list(struct cfg_list *list, const char *value, int check)
{
	char buf[CFG_STR_MAX * 2];
	char *save = NULL, *tok;

	if (set_string(buf, sizeof(buf), value) < 0)
		return -1;
	for (tok = strtok_r(buf, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
		if (list->n >= CFG_MAX_LISTS)
			return -1;
		if (check == 1) {
			struct sockaddr_storage ss;
			socklen_t len;

			if (parse_addr(tok, 0, &ss, &len) < 0)
				return -1;
		} else if (check == 2) {
			struct cidr c;

			if (cidr_parse(tok, &c) < 0)
				return -1;
		} else if (check == 3 && !valid_attr(tok)) {
			return -1;
		} else if (check == 4) {
			struct sockaddr_storage ss;
			socklen_t len;

			if (parse_listen_addr(tok, &ss, &len) < 0)
				return -1;
		} else if (check == 5 && !valid_url(tok)) {
			return -1;
		}
		if (set_string(list->item[list->n], sizeof(list->item[0]), tok) < 0)
			return -1;
		list->n++;
	}
	return 0;
}

/* A filter must contain %s at least once and no other conversion. */
static int
check_filter(const char *f)
{
	int seen = 0;

	for (; *f; f++) {
		if (*f != '%')
			continue;
		if (f[1] != 's')
			return -1;
		seen = 1;
		f++;
	}
	return seen ? 0 : -1;
}

static int
kw_set(struct gh_config *cfg, const struct kw *k, const char *value, const char **why)
{
	char *base = (char *)cfg + k->off;
	uint64_t v;

	switch (k->type) {
	case KW_STR:
		*why = "value too long";
		return set_string(base, k->size, value);
	case KW_FILTER:
		*why = "a filter needs %s for the value and no other %";
		if (check_filter(value) < 0)
			return -1;
		return set_string(base, k->size, value);
	case KW_LIST:
		*why = "too many or too long entries";
		return set_list((struct cfg_list *)(void *)base, value, 0);
	case KW_ADDRLIST:
		*why = "expected ip:port or [ipv6]:port entries";
		return set_list((struct cfg_list *)(void *)base, value, 1);
	case KW_LISTENLIST:
		*why = "expected ip:port, [ipv6]:port or unix@/path entries";
		return set_list((struct cfg_list *)(void *)base, value, 4);
	case KW_CIDRLIST:
		*why = "expected IPv4 or IPv6 addresses or CIDRs (192.0.2.0/24, 2001:db8::/32)";
		return set_list((struct cfg_list *)(void *)base, value, 2);
	case KW_ATTRLIST:
		*why = "expected LDAP attribute names (letters, digits, - . ;), at most 16";
		return set_list((struct cfg_list *)(void *)base, value, 3);
	case KW_URLLIST:
		*why = "expected http:// or https:// URLs, at most 16";
		return set_list((struct cfg_list *)(void *)base, value, 5);
	case KW_SOURCE:
		*why = "expected ldap or http";
		if (strcmp(value, "ldap") == 0)
			*(int *)(void *)base = LOOKUP_LDAP;
		else if (strcmp(value, "http") == 0)
			*(int *)(void *)base = LOOKUP_HTTP;
		else
			return -1;
		return 0;
	case KW_U32:
		*why = "expected a whole number in range";
		if (parse_uint(value, k->max, &v) < 0)
			return -1;
		*(uint32_t *)(void *)base = (uint32_t)v;
		return 0;
	case KW_MS:
	case KW_SEC:
		*why = "expected a duration (500ms, 30s, 5m, 1h, 1d) in range";
		if (parse_duration_ms(value, &v) < 0)
			return -1;
		if (k->type == KW_SEC) {
			if (v % 1000 != 0)
				return -1;
			v /= 1000;
		}
		if (v > k->max)
			return -1;
		*(uint32_t *)(void *)base = (uint32_t)v;
		return 0;
	case KW_BOOL:
		*why = "expected yes or no";
		return parse_bool(value, (int *)(void *)base);
	}
	return -1;
}

static int
server_key(struct load *ld, const char *name, const char *value)
{
	struct cfg_server *srv = ld->server;
	unsigned bit;
	uint64_t v;
	int i;

	for (i = 0; i < PROTO__COUNT; i++) {
		if (strcmp(name, server_port_keys[i]) != 0)
			continue;
		bit = 1u << i;
		if (ld->server_seen & bit)
			goto dup;
		ld->server_seen |= bit;
		if (parse_uint(value, 65535, &v) < 0 || v == 0) {
			load_fail(ld, name, "expected a port number, got '%s'", value);
			return 0;
		}
		srv->port[i] = (uint16_t)v;
		return 1;
	}
	if (strcmp(name, "address") == 0) {
		bit = 1u << 16;
		if (ld->server_seen & bit)
			goto dup;
		ld->server_seen |= bit;
		if (set_string(srv->address, sizeof(srv->address), value) < 0 ||
		    parse_addr(value, 1, &srv->addr, &srv->addrlen) < 0) {
			load_fail(ld, name, "expected an IP address, got '%s'", value);
			return 0;
		}
		if (srv->addr.ss_family == AF_INET)
			((struct sockaddr_in *)&srv->addr)->sin_port = 0;
		else
			((struct sockaddr_in6 *)&srv->addr)->sin6_port = 0;
		return 1;
	}
	if (strcmp(name, "admin") == 0) {
		/* not a route protocol: only HAProxy's admin backend uses it */
		bit = 1u << 18;
		if (ld->server_seen & bit)
			goto dup;
		ld->server_seen |= bit;
		if (parse_uint(value, 65535, &v) < 0 || v == 0) {
			load_fail(ld, name, "expected a port number, got '%s'", value);
			return 0;
		}
		srv->admin_port = (uint16_t)v;
		return 1;
	}
	if (strcmp(name, "tls_name") == 0) {
		bit = 1u << 17;
		if (ld->server_seen & bit)
			goto dup;
		ld->server_seen |= bit;
		if (set_string(srv->tls_name, sizeof(srv->tls_name), value) < 0) {
			load_fail(ld, name, "value too long", NULL);
			return 0;
		}
		return 1;
	}
	load_fail(ld, name, "unknown key in [server %s]", srv->name);
	return 0;
dup:
	load_fail(ld, name, "duplicate key in [server %s]", srv->name);
	return 0;
}

static int
server_check(struct load *ld)
{
	struct cfg_server *srv = ld->server;
	int i, any = 0;

	if (srv == NULL)
		return 0;
	for (i = 0; i < PROTO__COUNT; i++)
		any |= srv->port[i] != 0;
	any |= srv->admin_port != 0;
	if (srv->address[0] == '\0') {
		snprintf(ld->err, ld->errlen, "%s:%d: address: missing in [server %s]",
		         ld->path, srv->line, srv->name);
		return -1;
	}
	if (!any) {
		snprintf(ld->err, ld->errlen, "%s:%d: [server %s]: no port (http, https, imap, "
		         "imaps, pop3, pop3s, admin) given", ld->path, srv->line, srv->name);
		return -1;
	}
	if (srv->tls_name[0] == '\0')
		(void)set_string(srv->tls_name, sizeof(srv->tls_name), srv->name);
	return 0;
}

static int
valid_server_name(const char *s)
{
	if (*s == '\0' || strlen(s) >= CFG_NAME_MAX)
		return 0;
	for (; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' || *s == '_'))
			return 0;
	}
	return 1;
}

static int
on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct load *ld = user;
	size_t i;

	if (ld->failed)
		return 0;
	if (strncmp(section, "server ", 7) == 0) {
		const char *sname = section + 7;

		while (*sname == ' ')
			sname++;
		if (ld->server == NULL || strcmp(ld->server->name, sname) != 0) {
			if (server_check(ld) < 0) {
				ld->failed++;
				return 0;
			}
			if (!valid_server_name(sname)) {
				load_fail(ld, section, "bad server name (letters, digits, . - _)", NULL);
				return 0;
			}
			if (cfg_server_find(ld->cfg, sname) != NULL) {
				load_fail(ld, section, "server declared twice", NULL);
				return 0;
			}
			if (ld->cfg->nservers >= CFG_MAX_SERVERS) {
				load_fail(ld, section, "too many servers", NULL);
				return 0;
			}
			ld->server = &ld->cfg->servers[ld->cfg->nservers++];
			memset(ld->server, 0, sizeof(*ld->server));
			(void)set_string(ld->server->name, sizeof(ld->server->name), sname);
			ld->server->line = ld->section_line;
			ld->server_seen = 0;
		}
		return server_key(ld, name, value);
	}
	for (i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		const struct kw *k = &keywords[i];
		const char *why = "bad value";

		if (strcmp(k->section, section) != 0 || strcmp(k->name, name) != 0)
			continue;
		if (ld->seen[i] && k->type != KW_LIST && k->type != KW_ADDRLIST && k->type != KW_LISTENLIST &&
		    k->type != KW_CIDRLIST && k->type != KW_ATTRLIST && k->type != KW_URLLIST) {
			load_fail(ld, name, "duplicate key in [%s]", section);
			return 0;
		}
		if (!ld->seen[i] && (k->type == KW_LIST || k->type == KW_ADDRLIST ||
		                    k->type == KW_CIDRLIST || k->type == KW_ATTRLIST ||
		                    k->type == KW_URLLIST))
			((struct cfg_list *)(void *)((char *)ld->cfg + k->off))->n = 0;
		ld->seen[i] = 1;
		if (kw_set(ld->cfg, k, value, &why) < 0) {
			char msg[200];

			snprintf(msg, sizeof(msg), "%s", why);
			load_fail(ld, name, "%s", msg);
			return 0;
		}
		return 1;
	}
	for (i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		if (strcmp(keywords[i].section, section) == 0) {
			load_fail(ld, name, "unknown key in [%s]", section);
			return 0;
		}
	}
	load_fail(ld, section[0] ? section : name, "unknown section", NULL);
	return 0;
}

/*
 * libinih reads through this so that we know the current line number and
 * the line of the last section header. libinih's line buffer is small
 * (INI_MAX_LINE): a longer line would be split silently into two lines, so
 * it is refused here with its line number instead.
 */
static char *
reader(char *str, int num, void *stream)
{
	struct load *ld = stream;
	char *r = fgets(str, num, ld->fp);
	size_t n;
	int c;

	if (r == NULL)
		return NULL;
	ld->line++;
	n = strlen(str);
	if (num > 1 && n == (size_t)num - 1 && str[n - 1] != '\n') {
		c = getc(ld->fp);
		if (c != '\n' && c != EOF) {
			if (!ld->failed++)
				snprintf(ld->err, ld->errlen, "%s:%d: line too long (at most %d bytes; "
				         "a list may be split over several lines with the same key)",
				         ld->path, ld->line, num - 2);
			return NULL;
		}
	}
	r = str + strspn(str, " \t");
	if (*r == '[')
		ld->section_line = ld->line;
	return str;
}

static int
read_password(struct load *ld)
{
	struct cfg_ldap *l = &ld->cfg->ldap;
	char why[CFG_STR_MAX + 128];

	if (l->bind_password_file[0] == '\0')
		return 0;
	/* an empty password would be an unauthenticated bind: never what is meant */
	if (secret_read(l->bind_password_file, l->bind_password, sizeof(l->bind_password), why,
	                sizeof(why)) < 0) {
		snprintf(ld->err, ld->errlen, "%s: bind_password_file: %s", ld->path, why);
		return -1;
	}
	return 0;
}

static int
check_required(struct load *ld, unsigned need)
{
	struct gh_config *c = ld->cfg;
	const char *miss = NULL;
	const struct cfg_throttle *t = &c->throttle;
	struct logger lg;

	/* the route source: [ldap], or the auth_http service of [lookup] */
	if ((need & CFG_NEED_LDAP) && c->lookup.source == LOOKUP_HTTP && c->lookup.urls.n == 0)
		miss = "[lookup] urls (source = http)";
	else if ((need & CFG_NEED_LDAP) && c->lookup.source == LOOKUP_LDAP && c->ldap.uri.n == 0)
		miss = "[ldap] uri";
	else if ((need & CFG_NEED_LDAP) && c->lookup.source == LOOKUP_LDAP && c->ldap.base[0] == '\0')
		miss = "[ldap] base";
	else if ((need & CFG_NEED_SERVERS) && c->nservers == 0)
		miss = "a [server NAME] section";
	else if ((need & CFG_NEED_SPOA) && c->spoa.listen.n == 0)
		miss = "[spoa] listen";
	else if ((need & CFG_NEED_MAILPROXY) && c->mailproxy.imap.n + c->mailproxy.imaps.n +
	         c->mailproxy.pop3.n + c->mailproxy.pop3s.n == 0)
		miss = "[mailproxy] imap, imaps, pop3 or pop3s";
	else if (c->memcached.servers.n == 0 && (t->ip_max || t->user_max ||
	         t->ip_fail_max || t->user_fail_max))
		miss = "[memcached] servers (throttling keeps its counters there)";
	if (miss != NULL) {
		snprintf(ld->err, ld->errlen, "%s: missing %s", ld->path, miss);
		return -1;
	}
	if (c->ldap.bind_dn[0] != '\0' && c->ldap.bind_password_file[0] == '\0') {
		snprintf(ld->err, ld->errlen, "%s: [ldap] bind_dn needs bind_password_file", ld->path);
		return -1;
	}
	/* what the logger will refuse at start, refused by -t already */
	if (log_init(&lg, NULL, "stderr", c->log.level, c->log.facility) < 0) {
		snprintf(ld->err, ld->errlen, "%s: [log] level (err, warning, notice, info, debug) "
		         "or facility (mail, daemon, local0..local7, ...) unknown", ld->path);
		return -1;
	}
	if (strcmp(c->log.target, "stderr") != 0 && strcmp(c->log.target, "syslog") != 0) {
		snprintf(ld->err, ld->errlen, "%s: [log] target must be stderr or syslog", ld->path);
		return -1;
	}
	return 0;
}

/*
 * Allocate a configuration holding every default. Returns NULL when out of
 * memory.
 */
struct gh_config *
cfg_new(void)
{
	struct gh_config *cfg = calloc(1, sizeof(*cfg));
	size_t i;

	if (cfg == NULL)
		return NULL;
	for (i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		const char *why;

		if (keywords[i].def != NULL && kw_set(cfg, &keywords[i], keywords[i].def, &why) < 0) {
			free(cfg);	/* a broken default is a programming error */
			return NULL;
		}
	}
	return cfg;
}

/*
 * Load <path> into <cfg> and check the parts named by <need>. Returns 0, or
 * -1 with "file:line: key: reason" in <err>.
 */
int
cfg_load(struct gh_config *cfg, const char *path, unsigned need, char *err, size_t errlen)
{
	struct load ld;
	int rc;

	memset(&ld, 0, sizeof(ld));
	ld.cfg = cfg;
	ld.path = path;
	ld.err = err;
	ld.errlen = errlen;
	if (set_string(cfg->path, sizeof(cfg->path), path) < 0) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	ld.fp = fopen(path, "r");
	if (ld.fp == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	rc = ini_parse_stream(reader, &ld, on_entry, &ld);
	fclose(ld.fp);
	if (rc != 0 && !ld.failed) {
		/* a syntax error found by the tokenizer itself */
		snprintf(err, errlen, "%s:%d: syntax error (expected [section] or key = value)",
		         path, rc > 0 ? rc : ld.line);
		return -1;
	}
	if (ld.failed)
		return -1;
	if (server_check(&ld) < 0)
		return -1;
	if (check_required(&ld, need) < 0)
		return -1;
	return read_password(&ld);
}

/*
 * Find the server called <name> (case-insensitive) in <cfg>. Returns it or
 * NULL.
 */
const struct cfg_server *
cfg_server_find(const struct gh_config *cfg, const char *name)
{
	int i;

	for (i = 0; i < cfg->nservers; i++)
		if (strcasecmp(cfg->servers[i].name, name) == 0)
			return &cfg->servers[i];
	return NULL;
}

/*
 * Find the server whose address equals the address of <sa> (port ignored).
 * Returns it or NULL.
 */
const struct cfg_server *
cfg_server_by_addr(const struct gh_config *cfg, const struct sockaddr *sa)
{
	int i;

	for (i = 0; i < cfg->nservers; i++) {
		const struct sockaddr_storage *a = &cfg->servers[i].addr;

		if (a->ss_family != sa->sa_family)
			continue;
		if (sa->sa_family == AF_INET &&
		    memcmp(&((const struct sockaddr_in *)a)->sin_addr,
		           &((const struct sockaddr_in *)sa)->sin_addr, 4) == 0)
			return &cfg->servers[i];
		if (sa->sa_family == AF_INET6 &&
		    memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		           &((const struct sockaddr_in6 *)sa)->sin6_addr, 16) == 0)
			return &cfg->servers[i];
	}
	return NULL;
}

/* Return the name of protocol <p>. */
const char *
cfg_proto_name(enum gh_proto p)
{
	return (p >= 0 && p < PROTO__COUNT) ? server_port_keys[p] : "?";
}

/* Parse protocol name <s> into <p>. Returns 0 or -1. */
int
cfg_proto_parse(const char *s, enum gh_proto *p)
{
	int i;

	for (i = 0; i < PROTO__COUNT; i++) {
		if (strcasecmp(s, server_port_keys[i]) == 0) {
			*p = (enum gh_proto)i;
			return 0;
		}
	}
	return -1;
}

/*
 * Name key number <i> of the configuration: its <section> ("server" for a
 * [server NAME] section) and its <name>, and its default in <def> (NULL when
 * none). Lets tools list every key the loader knows. Returns 0, or -1 when
 * <i> is past the last key.
 */
int
cfg_key(size_t i, const char **section, const char **name, const char **def)
{
	const size_t nkw = sizeof(keywords) / sizeof(keywords[0]);
	const size_t nother = sizeof(server_other_keys) / sizeof(server_other_keys[0]);

	if (i < nkw) {
		*section = keywords[i].section;
		*name = keywords[i].name;
		*def = keywords[i].def;
		return 0;
	}
	i -= nkw;
	*section = "server";
	*def = NULL;
	if (i < nother) {
		*name = server_other_keys[i];
		return 0;
	}
	i -= nother;
	if (i < PROTO__COUNT) {
		*name = server_port_keys[i];
		return 0;
	}
	return -1;
}
