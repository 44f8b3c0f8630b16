/*
 * SPOP 2.0 codec: a pure module (no I/O, no allocation, no globals) shared
 * by the SPOE agent, the unit tests and the fuzzer. Decoders check every
 * byte against the end of their input; encoders write into a caller buffer
 * and never past its size.
 */
#ifndef GH_SPOP_H
#define GH_SPOP_H

#include <stddef.h>
#include <stdint.h>

#include "spop-t.h"

/*
 * Encode <v> as HAProxy's varint into <buf> of <len> bytes. Returns the
 * number of bytes written (1..10), or -1 when <buf> is too small.
 */
int spop_varint_encode(uint64_t v, uint8_t *buf, size_t len);

/*
 * Decode a varint from <buf> of <len> bytes into <v>. Returns the number of
 * bytes read, or -1 when it is truncated, longer than 10 bytes or does not
 * fit in 64 bits.
 */
int spop_varint_decode(const uint8_t *buf, size_t len, uint64_t *v);

/*
 * Parse the frame at the start of <buf> (<len> bytes available). A frame
 * whose length is below 7 or above <max_frame> is refused as soon as its
 * 4-byte length is readable, so an oversize frame is never buffered.
 * Returns the whole frame size (> 0) and fills <f>, 0 when more bytes are
 * needed, or -1 with <*status> set to SPOP_ST_TOO_BIG or SPOP_ST_INVALID.
 */
int spop_frame_parse(const uint8_t *buf, size_t len, size_t max_frame,
                     struct spop_frame *f, int *status);

/*
 * Decode one typed value at <*p> (before <end>) into <d> and advance <*p>.
 * Returns 0, or -1 on truncation or a reserved type.
 */
int spop_data_parse(const uint8_t **p, const uint8_t *end, struct spop_data *d);

/*
 * Read the next KV item (name string, typed value) from <it>. Returns 1 and
 * fills <name>/<value>, 0 at the end, -1 when malformed.
 */
int spop_kv_next(struct spop_iter *it, struct spop_str *name, struct spop_data *value);

/*
 * Parse the KV-list of HAPROXY-HELLO frame <f> into <h>. Unknown keys are
 * skipped. Returns 0, or -1 with <*status> set to the SPOP status to send
 * back: INVALID, NO_VSN, NO_FRAME_SIZE, NO_CAP, BAD_VSN (no "2.0" among the
 * supported versions) or BAD_FRAME_SIZE (below 256).
 */
int spop_hello_parse(const struct spop_frame *f, struct spop_hello *h, int *status);

/*
 * Parse the KV-list of DISCONNECT frame <f> into <d>. A missing key leaves
 * its default (status 99 / empty message). Returns 0, or -1 when malformed.
 */
int spop_disconnect_parse(const struct spop_frame *f, struct spop_disconnect *d);

/* Start iterating over the messages of NOTIFY frame <f> with <it>. */
void spop_notify_begin(const struct spop_frame *f, struct spop_iter *it);

/*
 * Read the next message from <it>: name, nb-args, and every argument is
 * checked before returning. Returns 1 and fills <m>, 0 at the end, -1 when
 * malformed (nb-args larger than the data, bad types, overruns).
 */
int spop_msg_next(struct spop_iter *it, struct spop_msg *m);

/*
 * Read the next argument of message <m> into <name>/<value>. Returns 1, or
 * 0 when all <m>->nb_args were read.
 */
int spop_arg_next(struct spop_msg *m, struct spop_str *name, struct spop_data *value);

/* Tell whether string <s> equals NUL-terminated <lit>. */
int spop_str_eq(struct spop_str s, const char *lit);

/*
 * Tell whether comma-separated list <list> holds token <tok> (spaces
 * around tokens ignored).
 */
int spop_list_has(struct spop_str list, const char *tok);

/*
 * Write an AGENT-HELLO (version 2.0, <max_frame>, capabilities
 * "pipelining") into <buf> of <len> bytes. Returns its size or -1.
 */
int spop_agent_hello_encode(uint8_t *buf, size_t len, uint32_t max_frame);

/*
 * Write an AGENT-DISCONNECT with <status> and <msg> (cut to 255 bytes) into
 * <buf> of <len> bytes. Returns its size or -1.
 */
int spop_agent_disconnect_encode(uint8_t *buf, size_t len, uint32_t status, const char *msg);

/*
 * Start an ACK for <sid>/<fid> in <w> over <buf> of <len> bytes; the frame
 * may not exceed <max_frame> (length prefix excluded).
 */
void spop_ack_begin(struct spop_writer *w, uint8_t *buf, size_t len, size_t max_frame,
                    uint64_t sid, uint64_t fid);

/*
 * Append a set-var action for variable <name> in <scope> with value <v>
 * (NULL, BOOL, the int types, IPV4, IPV6, STR, BIN) to the ACK in <w>.
 * Returns 0, or -1 when it does not fit or <v> has a bad type: that action
 * is then left out and the ACK built so far stays valid.
 */
int spop_ack_set_var(struct spop_writer *w, enum spop_scope scope, const char *name,
                     const struct spop_data *v);

/* Shorthands for spop_ack_set_var() with a string, an int and a bool. */
int spop_ack_set_str(struct spop_writer *w, enum spop_scope scope, const char *name,
                     const char *s, size_t len);
int spop_ack_set_int(struct spop_writer *w, enum spop_scope scope, const char *name,
                     int64_t i);
int spop_ack_set_bool(struct spop_writer *w, enum spop_scope scope, const char *name, int b);

/*
 * Finish the ACK in <w>. Returns its size (length prefix included), or -1
 * when something did not fit or the ACK holds no action.
 */
int spop_ack_end(struct spop_writer *w);

/* Return a short text for SPOP status <st>. */
const char *spop_status_str(int st);

#endif
