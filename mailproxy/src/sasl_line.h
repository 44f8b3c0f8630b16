/*
 * SASL response line reader shared by the IMAP and POP3 pre-auth parsers:
 * after "+ " the client sends one line (base64, or "*" to cancel). Pure,
 * resumable, bounded: the line is gathered into the caller's buffer in any
 * fragmentation, bare LF ends it as CRLF does, CR must be followed by LF,
 * NUL is an error. A line over its limit is skipped to its LF and reported
 * once ("line too long"); a line still going at skip_max octets is FATAL.
 *
 * Use:
 *   sasl_line_init(&sl, max, skip_max);
 *   loop: rc = sasl_line_feed(&sl, out, outlen, buf, len, &used);
 *     AGAIN    -> read more (all input consumed)
 *     RESPONSE -> out holds sl.used octets, NUL-terminated (not decoded)
 *     CANCEL   -> the line was "*" (also in out)
 *     ERROR    -> the line was consumed: sl.error says why (sl.too_long
 *                 when it went over max); the exchange is over
 *     FATAL    -> sl.error; the caller closes
 * One line per init; the caller starts the next one with sasl_line_init().
 */
#ifndef GH_SASL_LINE_H
#define GH_SASL_LINE_H

#include <stddef.h>
#include "sasl_line-t.h"

/*
 * Start a line in <sl>: at most <max> octets with its CRLF, FATAL when still
 * going at <skip_max> octets.
 */
void sasl_line_init(struct sasl_line *sl, size_t max, size_t skip_max);

/*
 * Feed <len> octets at <buf> to <sl>, storing the line into <out> (<outlen>
 * bytes; octets that do not fit with the NUL count as over-long). Stores in
 * <consumed> the octets used (all of them for AGAIN; FATAL leaves the octet
 * that went over skip_max unused). Returns an enum sasl_line_rc.
 */
enum sasl_line_rc sasl_line_feed(struct sasl_line *sl, char *out, size_t outlen,
                                 const char *buf, size_t len, size_t *consumed);

#endif
