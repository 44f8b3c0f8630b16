/*
 * POP3 pre-auth command parser: pure, resumable, bounded (see imapcmd.h for
 * the model). Commands are case-insensitive. Bare LF is accepted as a line
 * end, as nginx does; CR must be followed by LF; NUL is an error.
 *
 * Use:
 *   pop3cmd_init(&st, NULL);
 *   loop: rc = pop3cmd_parse(&st, buf, len, &used); buf += used; len -= used;
 *     AGAIN -> read more (all input consumed)
 *     DONE  -> act on st.kind / pop3cmd_arg(); pipelined input stays in buf
 *     ERROR -> the bad line was consumed: send "-ERR <st.error>", count it
 *              (st.too_long: the line went over its limit; log it)
 *     FATAL -> a line still going at skip_max octets (1 MiB): send
 *              "-ERR <st.error>" and close
 * After DONE for AUTH with a mechanism and no initial response, send "+ "
 * and call pop3cmd_expect_sasl(): the next line comes back as
 * POP3CMD_SASL_RESPONSE (args[0]) or POP3CMD_SASL_CANCEL ("*").
 */
#ifndef GH_POP3CMD_H
#define GH_POP3CMD_H

#include <stddef.h>
#include <stdint.h>
#include "sasl_line-t.h"

/*
 * Command line octets incl. CRLF. RFC 2449 sets 255; more is accepted so that
 * PASS takes a password as long as IMAP LOGIN does (SASL_PASS_MAX, 1024).
 */
#define POP3CMD_LINE_MAX_DEFAULT 2048
#define POP3CMD_AUTH_MAX_DEFAULT 8192   /* AUTH lines and SASL response lines */
#define POP3CMD_LINE_MAX_LIMIT   8192
#define POP3CMD_SKIP_MAX_DEFAULT (1024 * 1024) /* octets of an over-long line skipped, then FATAL */
#define POP3CMD_SKIP_MAX_LIMIT   (16 * 1024 * 1024)
#define POP3CMD_ARGS_MAX         2
#define POP3CMD_BUF_SIZE         (POP3CMD_LINE_MAX_LIMIT + 8)

enum pop3cmd_rc {
	POP3CMD_AGAIN = 0,
	POP3CMD_DONE,
	POP3CMD_ERROR,
	POP3CMD_FATAL,
};

enum pop3cmd_kind {
	POP3CMD_NONE = 0,
	POP3CMD_CAPA,
	POP3CMD_USER,          /* args[0] name (one word) */
	POP3CMD_PASS,          /* args[0] the rest of the line after one SP (may hold SP) */
	POP3CMD_AUTH,          /* nargs 0: list mechanisms; args[0] mech; args[1] initial response */
	POP3CMD_STLS,
	POP3CMD_NOOP,
	POP3CMD_QUIT,
	POP3CMD_UNKNOWN,       /* anything else, APOP included */
	POP3CMD_SASL_RESPONSE, /* SASL mode: args[0] raw line */
	POP3CMD_SASL_CANCEL,   /* SASL mode: "*" */
};

/* Limits; 0 means the default; values above POP3CMD_LINE_MAX_LIMIT are capped. */
struct pop3cmd_limits {
	size_t line_max;       /* octets including CRLF */
	size_t auth_max;       /* AUTH and SASL lines, octets including CRLF */
	size_t skip_max;       /* a line still going at this many octets is FATAL */
};

/* Parser state and result (result fields valid until the next parse call). */
struct pop3cmd {
	/* results */
	enum pop3cmd_kind kind;
	char name[8];          /* keyword as sent (first 7 octets; any octet: sanitize before logging) */
	const char *error;     /* static reason for ERROR/FATAL */
	int too_long;          /* ERROR/FATAL: the line went over its limit */
	size_t line_len;       /* octets of this line so far, CRLF included */
	unsigned nargs;
	uint32_t arg_off[POP3CMD_ARGS_MAX];
	uint32_t arg_len[POP3CMD_ARGS_MAX];

	/* private */
	struct pop3cmd_limits lim;
	int state;
	int mode;
	int fatal;
	size_t used;
	struct sasl_line sasl;  /* the SASL response line being read */
	char buf[POP3CMD_BUF_SIZE];
};

/* Initialise <st> with <lim> (NULL: defaults). */
void pop3cmd_init(struct pop3cmd *st, const struct pop3cmd_limits *lim);

/*
 * Feed <len> octets at <buf>; <consumed> receives the octets used (<= len,
 * == len for AGAIN). Returns an enum pop3cmd_rc.
 */
enum pop3cmd_rc pop3cmd_parse(struct pop3cmd *st, const char *buf, size_t len,
                              size_t *consumed);

/* Make the next line a SASL response line. Call only after DONE. */
void pop3cmd_expect_sasl(struct pop3cmd *st);

/*
 * Return argument <i> (NUL-terminated, inside <st>, valid until the next
 * parse call) and its length in <len> (may be NULL); NULL when i >= nargs.
 */
const char *pop3cmd_arg(const struct pop3cmd *st, unsigned i, size_t *len);

/* Erase stored arguments (passwords) and reset <st> to the start of a line. */
void pop3cmd_wipe(struct pop3cmd *st);

#endif
