/*
 * IMAP pre-auth command parser. A byte-driven state machine in the spirit of
 * nginx's ngx_mail_imap_parse_command(), but resumable at any byte, bounded
 * in every dimension, and able to skip a bad line (with the non-synchronizing
 * literals it carries) so that the daemon can answer BAD and go on with the
 * next line. Arguments are copied, unescaped, into the state's buffer.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdint.h>

#include "imapcmd.h"

enum {
	S_BEGIN = 0,  /* previous results still readable; reset on next call */
	S_LINE0,      /* first octet of a line */
	S_TAG,
	S_NAME,
	S_BETWEEN,    /* before a token (after SP or '(') */
	S_AFTER,      /* a token ended: SP, ')' or end of line must follow */
	S_ATOM,
	S_QUOTED,
	S_QUOTED_ESC,
	S_LITNUM,
	S_LITPLUS,
	S_LITCLOSE,
	S_LITCR,
	S_LITDATA,
	S_CR,         /* CR seen, LF must follow */
	S_SKIP,       /* skipping the rest of a bad or unknown line */
	S_SKIPLIT,    /* skipping the data of a {n+} literal */
	S_SASL,
	S_SASL_CR,
};

enum { MODE_CMD = 0, MODE_SASL };

/* Recognizer of "{digits[+]}" CRLF while skipping. */
enum { K_NONE = 0, K_OPEN, K_DIGITS, K_PLUS, K_CLOSE, K_CR };

enum { LIST_NONE = 0, LIST_OPEN, LIST_CLOSED };

#define LITNUM_SAT ((uint64_t)UINT32_MAX + 1)

struct imapcmd_name {
	const char *name;
	enum imapcmd_kind kind;
};

static const struct imapcmd_name imapcmd_names[] = {
	{ "CAPABILITY", IMAPCMD_CAPABILITY },
	{ "NOOP", IMAPCMD_NOOP },
	{ "LOGOUT", IMAPCMD_LOGOUT },
	{ "ID", IMAPCMD_ID },
	{ "STARTTLS", IMAPCMD_STARTTLS },
	{ "LOGIN", IMAPCMD_LOGIN },
	{ "AUTHENTICATE", IMAPCMD_AUTHENTICATE },
};

/* ATOM-CHAR plus ']' (ASTRING-CHAR): printable ASCII but ( ) { % * " \ SP. */
static int
is_astring_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return 0;
	return strchr("(){%*\"\\", c) == NULL;
}

/* RFC 3501 tag: ASTRING-CHAR except '+'. */
static int
is_tag_char(unsigned char c)
{
	return c != '+' && is_astring_char(c);
}

static size_t
cap_limit(size_t v, size_t def, size_t max)
{
	if (v == 0)
		return def;
	return v > max ? max : v;
}

/*
 * Initialise <st> with <lim> (NULL: defaults). Limits above the compiled
 * maxima are capped. No return value.
 */
void
imapcmd_init(struct imapcmd *st, const struct imapcmd_limits *lim)
{
	memset(st, 0, sizeof(*st));
	st->lim.line_max = cap_limit(lim ? lim->line_max : 0,
	                             IMAPCMD_LINE_MAX_DEFAULT, IMAPCMD_LINE_MAX_LIMIT);
	st->lim.literal_max = cap_limit(lim ? lim->literal_max : 0,
	                                IMAPCMD_LITERAL_MAX_DEFAULT, IMAPCMD_LITERAL_MAX_LIMIT);
	st->lim.sasl_max = cap_limit(lim ? lim->sasl_max : 0,
	                             IMAPCMD_SASL_MAX_DEFAULT, IMAPCMD_BUF_SIZE - 1);
	st->lim.skip_max = cap_limit(lim ? lim->skip_max : 0,
	                             IMAPCMD_SKIP_MAX_DEFAULT, IMAPCMD_SKIP_MAX_LIMIT);
	st->state = S_BEGIN;
	st->mode = MODE_CMD;
}

