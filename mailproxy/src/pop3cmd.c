/*
 * POP3 pre-auth command parser. POP3 has no literals, so the parser gathers
 * one bounded line into the state's buffer, whatever the fragmentation of
 * the input, and splits it when the line ends. A bad line is skipped up to
 * its LF so the daemon can answer -ERR and go on with the next one. SASL
 * response lines are read by the SASL line reader the IMAP parser shares.
 */
#include <string.h>
#include <strings.h>

#include "pop3cmd.h"
#include "sasl_line.h"

enum { S_BEGIN = 0, S_LINE, S_CR, S_SKIP, S_SASL };
enum { MODE_CMD = 0, MODE_SASL };

#define POP3CMD_LINE_MIN 16  /* smallest line limit accepted from the caller */

struct pop3cmd_name {
	const char *name;
	enum pop3cmd_kind kind;
};

static const struct pop3cmd_name pop3cmd_names[] = {
	{ "CAPA", POP3CMD_CAPA },
	{ "USER", POP3CMD_USER },
	{ "PASS", POP3CMD_PASS },
	{ "AUTH", POP3CMD_AUTH },
	{ "STLS", POP3CMD_STLS },
	{ "NOOP", POP3CMD_NOOP },
	{ "QUIT", POP3CMD_QUIT },
};

static size_t
cap_limit(size_t v, size_t def)
{
	if (v == 0)
		return def;
	if (v < POP3CMD_LINE_MIN)
		return POP3CMD_LINE_MIN;
	return v > POP3CMD_LINE_MAX_LIMIT ? POP3CMD_LINE_MAX_LIMIT : v;
}

/* Initialise <st> with <lim> (NULL: defaults). No return value. */
void
pop3cmd_init(struct pop3cmd *st, const struct pop3cmd_limits *lim)
{
	memset(st, 0, sizeof(*st));
	st->lim.line_max = cap_limit(lim ? lim->line_max : 0, POP3CMD_LINE_MAX_DEFAULT);
	st->lim.auth_max = cap_limit(lim ? lim->auth_max : 0, POP3CMD_AUTH_MAX_DEFAULT);
	if (st->lim.auth_max < st->lim.line_max)
		st->lim.auth_max = st->lim.line_max;
	st->lim.skip_max = lim && lim->skip_max ? lim->skip_max : POP3CMD_SKIP_MAX_DEFAULT;
	if (st->lim.skip_max > POP3CMD_SKIP_MAX_LIMIT)
		st->lim.skip_max = POP3CMD_SKIP_MAX_LIMIT;
	st->state = S_BEGIN;
}

/* Clear the previous line's results and arguments. */
static void
begin_line(struct pop3cmd *st)
{
	explicit_bzero(st->buf, st->used);
	st->used = 0;
	st->line_len = 0;
	st->kind = POP3CMD_NONE;
	st->name[0] = '\0';
	st->error = NULL;
	st->too_long = 0;
	st->nargs = 0;
}

/* The line limit for the line being read: AUTH lines may be longer. */
static size_t
line_limit(const struct pop3cmd *st)
{
	if (st->used >= 4 && strncasecmp(st->buf, "AUTH", 4) == 0 &&
	    (st->used == 4 || st->buf[4] == ' '))
		return st->lim.auth_max;
	return st->lim.line_max;
}

/* Record argument <i> at <off>, <len> octets (NUL-terminated by the caller). */
static void
set_arg(struct pop3cmd *st, unsigned i, size_t off, size_t len)
{
	st->arg_off[i] = (uint32_t)off;
	st->arg_len[i] = (uint32_t)len;
	st->nargs = i + 1;
}

/* Split the complete line in buf into kind and arguments. */
static enum pop3cmd_rc
finish_line(struct pop3cmd *st)
{
	size_t klen, i, alen;
	char *sp;

	st->state = S_BEGIN;
	st->buf[st->used] = '\0';
	if (st->used == 0) {
		st->error = "empty command";
		return POP3CMD_ERROR;
	}
	sp = memchr(st->buf, ' ', st->used);
	klen = sp ? (size_t)(sp - st->buf) : st->used;
	memcpy(st->name, st->buf, klen < sizeof(st->name) - 1 ? klen : sizeof(st->name) - 1);
	st->name[klen < sizeof(st->name) - 1 ? klen : sizeof(st->name) - 1] = '\0';

	st->kind = POP3CMD_UNKNOWN;
	if (klen == 4) {
		for (i = 0; i < sizeof(pop3cmd_names) / sizeof(pop3cmd_names[0]); i++) {
			if (strncasecmp(st->buf, pop3cmd_names[i].name, 4) == 0) {
				st->kind = pop3cmd_names[i].kind;
				break;
			}
		}
	}
	if (st->kind == POP3CMD_UNKNOWN)
		return POP3CMD_DONE;

	alen = sp ? st->used - klen - 1 : 0;
	switch (st->kind) {
	case POP3CMD_USER:
		if (alen == 0)
			goto missing;
		if (memchr(st->buf + klen + 1, ' ', alen) != NULL) {
			st->error = "USER takes one argument";
			return POP3CMD_ERROR;
		}
		set_arg(st, 0, klen + 1, alen);
		return POP3CMD_DONE;
	case POP3CMD_PASS:
		/* the rest of the line: passwords may hold spaces */
		if (alen == 0)
			goto missing;
		set_arg(st, 0, klen + 1, alen);
		return POP3CMD_DONE;
	case POP3CMD_AUTH:
		if (sp == NULL)
			return POP3CMD_DONE;     /* legacy mechanism list */
		if (alen == 0)
			goto bad_auth;
		sp = memchr(st->buf + klen + 1, ' ', alen);
		if (sp == NULL) {
			set_arg(st, 0, klen + 1, alen);
			return POP3CMD_DONE;
		}
		*sp = '\0';
		set_arg(st, 0, klen + 1, (size_t)(sp - st->buf) - klen - 1);
		set_arg(st, 1, (size_t)(sp - st->buf) + 1, st->used - (size_t)(sp - st->buf) - 1);
		if (st->arg_len[0] == 0 || st->arg_len[1] == 0 ||
		    memchr(st->buf + st->arg_off[1], ' ', st->arg_len[1]) != NULL)
			goto bad_auth;
		return POP3CMD_DONE;
	default:
		if (sp != NULL) {
			st->error = "unexpected argument";
			return POP3CMD_ERROR;
		}
		return POP3CMD_DONE;
	}
missing:
	st->error = "missing argument";
	return POP3CMD_ERROR;
bad_auth:
	st->nargs = 0;
	st->error = "invalid AUTH arguments";
	return POP3CMD_ERROR;
}

