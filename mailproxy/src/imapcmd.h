/*
 * IMAP pre-auth command parser: pure, resumable, bounded. Input may arrive
 * in any fragmentation; the parser consumes what it can, keeps its state in
 * the caller's struct imapcmd and never allocates.
 *
 * Use:
 *   imapcmd_init(&st, NULL);
 *   loop: rc = imapcmd_parse(&st, buf, len, &used); buf += used; len -= used;
 *     AGAIN   -> read more (all input was consumed)
 *     DONE    -> act on st.kind / st.tag / imapcmd_arg(); the rest of the
 *                input (pipelined commands) is still in buf
 *     LITERAL -> send "+ Ready\r\n", then keep feeding: first what is left
 *                in buf (an eager client may have sent the data already), then
 *                new reads (st.literal_size octets follow, may be 0)
 *     ERROR   -> the bad line was consumed (literals included): send
 *                "<st.tag> BAD <st.error>" or "* BAD ..." when st.taglen == 0;
 *                count it, keep feeding (the parser resynchronized)
 *                (st.too_long: the line went over its limit; log it)
 *     FATAL   -> send "* BYE <st.error>" and close; every later call
 *                returns FATAL again
 * After DONE for AUTHENTICATE without initial response, send "+ " and call
 * imapcmd_expect_sasl(): the next line is returned as IMAPCMD_SASL_RESPONSE
 * (args[0], raw) or IMAPCMD_SASL_CANCEL, then the parser is back to commands.
 * Bare LF is accepted as a line end; CR must be followed by LF.
 *
 * Resync: an error mid-line is reported once the line has ended, so every
 * line gives exactly one DONE or ERROR. While skipping, a line ending in
 * "{n+}" has its n octets skipped as data; a line ending in "{n}" ends there
 * (the client waits for "+" and takes the BAD as the end of the command).
 * Unknown commands are skipped the same way and reported as DONE/UNKNOWN.
 * A line over its limit (line_max, or sasl_max for a SASL response) is
 * skipped like a bad line and gives ERROR "line too long", with the tag when
 * it was read whole; only a line still going at skip_max octets (1 MiB),
 * or a {n+} over the literal limit (its data cannot be told from
 * commands), is FATAL.
 * Tags, command names and ERROR texts are printable ASCII, safe to echo;
 * arguments are not (re-encode them, and never log passwords).
 */
#ifndef GH_IMAPCMD_H
#define GH_IMAPCMD_H

#include <stddef.h>
#include <sys/types.h>
#include "imapcmd-t.h"

/*
 * Initialise <st> with <lim> (NULL: defaults). Limits above the compiled
 * maxima are capped.
 */
void imapcmd_init(struct imapcmd *st, const struct imapcmd_limits *lim);

/*
 * Feed <len> octets at <buf> to <st>. Stores in <consumed> how many were
 * used (always <= <len>; == <len> for IMAPCMD_AGAIN). Returns an
 * enum imapcmd_rc (see above). The result fields of <st> are reset when the
 * next line starts, so act on DONE/ERROR before calling again.
 */
enum imapcmd_rc imapcmd_parse(struct imapcmd *st, const char *buf, size_t len,
                              size_t *consumed);

/*
 * Make the next line a SASL response line (after "+ " was sent for
 * AUTHENTICATE). Call only between lines (after DONE). The tag of the
 * AUTHENTICATE command is kept in st->tag.
 */
void imapcmd_expect_sasl(struct imapcmd *st);

/*
 * Return argument <i> of the last command as a NUL-terminated string inside
 * <st> (valid until the next imapcmd_parse() call) and its length in <len>
 * (may be NULL). Returns NULL for a NIL value or when <i> >= st->nargs.
 * The value may contain octets the daemon must re-encode (see imapcmd_quote).
 */
const char *imapcmd_arg(const struct imapcmd *st, unsigned i, size_t *len);

/* Erase stored arguments (passwords) and reset <st> to the start of a line. */
void imapcmd_wipe(struct imapcmd *st);

#define IMAPCMD_QUOTE_LITERALPLUS 0x01  /* the peer advertised LITERAL+: use {n+} */

/*
 * Encode <len> octets of <value> as an IMAP astring into <out> (<outlen>
 * bytes, NUL-terminated): a quoted string when every octet is printable
 * ASCII other than '"' and '\', else a literal "{n}\r\n<value>" ("{n+}" with
 * IMAPCMD_QUOTE_LITERALPLUS in <flags>). <split> receives the length of the
 * part to send before waiting for the server's "+" (0 when there is nothing
 * to wait for: quoted or {n+}). Returns the encoded length, or -1 when
 * <value> holds a NUL or <out> is too small.
 */
ssize_t imapcmd_quote(char *out, size_t outlen, const char *value, size_t len,
                      unsigned flags, size_t *split) __attribute__((warn_unused_result));

#endif
