/*
 * gatehouse check: validate a configuration file the way the daemons will
 * load it. The sections present decide what is required: a file with a
 * [spoa] section must hold everything gatehouse-spoa needs, and so on.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "cli.h"

static int run(struct cli *c, int argc, char **argv);

const struct cli_cmd cmd_check = {
	"check",
	"check the configuration file",
	run,
	"NAME\n"
	"    gatehouse check - check the configuration file\n"
	"\n"
	"SYNOPSIS\n"
	"    gatehouse [-c FILE] [--json] check\n"
	"\n"
	"DESCRIPTION\n"
	"    Loads the configuration and reports the first error as\n"
	"    \"FILE:LINE: key: reason\", or prints \"configuration ok\". What is\n"
	"    required follows from the sections present: [ldap] needs uri and\n"
	"    base; [spoa] needs a listen address, [ldap] and a [server]; [mailproxy]\n"
	"    needs a listener, [ldap] and a [server]; limits in [throttle] need\n"
	"    [memcached] servers. Whitelist entries must be valid CIDRs.\n"
	"    No server is contacted. With --json: {\"ok\":true} or\n"
	"    {\"ok\":false,\"error\":...}.\n"
	"\n"
	"EXIT STATUS\n"
	"    0  the configuration is valid\n"
	"    1  it is not (the error is printed)\n"
	"    2  usage error\n",
};

/*
 * Work out the CFG_NEED_* bits implied by the section headers of <path>.
 * Unreadable files give 0: cfg_load() reports them properly.
 */
static unsigned
implied_needs(const char *path)
{
	char line[1024];
	unsigned need = 0;
	FILE *fp = fopen(path, "r");

	if (fp == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL) {
		char *s = line, name[32];
		size_t n = 0;

		while (isspace((unsigned char)*s))
			s++;
		if (*s++ != '[')
			continue;
		while (isspace((unsigned char)*s))
			s++;
		while (n < sizeof(name) - 1 && (isalnum((unsigned char)*s) || *s == '_'))
			name[n++] = (char)tolower((unsigned char)*s++);
		name[n] = '\0';
		if (strcmp(name, "ldap") == 0)
			need |= CFG_NEED_LDAP;
		else if (strcmp(name, "server") == 0)
			need |= CFG_NEED_SERVERS;
		else if (strcmp(name, "spoa") == 0)
			need |= CFG_NEED_SPOA | CFG_NEED_LDAP | CFG_NEED_SERVERS;
		else if (strcmp(name, "mailproxy") == 0)
			need |= CFG_NEED_MAILPROXY | CFG_NEED_LDAP | CFG_NEED_SERVERS;
	}
	fclose(fp);
	return need;
}

/* Print the verdict. Returns the exit status. */
static int
verdict(const struct cli *c, const char *err)
{
	if (c->json) {
		fputs(err == NULL ? "{\"ok\":true" : "{\"ok\":false,\"error\":", stdout);
		if (err != NULL)
			cli_json_str(stdout, err);
		fputs("}\n", stdout);
	} else if (err == NULL) {
		puts("configuration ok");
	} else {
		cli_error("%s", err);
	}
	return err == NULL ? CLI_OK : CLI_NO;
}

static int
run(struct cli *c, int argc, char **argv)
{
	char err[1024], why[256];
	struct gh_config *cfg;
	struct cidr_list wl;
	int rc;

	if (argc > 1 && cli_is_help(argv[1]))
		return cli_help(&cmd_check);
	if (argc > 1)
		return cli_usage(&cmd_check, "no arguments expected");
	cfg = cfg_new();
	if (cfg == NULL) {
		cli_error("out of memory");
		return CLI_TEMP;
	}
	if (cfg_load(cfg, c->conf, implied_needs(c->conf), err, sizeof(err)) < 0) {
		rc = verdict(c, err);
	} else if (cidr_list_parse(&wl, &cfg->throttle.whitelist, why, sizeof(why)) < 0) {
		snprintf(err, sizeof(err), "%s: [throttle] whitelist: %s", c->conf, why);
		rc = verdict(c, err);
	} else {
		rc = verdict(c, NULL);
	}
	free(cfg);
	return rc;
}
