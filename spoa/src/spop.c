/*
 * SPOP 2.0 codec, as HAProxy 2.6 speaks it: frame headers, HAProxy's
 * varint, typed data, the HELLO and DISCONNECT KV-lists, NOTIFY messages,
 * and the agent frames (AGENT-HELLO, AGENT-DISCONNECT, ACK). Decoders only
 * read inside [buf, buf+len); encoders only write inside the caller's
 * buffer. Nothing here allocates or keeps state between calls.
 */
#include <string.h>

#include "spop.h"

/*
 * Encode <v> into <buf> (<len> bytes). Returns bytes written or -1.
 */
int
spop_varint_encode(uint64_t v, uint8_t *buf, size_t len)
{
	size_t n = 0;

	if (len < 1)
		return -1;
	if (v < 240) {
		buf[0] = (uint8_t)v;
		return 1;
	}
	buf[n++] = (uint8_t)((v & 0xff) | 0xf0);
	v = (v - 240) >> 4;
	while (v >= 128) {
		if (n >= len)
			return -1;
		buf[n++] = (uint8_t)((v & 0xff) | 0x80);
		v = (v - 128) >> 7;
	}
	if (n >= len)
		return -1;
	buf[n++] = (uint8_t)v;
	return (int)n;
}

/*
 * Decode a varint from <buf> (<len> bytes) into <v>. Returns bytes read,
 * or -1 when truncated, longer than 10 bytes or over 64 bits.
 */
int
spop_varint_decode(const uint8_t *buf, size_t len, uint64_t *v)
{
	uint64_t val, add;
	unsigned shift = 4;
	size_t n = 1;
	uint8_t b;

	if (len < 1)
		return -1;
	val = buf[0];
	if (val < 240) {
		*v = val;
		return 1;
	}
	/* The decoder adds raw bytes (marker bits included) shifted by
	 * 4, 11, 18, ...; stop at 10 bytes or when 64 bits overflow. */
	do {
		if (n >= len || n >= SPOP_VARINT_MAX)
			return -1;
		b = buf[n++];
		if (shift >= 64 || (uint64_t)b > (UINT64_MAX >> shift))
			return -1;
		add = (uint64_t)b << shift;
		if (val > UINT64_MAX - add)
			return -1;
		val += add;
		shift += 7;
	} while (b >= 128);
	*v = val;
	return (int)n;
}

/* Read a varint at <*p> before <end>, advancing <*p>. Returns 0 or -1. */
static int
rd_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	int n = spop_varint_decode(*p, (size_t)(end - *p), v);

	if (n < 0)
		return -1;
	*p += n;
	return 0;
}

/* Read a <len:varint><bytes> string at <*p>, advancing <*p>. */
static int
rd_str(const uint8_t **p, const uint8_t *end, struct spop_str *s)
{
	uint64_t len;

	if (rd_varint(p, end, &len) < 0)
		return -1;
	if (len > (uint64_t)(end - *p))
		return -1;
	s->ptr = *p;
	s->len = (size_t)len;
	*p += len;
	return 0;
}

static uint32_t
rd_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Parse one frame at <buf> (<len> bytes) with limit <max_frame> into <f>.
 * Returns its size, 0 for "need more", or -1 with <*status>.
 */
int
spop_frame_parse(const uint8_t *buf, size_t len, size_t max_frame,
                 struct spop_frame *f, int *status)
{
	const uint8_t *p, *end;
	uint32_t flen;

	if (len < SPOP_LEN_SIZE)
		return 0;
	flen = rd_be32(buf);
	if (flen > max_frame) {
		*status = SPOP_ST_TOO_BIG;
		return -1;
	}
	if (flen < SPOP_FRAME_MIN) {
		*status = SPOP_ST_INVALID;
		return -1;
	}
	if (len - SPOP_LEN_SIZE < flen)
		return 0;
	p = buf + SPOP_LEN_SIZE;
	end = p + flen;
	f->type = p[0];
	f->flags = rd_be32(p + 1);
	p += 5;
	if (rd_varint(&p, end, &f->stream_id) < 0 || rd_varint(&p, end, &f->frame_id) < 0) {
		*status = SPOP_ST_INVALID;
		return -1;
	}
	f->payload = p;
	f->payload_len = (size_t)(end - p);
	f->size = SPOP_LEN_SIZE + (size_t)flen;
	return (int)f->size;
}

/*
 * Decode one typed value at <*p> before <end> into <d>. Returns 0 or -1.
 */