/* Clear the results of the previous line; the tag survives into SASL mode. */
static void
begin_line(struct imapcmd *st)
{
	explicit_bzero(st->buf, st->used);
	st->used = 0;
	st->kind = IMAPCMD_NONE;
	st->error = NULL;
	st->literal_size = 0;
	st->id_nil = 0;
	st->too_long = 0;
	st->nargs = 0;
	st->name[0] = '\0';
	st->namelen = 0;
	st->in_list = LIST_NONE;
	st->lit_digits = 0;
	st->lit_plus = 0;
	st->lit_remain = 0;
	st->lit_num = 0;
	st->literals = 0;
	st->skip_state = K_NONE;
	st->line_len = 0;
	if (st->mode != MODE_SASL) {
		st->tag[0] = '\0';
		st->taglen = 0;
	}
}

/* Record the first error of the line and skip the rest of it. */
static void
set_error(struct imapcmd *st, const char *reason)
{
	if (st->error == NULL)
		st->error = reason;
	st->state = S_SKIP;
	st->skip_state = K_NONE;
}

/*
 * The line went over its limit: report that (it outranks an earlier error),
 * forget a tag not yet complete, and skip the rest of the line. A literal
 * header being read is handed to the skip recognizer, so that the data of
 * a {n+} announced at the end of the line is still skipped as data.
 */
static void
line_overflow(struct imapcmd *st)
{
	unsigned k = K_NONE;

	switch (st->state) {
	case S_LINE0:
	case S_TAG:
		st->tag[0] = '\0';
		st->taglen = 0;
		break;
	case S_LITNUM:
		k = st->lit_digits ? K_DIGITS : K_OPEN;
		break;
	case S_LITPLUS:
		k = K_PLUS;
		break;
	case S_LITCLOSE:
		k = K_CLOSE;
		break;
	case S_LITCR:
		k = K_CR;
		break;
	case S_SKIP:
		k = st->skip_state;
		break;
	default:
		break;
	}
	st->too_long = 1;
	st->error = "line too long";
	st->state = S_SKIP;
	st->skip_state = k;
}

/* Start argument number st->nargs of <type>; 0 or -1 (error set). */
static int
arg_start(struct imapcmd *st, int type)
{
	struct imapcmd_arg *a;

	if (st->nargs >= IMAPCMD_ARGS_MAX) {
		set_error(st, "too many arguments");
		return -1;
	}
	a = &st->args[st->nargs];
	a->off = (uint32_t)st->used;
	a->len = 0;
	a->type = (uint8_t)type;
	a->flags = 0;
	st->cur_full = 0;
	st->cur_cap = SIZE_MAX;
	if (st->kind == IMAPCMD_ID) {
		st->cur_cap = (st->nargs % 2 == 0) ? IMAPCMD_ID_FIELD_MAX
		                                   : IMAPCMD_ID_VALUE_KEEP;
	}
	return 0;
}

/* Append octet <c> to the current argument; 0 or -1 (error set). */
static int
arg_put(struct imapcmd *st, char c)
{
	struct imapcmd_arg *a = &st->args[st->nargs];

	st->cur_full++;
	if (st->kind == IMAPCMD_ID) {
		if (st->nargs % 2 == 0 && st->cur_full > IMAPCMD_ID_FIELD_MAX) {
			set_error(st, "ID field too long");
			return -1;
		}
		if (st->cur_full > IMAPCMD_ID_VALUE_MAX) {
			set_error(st, "ID value too long");
			return -1;
		}
	}
	if (a->len >= st->cur_cap) {
		a->flags |= IMAPCMD_ARG_TRUNCATED;
		return 0;
	}
	/* keep room for this argument's NUL */
	if (st->used + 2 > IMAPCMD_BUF_SIZE) {
		set_error(st, "arguments too long");
		return -1;
	}
	st->buf[st->used++] = c;
	a->len++;
	return 0;
}

/* Close the current argument (NUL-terminate, apply NIL rules for ID). */
static int
arg_end(struct imapcmd *st)
{
	struct imapcmd_arg *a = &st->args[st->nargs];

	if (st->kind == IMAPCMD_ID && a->type == IMAPCMD_ARG_ATOM &&
	    a->len == 3 && strncasecmp(st->buf + a->off, "NIL", 3) == 0) {
		st->used = a->off;
		if (st->in_list == LIST_NONE) {
			st->id_nil = 1;
			return 0;
		}
		if (st->nargs % 2 == 0) {
			set_error(st, "ID field must be a string");
			return -1;
		}
		a->type = IMAPCMD_ARG_NIL;
		a->len = 0;
	} else if (st->kind == IMAPCMD_ID && st->in_list == LIST_NONE) {
		set_error(st, "ID expects NIL or a list");
		return -1;
	}
	if (st->used >= IMAPCMD_BUF_SIZE) {
		set_error(st, "arguments too long");
		return -1;
	}
	st->buf[st->used++] = '\0';
	st->nargs++;
	return 0;
}

