/*
 * gatehouse purge: remove accounts' cached routes (every name an account is
 * known by, and its id) from memcached, so that the next lookup asks LDAP.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "route.h"

#define PURGE_LINE_MAX 1024   /* longest name read from stdin */

static int run(struct cli *c, int argc, char **argv);

const struct cli_cmd cmd_purge = {
	"purge",
	"remove accounts' cached routes from memcached",
	run,
	"NAME\n"
	"    gatehouse purge - remove accounts' cached routes from memcached\n"
	"\n"
	"SYNOPSIS\n"
	"    gatehouse [-c FILE] [--json] purge NAME...\n"
	"    gatehouse [-c FILE] [--json] purge -   < names.txt\n"
	"    gatehouse [-c FILE] [--json] purge -f names.txt\n"
	"\n"
	"DESCRIPTION\n"
	"    Deletes every memcached entry that routes the account NAME names (a\n"
	"    login name or an alias): the name itself (also an \"unknown\" entry),\n"
	"    the account's canonical name (found in the cache and in LDAP), every\n"
	"    alias LDAP lists in [ldap] alias_attrs, and its account id. Use it\n"
	"    after moving a mailbox to another server. The daemons' in-process\n"
	"    caches forget the route within [memcached] local_ttl. With LDAP\n"
	"    unreachable, the aliases and the id stay (a warning says so).\n"
	"    A NAME of '-' reads names from standard input, one per line (blank\n"
	"    lines and lines starting with '#' are skipped); -f FILE reads them\n"
	"    from FILE the same way (Zimbra's zmproxypurge). Prints one line per\n"
	"    name: \"NAME: N entries deleted\" or \"NAME: error: ...\".\n"
	"    With --json: {\"names\":[{\"name\":...,\"deleted\":N} or\n"
	"    {\"name\":...,\"error\":...}, ...],\"deleted\":TOTAL,\"errors\":N}.\n"
	"\n"
	"EXIT STATUS\n"
	"    0  every name purged (also when nothing was cached)\n"
	"    2  memcached unreachable for some name, FILE unreadable, or usage\n"
	"       error\n",
};

/* Purge <name> and print the outcome. Returns the number of entries
 * deleted, or -1 on failure. */
static int
purge_one(struct cli *c, const char *name, int *first)
{
	int n = route_purge(&c->w, name);

	if (c->json) {
		fputs(*first ? "" : ",", stdout);
		fputs("{\"name\":", stdout);
		cli_json_str(stdout, name);
		if (n < 0)
			fputs(",\"error\":\"memcached unavailable\"}", stdout);
		else
			fprintf(stdout, ",\"deleted\":%d}", n);
	} else if (n < 0) {
		printf("%s: error: memcached unavailable\n", name);
	} else {
		printf("%s: %d entr%s deleted\n", name, n, n == 1 ? "y" : "ies");
	}
	*first = 0;
	return n;
}

/* Add <n> (a purge_one() result) to <total>. Returns <n>. */
static int
tally(int n, long *total)
{
	if (n > 0)
		*total += n;
	return n;
}

/* Purge every name read from <in>, adding to <total>. Returns the
 * number of failures. */
static int
purge_stream(struct cli *c, FILE *in, int *first, long *total)
{
	char line[PURGE_LINE_MAX];
	int fails = 0;

	while (fgets(line, sizeof(line), in) != NULL) {
		size_t n = strlen(line);
		char *s = line;

		if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
			int ch;

			/* too long to be a name: skip the rest of the line */
			while ((ch = getc(in)) != EOF && ch != '\n')
				;
			cli_error("purge: line longer than %d bytes skipped", PURGE_LINE_MAX - 2);
			fails++;
			continue;
		}
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' ||
		                 line[n - 1] == ' ' || line[n - 1] == '\t'))
			line[--n] = '\0';
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0' || *s == '#')
			continue;
		if (tally(purge_one(c, s, first), total) < 0)
			fails++;
	}
	return fails;
}

static int
run(struct cli *c, int argc, char **argv)
{
	int i, fails = 0, first = 1, names = 0;
	long total = 0;

	for (i = 1; i < argc; i++) {
		if (cli_is_help(argv[i]))
			return cli_help(&cmd_purge);
		if (strcmp(argv[i], "-f") == 0) {
			if (i + 1 >= argc)
				return cli_usage(&cmd_purge, "-f needs a FILE");
			i++;
		}
		if (strcmp(argv[i], "--") != 0)
			names++;
	}
	if (names == 0)
		return cli_usage(&cmd_purge, "NAME... or - needed");
	if ((i = cli_load(c, 0)) != CLI_OK)
		return i;
	if (c->json)
		fputs("{\"names\":[", stdout);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			continue;
		if (strcmp(argv[i], "-f") == 0) {
			FILE *in = fopen(argv[++i], "r");

			if (in == NULL) {
				cli_error("purge: %s: cannot read it", argv[i]);
				fails++;
				continue;
			}
			fails += purge_stream(c, in, &first, &total);
			fclose(in);
		} else if (strcmp(argv[i], "-") == 0)
			fails += purge_stream(c, stdin, &first, &total);
		else if (tally(purge_one(c, argv[i], &first), &total) < 0)
			fails++;
	}
	if (c->json)
		printf("],\"deleted\":%ld,\"errors\":%d}\n", total, fails);
	return fails ? CLI_TEMP : CLI_OK;
}
