/*
 * gatehouse purge: remove accounts' cached routes (every name an account is
 * known by, and its id) from memcached, so that the next lookup asks LDAP,
 * and the routes HAProxy's route tables hold to the account's server.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "hapi.h"
#include "route.h"

#define PURGE_LINE_MAX 1024   /* longest name read from stdin */
/* after the agents' deadline: delivery to HAProxy (haproxy.cfg keeps a Basic
 * login's route only from a response within this much of its start) */
#define PURGE_AGAIN_MARGIN_MS 250

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
	"    Then, on every HAProxy admin socket of [spoa] haproxy_admin, it drops\n"
	"    from the route table every route to the server the account was\n"
	"    routed to before the purge (the cache's answer), or every route\n"
	"    when that is not known (not in the cache, unknown name): one\n"
	"    line per socket, \"haproxy SOCKET: routes to mbox1 cleared\", \"...:\n"
	"    all routes cleared\" or \"haproxy SOCKET: error: ...\". Without\n"
	"    haproxy_admin a warning says that HAProxy keeps its routes until\n"
	"    they expire.\n"
	"    With --json: {\"names\":[{\"name\":...,\"deleted\":N} or\n"
	"    {\"name\":...,\"error\":...}, ...],\"deleted\":TOTAL,\"errors\":N,\n"
	"    \"haproxy\":[{\"socket\":...,\"cleared\":[\"mbox1\"] or \"all\"} or\n"
	"    {\"socket\":...,\"error\":...}]}.\n"
	"\n"
	"EXIT STATUS\n"
	"    0  every name purged (also when nothing was cached)\n"
	"    2  memcached unreachable for some name, a HAProxy admin socket\n"
	"       failed, FILE unreadable, or usage error\n",
};

/* The servers whose routes the HAProxy route tables must drop. */
struct purge_servers {
	int all;                       /* a server was not known: every route */
	int n;
	int idx[CFG_MAX_SERVERS];      /* routes.map numbers */
};

/* Add the server <name> was routed to, before its purge, to <ps>. */
static void
purge_note_server(struct cli *c, const char *name, struct purge_servers *ps)
{
	struct route_result rr;
	int i, idx;

	if (c->cfg->spoa.haproxy_admin.n == 0 || ps->all)
		return;
	/* the cache's answer is what HAProxy may have learned; without one
	 * (evicted, a restarted memcached, a timeout) a table may still hold
	 * a route learned before, to a server LDAP no longer names: every
	 * route goes then */
	if (route_lookup(&c->w, ROUTE_BY_NAME, name, PROTO_HTTP, &rr) < 0 ||
	    (rr.source != ROUTE_SRC_LOCAL && rr.source != ROUTE_SRC_MEMCACHED) ||
	    (idx = hapi_server_index(c->cfg, rr.server)) == 0) {
		ps->all = 1;
		return;
	}
	for (i = 0; i < ps->n; i++)
		if (ps->idx[i] == idx)
			return;
	if (ps->n < CFG_MAX_SERVERS)
		ps->idx[ps->n++] = idx;
}

/* Purge <name> and print the outcome. Returns the number of entries
 * deleted, or -1 on failure. */
static int
purge_one(struct cli *c, const char *name, int *first, struct purge_servers *ps)
{
	int n;

	purge_note_server(c, name, ps);
	n = route_purge(&c->w, name);

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
purge_stream(struct cli *c, FILE *in, int *first, long *total, struct purge_servers *ps)
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
		if (tally(purge_one(c, s, first, ps), total) < 0)
			fails++;
	}
	return fails;
}

/* Name of the server of routes.map number <idx> in <cfg>. */
static const char *
server_of(const struct gh_config *cfg, int idx)
{
	int i;

	for (i = 0; i < cfg->nservers; i++)
		if (hapi_server_index(cfg, cfg->servers[i].name) == idx &&
		    cfg->servers[i].port[PROTO_HTTP] != 0)
			return cfg->servers[i].name;
	return "?";
}