/*
 * Check that a token may start here for the command being parsed, <c> being
 * its first octet. Returns 0 or -1 (error set).
 */
static int
token_allowed(struct imapcmd *st, unsigned char c)
{
	switch (st->kind) {
	case IMAPCMD_LOGIN:
		if (st->nargs >= 2) {
			set_error(st, "too many arguments");
			return -1;
		}
		return 0;
	case IMAPCMD_AUTHENTICATE:
		if (st->nargs >= 2) {
			set_error(st, "too many arguments");
			return -1;
		}
		if (c == '"' || c == '{') {
			set_error(st, "AUTHENTICATE arguments must be atoms");
			return -1;
		}
		return 0;
	case IMAPCMD_ID:
		if (st->id_nil || st->in_list == LIST_CLOSED) {
			set_error(st, "unexpected argument");
			return -1;
		}
		if (st->in_list == LIST_OPEN && c != ')' &&
		    st->nargs >= 2 * IMAPCMD_ID_PAIRS_MAX) {
			set_error(st, "too many ID pairs");
			return -1;
		}
		if (st->in_list == LIST_NONE && c != '(' && !is_astring_char(c)) {
			set_error(st, "ID expects NIL or a list");
			return -1;
		}
		return 0;
	default:
		set_error(st, "unexpected argument");
		return -1;
	}
}

/* Validate the argument shape at the end of the line; 0 or -1 (error set). */
static int
check_command(struct imapcmd *st)
{
	switch (st->kind) {
	case IMAPCMD_LOGIN:
		if (st->nargs != 2)
			goto bad;
		return 0;
	case IMAPCMD_AUTHENTICATE:
		if (st->nargs < 1)
			goto bad;
		return 0;
	case IMAPCMD_ID:
		if (st->id_nil || st->in_list == LIST_CLOSED)
			return 0;
		goto bad;
	default:
		return 0;
	}
bad:
	st->error = "wrong number of arguments";
	return -1;
}

/* Resolve the command name just read. */
static void
name_lookup(struct imapcmd *st)
{
	size_t i;

	st->kind = IMAPCMD_UNKNOWN;
	if (st->namelen > IMAPCMD_NAME_MAX)
		return;
	for (i = 0; i < sizeof(imapcmd_names) / sizeof(imapcmd_names[0]); i++) {
		if (strcasecmp(st->name, imapcmd_names[i].name) == 0) {
			st->kind = imapcmd_names[i].kind;
			return;
		}
	}
}

/* The line ended (LF consumed) outside the skip states: the result. */
static enum imapcmd_rc
end_line(struct imapcmd *st)
{
	int sasl = (st->mode == MODE_SASL);

	st->state = S_BEGIN;
	st->mode = MODE_CMD;
	if (st->error != NULL)
		return IMAPCMD_ERROR;
	if (sasl)
		return IMAPCMD_DONE;
	if (check_command(st) < 0)
		return IMAPCMD_ERROR;
	return IMAPCMD_DONE;
}

/* The skipped line ended: ERROR if an error was recorded, else UNKNOWN done. */
static enum imapcmd_rc
end_skip(struct imapcmd *st)
{
	st->state = S_BEGIN;
	if (st->mode == MODE_SASL)
		st->mode = MODE_CMD;
	if (st->error != NULL)
		return IMAPCMD_ERROR;
	return IMAPCMD_DONE;
}

/* Enter the FATAL state with <reason>. */
static enum imapcmd_rc
fatal(struct imapcmd *st, const char *reason)
{
	st->fatal = 1;
	st->error = reason;
	return IMAPCMD_FATAL;
}

/*
 * A literal header "{n}" / "{n+}" and its line end were read (known command,
 * no error so far). Sets up the data state. Returns IMAPCMD_AGAIN to go on,
 * IMAPCMD_LITERAL to ask for a continuation, or ERROR/FATAL.
 */
