/*
 * gatehouse vhost: tell whether Host names are allowed virtual hosts, as
 * the agent decides with [spoa] strict_hosts on.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "vhost.h"

static int run(struct cli *c, int argc, char **argv);

const struct cli_cmd cmd_vhost = {
	"vhost",
	"tell whether Host names are allowed virtual hosts",
	run,
	"NAME\n"
	"    gatehouse vhost - tell whether Host names are allowed virtual hosts\n"
	"\n"
	"SYNOPSIS\n"
	"    gatehouse [-c FILE] [--json] vhost HOST...\n"
	"\n"
	"DESCRIPTION\n"
	"    Checks each HOST (a Host header value; a port is ignored) the way\n"
	"    gatehouse-spoa does with [spoa] strict_hosts = yes: against [spoa]\n"
	"    vhosts, then, when [ldap] vhost_filter is set, memcached and LDAP\n"
	"    (an answer from LDAP is cached). Prints \"HOST: allowed\",\n"
	"    \"HOST: refused\" or \"HOST: tempfail\" (LDAP unreachable: the agent\n"
	"    lets such a request through).\n"
	"    With --json: {\"hosts\":[{\"host\":...,\"result\":...}, ...]}.\n"
	"\n"
	"EXIT STATUS\n"
	"    0  every HOST allowed\n"
	"    1  some HOST refused\n"
	"    2  LDAP unreachable for some HOST, or usage error\n",
};

static int
run(struct cli *c, int argc, char **argv)
{
	int i, refused = 0, temp = 0, first = 1;

	if (argc < 2)
		return cli_usage(&cmd_vhost, "HOST... needed");
	for (i = 1; i < argc; i++)
		if (cli_is_help(argv[i]))
			return cli_help(&cmd_vhost);
	if ((i = cli_load(c, 0)) != CLI_OK)
		return i;
	if (c->json)
		fputs("{\"hosts\":[", stdout);
	for (i = 1; i < argc; i++) {
		enum vhost_rc rc = vhost_check(&c->w, argv[i]);

		refused += rc == VHOST_REFUSED;
		temp += rc == VHOST_TEMPFAIL;
		if (c->json) {
			fputs(first ? "{\"host\":" : ",{\"host\":", stdout);
			cli_json_str(stdout, argv[i]);
			printf(",\"result\":\"%s\"}", vhost_rc_name(rc));
		} else {
			printf("%s: %s\n", argv[i], vhost_rc_name(rc));
		}
		first = 0;
	}
	if (c->json)
		fputs("]}\n", stdout);
	return temp ? CLI_TEMP : refused ? CLI_NO : CLI_OK;
}
