/*
 * gatehouse status: the health of every part (LDAP, memcached, mailbox
 * servers, the daemons' metrics endpoints) and a short metrics summary.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dir.h"
#include "hapi.h"
#include "health.h"

#define STATUS_TIMEOUT_MS  1000
#define STATUS_METRICS_MAX (1024 * 1024)

static int run(struct cli *c, int argc, char **argv);

const struct cli_cmd cmd_status = {
	"status",
	"health of every part and a metrics summary",
	run,
	"NAME\n"
	"    gatehouse status - health of every part and a metrics summary\n"
	"\n"
	"SYNOPSIS\n"
	"    gatehouse [-c FILE] [--json] status\n"
	"\n"
	"DESCRIPTION\n"
	"    Checks, within about a second each: every [ldap] uri (connect and\n"
	"    bind), every [memcached] server (\"version\"), every port of every\n"
	"    [server] (TCP connect), and the metrics endpoints of gatehouse-spoa\n"
	"    ([spoa] metrics) and gatehouse-mailproxy ([mailproxy] metrics) when\n"
	"    configured, whose /metrics is fetched and summarised (sessions,\n"
	"    logins, routes), and those of the other nodes of a cluster\n"
	"    ([cluster] spoa_metrics, mailproxy_metrics). One line per part:\n"
	"\n"
	"        ldap       ldap://192.0.2.5:389  up\n"
	"        memcached  192.0.2.6:11211       up\n"
	"        server     mbox1 imap 7143       down  Connection refused\n"
	"        spoa       127.0.0.1:9101        up    route_ok=12 route_fail=0 ...\n"
	"        haproxy    /run/haproxy/admin.sock  up  routes=812/102400 hits=9120 misses=431 hit_rate=0.955\n"
	"\n"
	"    The haproxy lines come from the admin sockets of [spoa]\n"
	"    haproxy_admin: the route table's fill (show table gh_routes) and the\n"
	"    requests routed from it (hits) or asked of the agent (misses), since\n"
	"    HAProxy started.\n"
	"    With --json: {\"healthy\":BOOL,\"parts\":[{\"kind\",\"name\",\"up\",\n"
	"    \"error\",\"metrics\":{NAME:VALUE}}]}.\n"
	"\n"
	"EXIT STATUS\n"
	"    0  every part is healthy\n"
	"    1  something is down, or the configuration is not valid\n"
	"    2  usage error\n",
};

/* Counters summarised per daemon (samples of one name are added up). */
static const char *const spoa_counters[] = {
	"gatehouse_spoa_connections", "gatehouse_spoa_route_ok_total",
	"gatehouse_spoa_route_none_total", "gatehouse_spoa_route_fail_total",
	"gatehouse_spoa_busy_total", "gatehouse_spoa_deadline_total", NULL,
};
static const char *const mail_counters[] = {
	"gatehouse_mail_sessions", "gatehouse_mail_login_ok_total",
	"gatehouse_mail_login_fail_total", "gatehouse_mail_login_tempfail_total",
	"gatehouse_mail_upstream_connect_fail_total", NULL,
};

/* Print one part; <metrics> is a JSON object text or NULL. */
static void
part(const struct cli *c, int *first, const char *kind, const char *name, int up,
     const char *err, const char *metrics)
{
	if (c->json) {
		fputs(*first ? "{\"kind\":" : ",{\"kind\":", stdout);
		cli_json_str(stdout, kind);
		fputs(",\"name\":", stdout);
		cli_json_str(stdout, name);
		printf(",\"up\":%s", up ? "true" : "false");
		if (!up) {
			fputs(",\"error\":", stdout);
			cli_json_str(stdout, err);
		}
		if (metrics != NULL)
			printf(",\"metrics\":%s", metrics);
		fputc('}', stdout);
	} else {
		printf("%-10s %-36s %-5s %s\n", kind, name, up ? "up" : "down", up ? "" : err);
	}
	*first = 0;
}

/* Print the route table of the HAProxy on admin socket <sock>. Returns 1
 * when it answered, else 0. */