static enum imapcmd_rc
literal_begin(struct imapcmd *st)
{
	uint64_t n = st->lit_num;
	const char *why = NULL;

	if (++st->literals > IMAPCMD_LITERALS_MAX)
		why = "too many literals";
	else if (n > st->lim.literal_max)
		why = "literal too long";
	else if (st->kind == IMAPCMD_ID && st->nargs % 2 == 0 && n > IMAPCMD_ID_FIELD_MAX)
		why = "ID field too long";
	else if (st->kind == IMAPCMD_ID && n > IMAPCMD_ID_VALUE_MAX)
		why = "ID value too long";
	else if (st->kind != IMAPCMD_ID && st->used + n + 2 > IMAPCMD_BUF_SIZE)
		why = "arguments too long";
	if (why != NULL) {
		if (!st->lit_plus) {
			/* The client waits for "+": BAD ends the command. */
			st->error = why;
			st->state = S_BEGIN;
			return IMAPCMD_ERROR;
		}
		if (n > st->lim.literal_max || st->literals > IMAPCMD_LITERALS_MAX)
			return fatal(st, why);
		/* {n+} data follows regardless: skip it, then the line. */
		st->error = why;
		st->lit_remain = (size_t)n;
		st->skip_state = K_NONE;
		st->state = S_SKIPLIT;
		return IMAPCMD_AGAIN;
	}
	if (arg_start(st, IMAPCMD_ARG_LITERAL) < 0) {
		/* too many arguments: same handling as above */
		if (!st->lit_plus) {
			st->state = S_BEGIN;
			return IMAPCMD_ERROR;
		}
		st->lit_remain = (size_t)n;
		st->state = S_SKIPLIT;
		return IMAPCMD_AGAIN;
	}
	st->lit_remain = (size_t)n;
	st->state = S_LITDATA;
	if (!st->lit_plus) {
		st->literal_size = (size_t)n;
		return IMAPCMD_LITERAL;
	}
	return IMAPCMD_AGAIN;
}

/* The literal's data is complete: close the argument. */
static void
literal_end(struct imapcmd *st)
{
	if (arg_end(st) == 0)
		st->state = S_AFTER;
}

/*
 * Feed <len> octets at <buf> to <st>; store the octets used in <consumed>.
 * Returns an enum imapcmd_rc; see the header for what the caller does.
 */
