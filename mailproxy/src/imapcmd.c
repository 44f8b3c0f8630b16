/*
 * IMAP pre-auth command parser, in two layers, resumable at any octet and
 * bounded in every dimension (in the spirit of nginx's
 * ngx_mail_imap_parse_command()):
 *
 *  - a lexer that knows only IMAP's token syntax: the tag, the command name,
 *    atoms, quoted strings, literals ({n} and {n+}, then their data), list
 *    parentheses and the line end. It never looks at which command it reads.
 *    One literal recognizer serves both for reading a literal and for
 *    skipping the rest of a bad or unknown line, whose {n+} data must be
 *    skipped as data, never executed as commands;
 *  - a command table: for each command we answer before login, its kind,
 *    the shape and number of its arguments, and the bounds of each argument.
 *    The lexer asks it at each token: may this token start here, where does
 *    this octet go, is a literal of this size acceptable, is the line whole.
 *
 * A bad line is skipped to its end, so the daemon answers BAD and goes on.
 * Arguments are copied, unescaped, into the state's buffer. SASL response
 * lines are read by the SASL line reader the POP3 parser shares.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdint.h>

#include "imapcmd.h"
#include "sasl_line.h"

/* Lexer states. */
enum {
	S_BEGIN = 0,  /* previous results still readable; reset on next call */
	S_TAG,        /* the tag, from the first octet of a line */
	S_NAME,       /* the command name */
	S_BETWEEN,    /* before a token (after SP or '(') */
	S_AFTER,      /* a token ended: SP, ')' or end of line must follow */
	S_ATOM,
	S_QUOTED,
	S_QUOTED_ESC,
	S_LITHDR,     /* a literal header, in the literal recognizer */
	S_LITDATA,
	S_CR,         /* CR seen, LF must follow */
	S_SKIP,       /* skipping the rest of a bad or unknown line */
	S_SKIPLIT,    /* skipping the data of a {n+} literal */
	S_SASL,       /* one SASL response line, in the SASL line reader */
};

enum { MODE_CMD = 0, MODE_SASL };

/* Tokens the lexer asks the command table about, by their first octet. */
enum tok { T_ATOM = 0, T_QUOTED, T_LITERAL, T_OPEN, T_CLOSE, T_BAD };

/* States of the literal recognizer: "{" digits ["+"] "}" [CR] LF. */
enum { L_NONE = 0, L_OPEN, L_DIGITS, L_PLUS, L_CLOSE, L_CR };

/* What the literal recognizer says of one octet. */
enum lit_step {
	LIT_MORE = 0,    /* part of a header */
	LIT_DONE,        /* the header and its line end are complete */
	LIT_BAD_HEADER,  /* not a literal header (recognizer reset) */
	LIT_BAD_EOL,     /* a header not followed by the line end (reset) */
};

enum { LIST_NONE = 0, LIST_OPEN, LIST_CLOSED };

#define LITNUM_SAT ((uint64_t)UINT32_MAX + 1)

/* How a command's arguments are written. */
enum shape {
	SHAPE_NONE = 0,  /* no argument at all */
	SHAPE_ASTRING,   /* astrings: atoms, quoted strings or literals */
	SHAPE_ATOM,      /* atoms only */
	SHAPE_ID,        /* NIL, or a list of field/value pairs (RFC 2971) */
};

/*
 * The bounds of one argument: more than <max> octets is the error
 * <too_long>; octets past <keep> are dropped and the argument flagged.
 */
struct argcap {
	size_t max;
	size_t keep;
	const char *too_long;
};

#define NOCAP { SIZE_MAX, SIZE_MAX, NULL }

/* One command we answer before login. */
struct imapcmd_def {
	const char *name;
	enum imapcmd_kind kind;
	enum shape shape;
	unsigned min_args, max_args;  /* arguments stored (ID: fields and values) */
	const char *too_many;         /* error for an argument past max_args */
	const char *bad_form;         /* error for an argument of the wrong form */
	struct argcap cap[2];         /* even and odd arguments (ID: field, value) */
};

