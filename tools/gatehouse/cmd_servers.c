/*
 * gatehouse servers: the [server] table with the health of every port
 * (Zimbra's "zmprov garpb"). All ports are probed at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "health.h"
#include "parse.h"

#define SERVERS_TIMEOUT_MS 1000

static int run(struct cli *c, int argc, char **argv);

const struct cli_cmd cmd_servers = {
	"servers",
	"list the mailbox servers with their health (garpb)",
	run,
	"NAME\n"
	"    gatehouse servers - list the mailbox servers with their health\n"
	"\n"
	"SYNOPSIS\n"
	"    gatehouse [-c FILE] [--json] servers\n"
	"\n"
	"DESCRIPTION\n"
	"    Prints every [server] section (Zimbra's \"zmprov garpb\") and, for each\n"
	"    protocol port it declares, whether a TCP connection opens within 1 s\n"
	"    (all ports are tried at once):\n"
	"\n"
	"        SERVER  ADDRESS    PROTO  PORT  STATE  MS  ERROR\n"
	"        mbox1   192.0.2.10 imap   7143  up     0\n"
	"\n"
	"    With --json: {\"servers\":[{\"name\",\"address\",\"tls_name\",\"up\",\n"
	"    \"ports\":[{\"proto\",\"port\",\"up\",\"ms\",\"error\"}]}],\"up\":N,\"down\":N}\n"
	"    where up/down count ports.\n"
	"\n"
	"EXIT STATUS\n"
	"    0  every port answers\n"
	"    1  some port is down, or the configuration is not valid\n"
	"    2  usage error\n",
};

static int
run(struct cli *c, int argc, char **argv)
{
	struct health_probe *p;
	int *srv, *proto;
	int i, k, n = 0, up = 0, down = 0;

	for (i = 1; i < argc; i++) {
		if (cli_is_help(argv[i]))
			return cli_help(&cmd_servers);
		return cli_usage(&cmd_servers, "no arguments expected");
	}
	if ((i = cli_load_config(c, CFG_NEED_SERVERS)) != CLI_OK)
		return i;
	p = calloc((size_t)c->cfg->nservers * PROTO__COUNT + 1, sizeof(*p));
	srv = calloc((size_t)c->cfg->nservers * PROTO__COUNT + 1, sizeof(*srv));
	proto = calloc((size_t)c->cfg->nservers * PROTO__COUNT + 1, sizeof(*proto));
	if (p == NULL || srv == NULL || proto == NULL) {
		free(p);
		free(srv);
		free(proto);
		cli_error("out of memory");
		return CLI_TEMP;
	}
	for (i = 0; i < c->cfg->nservers; i++) {
		const struct cfg_server *s = &c->cfg->servers[i];

		for (k = 0; k < PROTO__COUNT; k++) {
			if (s->port[k] == 0)
				continue;
			memcpy(&p[n].addr, &s->addr, sizeof(s->addr));
			p[n].len = s->addrlen;
			if (s->addr.ss_family == AF_INET6)
				((struct sockaddr_in6 *)&p[n].addr)->sin6_port = htons(s->port[k]);
			else
				((struct sockaddr_in *)&p[n].addr)->sin_port = htons(s->port[k]);
			srv[n] = i;
			proto[n] = k;
			n++;
		}
	}
	health_tcp_many(p, n, SERVERS_TIMEOUT_MS);
	if (c->json)
		fputs("{\"servers\":[", stdout);
	else
		printf("%-16s %-24s %-6s %-6s %-5s %5s  %s\n", "SERVER", "ADDRESS", "PROTO",
		       "PORT", "STATE", "MS", "ERROR");
	for (i = 0, k = 0; i < c->cfg->nservers; i++) {
		const struct cfg_server *s = &c->cfg->servers[i];
		int j, first = 1, all = 1;

		for (j = k; j < n && srv[j] == i; j++)
			all &= p[j].ok;
		if (c->json) {
			fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
			cli_json_str(stdout, s->name);
			fputs(",\"address\":", stdout);
			cli_json_str(stdout, s->address);
			fputs(",\"tls_name\":", stdout);
			cli_json_str(stdout, s->tls_name[0] ? s->tls_name : s->name);
			printf(",\"up\":%s,\"ports\":[", all ? "true" : "false");
		}
		for (; k < n && srv[k] == i; k++) {
			if (p[k].ok)
				up++;
			else
				down++;
			if (c->json) {
				fputs(first ? "{\"proto\":" : ",{\"proto\":", stdout);
				cli_json_str(stdout, cfg_proto_name((enum gh_proto)proto[k]));
				printf(",\"port\":%u,\"up\":%s,\"ms\":%ld", (unsigned)s->port[proto[k]],
				       p[k].ok ? "true" : "false", p[k].ms);
				if (!p[k].ok) {
					fputs(",\"error\":", stdout);
					cli_json_str(stdout, p[k].err);
				}
				fputc('}', stdout);
			} else {
				printf("%-16s %-24s %-6s %-6u %-5s %5ld  %s\n", s->name, s->address,
				       cfg_proto_name((enum gh_proto)proto[k]),
				       (unsigned)s->port[proto[k]], p[k].ok ? "up" : "down", p[k].ms,
				       p[k].ok ? "" : p[k].err);
			}
			first = 0;
		}
		if (c->json)
			fputs("]}", stdout);
	}
	if (c->json)
		printf("],\"up\":%d,\"down\":%d}\n", up, down);
	free(p);
	free(srv);
	free(proto);
	return down ? CLI_NO : CLI_OK;
}