enum imapcmd_rc
imapcmd_parse(struct imapcmd *st, const char *buf, size_t len, size_t *consumed)
{
	size_t i = 0, counted = SIZE_MAX;
	enum imapcmd_rc rc;

	*consumed = 0;
	if (st->fatal)
		return IMAPCMD_FATAL;
	if (st->state == S_BEGIN) {
		begin_line(st);
		st->state = S_LINE0;
		if (st->mode == MODE_SASL) {
			st->state = S_SASL;
			(void)arg_start(st, IMAPCMD_ARG_ATOM);  /* nargs is 0: cannot fail */
		}
	}
	/* A {0} literal: nothing to read after the continuation. */
	if (st->state == S_LITDATA && st->lit_remain == 0)
		literal_end(st);

	while (i < len) {
		unsigned char c = (unsigned char)buf[i];

		/* Literal data is not part of the line length. */
		if (st->state == S_LITDATA) {
			size_t n = len - i, k;
			if (n > st->lit_remain)
				n = st->lit_remain;
			for (k = 0; k < n; k++) {
				if (buf[i + k] == '\0') {
					st->error = st->error ? st->error : "NUL in literal";
					break;
				}
				if (arg_put(st, buf[i + k]) < 0)
					break;
			}
			if (k < n) {
				/* error: skip the rest of the literal, then the line */
				st->lit_remain -= k;
				st->state = S_SKIPLIT;
				i += k;
				continue;
			}
			i += n;
			st->lit_remain -= n;
			if (st->lit_remain == 0)
				literal_end(st);
			continue;
		}
		if (st->state == S_SKIPLIT) {
			size_t n = len - i;
			if (n > st->lit_remain)
				n = st->lit_remain;
			i += n;
			st->lit_remain -= n;
			if (st->lit_remain == 0) {
				st->state = S_SKIP;
				st->skip_state = K_NONE;
			}
			continue;
		}

		/* Count each octet once, even when a state hands it to another. */
		if (i != counted) {
			size_t limit = st->mode == MODE_SASL ? st->lim.sasl_max : st->lim.line_max;

			counted = i;
			if (++st->line_len > limit && !st->too_long) {
				line_overflow(st);
			} else if (st->line_len > st->lim.skip_max) {
				/* not a mail client: stop reading */
				*consumed = i;
				return fatal(st, "line too long");
			}
		}
		if (c == '\0' && st->state != S_SKIP && st->error == NULL) {
			if (st->state == S_TAG) {
				st->tag[0] = '\0';
				st->taglen = 0;
			}
			set_error(st, "NUL in command");
			continue;
		}

		switch (st->state) {
		case S_LINE0:
			if (c == '\n') {
				st->error = "empty command line";
				*consumed = i + 1;
				st->state = S_BEGIN;
				return IMAPCMD_ERROR;
			}
			if (c == '\r') {
				st->error = "empty command line";
				st->state = S_CR;
				break;
			}
			if (!is_tag_char(c)) {
				set_error(st, "invalid tag");
				continue;    /* reprocess in S_SKIP */
			}
			st->tag[st->taglen++] = (char)c;
			st->tag[st->taglen] = '\0';
			st->state = S_TAG;
			break;

		case S_TAG:
			if (c == ' ') {
				st->state = S_NAME;
				break;
			}
			if (c == '\r' || c == '\n') {
				set_error(st, "missing command");
				continue;
			}
			if (!is_tag_char(c)) {
				st->tag[0] = '\0';
				st->taglen = 0;
				set_error(st, "invalid tag");
				continue;
			}
			if (st->taglen >= IMAPCMD_TAG_MAX) {
				st->tag[0] = '\0';
				st->taglen = 0;
				set_error(st, "tag too long");
				continue;
			}
			st->tag[st->taglen++] = (char)c;
			st->tag[st->taglen] = '\0';
			break;

		case S_NAME:
			if (c == ' ' || c == '\r' || c == '\n') {
				if (st->namelen == 0) {
					set_error(st, "missing command");
					continue;
				}
				name_lookup(st);
				if (st->kind == IMAPCMD_UNKNOWN) {
					/* skip the rest (its literals too), then DONE */
					st->state = S_SKIP;
					st->skip_state = K_NONE;
					continue;
				}
				st->state = S_BETWEEN;
				if (c != ' ')
					continue;
				break;
			}
			if (!is_astring_char(c)) {
				set_error(st, "invalid command name");
				continue;
			}
			if (st->namelen < IMAPCMD_NAME_MAX) {
				st->name[st->namelen] = (char)c;
				st->name[st->namelen + 1] = '\0';
			}
			st->namelen++;
			break;

		case S_BETWEEN:
			if (c == ' ')
				break;
			if (c == '\r') {
				st->state = S_CR;
				break;
			}
			if (c == '\n') {
				*consumed = i + 1;
				return end_line(st);
			}
			if (token_allowed(st, c) < 0)
				continue;
			if (c == '(') {
				if (st->kind != IMAPCMD_ID || st->in_list != LIST_NONE) {
					set_error(st, "unexpected list");
					continue;
				}
				st->in_list = LIST_OPEN;
				break;
			}
			if (c == ')') {
				if (st->kind != IMAPCMD_ID || st->in_list != LIST_OPEN) {
					set_error(st, "unexpected ')'");
					continue;
				}
				goto close_list;
			}
			if (c == '"') {
				if (arg_start(st, IMAPCMD_ARG_QUOTED) < 0)
					continue;
				st->state = S_QUOTED;
				break;
			}
			if (c == '{') {
				st->lit_num = 0;
				st->lit_plus = 0;
				st->lit_digits = 0;
				st->state = S_LITNUM;
				break;
			}
			if (!is_astring_char(c)) {
				set_error(st, "invalid argument");
				continue;
			}
			if (arg_start(st, IMAPCMD_ARG_ATOM) < 0)
				continue;
			st->state = S_ATOM;
			if (arg_put(st, (char)c) < 0)
				continue;
			break;

		case S_AFTER:
			if (c == ' ') {
				st->state = S_BETWEEN;
				break;
			}
			if (c == '\r') {
				st->state = S_CR;
				break;
			}
			if (c == '\n') {
				*consumed = i + 1;
				return end_line(st);
			}
			if (c == ')' && st->kind == IMAPCMD_ID && st->in_list == LIST_OPEN)
				goto close_list;
			set_error(st, "missing space after argument");
			continue;

		close_list:
			if (st->nargs % 2 != 0) {
				set_error(st, "ID list needs field/value pairs");
				continue;
			}
			st->in_list = LIST_CLOSED;
			st->state = S_AFTER;
			break;

		case S_ATOM:
			if (is_astring_char(c)) {
				if (arg_put(st, (char)c) < 0)
					continue;
				break;
			}
			if (c != ' ' && c != '\r' && c != '\n' && c != ')') {
				set_error(st, "invalid argument");
				continue;
			}
			if (arg_end(st) < 0)
				continue;
			st->state = S_AFTER;
			continue;    /* the delimiter is handled by S_AFTER */

		case S_QUOTED:
			if (c == '\\') {
				st->state = S_QUOTED_ESC;
				break;
			}
			if (c == '"') {
				if (arg_end(st) < 0)
					continue;
				st->state = S_AFTER;
				break;
			}
			if (c == '\0' || c == '\r' || c == '\n' || c >= 0x80) {
				set_error(st, c == '\0' ? "NUL in command" :
				          c >= 0x80 ? "8-bit octet in quoted string" :
				          "unterminated quoted string");
				continue;
			}
			if (arg_put(st, (char)c) < 0)
				continue;
			break;

		case S_QUOTED_ESC:
			if (c != '"' && c != '\\') {
				set_error(st, "invalid escape in quoted string");
				continue;
			}
			if (arg_put(st, (char)c) < 0)
				continue;
			st->state = S_QUOTED;
			break;

		case S_LITNUM:
			if (c >= '0' && c <= '9') {
				st->lit_num = st->lit_num * 10 + (uint64_t)(c - '0');
				if (st->lit_num > LITNUM_SAT)
					st->lit_num = LITNUM_SAT;
				st->lit_digits = 1;    /* at least one digit */
				break;
			}
			if (st->lit_digits && c == '+') {
				st->lit_plus = 1;
				st->state = S_LITPLUS;
				break;
			}
			if (st->lit_digits && c == '}') {
				st->state = S_LITCLOSE;
				break;
			}
			set_error(st, "invalid literal");
			continue;

		case S_LITPLUS:
			if (c != '}') {
				set_error(st, "invalid literal");
				continue;
			}
			st->state = S_LITCLOSE;
			break;

		case S_LITCLOSE:
			if (c == '\r') {
				st->state = S_LITCR;
				break;
			}
			/* FALLTHROUGH */
		case S_LITCR:
			if (c != '\n') {
				set_error(st, "literal must end the line");
				continue;
			}
			st->lit_digits = 0;
			*consumed = i + 1;
			rc = literal_begin(st);
			if (rc != IMAPCMD_AGAIN)
				return rc;
			if (st->state == S_LITDATA && st->lit_remain == 0)
				literal_end(st);
			break;

		case S_CR:
			if (c == '\n') {
				*consumed = i + 1;
				return end_line(st);
			}
			set_error(st, "CR without LF");
			continue;

		case S_SKIP:
			switch (st->skip_state) {
			case K_OPEN:
				if (c >= '0' && c <= '9') {
					st->lit_num = (uint64_t)(c - '0');
					st->skip_state = K_DIGITS;
					break;
				}
				st->skip_state = K_NONE;
				goto skip_plain;
			case K_DIGITS:
				if (c >= '0' && c <= '9') {
					st->lit_num = st->lit_num * 10 + (uint64_t)(c - '0');
					if (st->lit_num > LITNUM_SAT)
						st->lit_num = LITNUM_SAT;
					break;
				}
				if (c == '+') {
					st->lit_plus = 1;
					st->skip_state = K_PLUS;
					break;
				}
				if (c == '}') {
					st->lit_plus = 0;
					st->skip_state = K_CLOSE;
					break;
				}
				st->skip_state = K_NONE;
				goto skip_plain;
			case K_PLUS:
				if (c == '}') {
					st->skip_state = K_CLOSE;
					break;
				}
				st->skip_state = K_NONE;
				goto skip_plain;
			case K_CLOSE:
				if (c == '\r') {
					st->skip_state = K_CR;
					break;
				}
				/* FALLTHROUGH */
			case K_CR:
				if (c == '\n') {
					*consumed = i + 1;
					st->skip_state = K_NONE;
					if (!st->lit_plus)
						return end_skip(st);
					if (++st->literals > IMAPCMD_LITERALS_MAX)
						return fatal(st, "too many literals");
					if (st->lit_num > st->lim.literal_max)
						return fatal(st, "literal too long");
					st->lit_remain = (size_t)st->lit_num;
					st->state = S_SKIPLIT;
					if (st->lit_remain == 0)
						st->state = S_SKIP;
					break;
				}
				st->skip_state = K_NONE;
				goto skip_plain;
			default:
			skip_plain:
				if (c == '{' && st->mode != MODE_SASL) {
					st->skip_state = K_OPEN;
					break;
				}
				if (c == '\n') {
					*consumed = i + 1;
					return end_skip(st);
				}
				break;
			}
			break;

		case S_SASL:
			if (c == '\r') {
				st->state = S_SASL_CR;
				break;
			}
			if (c == '\n')
				goto sasl_end;
			if (arg_put(st, (char)c) < 0)
				continue;
			break;

		case S_SASL_CR:
			if (c != '\n') {
				set_error(st, "CR without LF");
				continue;
			}
		sasl_end:
			if (arg_end(st) < 0) {
				*consumed = i + 1;
				return end_skip(st);
			}
			st->kind = IMAPCMD_SASL_RESPONSE;
			if (st->args[0].len == 1 && st->buf[st->args[0].off] == '*')
				st->kind = IMAPCMD_SASL_CANCEL;
			*consumed = i + 1;
			return end_line(st);

		default:
			set_error(st, "internal parser error");
			continue;
		}
		i++;
	}
	*consumed = len;
	return IMAPCMD_AGAIN;
}

