/*
 * SASL response line reader: the one place where the IMAP and POP3 parsers
 * read the line a client sends after "+ ". A SASL line has no literals and
 * no arguments, so it is gathered whole and bounded, and an over-long or
 * malformed one is skipped to its LF, so that the daemon can answer the
 * failed exchange and go on with the next command.
 */
#include <string.h>

#include "sasl_line.h"

enum { S_LINE = 0, S_CR, S_SKIP };

/*
 * Start a line in <sl> of at most <max> octets (CRLF included), FATAL when
 * still going at <skip_max> octets. No return value.
 */
void
sasl_line_init(struct sasl_line *sl, size_t max, size_t skip_max)
{
	memset(sl, 0, sizeof(*sl));
	sl->max = max;
	sl->skip_max = skip_max;
	sl->state = S_LINE;
}

/* Record the first error of the line and skip to its end. */
static void
set_error(struct sasl_line *sl, const char *reason)
{
	if (sl->error == NULL)
		sl->error = reason;
	sl->state = S_SKIP;
}

/*
 * Feed <len> octets at <buf> into <out> (<outlen> bytes); <consumed> gets the
 * octets used. Returns an enum sasl_line_rc.
 */
enum sasl_line_rc
sasl_line_feed(struct sasl_line *sl, char *out, size_t outlen,
               const char *buf, size_t len, size_t *consumed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		char c = buf[i];

		/* CR and LF count, as in a command line; the limit is reported
		 * once, then the rest of the line is skipped */
		if (++sl->len > sl->max && !sl->too_long) {
			sl->too_long = 1;
			sl->error = "line too long";
			sl->state = S_SKIP;
		} else if (sl->len > sl->skip_max) {
			*consumed = i;
			sl->error = "line too long";
			return SASL_LINE_FATAL;
		}
		switch (sl->state) {
		case S_LINE:
			if (c == '\r') {
				sl->state = S_CR;
				continue;
			}
			if (c == '\n')
				goto done;
			if (c == '\0') {
				set_error(sl, "NUL in command");
				continue;
			}
			if (sl->used + 1 >= outlen) {
				/* the caller's buffer is the tighter limit */
				sl->too_long = 1;
				sl->error = "line too long";
				sl->state = S_SKIP;
				continue;
			}
			out[sl->used++] = c;
			continue;
		case S_CR:
			if (c == '\n')
				goto done;
			set_error(sl, c == '\0' ? "NUL in command" : "CR without LF");
			continue;
		default:
			if (c == '\n') {
				*consumed = i + 1;
				return SASL_LINE_ERROR;
			}
			continue;
		}
	}
	*consumed = len;
	return SASL_LINE_AGAIN;

done:
	*consumed = i + 1;
	out[sl->used] = '\0';
	if (sl->used == 1 && out[0] == '*')
		return SASL_LINE_CANCEL;
	return SASL_LINE_RESPONSE;
}