static const struct imapcmd_def imapcmd_table[] = {
	{ "CAPABILITY", IMAPCMD_CAPABILITY, SHAPE_NONE, 0, 0,
	  "unexpected argument", NULL, { NOCAP, NOCAP } },
	{ "NOOP", IMAPCMD_NOOP, SHAPE_NONE, 0, 0,
	  "unexpected argument", NULL, { NOCAP, NOCAP } },
	{ "LOGOUT", IMAPCMD_LOGOUT, SHAPE_NONE, 0, 0,
	  "unexpected argument", NULL, { NOCAP, NOCAP } },
	{ "ID", IMAPCMD_ID, SHAPE_ID, 0, 2 * IMAPCMD_ID_PAIRS_MAX,
	  "too many ID pairs", "ID expects NIL or a list",
	  { { IMAPCMD_ID_FIELD_MAX, IMAPCMD_ID_FIELD_MAX, "ID field too long" },
	    { IMAPCMD_ID_VALUE_MAX, IMAPCMD_ID_VALUE_KEEP, "ID value too long" } } },
	{ "STARTTLS", IMAPCMD_STARTTLS, SHAPE_NONE, 0, 0,
	  "unexpected argument", NULL, { NOCAP, NOCAP } },
	{ "LOGIN", IMAPCMD_LOGIN, SHAPE_ASTRING, 2, 2,
	  "too many arguments", NULL, { NOCAP, NOCAP } },
	{ "AUTHENTICATE", IMAPCMD_AUTHENTICATE, SHAPE_ATOM, 1, 2,
	  "too many arguments", "AUTHENTICATE arguments must be atoms", { NOCAP, NOCAP } },
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
	st->def = NULL;
	st->error = NULL;
	st->literal_size = 0;
	st->id_nil = 0;
	st->too_long = 0;
	st->nargs = 0;
	st->name[0] = '\0';
	st->namelen = 0;
	st->in_list = LIST_NONE;
	st->lit_state = L_NONE;
	st->lit_plus = 0;
	st->lit_remain = 0;
	st->lit_num = 0;
	st->literals = 0;
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
	st->lit_state = L_NONE;
}

/* Enter the FATAL state with <reason>. */
static enum imapcmd_rc
fatal(struct imapcmd *st, const char *reason)
{
	st->fatal = 1;
	st->error = reason;
	return IMAPCMD_FATAL;
}

/* ---- the literal recognizer --------------------------------------------- */

/*
 * Feed octet <c> to the literal recognizer of <st>; a header starts at '{'.
 * The length saturates above UINT32_MAX, so any over-long literal is seen
 * as such. Returns an enum lit_step; the recognizer is reset unless MORE.
 */
static enum lit_step
lit_feed(struct imapcmd *st, unsigned char c)
{
	int digit = (c >= '0' && c <= '9');

	switch (st->lit_state) {
	case L_NONE:
		if (c != '{')
			return LIT_BAD_HEADER;
		st->lit_num = 0;
		st->lit_plus = 0;
		st->lit_state = L_OPEN;
		return LIT_MORE;
	case L_OPEN:
	case L_DIGITS:
		if (digit) {
			st->lit_num = st->lit_num * 10 + (uint64_t)(c - '0');
			if (st->lit_num > LITNUM_SAT)
				st->lit_num = LITNUM_SAT;
			st->lit_state = L_DIGITS;
			return LIT_MORE;
		}
		if (st->lit_state == L_DIGITS && c == '+') {
			st->lit_plus = 1;
			st->lit_state = L_PLUS;
			return LIT_MORE;
		}
		if (st->lit_state == L_DIGITS && c == '}') {
			st->lit_state = L_CLOSE;
			return LIT_MORE;
		}
		break;
	case L_PLUS:
		if (c == '}') {
			st->lit_state = L_CLOSE;
			return LIT_MORE;
		}
		break;
	case L_CLOSE:
		if (c == '\r') {
			st->lit_state = L_CR;
			return LIT_MORE;
		}
		/* FALLTHROUGH */
	case L_CR:
		st->lit_state = L_NONE;
		return c == '\n' ? LIT_DONE : LIT_BAD_EOL;
	}
	st->lit_state = L_NONE;
	return LIT_BAD_HEADER;
}

/* ---- the command table: what each command takes ------------------------ */

/* Find the command name just read; 0 (st->def set) or -1 (UNKNOWN). */
static int
cmd_lookup(struct imapcmd *st)
{
	size_t i;

	st->kind = IMAPCMD_UNKNOWN;
	if (st->namelen > IMAPCMD_NAME_MAX)
		return -1;
	for (i = 0; i < sizeof(imapcmd_table) / sizeof(imapcmd_table[0]); i++) {
		if (strcasecmp(st->name, imapcmd_table[i].name) == 0) {
			st->def = &imapcmd_table[i];
			st->kind = st->def->kind;
			return 0;
		}
	}
	return -1;
}

