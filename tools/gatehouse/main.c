/*
 * gatehouse: the operator command. Global options come first, then a
 * subcommand from the table below; each subcommand lives in its own file
 * and parses the rest of the command line itself. Adding one means writing
 * cmd_<name>.c and adding a line to the table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Every subcommand, in the order the overview lists them. */
static const struct cli_cmd *const commands[] = {
	&cmd_route,
	&cmd_purge,
	&cmd_vhost,
	&cmd_throttle,
	&cmd_check,
	&cmd_config,
	&cmd_servers,
	&cmd_lookup_servers,
	&cmd_memcached_servers,
	&cmd_status,
	&cmd_haproxy_servers,
	&cmd_certs,
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
overview(FILE *fp)
{
	size_t i;

	fputs("NAME\n"
	      "    gatehouse - operate a gatehouse mail edge proxy\n"
	      "\n"
	      "SYNOPSIS\n"
	      "    gatehouse [-c FILE] [--json] [-v] COMMAND [ARGS...]\n"
	      "    gatehouse help COMMAND | gatehouse COMMAND --help\n"
	      "\n"
	      "DESCRIPTION\n"
	      "    Looks up routes, purges cached routes and inspects login throttling\n"
	      "    through the same library, memcached and LDAP as the daemons; shows\n"
	      "    the health of every part; writes HAProxy's server list; manages the\n"
	      "    certificates directory shared by HAProxy and the mail proxy.\n"
	      "\n"
	      "COMMANDS\n", fp);
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(fp, "    %-17s %s\n", commands[i]->name, commands[i]->summary);
	fputs("\n"
	      "OPTIONS\n"
	      "    -c FILE   configuration file (default: $GATEHOUSE_CONF, else\n"
	      "              ./gatehouse.conf)\n"
	      "    --json    print one JSON document on stdout instead of text\n"
	      "              (accepted anywhere before a '--')\n"
	      "    -v        debug logging on stderr\n"
	      "    -h, --help\n"
	      "              this text\n"
	      "\n"
	      "EXIT STATUS\n"
	      "    0  success: found, allowed, done\n"
	      "    1  a negative answer: unknown or refused account, throttled,\n"
	      "       something down (servers, status...), a certificate refused,\n"
	      "       configuration not valid\n"
	      "    2  temporary failure (LDAP or memcached unreachable) or usage error\n", fp);
}

static const struct cli_cmd *
find_command(const char *name)
{
	size_t i;

	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

/*
 * Remove "--json" from <argv> (up to a "--"), setting <c>->json. Returns
 * the new argc.
 */
static int
strip_json(struct cli *c, int argc, char **argv)
{
	int i, j;

	for (i = j = 0; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				argv[j++] = argv[i++];
			break;
		}
		if (strcmp(argv[i], "--json") == 0) {
			c->json = 1;
			continue;
		}
		argv[j++] = argv[i];
	}
	argv[j] = NULL;
	return j;
}

int
main(int argc, char **argv)
{
	struct cli c;
	const struct cli_cmd *cmd;
	const char *env;
	int i, rc;

	memset(&c, 0, sizeof(c));
	env = getenv("GATEHOUSE_CONF");
	c.conf = (env != NULL && env[0] != '\0') ? env : "gatehouse.conf";
	argc = strip_json(&c, argc, argv);

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			c.conf = argv[++i];
		} else if (strncmp(argv[i], "-c", 2) == 0 && argv[i][2] != '\0') {
			c.conf = argv[i] + 2;
		} else if (strcmp(argv[i], "-v") == 0) {
			c.verbose = 1;
		} else if (cli_is_help(argv[i])) {
			overview(stdout);
			return CLI_OK;
		} else {
			cli_error("unknown option '%s' (see 'gatehouse --help')", argv[i]);
			return CLI_TEMP;
		}
	}
	if (i >= argc) {
		overview(stderr);
		return CLI_TEMP;
	}
	if (strcmp(argv[i], "help") == 0) {
		if (i + 1 >= argc) {
			overview(stdout);
			return CLI_OK;
		}
		cmd = find_command(argv[i + 1]);
		if (cmd == NULL) {
			cli_error("no command '%s' (see 'gatehouse --help')", argv[i + 1]);
			return CLI_TEMP;
		}
		return cli_help(cmd);
	}
	cmd = find_command(argv[i]);
	if (cmd == NULL) {
		cli_error("no command '%s' (see 'gatehouse --help')", argv[i]);
		return CLI_TEMP;
	}
	rc = cmd->run(&c, argc - i, argv + i);
	cli_close(&c);
	fflush(stdout);
	return rc;
}
