/*
 * gatehouse haproxy-servers: write the mailbox server list HAProxy loads
 * (gatehouse-servers.cfg: backend be_pool, client-IP hash, and be_admin,
 * the admin console's servers), the list of
 * allowed route destinations (allowed-dst.lst) and the route table's maps
 * (routes.map, route-index.map), from the [server] table.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "parse.h"

static int run(struct cli *c, int argc, char **argv);

const struct cli_cmd cmd_haproxy_servers = {
	"haproxy-servers",
	"write HAProxy's mailbox server list (IP-hash pool)",
	run,
	"NAME\n"
	"    gatehouse haproxy-servers - write HAProxy's mailbox server list\n"
	"\n"
	"SYNOPSIS\n"
	"    gatehouse [-c FILE] [--json] haproxy-servers [-o DIR]\n"
	"\n"
	"DESCRIPTION\n"
	"    Without -o, prints the pool configuration on stdout. With -o, writes\n"
	"    DIR/gatehouse-servers.cfg, DIR/allowed-dst.lst, DIR/routes.map and\n"
	"    DIR/route-index.map, each atomically (a temporary file renamed over\n"
	"    the old one); reload HAProxy after (a reload also empties its route\n"
	"    table, whose server numbers these files define).\n"
	"\n"
	"    gatehouse-servers.cfg, loaded with a second -f after haproxy.cfg:\n"
	"        backend be_pool\n"
	"            balance source\n"
	"            hash-type consistent\n"
	"            server mbox1 192.0.2.10:8080 check inter 2s\n"
	"    one server line per [server] with an http port, sorted by name;\n"
	"    then the admin console's servers (the frontend on $GH_ADMIN_BIND):\n"
	"        backend be_admin\n"
	"            balance source\n"
	"            hash-type consistent\n"
	"        .if streq(\"${GH_UPSTREAM_PROTO-http}\",https)\n"
	"            server mbox1 192.0.2.10:7071 check inter 2s ssl verify required\n"
	"                ca-file ... sni str(mbox1) verifyhost mbox1 check-sni mbox1\n"
	"        .else\n"
	"            server mbox1 192.0.2.10:7071 check inter 2s\n"
	"        .endif\n"
	"    one server per [server] with an admin port (any of them serves any\n"
	"    administrator; a client stays on one while it is up); TLS, verified\n"
	"    with the server's tls_name, when HAProxy runs with\n"
	"    GH_UPSTREAM_PROTO=https. Admin ports are never route destinations.\n"
	"    allowed-dst.lst ($GH_ALLOWED_DST): one \"ip:port\" per line: the http\n"
	"    port and, when different, the https port of every server, the only\n"
	"    destinations a route may use (IPv6 addresses without brackets, as\n"
	"    HAProxy formats the destination it compares).\n"
	"    routes.map ($GH_ROUTES): \"N ip|http|https|name\" per server, N its\n"
	"    place in that order from 1 (the value the route table stores);\n"
	"    route-index.map ($GH_ROUTE_INDEX): \"ip:port|name N\" for its http\n"
	"    and https ports (how HAProxy finds N from the agent's answer).\n"
	"    With --json: {\"servers\":[{\"name\",\"address\",\"port\"}],\n"
	"    \"admin\":[{\"name\",\"address\",\"port\"}], \"files\":[PATH...]}.\n"
	"\n"
	"OPTIONS\n"
	"    -o DIR   write the four files into DIR\n"
	"\n"
	"EXIT STATUS\n"
	"    0  written\n"
	"    1  the configuration is not valid, no server has an http port, or a\n"
	"       tls_name of a server with an admin port is not a plain host name\n"
	"    2  a file cannot be written, or usage error\n",
};

/* qsort_r order of server indexes of configuration <arg> by name. */
static int
by_name(const void *a, const void *b, void *arg)
{
	const struct gh_config *cfg = arg;

	return strcmp(cfg->servers[*(const int *)a].name, cfg->servers[*(const int *)b].name);
}