/* Make the next line a SASL response line; call between lines only. */
void
imapcmd_expect_sasl(struct imapcmd *st)
{
	if (st->fatal)
		return;
	st->mode = MODE_SASL;
	st->state = S_BEGIN;
}

/*
 * Return argument <i> of the last command (NUL-terminated, inside <st>) and
 * its length in <len> (may be NULL); NULL for NIL or i >= nargs.
 */
const char *
imapcmd_arg(const struct imapcmd *st, unsigned i, size_t *len)
{
	if (len != NULL)
		*len = 0;
	if (i >= st->nargs || st->args[i].type == IMAPCMD_ARG_NIL)
		return NULL;
	if (len != NULL)
		*len = st->args[i].len;
	return st->buf + st->args[i].off;
}

/* Erase stored arguments and restart <st> at a line start (limits kept). */
void
imapcmd_wipe(struct imapcmd *st)
{
	struct imapcmd_limits lim = st->lim;

	explicit_bzero(st, sizeof(*st));
	imapcmd_init(st, &lim);
}

/*
 * Encode <value> (<len> octets) as a quoted string or a literal into <out>
 * (<outlen> bytes); <split> gets the octets to send before waiting for "+".
 * Returns the length or -1 (NUL in value, or no room).
 */
ssize_t
imapcmd_quote(char *out, size_t outlen, const char *value, size_t len,
              unsigned flags, size_t *split)
{
	size_t i;
	int safe = 1;
	int n;

	*split = 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)value[i];
		if (c == '\0')
			return -1;
		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			safe = 0;
	}
	if (safe) {
		if (len + 3 > outlen)
			return -1;
		out[0] = '"';
		memcpy(out + 1, value, len);
		out[len + 1] = '"';
		out[len + 2] = '\0';
		return (ssize_t)(len + 2);
	}
	n = snprintf(out, outlen, "{%zu%s}\r\n", len,
	             (flags & IMAPCMD_QUOTE_LITERALPLUS) ? "+" : "");
	if (n < 0 || (size_t)n >= outlen || outlen - (size_t)n < len + 1)
		return -1;
	memcpy(out + n, value, len);
	out[(size_t)n + len] = '\0';
	if (!(flags & IMAPCMD_QUOTE_LITERALPLUS))
		*split = (size_t)n;
	return (ssize_t)((size_t)n + len);
}