int
spop_data_parse(const uint8_t **p, const uint8_t *end, struct spop_data *d)
{
	uint8_t t;

	if (*p >= end)
		return -1;
	t = **p;
	(*p)++;
	d->type = (enum spop_data_type)(t & 0x0f);
	switch (d->type) {
	case SPOP_DATA_NULL:
		return 0;
	case SPOP_DATA_BOOL:
		d->v.b = (t & 0x10) != 0;
		return 0;
	case SPOP_DATA_INT32:
	case SPOP_DATA_UINT32:
	case SPOP_DATA_INT64:
	case SPOP_DATA_UINT64:
		return rd_varint(p, end, &d->v.u);
	case SPOP_DATA_IPV4:
		if (end - *p < 4)
			return -1;
		memcpy(d->v.ipv4, *p, 4);
		*p += 4;
		return 0;
	case SPOP_DATA_IPV6:
		if (end - *p < 16)
			return -1;
		memcpy(d->v.ipv6, *p, 16);
		*p += 16;
		return 0;
	case SPOP_DATA_STR:
	case SPOP_DATA_BIN:
		return rd_str(p, end, &d->v.str);
	}
	return -1;   /* reserved types 10..15 */
}

/*
 * Read the next KV item of <it>. Returns 1, 0 at the end, -1 if malformed.
 */
int
spop_kv_next(struct spop_iter *it, struct spop_str *name, struct spop_data *value)
{
	const uint8_t *p = it->p;

	if (p >= it->end)
		return 0;
	if (rd_str(&p, it->end, name) < 0 || spop_data_parse(&p, it->end, value) < 0)
		return -1;
	it->p = p;
	return 1;
}

/*
 * Tell whether <s> equals <lit>.
 */
int
spop_str_eq(struct spop_str s, const char *lit)
{
	size_t n = strlen(lit);

	return s.len == n && (n == 0 || memcmp(s.ptr, lit, n) == 0);
}

/*
 * Tell whether comma-separated <list> holds token <tok>.
 */
int
spop_list_has(struct spop_str list, const char *tok)
{
	size_t i = 0, n = strlen(tok);

	while (i < list.len) {
		size_t s, e;

		while (i < list.len && list.ptr[i] == ' ')
			i++;
		s = i;
		while (i < list.len && list.ptr[i] != ',')
			i++;
		e = i;
		while (e > s && list.ptr[e - 1] == ' ')
			e--;
		if (e - s == n && memcmp(list.ptr + s, tok, n) == 0)
			return 1;
		i++;   /* skip the comma */
	}
	return 0;
}

/* Tell whether <d> holds an integer, and store it in <*u>. */
static int
data_uint(const struct spop_data *d, uint64_t *u)
{
	switch (d->type) {
	case SPOP_DATA_INT32:
	case SPOP_DATA_UINT32:
	case SPOP_DATA_INT64:
	case SPOP_DATA_UINT64:
		*u = d->v.u;
		return 1;
	default:
		return 0;
	}
}

/*
 * Parse HAPROXY-HELLO <f> into <h>. Returns 0, or -1 with <*status>.
 */
int
spop_hello_parse(const struct spop_frame *f, struct spop_hello *h, int *status)
{
	struct spop_iter it = { f->payload, f->payload + f->payload_len };
	struct spop_str name;
	struct spop_data v;
	int r, have_vsn = 0, have_mfs = 0, have_cap = 0;
	uint64_t u;

	memset(h, 0, sizeof(*h));
	*status = SPOP_ST_INVALID;
	if (f->type != SPOP_FRM_HAPROXY_HELLO || !(f->flags & SPOP_FL_FIN) ||
	    f->stream_id != 0 || f->frame_id != 0)
		return -1;
	while ((r = spop_kv_next(&it, &name, &v)) == 1) {
		if (spop_str_eq(name, "supported-versions")) {
			if (v.type != SPOP_DATA_STR)
				return -1;
			h->versions = v.v.str;
			have_vsn = 1;
		} else if (spop_str_eq(name, "max-frame-size")) {
			if (!data_uint(&v, &u))
				return -1;
			h->max_frame_size = u > UINT32_MAX ? UINT32_MAX : (uint32_t)u;
			have_mfs = 1;
		} else if (spop_str_eq(name, "capabilities")) {
			if (v.type != SPOP_DATA_STR)
				return -1;
			h->capabilities = v.v.str;
			have_cap = 1;
		} else if (spop_str_eq(name, "healthcheck")) {
			if (v.type != SPOP_DATA_BOOL)
				return -1;
			h->healthcheck = v.v.b;
		} else if (spop_str_eq(name, "engine-id")) {
			if (v.type != SPOP_DATA_STR)
				return -1;
			h->engine_id = v.v.str;
		}
		/* other keys: skipped, as HAProxy does */
	}
	if (r < 0)
		return -1;
	if (!have_vsn) {
		*status = SPOP_ST_NO_VSN;
		return -1;
	}
	if (!have_mfs) {
		*status = SPOP_ST_NO_FRAME_SIZE;
		return -1;
	}
	if (!have_cap) {
		*status = SPOP_ST_NO_CAP;
		return -1;
	}
	if (!spop_list_has(h->versions, SPOP_VERSION)) {
		*status = SPOP_ST_BAD_VSN;
		return -1;
	}
	if (h->max_frame_size < SPOP_FRAME_MIN_MAX) {
		*status = SPOP_ST_BAD_FRAME_SIZE;
		return -1;
	}
	*status = SPOP_ST_NORMAL;
	return 0;
}