/* Record <reason> and skip to the end of the line. */
static void
set_error(struct pop3cmd *st, const char *reason)
{
	if (st->error == NULL)
		st->error = reason;
	st->state = S_SKIP;
}

/* Read a SASL response line with the shared reader; an enum pop3cmd_rc. */
static enum pop3cmd_rc
sasl_feed(struct pop3cmd *st, const char *buf, size_t len, size_t *consumed)
{
	enum sasl_line_rc rc;

	rc = sasl_line_feed(&st->sasl, st->buf, sizeof(st->buf), buf, len, consumed);
	st->line_len = st->sasl.len;
	st->too_long = st->sasl.too_long;
	st->error = st->sasl.error;
	st->used = st->sasl.used;
	switch (rc) {
	case SASL_LINE_AGAIN:
		return POP3CMD_AGAIN;
	case SASL_LINE_FATAL:
		st->fatal = 1;
		return POP3CMD_FATAL;
	case SASL_LINE_ERROR:
		st->state = S_BEGIN;
		st->mode = MODE_CMD;
		return POP3CMD_ERROR;
	default:
		break;
	}
	st->state = S_BEGIN;
	st->mode = MODE_CMD;
	set_arg(st, 0, 0, st->used);
	st->kind = rc == SASL_LINE_CANCEL ? POP3CMD_SASL_CANCEL : POP3CMD_SASL_RESPONSE;
	return POP3CMD_DONE;
}

/*
 * Feed <len> octets at <buf> to <st>; <consumed> receives the octets used.
 * Returns an enum pop3cmd_rc.
 */
enum pop3cmd_rc
pop3cmd_parse(struct pop3cmd *st, const char *buf, size_t len, size_t *consumed)
{
	size_t i;

	*consumed = 0;
	if (st->fatal)
		return POP3CMD_FATAL;
	if (st->state == S_BEGIN) {
		begin_line(st);
		st->state = S_LINE;
		if (st->mode == MODE_SASL) {
			sasl_line_init(&st->sasl, st->lim.auth_max, st->lim.skip_max);
			st->state = S_SASL;
		}
	}
	if (st->state == S_SASL)
		return sasl_feed(st, buf, len, consumed);
	for (i = 0; i < len; i++) {
		char c = buf[i];

		/* the limit counts CR and LF, as RFC 2449 does; an over-long
		 * line is skipped to its end (POP3 has no literals: always safe) */
		if (++st->line_len > line_limit(st) && !st->too_long) {
			st->too_long = 1;
			st->error = "line too long";
			st->state = S_SKIP;
		} else if (st->too_long && st->line_len > st->lim.skip_max) {
			*consumed = i;
			st->fatal = 1;
			st->error = "line too long";
			return POP3CMD_FATAL;
		}
		switch (st->state) {
		case S_LINE:
			if (c == '\r') {
				st->state = S_CR;
			} else if (c == '\n') {
				*consumed = i + 1;
				return finish_line(st);
			} else if (c == '\0') {
				set_error(st, "NUL in command");
			} else {
				/* line_limit() <= LINE_MAX_LIMIT < BUF_SIZE - 1 */
				st->buf[st->used++] = c;
			}
			break;
		case S_CR:
			if (c == '\n') {
				*consumed = i + 1;
				return finish_line(st);
			}
			set_error(st, c == '\0' ? "NUL in command" : "CR without LF");
			break;
		case S_SKIP:
		default:
			if (c == '\n') {
				*consumed = i + 1;
				st->state = S_BEGIN;
				st->mode = MODE_CMD;
				st->nargs = 0;
				return POP3CMD_ERROR;
			}
			break;
		}
	}
	*consumed = len;
	return POP3CMD_AGAIN;
}

/* Make the next line a SASL response line; call after DONE only. */
void
pop3cmd_expect_sasl(struct pop3cmd *st)
{
	if (st->fatal)
		return;
	st->mode = MODE_SASL;
	st->state = S_BEGIN;
}

/*
 * Return argument <i> of the last command (inside <st>, NUL-terminated) and
 * its length in <len> (may be NULL); NULL when i >= nargs.
 */
const char *
pop3cmd_arg(const struct pop3cmd *st, unsigned i, size_t *len)
{
	if (len != NULL)
		*len = 0;
	if (i >= st->nargs)
		return NULL;
	if (len != NULL)
		*len = st->arg_len[i];
	return st->buf + st->arg_off[i];
}

/* Erase stored arguments and restart <st> at a line start (limits kept). */
void
pop3cmd_wipe(struct pop3cmd *st)
{
	struct pop3cmd_limits lim = st->lim;

	explicit_bzero(st, sizeof(*st));
	pop3cmd_init(st, &lim);
}