static int
haproxy_part(const struct cli *c, int *first, const char *sock)
{
	struct hapi_table t;
	char why[512], js[256], txt[256];
	long asked;

	if (hapi_routes_stats(sock, &t, why, sizeof(why)) < 0) {
		part(c, first, "haproxy", sock, 0, why, NULL);
		return 0;
	}
	asked = t.hits + t.misses;
	snprintf(js, sizeof(js), "{\"routes\":%ld,\"size\":%ld,\"hits\":%ld,\"misses\":%ld,"
	         "\"hit_rate\":%.3f}", t.used, t.size, t.hits, t.misses,
	         asked ? (double)t.hits / (double)asked : 0.0);
	snprintf(txt, sizeof(txt), "routes=%ld/%ld hits=%ld misses=%ld hit_rate=%.3f", t.used,
	         t.size, t.hits, t.misses, asked ? (double)t.hits / (double)asked : 0.0);
	if (c->json) {
		part(c, first, "haproxy", sock, 1, NULL, js);
	} else {
		printf("%-10s %-36s %-5s %s\n", "haproxy", sock, "up", txt);
		*first = 0;
	}
	return 1;
}

/* Sum the samples of metric <name> in Prometheus text <body>. */
static double
metric_sum(const char *body, const char *name)
{
	size_t nl = strlen(name);
	const char *p = body;
	double sum = 0;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, name, nl) == 0 && (p[nl] == ' ' || p[nl] == '{')) {
			const char *v = strchr(p + nl, ' ');

			if (p[nl] == '{') {
				const char *close = strchr(p + nl, '}');

				v = close != NULL ? strchr(close, ' ') : NULL;
			}
			if (v != NULL)
				sum += strtod(v + 1, NULL);
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return sum;
}

/* Fetch <addr>/metrics and report it as part <kind>. Returns 1 if up. */
static int
metrics_part(const struct cli *c, int *first, const char *kind, const char *addr,
             const char *const *names, size_t prefix)
{
	char err[256] = "", js[1024], txt[1024];
	char *body = malloc(STATUS_METRICS_MAX);
	size_t jo = 0, to = 0;
	int st, i;

	if (body == NULL) {
		part(c, first, kind, addr, 0, "out of memory", NULL);
		return 0;
	}
	st = health_http_get(addr, "/metrics", STATUS_TIMEOUT_MS, body, STATUS_METRICS_MAX, err,
	                     sizeof(err));
	if (st != 200) {
		if (st > 0)
			snprintf(err, sizeof(err), "HTTP status %d", st);
		part(c, first, kind, addr, 0, err, NULL);
		free(body);
		return 0;
	}
	js[jo++] = '{';
	js[jo] = '\0';
	txt[0] = '\0';
	for (i = 0; names[i] != NULL; i++) {
		double v = metric_sum(body, names[i]);
		int n;

		n = snprintf(js + jo, sizeof(js) - jo, "%s\"%s\":%.0f", i ? "," : "",
		             names[i] + prefix, v);
		if (n > 0 && (size_t)n < sizeof(js) - jo)
			jo += (size_t)n;
		n = snprintf(txt + to, sizeof(txt) - to, "%s=%.0f ", names[i] + prefix, v);
		if (n > 0 && (size_t)n < sizeof(txt) - to)
			to += (size_t)n;
	}
	if (jo + 2 <= sizeof(js)) {
		js[jo++] = '}';
		js[jo] = '\0';
	}
	free(body);
	if (c->json) {
		part(c, first, kind, addr, 1, NULL, js);
	} else {
		printf("%-10s %-36s %-5s %s\n", kind, addr, "up", txt);
		*first = 0;
	}
	return 1;
}

/*
 * Report every daemon of kind <kind>: this node's (<own>, may be empty) and
 * the cluster's (<peers>), each endpoint once. Returns how many are down.
 */