/*
 * Parse DISCONNECT <f> into <d>. Returns 0 or -1.
 */
int
spop_disconnect_parse(const struct spop_frame *f, struct spop_disconnect *d)
{
	struct spop_iter it = { f->payload, f->payload + f->payload_len };
	struct spop_str name;
	struct spop_data v;
	uint64_t u;
	int r;

	d->status = SPOP_ST_UNKNOWN;
	d->message.ptr = NULL;
	d->message.len = 0;
	if (f->type != SPOP_FRM_HAPROXY_DISCONNECT && f->type != SPOP_FRM_AGENT_DISCONNECT)
		return -1;
	while ((r = spop_kv_next(&it, &name, &v)) == 1) {
		if (spop_str_eq(name, "status-code")) {
			if (!data_uint(&v, &u))
				return -1;
			d->status = u > UINT32_MAX ? UINT32_MAX : (uint32_t)u;
		} else if (spop_str_eq(name, "message")) {
			if (v.type != SPOP_DATA_STR)
				return -1;
			d->message = v.v.str;
		}
	}
	return r < 0 ? -1 : 0;
}

/*
 * Point <it> at the messages of NOTIFY <f>.
 */
void
spop_notify_begin(const struct spop_frame *f, struct spop_iter *it)
{
	it->p = f->payload;
	it->end = f->payload + f->payload_len;
}

/*
 * Read and validate the next message of <it> into <m>. Returns 1, 0, -1.
 */
int
spop_msg_next(struct spop_iter *it, struct spop_msg *m)
{
	const uint8_t *p = it->p;
	struct spop_iter args;
	struct spop_str name;
	struct spop_data v;
	unsigned i;

	if (p >= it->end)
		return 0;
	if (rd_str(&p, it->end, &m->name) < 0 || p >= it->end)
		return -1;
	m->nb_args = *p++;
	/* Walk every argument now, so that callers only ever see a message
	 * whose arguments are all well formed. */
	args.p = p;
	args.end = it->end;
	for (i = 0; i < m->nb_args; i++) {
		if (spop_kv_next(&args, &name, &v) != 1)
			return -1;
	}
	m->args.p = p;
	m->args.end = args.p;
	it->p = args.p;
	return 1;
}

/*
 * Read the next argument of <m>. Returns 1, or 0 after the last.
 */
int
spop_arg_next(struct spop_msg *m, struct spop_str *name, struct spop_data *value)
{
	/* Validated by spop_msg_next(): -1 cannot happen, but stay safe. */
	return spop_kv_next(&m->args, name, value) == 1 ? 1 : 0;
}

/* Frame writing helpers over a struct spop_writer. Each one sets w->err
 * instead of writing past w->size or w->max_frame. */

static void
wr_bytes(struct spop_writer *w, const void *src, size_t n)
{
	if (w->err || n > w->size - w->off ||
	    w->off + n - SPOP_LEN_SIZE > w->max_frame) {
		w->err = 1;
		return;
	}
	if (n)
		memcpy(w->buf + w->off, src, n);
	w->off += n;
}

static void
wr_u8(struct spop_writer *w, uint8_t b)
{
	if (!w->err && w->off < w->size && w->off + 1 - SPOP_LEN_SIZE <= w->max_frame)
		w->buf[w->off++] = b;
	else
		wr_bytes(w, &b, 1);
}