/* Clear the routes of <ps> on every HAProxy of <c>, printing one line (or
 * JSON item) each. Returns the number of sockets that failed. */
static int
purge_haproxy(struct cli *c, const struct purge_servers *ps)
{
	const struct cfg_list *socks = &c->cfg->spoa.haproxy_admin;
	char why[512];
	int i, j, fails = 0;

	if (socks->n == 0) {
		cli_error("purge: no [spoa] haproxy_admin: HAProxy's route tables keep "
		          "their routes until they expire");
		return 0;
	}
	for (i = 0; i < socks->n; i++) {
		int rc = hapi_routes_clear(socks->item[i], ps->idx, ps->all ? 0 : ps->n, why,
		                           sizeof(why));

		if (rc < 0)
			fails++;
		if (!c->json && rc < 0) {
			printf("haproxy %s: error: %s\n", socks->item[i], why);
		} else if (!c->json) {
			printf("haproxy %s: ", socks->item[i]);
			if (ps->all)
				fputs("all routes cleared\n", stdout);
			else if (ps->n == 0)
				fputs("nothing to clear\n", stdout);
			else {
				fputs("routes to", stdout);
				for (j = 0; j < ps->n; j++)
					printf(" %s", server_of(c->cfg, ps->idx[j]));
				fputs(" cleared\n", stdout);
			}
		} else {
			fputs(i ? ",{\"socket\":" : "{\"socket\":", stdout);
			cli_json_str(stdout, socks->item[i]);
			if (rc < 0) {
				fputs(",\"error\":", stdout);
				cli_json_str(stdout, why);
			} else if (ps->all) {
				fputs(",\"cleared\":\"all\"", stdout);
			} else {
				fputs(",\"cleared\":[", stdout);
				for (j = 0; j < ps->n; j++) {
					fputs(j ? "," : "", stdout);
					cli_json_str(stdout, server_of(c->cfg, ps->idx[j]));
				}
				fputs("]", stdout);
			}
			fputs("}", stdout);
		}
	}
	return fails;
}

/*
 * Clear the routes of <ps> once more, after every agent answer that may
 * have read memcached before the purge deleted it has reached HAProxy (an
 * agent answers within its deadline): such an answer could otherwise put
 * the old route back into a table just cleared, for GH_ROUTE_TABLE_EXPIRE.
 * Only failures are printed (stderr). Returns the number of them.
 */
static int
purge_haproxy_again(struct cli *c, const struct purge_servers *ps)
{
	const struct cfg_list *socks = &c->cfg->spoa.haproxy_admin;
	uint64_t ms = (uint64_t)c->cfg->spoa.deadline_ms + PURGE_AGAIN_MARGIN_MS;
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	char why[512];
	int i, fails = 0;

	if (socks->n == 0 || (!ps->all && ps->n == 0))
		return 0;
	fflush(stdout);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	for (i = 0; i < socks->n; i++)
		if (hapi_routes_clear(socks->item[i], ps->idx, ps->all ? 0 : ps->n, why,
		                      sizeof(why)) < 0) {
			cli_error("purge: haproxy %s: second clear failed: %s", socks->item[i], why);
			fails++;
		}
	return fails;
}

static int
run(struct cli *c, int argc, char **argv)
{
	int i, fails = 0, first = 1, names = 0;
	long total = 0;
	struct purge_servers ps;

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
	memset(&ps, 0, sizeof(ps));
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
			fails += purge_stream(c, in, &first, &total, &ps);
			fclose(in);
		} else if (strcmp(argv[i], "-") == 0)
			fails += purge_stream(c, stdin, &first, &total, &ps);
		else if (tally(purge_one(c, argv[i], &first, &ps), &total) < 0)
			fails++;
	}
	if (c->json)
		printf("],\"deleted\":%ld,\"errors\":%d,\"haproxy\":[", total, fails);
	fails += purge_haproxy(c, &ps);
	fails += purge_haproxy_again(c, &ps);
	if (c->json)
		fputs("]}\n", stdout);
	return fails ? CLI_TEMP : CLI_OK;
}
