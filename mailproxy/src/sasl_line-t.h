/*
 * SASL response line reader types: the caller owns one struct sasl_line per
 * line being read (the IMAP and POP3 parsers embed it in their state).
 */
#ifndef GH_SASL_LINE_T_H
#define GH_SASL_LINE_T_H

#include <stddef.h>

/* What one call to sasl_line_feed() reports. */
enum sasl_line_rc {
	SASL_LINE_AGAIN = 0,
	SASL_LINE_RESPONSE,
	SASL_LINE_CANCEL,
	SASL_LINE_ERROR,
	SASL_LINE_FATAL,
};

/* One SASL response line being read; the caller owns it. */
struct sasl_line {
	size_t max;           /* octets of the line, CRLF included */
	size_t skip_max;      /* a line still going at this many octets is FATAL */
	size_t len;           /* octets of the line so far, CRLF included */
	size_t used;          /* octets stored in the caller's buffer */
	int state;            /* private */
	int too_long;         /* ERROR/FATAL: the line went over max */
	const char *error;    /* static reason for ERROR/FATAL, else NULL */
};

#endif