static void
wr_varint(struct spop_writer *w, uint64_t v)
{
	uint8_t tmp[SPOP_VARINT_MAX];
	int n = spop_varint_encode(v, tmp, sizeof(tmp));

	wr_bytes(w, tmp, (size_t)n);
}

static void
wr_str(struct spop_writer *w, const void *s, size_t len)
{
	wr_varint(w, len);
	wr_bytes(w, s, len);
}

/* Start a frame of <type> with FIN and ids <sid>/<fid> in <w>. */
static void
wr_begin(struct spop_writer *w, uint8_t *buf, size_t len, size_t max_frame,
         uint8_t type, uint64_t sid, uint64_t fid)
{
	static const uint8_t fin[4] = { 0, 0, 0, 1 };

	w->buf = buf;
	w->size = len;
	w->off = 0;
	w->max_frame = max_frame;
	w->actions = 0;
	w->err = len < SPOP_LEN_SIZE;
	if (w->err)
		return;
	w->off = SPOP_LEN_SIZE;   /* the length is filled in by wr_end() */
	wr_u8(w, type);
	wr_bytes(w, fin, 4);
	wr_varint(w, sid);
	wr_varint(w, fid);
}

/* Write the length prefix of the frame in <w>. Returns its size or -1. */
static int
wr_end(struct spop_writer *w)
{
	size_t flen;

	if (w->err || w->off > INT32_MAX)
		return -1;
	flen = w->off - SPOP_LEN_SIZE;
	w->buf[0] = (uint8_t)(flen >> 24);
	w->buf[1] = (uint8_t)(flen >> 16);
	w->buf[2] = (uint8_t)(flen >> 8);
	w->buf[3] = (uint8_t)flen;
	return (int)w->off;
}

/* Append a KV item <key> = STRING <s>. */
static void
wr_kv_str(struct spop_writer *w, const char *key, const char *s, size_t len)
{
	wr_str(w, key, strlen(key));
	wr_u8(w, SPOP_DATA_STR);
	wr_str(w, s, len);
}

/*
 * Write AGENT-HELLO for <max_frame> into <buf> (<len>). Returns size or -1.
 */
int
spop_agent_hello_encode(uint8_t *buf, size_t len, uint32_t max_frame)
{
	struct spop_writer w;

	wr_begin(&w, buf, len, max_frame < SPOP_FRAME_MIN_MAX ? SPOP_FRAME_MIN_MAX : max_frame,
	         SPOP_FRM_AGENT_HELLO, 0, 0);
	wr_kv_str(&w, "version", SPOP_VERSION, strlen(SPOP_VERSION));
	wr_str(&w, "max-frame-size", strlen("max-frame-size"));
	wr_u8(&w, SPOP_DATA_UINT32);
	wr_varint(&w, max_frame);
	wr_kv_str(&w, "capabilities", "pipelining", strlen("pipelining"));
	return wr_end(&w);
}

/*
 * Write AGENT-DISCONNECT <status>/<msg> into <buf> (<len>). Returns size
 * or -1.
 */
int
spop_agent_disconnect_encode(uint8_t *buf, size_t len, uint32_t status, const char *msg)
{
	struct spop_writer w;
	size_t mlen = msg ? strlen(msg) : 0;

	if (mlen > SPOP_DISCONNECT_MSG_MAX)
		mlen = SPOP_DISCONNECT_MSG_MAX;
	wr_begin(&w, buf, len, SPOP_FRAME_DEFAULT_MAX, SPOP_FRM_AGENT_DISCONNECT, 0, 0);
	wr_str(&w, "status-code", strlen("status-code"));
	wr_u8(&w, SPOP_DATA_UINT32);
	wr_varint(&w, status);
	wr_kv_str(&w, "message", msg ? msg : "", mlen);
	return wr_end(&w);
}

/*
 * Start ACK <sid>/<fid> in <w> over <buf> (<len>), frame limit <max_frame>.
 */
void
spop_ack_begin(struct spop_writer *w, uint8_t *buf, size_t len, size_t max_frame,
               uint64_t sid, uint64_t fid)
{
	wr_begin(w, buf, len, max_frame, SPOP_FRM_ACK, sid, fid);
}

/*
 * Append set-var <scope>.<name> = <v> to <w>. Returns 0, or -1 (left out).
 */
