/*
 * gatehouse lookup-servers: each [ldap] uri with its health (Zimbra's
 * "zmprov garpu"): connect and bind with the configured DN.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "dir.h"
#include "health.h"

static int run(struct cli *c, int argc, char **argv);

const struct cli_cmd cmd_lookup_servers = {
	"lookup-servers",
	"list the LDAP servers with their health (garpu)",
	run,
	"NAME\n"
	"    gatehouse lookup-servers - list the LDAP servers with their health\n"
	"\n"
	"SYNOPSIS\n"
	"    gatehouse [-c FILE] [--json] lookup-servers\n"
	"\n"
	"DESCRIPTION\n"
	"    For every [ldap] uri, in the order the daemons try them (Zimbra's\n"
	"    \"zmprov garpu\"), connects and binds as bind_dn with the password\n"
	"    from bind_password_file, with the options and the [ldap] timeout\n"
	"    the daemons' lookups use:\n"
	"\n"
	"        URI                      STATE  MS  ERROR\n"
	"        ldap://192.0.2.5:389     up     3\n"
	"\n"
	"    With --json: {\"servers\":[{\"uri\",\"up\",\"ms\",\"error\"}],\n"
	"    \"up\":N,\"down\":N}.\n"
	"\n"
	"EXIT STATUS\n"
	"    0  every uri answers and accepts the bind\n"
	"    1  some uri is down or refuses the bind, or the configuration is\n"
	"       not valid\n"
	"    2  usage error\n",
};

static int
run(struct cli *c, int argc, char **argv)
{
	struct cli_health h;
	int i;

	for (i = 1; i < argc; i++) {
		if (cli_is_help(argv[i]))
			return cli_help(&cmd_lookup_servers);
		return cli_usage(&cmd_lookup_servers, "no arguments expected");
	}
	if ((i = cli_load_config(c, CFG_NEED_LDAP)) != CLI_OK)
		return i;
	cli_health_begin(c, &h, "uri", 40, "URI", "ERROR");
	for (i = 0; i < c->cfg->ldap.uri.n; i++) {
		const char *uri = c->cfg->ldap.uri.item[i];
		char err[256] = "";
		long t0 = health_now_ms();
		int ok = dir_probe(&c->cfg->ldap, uri, 0, err, sizeof(err)) == 0;

		cli_health_row(c, &h, uri, ok, health_now_ms() - t0, "error", ok ? "" : err);
	}
	return cli_health_end(c, &h);
}
