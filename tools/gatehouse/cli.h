/*
 * The gatehouse operator command: shared state of one invocation, the
 * command table entry type, and helpers every subcommand uses. Each
 * subcommand lives in its own cmd_<name>.c and is listed in main.c.
 */
#ifndef GH_CLI_H
#define GH_CLI_H

#include <stdio.h>

#include "agent.h"
#include "cfg.h"
#include "log.h"

/* Exit statuses shared by every subcommand. */
#define CLI_OK    0   /* found / allowed / done */
#define CLI_NO    1   /* unknown, refused, rejected, bad configuration */
#define CLI_TEMP  2   /* temporary failure (LDAP, memcached) or usage error */

/* One invocation: global options and, once loaded, the library context. */
struct cli {
	const char *conf;          /* -c FILE, $GATEHOUSE_CONF or ./gatehouse.conf */
	int json;                  /* --json: one JSON document on stdout */
	int verbose;               /* -v: debug logging on stderr */
	struct gh_config *cfg;     /* NULL until cli_load() */
	struct logger lg;
	struct agent ag;
	struct agent_worker w;
	int have_agent, have_worker;
};

/* A subcommand: run(cli, argc, argv) gets argv[0] = its own name. */
struct cli_cmd {
	const char *name;
	const char *summary;       /* one line for the command list */
	int (*run)(struct cli *c, int argc, char **argv);
	const char *help;          /* man-page style text for --help */
};

/*
 * Load the configuration of <c> requiring the CFG_NEED_* bits <need>, then
 * set up the library context and one worker. Returns CLI_OK, or the exit
 * status after printing the error on stderr: CLI_NO for a configuration
 * that is not valid, CLI_TEMP when the set-up failed.
 */
int cli_load(struct cli *c, unsigned need);

/*
 * Load only the configuration of <c> (no library context), requiring the
 * CFG_NEED_* bits <need>. Returns CLI_OK, CLI_NO (not valid) or CLI_TEMP
 * (out of memory), the error printed.
 */
int cli_load_config(struct cli *c, unsigned need);

/* Free whatever cli_load() set up in <c>. */
void cli_close(struct cli *c);

/* Print "gatehouse: <fmt>" and a newline on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print the help text of <cmd> on stdout. Returns CLI_OK. */
int cli_help(const struct cli_cmd *cmd);

/* Print a usage error about <cmd> on stderr. Returns CLI_TEMP. */
int cli_usage(const struct cli_cmd *cmd, const char *why);

/* Tell whether <arg> asks for help ("-h", "--help"). */
int cli_is_help(const char *arg);

/* Write <s> to <fp> as a JSON string, quotes included. */
void cli_json_str(FILE *fp, const char *s);

/* Append <s> to <buf> (<len> bytes) at *<off>, truncating. */
void cli_buf_put(char *buf, size_t len, size_t *off, const char *s);

/* Append <s> to <buf> at *<off> as a JSON string, quotes included. */
void cli_buf_json(char *buf, size_t len, size_t *off, const char *s);

/* A table of dependencies with their health: {"servers":[...],"up":N,"down":N}. */
struct cli_health {
	const char *key;           /* JSON name of the first column ("uri", "server") */
	int width;                 /* text width of the first column */
	int rows, up, down;
};

/* Start health table <h> keyed <key>; text headers <name_hdr> and <detail_hdr>. */
void cli_health_begin(struct cli *c, struct cli_health *h, const char *key, int width,
                      const char *name_hdr, const char *detail_hdr);

/*
 * Print one row of <h>: <name>, up or not, the check's time <ms> and a
 * detail (JSON field <detail_key>; none when <detail> is empty).
 */
void cli_health_row(struct cli *c, struct cli_health *h, const char *name, int ok, long ms,
                    const char *detail_key, const char *detail);

/* End <h>. Returns CLI_NO when a row was down, else CLI_OK. */
int cli_health_end(struct cli *c, const struct cli_health *h);

/* The subcommands (each defined in its own file). */
extern const struct cli_cmd cmd_route;
extern const struct cli_cmd cmd_purge;
extern const struct cli_cmd cmd_vhost;
extern const struct cli_cmd cmd_throttle;
extern const struct cli_cmd cmd_check;
extern const struct cli_cmd cmd_config;
extern const struct cli_cmd cmd_servers;
extern const struct cli_cmd cmd_lookup_servers;
extern const struct cli_cmd cmd_memcached_servers;
extern const struct cli_cmd cmd_status;
extern const struct cli_cmd cmd_haproxy_servers;
extern const struct cli_cmd cmd_certs;

#endif