/* Tell whether <s> is a host name HAProxy's configuration can carry bare. */
static int
plain_name(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

/* Fill <order> with the servers of <cfg> that have an admin port, by name. */
static int
admin_order(const struct gh_config *cfg, int *order)
{
	int i, j, n = 0;

	/* insertion by name: at most CFG_MAX_SERVERS, and cfg stays const */
	for (i = 0; i < cfg->nservers; i++) {
		if (cfg->servers[i].admin_port == 0)
			continue;
		for (j = n; j > 0 && strcmp(cfg->servers[order[j - 1]].name,
		                            cfg->servers[i].name) > 0; j--)
			order[j] = order[j - 1];
		order[j] = i;
		n++;
	}
	return n;
}

/* Write one admin server line of <s>, over TLS when <tls>. */
static void
write_admin_server(FILE *fp, const struct cfg_server *s, int tls)
{
	char ip[128];

	parse_addr_str((const struct sockaddr *)&s->addr, 0, ip, sizeof(ip));
	fprintf(fp, "    server %s %s%s:%u check inter 2s", s->name,
	        s->addr.ss_family == AF_INET6 ? "ipv6@" : "", ip, (unsigned)s->admin_port);
	/* the name checked is the one the server's certificate carries */
	if (tls)
		fprintf(fp, " ssl verify required ca-file "
		        "\"${GH_UPSTREAM_CA-/etc/ssl/certs/ca-certificates.crt}\" "
		        "sni str(%s) verifyhost %s check-sni %s", s->tls_name, s->tls_name,
		        s->tls_name);
	fputc('\n', fp);
}

/*
 * Write the admin console's backend: every server with an admin port,
 * balanced by client address (an administrator stays on one server while
 * it is up), TLS when HAProxy talks TLS to the mailbox servers.
 */
static void
write_admin(FILE *fp, const struct gh_config *cfg)
{
	int order[CFG_MAX_SERVERS];
	int i, n = admin_order(cfg, order);

	fputs("\n# generated: admin console servers (the frontend on GH_ADMIN_BIND)\n"
	      "backend be_admin\n    balance source\n    hash-type consistent\n", fp);
	if (n == 0)
		return;
	fputs(".if streq(\"${GH_UPSTREAM_PROTO-http}\",https)\n", fp);
	for (i = 0; i < n; i++)
		write_admin_server(fp, &cfg->servers[order[i]], 1);
	fputs(".else\n", fp);
	for (i = 0; i < n; i++)
		write_admin_server(fp, &cfg->servers[order[i]], 0);
	fputs(".endif\n", fp);
}

/* Write the pool configuration for <cfg> with servers in <order>[<n>]. */
static void
write_pool(FILE *fp, const struct gh_config *cfg, const int *order, int n)
{
	int i;

	fputs("# generated: mailbox servers for the client-IP-hash pool\n"
	      "backend be_pool\n    balance source\n    hash-type consistent\n", fp);
	for (i = 0; i < n; i++) {
		const struct cfg_server *s = &cfg->servers[order[i]];
		char ip[128];

		/* the parsed address: the configured text may carry a port */
		parse_addr_str((const struct sockaddr *)&s->addr, 0, ip, sizeof(ip));
		fprintf(fp, "    server %s %s%s:%u check inter 2s\n", s->name,
		        s->addr.ss_family == AF_INET6 ? "ipv6@" : "", ip,
		        (unsigned)s->port[PROTO_HTTP]);
	}
	write_admin(fp, cfg);
}

/* Write the allowed destinations. */
static void
write_allowed(FILE *fp, const struct gh_config *cfg, const int *order, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		const struct cfg_server *s = &cfg->servers[order[i]];
		char ip[128];

		parse_addr_str((const struct sockaddr *)&s->addr, 0, ip, sizeof(ip));
		fprintf(fp, "%s:%u\n", ip, (unsigned)s->port[PROTO_HTTP]);
		/* with GH_UPSTREAM_PROTO=https routes point at the https port */
		if (s->port[PROTO_HTTPS] != 0 && s->port[PROTO_HTTPS] != s->port[PROTO_HTTP])
			fprintf(fp, "%s:%u\n", ip, (unsigned)s->port[PROTO_HTTPS]);
	}
}

/* Write the route table's server numbers: N -> route. */
static void
write_routes(FILE *fp, const struct gh_config *cfg, const int *order, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		const struct cfg_server *s = &cfg->servers[order[i]];
		char ip[128];

		parse_addr_str((const struct sockaddr *)&s->addr, 0, ip, sizeof(ip));
		fprintf(fp, "%d %s|%u|%u|%s\n", i + 1, ip, (unsigned)s->port[PROTO_HTTP],
		        (unsigned)(s->port[PROTO_HTTPS] ? s->port[PROTO_HTTPS] : s->port[PROTO_HTTP]),
		        s->name);
	}
}

/* Write the way back: "ip:port|name" -> N, for each port a route may use. */
static void
write_route_index(FILE *fp, const struct gh_config *cfg, const int *order, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		const struct cfg_server *s = &cfg->servers[order[i]];
		char ip[128];

		parse_addr_str((const struct sockaddr *)&s->addr, 0, ip, sizeof(ip));
		fprintf(fp, "%s:%u|%s %d\n", ip, (unsigned)s->port[PROTO_HTTP], s->name, i + 1);
		if (s->port[PROTO_HTTPS] != 0 && s->port[PROTO_HTTPS] != s->port[PROTO_HTTP])
			fprintf(fp, "%s:%u|%s %d\n", ip, (unsigned)s->port[PROTO_HTTPS], s->name,
			        i + 1);
	}
}