/* The bounds of the argument being read or about to start. */
static const struct argcap *
cmd_cap(const struct imapcmd *st)
{
	return &st->def->cap[st->nargs % 2];
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
	st->cur_cap = cmd_cap(st)->keep;
	return 0;
}

/* Append octet <c> to the current argument within its bounds; 0 or -1. */
static int
arg_put(struct imapcmd *st, char c)
{
	struct imapcmd_arg *a = &st->args[st->nargs];
	const struct argcap *cap = cmd_cap(st);

	if (++st->cur_full > cap->max) {
		set_error(st, cap->too_long);
		return -1;
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

/* Close the current argument (NUL-terminate; ID's NIL rules); 0 or -1. */
static int
arg_end(struct imapcmd *st)
{
	struct imapcmd_arg *a = &st->args[st->nargs];

	if (st->def->shape == SHAPE_ID && a->type == IMAPCMD_ARG_ATOM &&
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
	} else if (st->def->shape == SHAPE_ID && st->in_list == LIST_NONE) {
		set_error(st, st->def->bad_form);
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

/* A ')' closes the ID list; 0 or -1 (error set). */
static int
cmd_list_close(struct imapcmd *st)
{
	if (st->nargs % 2 != 0) {
		set_error(st, "ID list needs field/value pairs");
		return -1;
	}
	st->in_list = LIST_CLOSED;
	return 0;
}

/* May a ')' right after a token close a list here? */
static int
cmd_list_open(const struct imapcmd *st)
{
	return st->def->shape == SHAPE_ID && st->in_list == LIST_OPEN;
}

/*
 * May token <tok> start here, after the arguments read so far? Opens or
 * closes the list for '(' and ')', starts the argument for an atom or a
 * quoted string (a literal's starts once its size is known). Returns 0 or
 * -1 (error set).
 */
static int
cmd_token(struct imapcmd *st, enum tok tok)
{
	const struct imapcmd_def *d = st->def;

	switch (d->shape) {
	case SHAPE_NONE:
		set_error(st, d->too_many);
		return -1;
	case SHAPE_ID:
		if (st->id_nil || st->in_list == LIST_CLOSED) {
			set_error(st, "unexpected argument");
			return -1;
		}
		if (st->in_list == LIST_NONE) {
			if (tok == T_OPEN) {
				st->in_list = LIST_OPEN;
				return 0;
			}
			if (tok != T_ATOM) {   /* only NIL may stand alone */
				set_error(st, d->bad_form);
				return -1;
			}
			break;
		}
		if (tok == T_CLOSE)
			return cmd_list_close(st);
		if (st->nargs >= d->max_args) {
			set_error(st, d->too_many);
			return -1;
		}
		if (tok == T_OPEN) {
			set_error(st, "unexpected list");
			return -1;
		}
		break;
	case SHAPE_ASTRING:
	case SHAPE_ATOM:
		if (st->nargs >= d->max_args) {
			set_error(st, d->too_many);
			return -1;
		}
		if (d->shape == SHAPE_ATOM && (tok == T_QUOTED || tok == T_LITERAL)) {
			set_error(st, d->bad_form);
			return -1;
		}
		if (tok == T_OPEN || tok == T_CLOSE) {
			set_error(st, tok == T_OPEN ? "unexpected list" : "unexpected ')'");
			return -1;
		}
		break;
	}
	if (tok == T_ATOM || tok == T_QUOTED)
		return arg_start(st, tok == T_ATOM ? IMAPCMD_ARG_ATOM : IMAPCMD_ARG_QUOTED);
	return 0;
}

/* At the end of a line: are the arguments complete? 0 or -1 (error set). */
static int
cmd_check(struct imapcmd *st)
{
	const struct imapcmd_def *d = st->def;
	int ok;

	if (d->shape == SHAPE_ID)
		ok = st->id_nil || st->in_list == LIST_CLOSED;
	else
		ok = st->nargs >= d->min_args && st->nargs <= d->max_args;
	if (!ok)
		st->error = "wrong number of arguments";
	return ok ? 0 : -1;
}

/*
 * A literal header and its line end were read: may a literal of lit_num
 * octets be the next argument? NULL or the reason why not.
 */
static const char *
cmd_literal(struct imapcmd *st)
{
	const struct argcap *cap = cmd_cap(st);
	uint64_t n = st->lit_num;

	if (++st->literals > IMAPCMD_LITERALS_MAX)
		return "too many literals";
	if (n > st->lim.literal_max)
		return "literal too long";
	if (n > cap->max)
		return cap->too_long;
	/* an argument kept whole must fit (a truncated one always does) */
	if (cap->keep == SIZE_MAX && st->used + n + 2 > IMAPCMD_BUF_SIZE)
		return "arguments too long";
	return NULL;
}

/* ---- the lexer ----------------------------------------------------------- */

/* The token that octet <c> starts (SP, CR and LF are handled before). */
static enum tok
lex_token(unsigned char c)
{
	switch (c) {
	case '(':
		return T_OPEN;
	case ')':
		return T_CLOSE;
	case '"':
		return T_QUOTED;
	case '{':
		return T_LITERAL;
	default:
		return is_astring_char(c) ? T_ATOM : T_BAD;
	}
}

/*
 * The line went over its limit: report that (it outranks an earlier error),
 * forget a tag not yet complete, and skip the rest of the line. The literal
 * recognizer keeps its state, so that the data of a {n+} announced at the
 * end of the line is still skipped as data.
 */
static void
line_overflow(struct imapcmd *st)
{
	if (st->state == S_TAG) {
		st->tag[0] = '\0';
		st->taglen = 0;
	}
	st->too_long = 1;
	st->error = "line too long";
	st->state = S_SKIP;
}

/* The line ended (LF consumed) outside the skip states: the result. */
static enum imapcmd_rc
end_line(struct imapcmd *st)
{
	st->state = S_BEGIN;
	if (st->error != NULL)
		return IMAPCMD_ERROR;
	if (cmd_check(st) < 0)
		return IMAPCMD_ERROR;
	return IMAPCMD_DONE;
}

/* The skipped line ended: ERROR if an error was recorded, else UNKNOWN done. */
static enum imapcmd_rc
end_skip(struct imapcmd *st)
{
	st->state = S_BEGIN;
	if (st->error != NULL)
		return IMAPCMD_ERROR;
	return IMAPCMD_DONE;
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
	const char *why = cmd_literal(st);

	if (why == NULL && arg_start(st, IMAPCMD_ARG_LITERAL) < 0)
		why = st->error;
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
 * While skipping, a {n+} header ended its line: its data is skipped next
 * (bounded: an oversized one cannot be told from commands, so FATAL). A {n}
 * header ends the command instead: the client waits for "+".
 */
static enum imapcmd_rc
skip_literal(struct imapcmd *st)
{
	if (!st->lit_plus)
		return end_skip(st);
	if (++st->literals > IMAPCMD_LITERALS_MAX)
		return fatal(st, "too many literals");
	if (st->lit_num > st->lim.literal_max)
		return fatal(st, "literal too long");
	st->lit_remain = (size_t)st->lit_num;
	st->state = st->lit_remain == 0 ? S_SKIP : S_SKIPLIT;
	return IMAPCMD_AGAIN;
}

/* Read a SASL response line with the shared reader; an enum imapcmd_rc. */
static enum imapcmd_rc
sasl_feed(struct imapcmd *st, const char *buf, size_t len, size_t *consumed)
{
	struct imapcmd_arg *a = &st->args[0];
	enum sasl_line_rc rc;

	rc = sasl_line_feed(&st->sasl, st->buf, sizeof(st->buf), buf, len, consumed);
	st->line_len = st->sasl.len;
	st->too_long = st->sasl.too_long;
	st->error = st->sasl.error;
	st->used = st->sasl.used;
	switch (rc) {
	case SASL_LINE_AGAIN:
		return IMAPCMD_AGAIN;
	case SASL_LINE_FATAL:
		return fatal(st, st->sasl.error);
	case SASL_LINE_ERROR:
		st->state = S_BEGIN;
		st->mode = MODE_CMD;
		return IMAPCMD_ERROR;
	default:
		break;
	}
	a->off = 0;
	a->len = (uint32_t)st->sasl.used;
	a->type = IMAPCMD_ARG_ATOM;
	a->flags = 0;
	st->used++;        /* the NUL the reader wrote */
	st->nargs = 1;
	st->kind = rc == SASL_LINE_CANCEL ? IMAPCMD_SASL_CANCEL : IMAPCMD_SASL_RESPONSE;
	st->state = S_BEGIN;
	st->mode = MODE_CMD;
	return IMAPCMD_DONE;
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
		st->state = S_TAG;
		if (st->mode == MODE_SASL) {
			sasl_line_init(&st->sasl, st->lim.sasl_max, st->lim.skip_max);
			st->state = S_SASL;
		}
	}
	if (st->state == S_SASL)
		return sasl_feed(st, buf, len, consumed);
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
				st->lit_state = L_NONE;
			}
			continue;
		}

		/* Count each octet once, even when a state hands it to another. */
		if (i != counted) {
			counted = i;
			if (++st->line_len > st->lim.line_max && !st->too_long) {
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
		case S_TAG:
			if (st->taglen == 0 && c == '\n') {
				st->error = "empty command line";
				*consumed = i + 1;
				st->state = S_BEGIN;
				return IMAPCMD_ERROR;
			}
			if (st->taglen == 0 && c == '\r') {
				st->error = "empty command line";
				st->state = S_CR;
				break;
			}
			if (c == ' ' && st->taglen > 0) {
				st->state = S_NAME;
				break;
			}
			if (c == '\r' || c == '\n') {
				set_error(st, "missing command");
				continue;
			}
			if (!is_tag_char(c) || st->taglen >= IMAPCMD_TAG_MAX) {
				set_error(st, is_tag_char(c) ? "tag too long" : "invalid tag");
				st->tag[0] = '\0';
				st->taglen = 0;
				continue;    /* reprocess in S_SKIP */
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
				if (cmd_lookup(st) < 0) {
					/* unknown: skip the rest (its literals too), then DONE */
					st->state = S_SKIP;
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

		case S_BETWEEN: {
			enum tok tok;

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
			tok = lex_token(c);
			if (cmd_token(st, tok) < 0)
				continue;
			switch (tok) {
			case T_OPEN:
				break;
			case T_CLOSE:
				st->state = S_AFTER;
				break;
			case T_QUOTED:
				st->state = S_QUOTED;
				break;
			case T_LITERAL:
				(void)lit_feed(st, c);   /* '{': MORE */
				st->state = S_LITHDR;
				break;
			case T_ATOM:
				st->state = S_ATOM;
				if (arg_put(st, (char)c) < 0)
					continue;
				break;
			case T_BAD:
				set_error(st, "invalid argument");
				continue;
			}
			break;
		}

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
			if (c == ')' && cmd_list_open(st)) {
				if (cmd_list_close(st) < 0)
					continue;
				break;
			}
			set_error(st, "missing space after argument");
			continue;

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
			if (c == '\r' || c == '\n' || c >= 0x80) {
				set_error(st, c >= 0x80 ? "8-bit octet in quoted string" :
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

		case S_LITHDR:
			switch (lit_feed(st, c)) {
			case LIT_MORE:
				break;
			case LIT_BAD_HEADER:
				set_error(st, "invalid literal");
				continue;
			case LIT_BAD_EOL:
				set_error(st, "literal must end the line");
				continue;
			case LIT_DONE:
				*consumed = i + 1;
				rc = literal_begin(st);
				if (rc != IMAPCMD_AGAIN)
					return rc;
				if (st->state == S_LITDATA && st->lit_remain == 0)
					literal_end(st);
				break;
			}
			break;

		case S_CR:
			if (c == '\n') {
				*consumed = i + 1;
				return end_line(st);
			}
			set_error(st, "CR without LF");
			continue;

		case S_SKIP:
			if (st->lit_state != L_NONE) {
				enum lit_step step = lit_feed(st, c);

				if (step == LIT_MORE)
					break;
				if (step == LIT_DONE) {
					*consumed = i + 1;
					rc = skip_literal(st);
					if (rc != IMAPCMD_AGAIN)
						return rc;
					break;
				}
				/* not a literal after all: an ordinary octet */
			}
			if (c == '{') {
				(void)lit_feed(st, c);
				break;
			}
			if (c == '\n') {
				*consumed = i + 1;
				return end_skip(st);
			}
			break;

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
