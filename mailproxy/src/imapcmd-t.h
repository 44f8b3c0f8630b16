/*
 * IMAP pre-auth command parser types. The caller owns one struct imapcmd per
 * connection; it holds the parser state and, once a command is complete, the
 * command kind, its tag and its arguments in fixed buffers. No allocation.
 */
#ifndef GH_IMAPCMD_T_H
#define GH_IMAPCMD_T_H

#include <stddef.h>
#include <stdint.h>
#include "sasl_line-t.h"

#define IMAPCMD_TAG_MAX          32     /* tag octets (RFC-legal chars, no '+') */
#define IMAPCMD_NAME_MAX         32     /* command name octets kept; longer -> UNKNOWN */
/*
 * Octets of a line, literal data excluded. The default takes the longest ID
 * RFC 2971 allows, every octet escaped: 30 pairs of a 30-octet field and a
 * 1024-octet value, quoted, are at most 63,459 octets with tag and CRLF.
 * The limit only counts: stored arguments are bounded by IMAPCMD_BUF_SIZE.
 */
#define IMAPCMD_LINE_MAX_DEFAULT 65536
#define IMAPCMD_LINE_MAX_LIMIT   65536
#define IMAPCMD_SKIP_MAX_DEFAULT (1024 * 1024) /* octets of an over-long line skipped, then FATAL */
#define IMAPCMD_SKIP_MAX_LIMIT   (16 * 1024 * 1024)
#define IMAPCMD_LITERAL_MAX_DEFAULT 8192 /* octets of one literal */
#define IMAPCMD_LITERAL_MAX_LIMIT   8192
#define IMAPCMD_SASL_MAX_DEFAULT 8192   /* octets of a SASL response line */
#define IMAPCMD_ARGS_MAX         64     /* stored arguments (ID: 30 pairs) */
#define IMAPCMD_LITERALS_MAX     64     /* literals per line, also when skipping */
#define IMAPCMD_ID_PAIRS_MAX     30     /* RFC 2971 */
#define IMAPCMD_ID_FIELD_MAX     30     /* RFC 2971: longer field -> error */
#define IMAPCMD_ID_VALUE_MAX     1024   /* RFC 2971: longer value -> error */
#define IMAPCMD_ID_VALUE_KEEP    256    /* ID value octets stored; rest dropped, flagged */
/* Stored argument octets, NUL terminators included: two maximal literals fit. */
#define IMAPCMD_BUF_SIZE         (2 * IMAPCMD_LITERAL_MAX_LIMIT + 512)

/* What one call to imapcmd_parse() reports. */
enum imapcmd_rc {
	IMAPCMD_AGAIN = 0,  /* all input consumed, the command is not complete yet */
	IMAPCMD_DONE,       /* a line is complete: see kind, tag, args */
	IMAPCMD_LITERAL,    /* a synchronizing literal {n} was announced: send "+ ..." and feed on */
	IMAPCMD_ERROR,      /* a bad line was consumed whole: answer "<tag> BAD <error>" (or "* BAD") */
	IMAPCMD_FATAL,      /* cannot resync (endless line, bad {n+}): send "* BYE <error>" and close */
};

/* The command a complete line carried. */
enum imapcmd_kind {
	IMAPCMD_NONE = 0,
	IMAPCMD_CAPABILITY,
	IMAPCMD_NOOP,
	IMAPCMD_LOGOUT,
	IMAPCMD_ID,           /* id_nil, or args[] = field, value, field, value ... */
	IMAPCMD_STARTTLS,
	IMAPCMD_LOGIN,        /* args[0] user, args[1] password */
	IMAPCMD_AUTHENTICATE, /* args[0] mechanism, args[1] initial response if nargs == 2 */
	IMAPCMD_UNKNOWN,      /* any other command; tag and name kept, rest of line skipped */
	IMAPCMD_SASL_RESPONSE,/* SASL mode: args[0] is the raw response line (base64, unchecked) */
	IMAPCMD_SASL_CANCEL,  /* SASL mode: the line was "*" */
};

/* How an argument was written by the client. */
enum imapcmd_arg_type {
	IMAPCMD_ARG_ATOM = 0,
	IMAPCMD_ARG_QUOTED,
	IMAPCMD_ARG_LITERAL,
	IMAPCMD_ARG_NIL,      /* ID value NIL (len 0) */
};

#define IMAPCMD_ARG_TRUNCATED 0x01  /* only the first IMAPCMD_ID_VALUE_KEEP octets kept */

/* One argument: <len> octets at buf[off], NUL-terminated there. */
struct imapcmd_arg {
	uint32_t off;
	uint32_t len;
	uint8_t type;         /* enum imapcmd_arg_type */
	uint8_t flags;        /* IMAPCMD_ARG_* */
};

/* A row of the command table (private to the parser). */
struct imapcmd_def;

/* Limits; 0 in a field means its default. Values above the _LIMIT are capped. */
struct imapcmd_limits {
	size_t line_max;
	size_t literal_max;
	size_t sasl_max;
	size_t skip_max;      /* a line still going at this many octets is FATAL */
};

/*
 * Parser state and result. Read the result fields after IMAPCMD_DONE or
 * IMAPCMD_ERROR; they stay valid until the next imapcmd_parse() call.
 * The other fields are private to the parser.
 */
struct imapcmd {
	/* results */
	enum imapcmd_kind kind;
	char tag[IMAPCMD_TAG_MAX + 1];  /* "" when no valid tag was read */
	size_t taglen;
	char name[IMAPCMD_NAME_MAX + 1];/* command name as sent (UNKNOWN: for logs) */
	const char *error;              /* static reason text for ERROR/FATAL, else NULL */
	size_t literal_size;            /* IMAPCMD_LITERAL: announced size */
	int id_nil;                     /* IMAPCMD_ID: "ID NIL" */
	int too_long;                   /* ERROR/FATAL: the line went over its limit */
	size_t line_len;                /* non-literal octets of this line so far */
	unsigned nargs;
	struct imapcmd_arg args[IMAPCMD_ARGS_MAX];

	/* private */
	struct imapcmd_limits lim;
	int state;                /* lexer state */
	int mode;                 /* commands or one SASL response line */
	int fatal;
	const struct imapcmd_def *def; /* command table row of a known command */
	int in_list;              /* ID: before, inside or after its list */
	int lit_state;            /* the literal recognizer ({n}, {n+}) */
	int lit_plus;             /* the literal being read is {n+} */
	uint64_t lit_num;         /* its length, saturated */
	size_t lit_remain;        /* literal octets still to read or skip */
	unsigned literals;        /* literals seen on this line */
	size_t namelen;
	size_t used;              /* octets used in buf */
	size_t cur_cap;           /* storage cap of the current argument */
	size_t cur_full;          /* full length of the current argument */
	struct sasl_line sasl;    /* the SASL response line being read */
	char buf[IMAPCMD_BUF_SIZE];
};

#endif
