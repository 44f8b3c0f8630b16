/*
 * gatehouse throttle: inspect, clear and exercise the login throttle
 * counters that every gatehouse node shares in memcached.
 */
#include <stdio.h>
#include <string.h>

#include "cidr.h"
#include "cli.h"
#include "throttle.h"

static int run(struct cli *c, int argc, char **argv);

const struct cli_cmd cmd_throttle = {
	"throttle",
	"show, clear or exercise login throttle counters",
	run,
	"NAME\n"
	"    gatehouse throttle - show, clear or exercise login throttle counters\n"
	"\n"
	"SYNOPSIS\n"
	"    gatehouse [-c FILE] [--json] throttle show IP|NAME\n"
	"    gatehouse [-c FILE] [--json] throttle clear IP|NAME\n"
	"    gatehouse [-c FILE] [--json] throttle check IP [NAME]\n"
	"    gatehouse [-c FILE] [--json] throttle fail IP [NAME]\n"
	"    gatehouse [-c FILE] [--json] throttle success IP [NAME]\n"
	"\n"
	"DESCRIPTION\n"
	"    Login attempts are counted per client IP (IPv6 per [throttle]\n"
	"    ipv6_prefix, /64 by default) and per account; failed logins are\n"
	"    counted apart. Each counter is a fixed window of its *_ttl seconds\n"
	"    that starts with the first attempt; rejected attempts count too.\n"
	"    An argument that parses as an IP address (or an IPv6 group such as\n"
	"    2001:db8::/64) names a client, anything else an account name.\n"
	"\n"
	"    show     print the attempt and failure counters and their limits:\n"
	"                 key       192.0.2.7 (ip)\n"
	"                 attempts  3 / 10\n"
	"                 failures  0 / unlimited\n"
	"    clear    delete both counters of IP or NAME.\n"
	"    check    count one login attempt from IP (for account NAME) exactly\n"
	"             as the daemons do and print the verdict: allow, whitelisted,\n"
	"             fail-open, reject-ip, reject-user, reject-ip-fail or\n"
	"             reject-user-fail, with count=N limit=N [retry_after=S].\n"
	"    fail     record one failed login from IP (for NAME).\n"
	"    success  record a successful login from IP: clears its failures.\n"
	"\n"
	"    With --json, show prints {\"key\",\"kind\",\"attempts\",\"max\",\n"
	"    \"failures\",\"fail_max\",\"found\"} and check prints {\"verdict\",\n"
	"    \"allowed\",\"count\",\"limit\",\"retry_after\",\"message\"}.\n"
	"\n"
	"EXIT STATUS\n"
	"    0  done; for check: allowed (allow, whitelisted, fail-open)\n"
	"    1  check: rejected\n"
	"    2  memcached unreachable or not configured, bad IP or NAME, or\n"
	"       usage error\n",
};

/* Print "<what>  <n> / <max or unlimited>". */
static void
print_pair(const char *what, unsigned long long n, unsigned long long max)
{
	if (max == 0)
		printf("%-9s %llu / unlimited\n", what, n);
	else
		printf("%-9s %llu / %llu\n", what, n, max);
}

static int
do_show(struct cli *c, const char *key)
{
	struct throttle_state st;
	char shown[CIDR_STR_MAX];
	struct cidr ip;
	int is_ip = cidr_parse_addr(key, &ip) == 0 ||
	            (strchr(key, '/') != NULL && cidr_parse(key, &ip) == 0);

	if (throttle_show(&c->w, key, &st) < 0) {
		cli_error("throttle show %s: bad key or memcached unavailable", key);
		return CLI_TEMP;
	}
	/* show the counter's own key: the IPv6 group rather than the address */
	if (!is_ip || cidr_group(key, c->cfg->throttle.ipv6_prefix, shown, sizeof(shown)) < 0)
		snprintf(shown, sizeof(shown), "%.*s", (int)sizeof(shown) - 1, key);
	if (c->json) {
		fputs("{\"key\":", stdout);
		cli_json_str(stdout, shown);
		printf(",\"kind\":\"%s\",\"attempts\":%llu,\"max\":%llu,\"failures\":%llu,"
		       "\"fail_max\":%llu,\"found\":%s}\n", is_ip ? "ip" : "account",
		       (unsigned long long)st.attempts, (unsigned long long)st.max,
		       (unsigned long long)st.failures, (unsigned long long)st.fail_max,
		       st.found ? "true" : "false");
		return CLI_OK;
	}
	printf("key       %s (%s)\n", shown, is_ip ? "ip" : "account");
	print_pair("attempts", st.attempts, st.max);
	print_pair("failures", st.failures, st.fail_max);
	return CLI_OK;
}

