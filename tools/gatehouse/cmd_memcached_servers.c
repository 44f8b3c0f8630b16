/*
 * gatehouse memcached-servers: each [memcached] server with its health
 * (Zimbra's "zmprov gamcs"): connect and ask "version".
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "health.h"

#define MC_TIMEOUT_MS 1000

static int run(struct cli *c, int argc, char **argv);

const struct cli_cmd cmd_memcached_servers = {
	"memcached-servers",
	"list the memcached servers with their health (gamcs)",
	run,
	"NAME\n"
	"    gatehouse memcached-servers - list the memcached servers with their health\n"
	"\n"
	"SYNOPSIS\n"
	"    gatehouse [-c FILE] [--json] memcached-servers\n"
	"\n"
	"DESCRIPTION\n"
	"    For every [memcached] server (Zimbra's \"zmprov gamcs\"), connects and\n"
	"    sends \"version\", within 1 s:\n"
	"\n"
	"        SERVER               STATE  MS  VERSION / ERROR\n"
	"        192.0.2.6:11211      up     0   1.6.18\n"
	"\n"
	"    With --json: {\"servers\":[{\"server\",\"up\",\"ms\",\"version\" or\n"
	"    \"error\"}],\"up\":N,\"down\":N}.\n"
	"\n"
	"EXIT STATUS\n"
	"    0  every server answers (also when none is configured)\n"
	"    1  some server is down, or the configuration is not valid\n"
	"    2  usage error\n",
};

static int
run(struct cli *c, int argc, char **argv)
{
	struct cli_health h;
	int i;

	for (i = 1; i < argc; i++) {
		if (cli_is_help(argv[i]))
			return cli_help(&cmd_memcached_servers);
		return cli_usage(&cmd_memcached_servers, "no arguments expected");
	}
	if ((i = cli_load_config(c, 0)) != CLI_OK)
		return i;
	cli_health_begin(c, &h, "server", 32, "SERVER", "VERSION / ERROR");
	for (i = 0; i < c->cfg->memcached.servers.n; i++) {
		const char *s = c->cfg->memcached.servers.item[i];
		char err[256] = "", ver[128] = "";
		long t0 = health_now_ms();
		int ok = health_memcached(s, MC_TIMEOUT_MS, ver, sizeof(ver), err, sizeof(err)) == 0;

		cli_health_row(c, &h, s, ok, health_now_ms() - t0, ok ? "version" : "error",
		               ok ? ver : err);
	}
	return cli_health_end(c, &h);
}