int
spop_ack_set_var(struct spop_writer *w, enum spop_scope scope, const char *name,
                 const struct spop_data *v)
{
	size_t save = w->off;

	if (w->err)
		return -1;   /* the frame header itself did not fit */
	wr_u8(w, SPOP_ACT_SET_VAR);
	wr_u8(w, 3);
	wr_u8(w, (uint8_t)scope);
	wr_str(w, name, strlen(name));
	switch (v->type) {
	case SPOP_DATA_NULL:
		wr_u8(w, SPOP_DATA_NULL);
		break;
	case SPOP_DATA_BOOL:
		wr_u8(w, v->v.b ? 0x11 : 0x01);
		break;
	case SPOP_DATA_INT32:
	case SPOP_DATA_UINT32:
	case SPOP_DATA_INT64:
	case SPOP_DATA_UINT64:
		wr_u8(w, (uint8_t)v->type);
		wr_varint(w, v->v.u);
		break;
	case SPOP_DATA_IPV4:
		wr_u8(w, SPOP_DATA_IPV4);
		wr_bytes(w, v->v.ipv4, 4);
		break;
	case SPOP_DATA_IPV6:
		wr_u8(w, SPOP_DATA_IPV6);
		wr_bytes(w, v->v.ipv6, 16);
		break;
	case SPOP_DATA_STR:
	case SPOP_DATA_BIN:
		wr_u8(w, (uint8_t)v->type);
		wr_str(w, v->v.str.ptr, v->v.str.len);
		break;
	default:
		w->err = 1;
	}
	if (w->err) {
		/* Drop this action only: the ACK built so far stays valid. */
		w->off = save;
		w->err = 0;
		return -1;
	}
	w->actions++;
	return 0;
}

/*
 * Append set-var <name> = string <s> (<len> bytes). Returns 0 or -1.
 */
int
spop_ack_set_str(struct spop_writer *w, enum spop_scope scope, const char *name,
                 const char *s, size_t len)
{
	struct spop_data d;

	d.type = SPOP_DATA_STR;
	d.v.str.ptr = (const uint8_t *)s;
	d.v.str.len = len;
	return spop_ack_set_var(w, scope, name, &d);
}

/*
 * Append set-var <name> = integer <i>. Returns 0 or -1.
 */
int
spop_ack_set_int(struct spop_writer *w, enum spop_scope scope, const char *name, int64_t i)
{
	struct spop_data d;

	/* HAProxy stores every int type as a signed 64-bit value; a
	 * negative one travels as its two's complement. */
	d.type = (i >= INT32_MIN && i <= INT32_MAX) ? SPOP_DATA_INT32 : SPOP_DATA_INT64;
	d.v.u = (uint64_t)i;
	return spop_ack_set_var(w, scope, name, &d);
}

/*
 * Append set-var <name> = boolean <b>. Returns 0 or -1.
 */
int
spop_ack_set_bool(struct spop_writer *w, enum spop_scope scope, const char *name, int b)
{
	struct spop_data d;

	d.type = SPOP_DATA_BOOL;
	d.v.b = b != 0;
	return spop_ack_set_var(w, scope, name, &d);
}

/*
 * Finish the ACK in <w>. Returns its size, or -1 (overflow, no action).
 */
int
spop_ack_end(struct spop_writer *w)
{
	if (w->actions == 0)
		return -1;
	return wr_end(w);
}

/*
 * Return the text of SPOP status <st>.
 */
const char *
spop_status_str(int st)
{
	switch (st) {
	case SPOP_ST_NORMAL:         return "normal";
	case SPOP_ST_IO:             return "I/O error";
	case SPOP_ST_TIMEOUT:        return "a timeout occurred";
	case SPOP_ST_TOO_BIG:        return "frame is too big";
	case SPOP_ST_INVALID:        return "invalid frame received";
	case SPOP_ST_NO_VSN:         return "version value not found";
	case SPOP_ST_NO_FRAME_SIZE:  return "max-frame-size value not found";
	case SPOP_ST_NO_CAP:         return "capabilities value not found";
	case SPOP_ST_BAD_VSN:        return "unsupported version";
	case SPOP_ST_BAD_FRAME_SIZE: return "max-frame-size too big or too small";
	case SPOP_ST_FRAG:           return "payload fragmentation is not supported";
	case SPOP_ST_INTERLACED:     return "invalid interlaced frames";
	case SPOP_ST_FRAMEID:        return "frame-id not found";
	case SPOP_ST_RES:            return "resource allocation error";
	default:                     return "unknown error";
	}
}
