/*
 * Helpers shared by the gatehouse subcommands: loading the configuration
 * and the library context, error and usage messages, JSON strings.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/*
 * Print "gatehouse: <fmt>" on stderr.
 */
void
cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("gatehouse: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * Load <c>'s configuration with <need> and set up the agent and one
 * worker. Returns 0, or -1 after printing the error.
 */
int
cli_load(struct cli *c, unsigned need)
{
	char err[1024];

	if (log_init(&c->lg, "gatehouse", "stderr", c->verbose ? "debug" : "warning",
	             NULL) < 0) {
		cli_error("cannot set up logging");
		return CLI_TEMP;
	}
	c->cfg = cfg_new();
	if (c->cfg == NULL) {
		cli_error("out of memory");
		return CLI_TEMP;
	}
	if (cfg_load(c->cfg, c->conf, need, err, sizeof(err)) < 0) {
		cli_error("%s", err);
		return CLI_NO;
	}
	if (agent_init(&c->ag, c->cfg, &c->lg) < 0) {
		cli_error("cannot initialise the agent library");
		return CLI_TEMP;
	}
	c->have_agent = 1;
	if (agent_worker_init(&c->w, &c->ag) < 0) {
		cli_error("cannot initialise the memcached/LDAP handles");
		return CLI_TEMP;
	}
	c->have_worker = 1;
	return CLI_OK;
}

/*
 * Load <c>'s configuration with <need>, nothing else. Returns CLI_OK, or
 * CLI_NO / CLI_TEMP after printing the error.
 */
int
cli_load_config(struct cli *c, unsigned need)
{
	char err[1024];

	c->cfg = cfg_new();
	if (c->cfg == NULL) {
		cli_error("out of memory");
		return CLI_TEMP;
	}
	if (cfg_load(c->cfg, c->conf, need, err, sizeof(err)) < 0) {
		cli_error("%s", err);
		return CLI_NO;
	}
	return CLI_OK;
}

/*
 * Free what cli_load() set up in <c>.
 */
void
cli_close(struct cli *c)
{
	if (c->have_worker)
		agent_worker_free(&c->w);
	if (c->have_agent)
		agent_free(&c->ag);
	c->have_worker = c->have_agent = 0;
	free(c->cfg);
	c->cfg = NULL;
}

/*
 * Print the help text of <cmd>. Returns CLI_OK.
 */
int
cli_help(const struct cli_cmd *cmd)
{
	fputs(cmd->help, stdout);
	return CLI_OK;
}

/*
 * Print a usage error <why> for <cmd>. Returns CLI_TEMP.
 */
int
cli_usage(const struct cli_cmd *cmd, const char *why)
{
	cli_error("%s: %s (see 'gatehouse %s --help')", cmd->name, why, cmd->name);
	return CLI_TEMP;
}

/*
 * Tell whether <arg> asks for help.
 */
int
cli_is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

/* Write the JSON form of byte <c> into <out> (8 bytes, NUL-terminated). */
static void
json_escape(unsigned char c, char out[8])
{
	switch (c) {
	case '"': snprintf(out, 8, "\\\""); break;
	case '\\': snprintf(out, 8, "\\\\"); break;
	case '\n': snprintf(out, 8, "\\n"); break;
	case '\r': snprintf(out, 8, "\\r"); break;
	case '\t': snprintf(out, 8, "\\t"); break;
	default:
		if (c < 0x20 || c == 0x7f)
			snprintf(out, 8, "\\u%04x", c);
		else
			snprintf(out, 8, "%c", c);
	}
}

/*
 * Write <s> to <fp> as a JSON string. Bytes >= 0x80 are copied as they
 * are (names are UTF-8); control characters are escaped.
 */
void
cli_json_str(FILE *fp, const char *s)
{
	const unsigned char *p;
	char one[8];

	fputc('"', fp);
	for (p = (const unsigned char *)(s ? s : ""); *p; p++) {
		json_escape(*p, one);
		fputs(one, fp);
	}
	fputc('"', fp);
}

/* Append <s> to <buf> (<len> bytes) at *<off>, truncating. */
void
cli_buf_put(char *buf, size_t len, size_t *off, const char *s)
{
	int n;

	if (*off + 1 >= len)
		return;
	n = snprintf(buf + *off, len - *off, "%s", s);
	if (n > 0)
		*off += ((size_t)n < len - *off) ? (size_t)n : len - *off - 1;
}

/* Append <s> to <buf> at *<off> as a JSON string, quotes included. */
void
cli_buf_json(char *buf, size_t len, size_t *off, const char *s)
{
	const unsigned char *p;
	char one[8];

	cli_buf_put(buf, len, off, "\"");
	for (p = (const unsigned char *)(s ? s : ""); *p; p++) {
		json_escape(*p, one);
		cli_buf_put(buf, len, off, one);
	}
	cli_buf_put(buf, len, off, "\"");
}

/* Start health table <h>. */
void
cli_health_begin(struct cli *c, struct cli_health *h, const char *key, int width,
                 const char *name_hdr, const char *detail_hdr)
{
	memset(h, 0, sizeof(*h));
	h->key = key;
	h->width = width;
	if (c->json)
		fputs("{\"servers\":[", stdout);
	else
		printf("%-*s %-5s %5s  %s\n", width, name_hdr, "STATE", "MS", detail_hdr);
}

/* Print one row of <h>. */
void
cli_health_row(struct cli *c, struct cli_health *h, const char *name, int ok, long ms,
               const char *detail_key, const char *detail)
{
	ok ? h->up++ : h->down++;
	if (c->json) {
		printf("%s{\"%s\":", h->rows ? "," : "", h->key);
		cli_json_str(stdout, name);
		printf(",\"up\":%s,\"ms\":%ld", ok ? "true" : "false", ms);
		if (detail[0] != '\0') {
			printf(",\"%s\":", detail_key);
			cli_json_str(stdout, detail);
		}
		fputc('}', stdout);
	} else {
		printf("%-*s %-5s %5ld  %s\n", h->width, name, ok ? "up" : "down", ms, detail);
	}
	h->rows++;
}

/* End <h>. */
int
cli_health_end(struct cli *c, const struct cli_health *h)
{
	if (c->json)
		printf("],\"up\":%d,\"down\":%d}\n", h->up, h->down);
	return h->down ? CLI_NO : CLI_OK;
}