/* Write <dir>/<name> atomically with <fn>. Returns 0 or -1 (printed). */
static int
write_atomic(const char *dir, const char *name, const struct gh_config *cfg,
             const int *order, int n,
             void (*fn)(FILE *, const struct gh_config *, const int *, int),
             char *path, size_t plen)
{
	char tmp[CFG_STR_MAX + 64];
	FILE *fp;
	int r1, r2;

	r1 = snprintf(path, plen, "%s/%s", dir, name);
	r2 = snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.%ld", dir, name, (long)getpid());
	if (r1 < 0 || (size_t)r1 >= plen || r2 < 0 || (size_t)r2 >= sizeof(tmp)) {
		cli_error("haproxy-servers: path too long");
		return -1;
	}
	fp = fopen(tmp, "w");
	if (fp == NULL) {
		/* the temporary name means nothing to the operator: name the directory */
		cli_error("haproxy-servers: cannot write into %s: %s", dir, strerror(errno));
		return -1;
	}
	fn(fp, cfg, order, n);
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0 || fclose(fp) != 0) {
		cli_error("haproxy-servers: %s: %s", tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) < 0) {
		cli_error("haproxy-servers: %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int
run(struct cli *c, int argc, char **argv)
{
	const char *dir = NULL;
	char p1[CFG_STR_MAX + 64], p2[CFG_STR_MAX + 64], p3[CFG_STR_MAX + 64];
	char p4[CFG_STR_MAX + 64];
	int order[CFG_MAX_SERVERS], aorder[CFG_MAX_SERVERS];
	int i, n = 0, na, rc;

	for (i = 1; i < argc; i++) {
		if (cli_is_help(argv[i]))
			return cli_help(&cmd_haproxy_servers);
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			dir = argv[++i];
		else
			return cli_usage(&cmd_haproxy_servers, "unexpected argument");
	}
	if ((rc = cli_load_config(c, CFG_NEED_SERVERS)) != CLI_OK)
		return rc;
	for (i = 0; i < c->cfg->nservers; i++)
		if (c->cfg->servers[i].port[PROTO_HTTP] != 0)
			order[n++] = i;
	if (n == 0) {
		cli_error("haproxy-servers: no [server] has an http port");
		return CLI_NO;
	}
	qsort_r(order, (size_t)n, sizeof(order[0]), by_name, c->cfg);
	for (i = 0; i < c->cfg->nservers; i++) {
		const struct cfg_server *s = &c->cfg->servers[i];

		/* it is written into HAProxy's configuration unquoted */
		if (s->admin_port != 0 && !plain_name(s->tls_name)) {
			cli_error("haproxy-servers: [server %s] tls_name '%s' is not a host name",
			          s->name, s->tls_name);
			return CLI_NO;
		}
	}
	if (dir == NULL && !c->json) {
		write_pool(stdout, c->cfg, order, n);
		return CLI_OK;
	}
	if (dir != NULL) {
		struct stat st;

		if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			cli_error("haproxy-servers: %s: %s", dir,
			          stat(dir, &st) < 0 ? strerror(errno) : "not a directory");
			return CLI_TEMP;
		}
		if (write_atomic(dir, "gatehouse-servers.cfg", c->cfg, order, n, write_pool, p1,
		                 sizeof(p1)) < 0 ||
		    write_atomic(dir, "allowed-dst.lst", c->cfg, order, n, write_allowed, p2,
		                 sizeof(p2)) < 0 ||
		    write_atomic(dir, "routes.map", c->cfg, order, n, write_routes, p3,
		                 sizeof(p3)) < 0 ||
		    write_atomic(dir, "route-index.map", c->cfg, order, n, write_route_index, p4,
		                 sizeof(p4)) < 0)
			return CLI_TEMP;
	}
	if (c->json) {
		fputs("{\"servers\":[", stdout);
		for (i = 0; i < n; i++) {
			const struct cfg_server *s = &c->cfg->servers[order[i]];

			fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
			cli_json_str(stdout, s->name);
			fputs(",\"address\":", stdout);
			cli_json_str(stdout, s->address);
			printf(",\"port\":%u}", (unsigned)s->port[PROTO_HTTP]);
		}
		fputs("],\"admin\":[", stdout);
		na = admin_order(c->cfg, aorder);
		for (i = 0; i < na; i++) {
			const struct cfg_server *s = &c->cfg->servers[aorder[i]];

			fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
			cli_json_str(stdout, s->name);
			fputs(",\"address\":", stdout);
			cli_json_str(stdout, s->address);
			printf(",\"port\":%u}", (unsigned)s->admin_port);
		}
		fputs("],\"files\":[", stdout);
		if (dir != NULL) {
			cli_json_str(stdout, p1);
			fputc(',', stdout);
			cli_json_str(stdout, p2);
			fputc(',', stdout);
			cli_json_str(stdout, p3);
			fputc(',', stdout);
			cli_json_str(stdout, p4);
		}
		fputs("]}\n", stdout);
	} else {
		printf("wrote %s\nwrote %s\nwrote %s\nwrote %s\n", p1, p2, p3, p4);
	}
	return CLI_OK;
}