static int
daemons_part(const struct cli *c, int *first, const char *kind, const char *own,
             const struct cfg_list *peers, const char *const *names, size_t prefix)
{
	int i, j, down = 0;

	if (own[0] != '\0')
		down += !metrics_part(c, first, kind, own, names, prefix);
	for (i = 0; i < peers->n; i++) {
		int seen = strcmp(peers->item[i], own) == 0;

		for (j = 0; j < i && !seen; j++)
			seen = strcmp(peers->item[i], peers->item[j]) == 0;
		if (!seen)
			down += !metrics_part(c, first, kind, peers->item[i], names, prefix);
	}
	return down;
}

static int
run(struct cli *c, int argc, char **argv)
{
	const struct gh_config *cfg;
	struct health_probe *p;
	int i, k, n = 0, down = 0, first = 1, rc;

	for (i = 1; i < argc; i++) {
		if (cli_is_help(argv[i]))
			return cli_help(&cmd_status);
		return cli_usage(&cmd_status, "no arguments expected");
	}
	if ((rc = cli_load_config(c, 0)) != CLI_OK)
		return rc;
	cfg = c->cfg;
	if (c->json)
		fputs("{\"parts\":[", stdout);
	for (i = 0; i < cfg->ldap.uri.n; i++) {
		char err[256] = "";
		int ok = dir_probe(&cfg->ldap, cfg->ldap.uri.item[i], STATUS_TIMEOUT_MS, err,
		                   sizeof(err)) == 0;

		down += !ok;
		part(c, &first, "ldap", cfg->ldap.uri.item[i], ok, err, NULL);
	}
	for (i = 0; i < cfg->memcached.servers.n; i++) {
		char err[256] = "", ver[64];
		int ok = health_memcached(cfg->memcached.servers.item[i], STATUS_TIMEOUT_MS, ver,
		                          sizeof(ver), err, sizeof(err)) == 0;

		down += !ok;
		part(c, &first, "memcached", cfg->memcached.servers.item[i], ok, err, NULL);
	}
	p = calloc((size_t)cfg->nservers * PROTO__COUNT + 1, sizeof(*p));
	if (p == NULL) {
		cli_error("out of memory");
		return CLI_TEMP;
	}
	for (i = 0; i < cfg->nservers; i++) {
		for (k = 0; k < PROTO__COUNT; k++) {
			if (cfg->servers[i].port[k] == 0)
				continue;
			memcpy(&p[n].addr, &cfg->servers[i].addr, sizeof(p[n].addr));
			p[n].len = cfg->servers[i].addrlen;
			if (p[n].addr.ss_family == AF_INET6)
				((struct sockaddr_in6 *)&p[n].addr)->sin6_port =
					htons(cfg->servers[i].port[k]);
			else
				((struct sockaddr_in *)&p[n].addr)->sin_port =
					htons(cfg->servers[i].port[k]);
			n++;
		}
	}
	health_tcp_many(p, n, STATUS_TIMEOUT_MS);
	for (i = 0, n = 0; i < cfg->nservers; i++) {
		for (k = 0; k < PROTO__COUNT; k++) {
			char name[256];

			if (cfg->servers[i].port[k] == 0)
				continue;
			snprintf(name, sizeof(name), "%s %s %u", cfg->servers[i].name,
			         cfg_proto_name((enum gh_proto)k), (unsigned)cfg->servers[i].port[k]);
			down += !p[n].ok;
			part(c, &first, "server", name, p[n].ok, p[n].err, NULL);
			n++;
		}
	}
	free(p);
	down += daemons_part(c, &first, "spoa", cfg->spoa.metrics, &cfg->cluster.spoa_metrics,
	                     spoa_counters, strlen("gatehouse_spoa_"));
	down += daemons_part(c, &first, "mailproxy", cfg->mailproxy.metrics,
	                     &cfg->cluster.mailproxy_metrics, mail_counters,
	                     strlen("gatehouse_mail_"));
	for (i = 0; i < cfg->spoa.haproxy_admin.n; i++)
		down += !haproxy_part(c, &first, cfg->spoa.haproxy_admin.item[i]);
	if (c->json)
		printf("],\"healthy\":%s,\"down\":%d}\n", down ? "false" : "true", down);
	else
		printf("%s\n", down ? "UNHEALTHY" : "healthy");
	return down ? CLI_NO : CLI_OK;
}