static int
do_check(struct cli *c, const char *ip, const char *user)
{
	struct throttle_result r;
	int rejected = throttle_check(&c->w, ip, user, &r);

	if (c->json) {
		printf("{\"verdict\":\"%s\",\"allowed\":%s,\"count\":%llu,\"limit\":%llu,"
		       "\"retry_after\":%u,\"message\":", throttle_verdict_name(r.verdict),
		       rejected ? "false" : "true", (unsigned long long)r.count,
		       (unsigned long long)r.limit, r.retry_after);
		if (r.message != NULL)
			cli_json_str(stdout, r.message);
		else
			fputs("null", stdout);
		fputs("}\n", stdout);
	} else {
		printf("%s count=%llu limit=%llu", throttle_verdict_name(r.verdict),
		       (unsigned long long)r.count, (unsigned long long)r.limit);
		if (rejected)
			printf(" retry_after=%u", r.retry_after);
		putchar('\n');
	}
	return rejected ? CLI_NO : CLI_OK;
}

/* Print the outcome of a write (clear, fail, success). */
static int
report(const struct cli *c, const char *what, const char *key, int rc)
{
	if (rc < 0) {
		cli_error("throttle %s %s: bad key or memcached unavailable", what, key);
		return CLI_TEMP;
	}
	if (c->json) {
		printf("{\"done\":\"%s\",\"key\":", what);
		cli_json_str(stdout, key);
		fputs("}\n", stdout);
	} else {
		printf("%s: %s done\n", key, what);
	}
	return CLI_OK;
}

static int
run(struct cli *c, int argc, char **argv)
{
	const char *sub, *a1, *a2;
	int i, rc;

	for (i = 1; i < argc; i++)
		if (cli_is_help(argv[i]))
			return cli_help(&cmd_throttle);
	if (argc < 3)
		return cli_usage(&cmd_throttle, "a subcommand and an IP or NAME are needed");
	sub = argv[1];
	a1 = argv[2];
	a2 = argc > 3 ? argv[3] : NULL;
	if (argc > 4)
		return cli_usage(&cmd_throttle, "too many arguments");
	if ((strcmp(sub, "show") == 0 || strcmp(sub, "clear") == 0) && a2 != NULL)
		return cli_usage(&cmd_throttle, "one IP or NAME only");
	if (strcmp(sub, "show") != 0 && strcmp(sub, "clear") != 0 &&
	    strcmp(sub, "check") != 0 && strcmp(sub, "fail") != 0 &&
	    strcmp(sub, "success") != 0)
		return cli_usage(&cmd_throttle, "unknown subcommand");
	if ((rc = cli_load(c, 0)) != CLI_OK)
		return rc;
	if (c->cfg->memcached.servers.n == 0) {
		cli_error("throttle: no [memcached] servers configured");
		return CLI_TEMP;
	}
	if (strcmp(sub, "show") == 0)
		return do_show(c, a1);
	if (strcmp(sub, "clear") == 0)
		return report(c, "clear", a1, throttle_clear(&c->w, a1));
	{
		struct cidr ip;

		if (cidr_parse_addr(a1, &ip) < 0) {
			cli_error("throttle %s: '%s' is not an IP address", sub, a1);
			return CLI_TEMP;
		}
	}
	if (strcmp(sub, "check") == 0)
		return do_check(c, a1, a2);
	if (strcmp(sub, "fail") == 0)
		return report(c, "fail", a1, throttle_record_failure(&c->w, a1, a2));
	return report(c, "success", a1, throttle_record_success(&c->w, a1, a2));
}
