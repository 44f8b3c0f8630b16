/*
 * gatehouse config keys: list every configuration key the loader knows,
 * from its own keyword table, so that documentation can be checked against
 * the code. Reads no configuration file.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int run(struct cli *c, int argc, char **argv);

const struct cli_cmd cmd_config = {
	"config",
	"list the configuration keys gatehouse knows",
	run,
	"NAME\n"
	"    gatehouse config - list the configuration keys gatehouse knows\n"
	"\n"
	"SYNOPSIS\n"
	"    gatehouse [--json] config keys\n"
	"\n"
	"DESCRIPTION\n"
	"    Prints every key of gatehouse.conf the loader accepts, one a line:\n"
	"    the section, the key and its default (nothing when it has none).\n"
	"    The keys of every [server NAME] section are listed under \"server\".\n"
	"    No configuration file is read. With --json: an array of\n"
	"    {\"section\":...,\"key\":...,\"default\":...} (default null when none).\n"
	"\n"
	"EXIT STATUS\n"
	"    0  success\n"
	"    2  usage error\n",
};

static int
run(struct cli *c, int argc, char **argv)
{
	const char *sec, *name, *def;
	size_t i;

	if (argc > 1 && cli_is_help(argv[1]))
		return cli_help(&cmd_config);
	if (argc != 2 || strcmp(argv[1], "keys") != 0)
		return cli_usage(&cmd_config, "expected 'keys'");
	if (c->json)
		fputc('[', stdout);
	for (i = 0; cfg_key(i, &sec, &name, &def) == 0; i++) {
		if (!c->json) {
			printf("%s %s%s%s\n", sec, name, def != NULL ? " " : "",
			       def != NULL ? def : "");
			continue;
		}
		fputs(i > 0 ? ",{\"section\":" : "{\"section\":", stdout);
		cli_json_str(stdout, sec);
		fputs(",\"key\":", stdout);
		cli_json_str(stdout, name);
		fputs(",\"default\":", stdout);
		if (def != NULL)
			cli_json_str(stdout, def);
		else
			fputs("null", stdout);
		fputc('}', stdout);
	}
	if (c->json)
		fputs("]\n", stdout);
	return CLI_OK;
}
