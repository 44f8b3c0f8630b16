/*
 * gatehouse route: look up an account's mailbox server exactly as the
 * daemons do (in-process cache, memcached, LDAP, server table) and say
 * where the answer came from.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "parse.h"
#include "route.h"

static int run(struct cli *c, int argc, char **argv);

const struct cli_cmd cmd_route = {
	"route",
	"look up the mailbox server of an account",
	run,
	"NAME\n"
	"    gatehouse route - look up the mailbox server of an account\n"
	"\n"
	"SYNOPSIS\n"
	"    gatehouse [-c FILE] [--json] route NAME [--proto PROTO]\n"
	"    gatehouse [-c FILE] [--json] route --id ID [--proto PROTO]\n"
	"\n"
	"DESCRIPTION\n"
	"    Looks NAME (a login name or alias; lower-cased, and given the default\n"
	"    domain when it has none) or account ID up as the daemons do: memcached\n"
	"    first, then LDAP, then the [server] table. A lookup answered by LDAP\n"
	"    is written to memcached, like any lookup. Prints:\n"
	"\n"
	"        account  alice@example.com\n"
	"        server   mbox1\n"
	"        address  192.0.2.10:7143\n"
	"        source   ldap            (local, memcached or ldap)\n"
	"\n"
	"    or, when there is no route, \"status  unknown|refused|tempfail|error\".\n"
	"    With --json: {\"status\":\"ok\",\"account\":...,\"server\":...,\n"
	"    \"address\":\"192.0.2.10\",\"port\":7143,\"source\":\"ldap\"}.\n"
	"\n"
	"OPTIONS\n"
	"    --id ID        look up by account id instead of name\n"
	"    --proto PROTO  imap, imaps, pop3, pop3s, http or https (default imap):\n"
	"                   the port printed is the server's port for PROTO\n"
	"\n"
	"EXIT STATUS\n"
	"    0  found\n"
	"    1  unknown account, or refused (its host is not a configured server,\n"
	"       or that server does not serve PROTO)\n"
	"    2  temporary failure (LDAP unreachable and nothing cached), internal\n"
	"       error, or usage error\n",
};

/* Print <r> for <key> as text or JSON. */
static void
print_result(const struct cli *c, const char *key, const struct route_result *r)
{
	char addr[128], ip[128];

	if (r->status == ROUTE_OK) {
		parse_addr_str((const struct sockaddr *)&r->addr, 1, addr, sizeof(addr));
		parse_addr_str((const struct sockaddr *)&r->addr, 0, ip, sizeof(ip));
	}
	if (c->json) {
		fputs("{\"key\":", stdout);
		cli_json_str(stdout, key);
		fprintf(stdout, ",\"status\":\"%s\",\"source\":\"%s\"",
		        route_status_name(r->status), route_source_name(r->source));
		if (r->status == ROUTE_OK) {
			fputs(",\"account\":", stdout);
			cli_json_str(stdout, r->account);
			fputs(",\"server\":", stdout);
			cli_json_str(stdout, r->server);
			fputs(",\"address\":", stdout);
			cli_json_str(stdout, ip);
			fprintf(stdout, ",\"port\":%u", (unsigned)r->port);
		}
		fputs("}\n", stdout);
		return;
	}
	if (r->status == ROUTE_OK) {
		printf("account  %s\nserver   %s\naddress  %s\nsource   %s\n", r->account,
		       r->server, addr, route_source_name(r->source));
	} else {
		printf("status   %s\nsource   %s\n", route_status_name(r->status),
		       route_source_name(r->source));
	}
}

static int
run(struct cli *c, int argc, char **argv)
{
	enum route_kind kind = ROUTE_BY_NAME;
	enum gh_proto proto = PROTO_IMAP;
	const char *key = NULL;
	struct route_result r;
	int i, rc;

	for (i = 1; i < argc; i++) {
		if (cli_is_help(argv[i]))
			return cli_help(&cmd_route);
		if (strcmp(argv[i], "--proto") == 0) {
			if (++i >= argc || cfg_proto_parse(argv[i], &proto) < 0)
				return cli_usage(&cmd_route, "--proto needs imap, imaps, pop3, "
				                 "pop3s, http or https");
		} else if (strcmp(argv[i], "--id") == 0) {
			if (++i >= argc || key != NULL)
				return cli_usage(&cmd_route, "--id needs exactly one ID");
			kind = ROUTE_BY_ID;
			key = argv[i];
		} else if (strcmp(argv[i], "--") == 0 && i + 1 < argc && key == NULL) {
			key = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return cli_usage(&cmd_route, "unknown option");
		} else if (key == NULL) {
			key = argv[i];
		} else {
			return cli_usage(&cmd_route, "one NAME only");
		}
	}
	if (key == NULL)
		return cli_usage(&cmd_route, "NAME or --id ID needed");
	if ((rc = cli_load(c, CFG_NEED_LDAP | CFG_NEED_SERVERS)) != CLI_OK)
		return rc;
	memset(&r, 0, sizeof(r));
	route_lookup(&c->w, kind, key, proto, &r);
	print_result(c, key, &r);
	switch (r.status) {
	case ROUTE_OK:
		return CLI_OK;
	case ROUTE_UNKNOWN:
	case ROUTE_REFUSED:
		return CLI_NO;
	default:
		return CLI_TEMP;
	}
}
