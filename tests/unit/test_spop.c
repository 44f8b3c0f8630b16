/*
 * Unit tests for the SPOP codec: HAProxy's varint vectors, the frames
 * captured between HAProxy 2.6.12 and a test agent (decoded, and encoded
 * byte for byte), and every malformed-input path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "spop.h"

/* A small byte-array builder for writing captures readably. */
struct bb {
	uint8_t b[1024];
	size_t n;
};

static void
bb_hex(struct bb *bb, const char *hex)
{
	unsigned v;

	while (*hex) {
		if (*hex == ' ') {
			hex++;
			continue;
		}
		assert_true(sscanf(hex, "%2x", &v) == 1);
		bb->b[bb->n++] = (uint8_t)v;
		hex += 2;
	}
}

/* Append <s> with a one-byte length (all strings here are < 240). */
static void
bb_lstr(struct bb *bb, const char *s)
{
	size_t n = strlen(s);

	bb->b[bb->n++] = (uint8_t)n;
	memcpy(bb->b + bb->n, s, n);
	bb->n += n;
}

/* Rewrite the 4-byte length prefix from the current size. */
static void
bb_fixlen(struct bb *bb)
{
	size_t l = bb->n - 4;

	bb->b[0] = (uint8_t)(l >> 24);
	bb->b[1] = (uint8_t)(l >> 16);
	bb->b[2] = (uint8_t)(l >> 8);
	bb->b[3] = (uint8_t)l;
}

/* Health-check HELLO, 82 bytes on the wire. */
static void
cap_hc_hello(struct bb *bb)
{
	memset(bb, 0, sizeof(*bb));
	bb_hex(bb, "0000004e 01 00000001 00 00");
	bb_lstr(bb, "supported-versions"); bb_hex(bb, "08"); bb_lstr(bb, "2.0");
	bb_lstr(bb, "max-frame-size"); bb_hex(bb, "03 fcf006");
	bb_lstr(bb, "capabilities"); bb_hex(bb, "08 00");
	bb_lstr(bb, "healthcheck"); bb_hex(bb, "11");
}

/* Normal HELLO with an engine-id. */
static void
cap_hello(struct bb *bb)
{
	memset(bb, 0, sizeof(*bb));
	bb_hex(bb, "00000081 01 00000001 00 00");
	bb_lstr(bb, "supported-versions"); bb_hex(bb, "08"); bb_lstr(bb, "2.0");
	bb_lstr(bb, "max-frame-size"); bb_hex(bb, "03 fcf006");
	bb_lstr(bb, "capabilities"); bb_hex(bb, "08"); bb_lstr(bb, "pipelining,async");
	bb_lstr(bb, "engine-id"); bb_hex(bb, "08");
	bb_lstr(bb, "cd7e5f18-f22d-4ee6-996d-8670ec3d1a07");
}

/* The NOTIFY capture; the unique-id's tail (elided in the notes) is
 * rebuilt in HAProxy's default unique-id format with the same length. */
static void
cap_notify(struct bb *bb)
{
	memset(bb, 0, sizeof(*bb));
	bb_hex(bb, "00000076 03 00000001 02 01");
	bb_lstr(bb, "route-lookup"); bb_hex(bb, "06");
	bb_lstr(bb, "user"); bb_hex(bb, "08"); bb_lstr(bb, "alice");
	bb_lstr(bb, "src"); bb_hex(bb, "06 7f000001");
	bb_lstr(bb, "sport"); bb_hex(bb, "04 f29c1c");
	bb_lstr(bb, "meth"); bb_hex(bb, "08"); bb_lstr(bb, "GET");
	bb_lstr(bb, "ssl"); bb_hex(bb, "01");
	bb_lstr(bb, "id"); bb_hex(bb, "08");
	bb_lstr(bb, "7F000001:EAB2_7F000001:1F90_64A1B2C3_0000:1A2B");
}

static void
test_varint_vectors(void **state)
{
	static const struct { uint64_t v; const char *hex; } vec[] = {
		{ 0, "00" }, { 239, "ef" }, { 240, "f000" }, { 255, "ff00" },
		{ 2287, "ff7f" }, { 2288, "f08000" }, { 16380, "fcf006" },
		{ 29001, "f9850d" }, { 60082, "f29c1c" },
		{ 65535, "fff01e" }, { 264432, "f0808000" },
		{ 4294967295ULL, "fff0fefe7e" },
		{ UINT64_MAX, "fff0fefefefefefefe0e" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		struct bb want = { .n = 0 };
		uint8_t out[16];
		uint64_t v;
		int n;

		bb_hex(&want, vec[i].hex);
		n = spop_varint_encode(vec[i].v, out, sizeof(out));
		assert_int_equal(n, (int)want.n);
		assert_memory_equal(out, want.b, want.n);
		assert_int_equal(spop_varint_decode(want.b, want.n, &v), (int)want.n);
		assert_true(v == vec[i].v);
		/* Every strict prefix is truncated. */
		for (size_t k = 0; k < want.n; k++)
			assert_int_equal(spop_varint_decode(want.b, k, &v), -1);
		/* A buffer one byte short is refused by the encoder. */
		assert_int_equal(spop_varint_encode(vec[i].v, out, want.n - 1), -1);
	}
}

static void
test_varint_malformed(void **state)
{
	/* 11 bytes: longer than any 64-bit value. */
	static const uint8_t overlong[] = { 0xf0, 0x80, 0x80, 0x80, 0x80, 0x80,
	                                    0x80, 0x80, 0x80, 0x80, 0x00 };
	/* 10 bytes whose last one carries more than the 4 bits left. */
	static const uint8_t overflow[] = { 0xff, 0xf0, 0xfe, 0xfe, 0xfe, 0xfe,
	                                    0xfe, 0xfe, 0xfe, 0x7f };
	/* 2^64-1 with the first byte bumped: the sum wraps. */
	static const uint8_t wrap[] = { 0xff, 0xff, 0xfe, 0xfe, 0xfe, 0xfe,
	                                0xfe, 0xfe, 0xfe, 0x0f };
	uint64_t v;

	(void)state;
	assert_int_equal(spop_varint_decode(overlong, sizeof(overlong), &v), -1);
	assert_int_equal(spop_varint_decode(overflow, sizeof(overflow), &v), -1);
	assert_int_equal(spop_varint_decode(wrap, sizeof(wrap), &v), -1);
	assert_int_equal(spop_varint_decode(overlong, 0, &v), -1);
	assert_int_equal(spop_varint_encode(5, NULL, 0), -1);
}

static void
test_hello_healthcheck(void **state)
{
	struct bb bb;
	struct spop_frame f;
	struct spop_hello h;
	int st = -1;

	(void)state;
	cap_hc_hello(&bb);
	assert_int_equal(bb.n, 82);
	assert_int_equal(spop_frame_parse(bb.b, bb.n, 16380, &f, &st), 82);
	assert_int_equal(f.type, SPOP_FRM_HAPROXY_HELLO);
	assert_int_equal(f.flags, SPOP_FL_FIN);
	assert_true(f.stream_id == 0 && f.frame_id == 0);
	assert_int_equal(spop_hello_parse(&f, &h, &st), 0);
	assert_int_equal(st, SPOP_ST_NORMAL);
	assert_true(h.healthcheck);
	assert_int_equal(h.max_frame_size, 16380);
	assert_int_equal(h.capabilities.len, 0);
	assert_int_equal(h.engine_id.len, 0);
	assert_true(spop_str_eq(h.versions, "2.0"));
}

static void
test_hello_normal(void **state)
{
	struct bb bb;
	struct spop_frame f;
	struct spop_hello h;
	int st;

	(void)state;
	cap_hello(&bb);
	assert_int_equal(bb.n, 0x81 + 4);
	assert_int_equal(spop_frame_parse(bb.b, bb.n, 16380, &f, &st), (int)bb.n);
	assert_int_equal(spop_hello_parse(&f, &h, &st), 0);
	assert_false(h.healthcheck);
	assert_true(spop_list_has(h.capabilities, "pipelining"));
	assert_true(spop_list_has(h.capabilities, "async"));
	assert_false(spop_list_has(h.capabilities, "fragmentation"));
	assert_false(spop_list_has(h.capabilities, "pipe"));
	assert_true(spop_str_eq(h.engine_id, "cd7e5f18-f22d-4ee6-996d-8670ec3d1a07"));
	/* Two frames back to back: the first parse consumes exactly one. */
	memcpy(bb.b + bb.n, bb.b, bb.n);
	assert_int_equal(spop_frame_parse(bb.b, 2 * bb.n, 16380, &f, &st), 0x85);
}

static void
test_agent_hello_encode(void **state)
{
	struct bb want;
	uint8_t out[256];

	(void)state;
	memset(&want, 0, sizeof(want));
	bb_hex(&want, "00000040 65 00000001 00 00");
	bb_lstr(&want, "version"); bb_hex(&want, "08"); bb_lstr(&want, "2.0");
	bb_lstr(&want, "max-frame-size"); bb_hex(&want, "03 fcf006");
	bb_lstr(&want, "capabilities"); bb_hex(&want, "08"); bb_lstr(&want, "pipelining");
	assert_int_equal(spop_agent_hello_encode(out, sizeof(out), 16380), (int)want.n);
	assert_memory_equal(out, want.b, want.n);
	for (size_t k = 0; k < want.n; k++)
		assert_int_equal(spop_agent_hello_encode(out, k, 16380), -1);
}

static void
test_notify(void **state)
{
	struct bb bb;
	struct spop_frame f;
	struct spop_iter it;
	struct spop_msg m;
	struct spop_str name;
	struct spop_data v;
	int st;

	(void)state;
	cap_notify(&bb);
	assert_int_equal(bb.n, 0x76 + 4);
	assert_int_equal(spop_frame_parse(bb.b, bb.n, 16380, &f, &st), (int)bb.n);
	assert_int_equal(f.type, SPOP_FRM_NOTIFY);
	assert_true(f.stream_id == 2 && f.frame_id == 1);
	spop_notify_begin(&f, &it);
	assert_int_equal(spop_msg_next(&it, &m), 1);
	assert_true(spop_str_eq(m.name, "route-lookup"));
	assert_int_equal(m.nb_args, 6);

	assert_int_equal(spop_arg_next(&m, &name, &v), 1);
	assert_true(spop_str_eq(name, "user"));
	assert_int_equal(v.type, SPOP_DATA_STR);
	assert_int_equal(v.v.str.len, 5);
	assert_memory_equal(v.v.str.ptr, "alice", 5);

	assert_int_equal(spop_arg_next(&m, &name, &v), 1);
	assert_true(spop_str_eq(name, "src"));
	assert_int_equal(v.type, SPOP_DATA_IPV4);
	assert_memory_equal(v.v.ipv4, "\x7f\x00\x00\x01", 4);

	assert_int_equal(spop_arg_next(&m, &name, &v), 1);
	assert_true(spop_str_eq(name, "sport"));
	assert_int_equal(v.type, SPOP_DATA_INT64);
	assert_true(v.v.u == 60082);

	assert_int_equal(spop_arg_next(&m, &name, &v), 1);
	assert_true(spop_str_eq(name, "meth"));
	assert_int_equal(spop_arg_next(&m, &name, &v), 1);
	assert_true(spop_str_eq(name, "ssl"));
	assert_int_equal(v.type, SPOP_DATA_BOOL);
	assert_false(v.v.b);
	assert_int_equal(spop_arg_next(&m, &name, &v), 1);
	assert_true(spop_str_eq(name, "id"));
	assert_int_equal(v.v.str.len, 46);
	assert_int_equal(spop_arg_next(&m, &name, &v), 0);
	assert_int_equal(spop_msg_next(&it, &m), 0);
}

static void
test_ack_encode(void **state)
{
	struct bb want;
	struct spop_writer w;
	struct spop_data ip = { .type = SPOP_DATA_IPV4 };
	uint8_t out[256];

	(void)state;
	memset(&want, 0, sizeof(want));
	bb_hex(&want, "0000002c 67 00000001 02 01");
	bb_hex(&want, "01 03 02"); bb_lstr(&want, "ip"); bb_hex(&want, "06 7f000001");
	bb_hex(&want, "01 03 02"); bb_lstr(&want, "port"); bb_hex(&want, "02 f9850d");
	bb_hex(&want, "01 03 02"); bb_lstr(&want, "who"); bb_hex(&want, "08");
	bb_lstr(&want, "alice");

	memcpy(ip.v.ipv4, "\x7f\x00\x00\x01", 4);
	spop_ack_begin(&w, out, sizeof(out), 16380, 2, 1);
	assert_int_equal(spop_ack_set_var(&w, SPOP_SCOPE_TXN, "ip", &ip), 0);
	assert_int_equal(spop_ack_set_int(&w, SPOP_SCOPE_TXN, "port", 29001), 0);
	assert_int_equal(spop_ack_set_str(&w, SPOP_SCOPE_TXN, "who", "alice", 5), 0);
	assert_int_equal(spop_ack_end(&w), (int)want.n);
	assert_memory_equal(out, want.b, want.n);

	/* Any smaller buffer keeps the actions that fit (or fails when
	 * none does) and never writes past it. */
	for (size_t k = 0; k < want.n; k++) {
		uint8_t small[64];
		int n;

		memset(small, 0xaa, sizeof(small));
		spop_ack_begin(&w, small, k, 16380, 2, 1);
		spop_ack_set_var(&w, SPOP_SCOPE_TXN, "ip", &ip);
		spop_ack_set_int(&w, SPOP_SCOPE_TXN, "port", 29001);
		assert_int_equal(spop_ack_set_str(&w, SPOP_SCOPE_TXN, "who", "alice", 5), -1);
		n = spop_ack_end(&w);
		if (k < 22)
			assert_int_equal(n, -1);
		else
			assert_int_equal(n, k < 34 ? 22 : 34);
		if (n > 0)
			assert_memory_equal(small + 4, want.b + 4, (size_t)n - 4);
		for (size_t j = k; j < sizeof(small); j++)
			assert_int_equal(small[j], 0xaa);
	}
	/* The negotiated frame size bounds the ACK too. */
	spop_ack_begin(&w, out, sizeof(out), want.n - 5, 2, 1);
	spop_ack_set_var(&w, SPOP_SCOPE_TXN, "ip", &ip);
	spop_ack_set_int(&w, SPOP_SCOPE_TXN, "port", 29001);
	assert_int_equal(spop_ack_set_str(&w, SPOP_SCOPE_TXN, "who", "alice", 5), -1);
	assert_int_equal(spop_ack_end(&w), 34);
	/* An ACK without actions is never produced. */
	spop_ack_begin(&w, out, sizeof(out), 16380, 2, 1);
	assert_int_equal(spop_ack_end(&w), -1);
}

static void
test_ack_types(void **state)
{
	struct spop_writer w;
	struct spop_data d = { .type = SPOP_DATA_IPV6 };
	struct spop_frame f;
	struct spop_iter it;
	uint8_t out[256];
	int n, st;
	const uint8_t *p;

	(void)state;
	memset(d.v.ipv6, 0, 16);
	d.v.ipv6[15] = 1;
	spop_ack_begin(&w, out, sizeof(out), 16380, 300, 7);
	assert_int_equal(spop_ack_set_var(&w, SPOP_SCOPE_TXN, "ip6", &d), 0);
	assert_int_equal(spop_ack_set_bool(&w, SPOP_SCOPE_TXN, "t", 1), 0);
	assert_int_equal(spop_ack_set_bool(&w, SPOP_SCOPE_TXN, "f", 0), 0);
	assert_int_equal(spop_ack_set_int(&w, SPOP_SCOPE_TXN, "neg", -1), 0);
	d.type = SPOP_DATA_NULL;
	assert_int_equal(spop_ack_set_var(&w, SPOP_SCOPE_SESS, "n", &d), 0);
	d.type = 12;
	assert_int_equal(spop_ack_set_var(&w, SPOP_SCOPE_TXN, "bad", &d), -1);
	n = spop_ack_end(&w);
	assert_true(n > 0);
	assert_int_equal(spop_frame_parse(out, (size_t)n, 16380, &f, &st), n);
	assert_int_equal(f.type, SPOP_FRM_ACK);
	assert_true(f.stream_id == 300 && f.frame_id == 7);
	/* Walk the actions back: 01 03 scope name value. */
	it.p = f.payload;
	it.end = f.payload + f.payload_len;
	p = it.p;
	assert_memory_equal(p, "\x01\x03\x02\x03ip6\x07", 8);
	p += 8 + 16;
	assert_memory_equal(p, "\x01\x03\x02\x01t\x11", 6);
	p += 6;
	assert_memory_equal(p, "\x01\x03\x02\x01" "f\x01", 6);
	p += 6;
	assert_memory_equal(p, "\x01\x03\x02\x03neg\x02\xff\xf0\xfe\xfe\xfe\xfe\xfe\xfe\xfe\x0e", 18);
	p += 18;
	assert_memory_equal(p, "\x01\x03\x01\x01n\x00", 6);
	p += 6;
	assert_ptr_equal(p, it.end);
}

static void
test_disconnect(void **state)
{
	struct bb bb;
	struct spop_frame f;
	struct spop_disconnect d;
	uint8_t out[512];
	char longmsg[400];
	int n, st;

	(void)state;
	memset(&bb, 0, sizeof(bb));
	bb_hex(&bb, "00000000 02 00000001 00 00");
	bb_lstr(&bb, "status-code"); bb_hex(&bb, "03 02");
	bb_lstr(&bb, "message"); bb_hex(&bb, "08"); bb_lstr(&bb, "a timeout occurred");
	bb_fixlen(&bb);
	assert_int_equal(spop_frame_parse(bb.b, bb.n, 16380, &f, &st), (int)bb.n);
	assert_int_equal(spop_disconnect_parse(&f, &d), 0);
	assert_int_equal(d.status, 2);
	assert_true(spop_str_eq(d.message, "a timeout occurred"));

	/* Our own AGENT-DISCONNECT decodes back, message cut to 255. */
	memset(longmsg, 'x', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	n = spop_agent_disconnect_encode(out, sizeof(out), SPOP_ST_TOO_BIG, longmsg);
	assert_true(n > 0);
	assert_int_equal(spop_frame_parse(out, (size_t)n, 16380, &f, &st), n);
	assert_int_equal(f.type, SPOP_FRM_AGENT_DISCONNECT);
	assert_int_equal(spop_disconnect_parse(&f, &d), 0);
	assert_int_equal(d.status, SPOP_ST_TOO_BIG);
	assert_int_equal(d.message.len, 255);
	assert_int_equal(spop_agent_disconnect_encode(out, 10, 0, "x"), -1);

	/* A NOTIFY is not a DISCONNECT. */
	cap_notify(&bb);
	assert_true(spop_frame_parse(bb.b, bb.n, 16380, &f, &st) > 0);
	assert_int_equal(spop_disconnect_parse(&f, &d), -1);
}

static void
test_frame_malformed(void **state)
{
	struct bb bb;
	struct spop_frame f;
	int st;

	(void)state;
	/* Truncated at every byte: "need more", never an error or a read
	 * past the end. */
	cap_notify(&bb);
	for (size_t k = 0; k < bb.n; k++)
		assert_int_equal(spop_frame_parse(bb.b, k, 16380, &f, &st), 0);
	/* Oversize: refused from the 4 length bytes alone. */
	st = -1;
	assert_int_equal(spop_frame_parse((const uint8_t *)"\x00\x00\x40\x00", 4, 16380, &f, &st), -1);
	assert_int_equal(st, SPOP_ST_TOO_BIG);
	assert_int_equal(spop_frame_parse(bb.b, bb.n, 0x75, &f, &st), -1);
	assert_int_equal(st, SPOP_ST_TOO_BIG);
	assert_int_equal(spop_frame_parse((const uint8_t *)"\xff\xff\xff\xff", 4, 16380, &f, &st), -1);
	/* Zero length and anything below 7. */
	for (uint8_t l = 0; l < 7; l++) {
		uint8_t z[16] = { 0, 0, 0, l, 3, 0, 0, 0, 1, 0, 0 };

		st = -1;
		assert_int_equal(spop_frame_parse(z, sizeof(z), 16380, &f, &st), -1);
		assert_int_equal(st, SPOP_ST_INVALID);
	}
	/* Exactly 7 with one-byte ids is fine (an empty payload). */
	assert_int_equal(spop_frame_parse((const uint8_t *)"\x00\x00\x00\x07\x03\x00\x00\x00\x01\x05\x06",
	                                  11, 16380, &f, &st), 11);
	assert_int_equal(f.payload_len, 0);
	/* A stream-id varint that runs past the frame. */
	st = -1;
	assert_int_equal(spop_frame_parse((const uint8_t *)"\x00\x00\x00\x07\x03\x00\x00\x00\x01\xf0\x80",
	                                  11, 16380, &f, &st), -1);
	assert_int_equal(st, SPOP_ST_INVALID);
	/* A frame-id varint that is overlong. */
	memset(&bb, 0, sizeof(bb));
	bb_hex(&bb, "00000000 03 00000001 01 f0 80 80 80 80 80 80 80 80 80 80 00");
	bb_fixlen(&bb);
	assert_int_equal(spop_frame_parse(bb.b, bb.n, 16380, &f, &st), -1);
	assert_int_equal(st, SPOP_ST_INVALID);
}

static void
test_hello_malformed(void **state)
{
	struct bb bb, cut;
	struct spop_frame f;
	struct spop_hello h;
	int st;

	(void)state;
	/* The payload cut at every byte (length rewritten): never
	 * accepted, because some mandatory key is missing or cut. */
	cap_hc_hello(&bb);
	for (size_t k = 11; k < bb.n; k++) {
		cut = bb;
		cut.n = k;
		bb_fixlen(&cut);
		assert_int_equal(spop_frame_parse(cut.b, cut.n, 16380, &f, &st), (int)k);
		/* the last item is optional: the cut just before it is valid */
		if (k == bb.n - 13)
			assert_int_equal(spop_hello_parse(&f, &h, &st), 0);
		else
			assert_int_equal(spop_hello_parse(&f, &h, &st), -1);
	}

	/* Missing keys give their own status codes. */
	memset(&bb, 0, sizeof(bb));
	bb_hex(&bb, "00000000 01 00000001 00 00");
	bb_lstr(&bb, "max-frame-size"); bb_hex(&bb, "03 fcf006");
	bb_fixlen(&bb);
	assert_true(spop_frame_parse(bb.b, bb.n, 16380, &f, &st) > 0);
	assert_int_equal(spop_hello_parse(&f, &h, &st), -1);
	assert_int_equal(st, SPOP_ST_NO_VSN);

	memset(&bb, 0, sizeof(bb));
	bb_hex(&bb, "00000000 01 00000001 00 00");
	bb_lstr(&bb, "supported-versions"); bb_hex(&bb, "08"); bb_lstr(&bb, "1.0");
	bb_fixlen(&bb);
	assert_true(spop_frame_parse(bb.b, bb.n, 16380, &f, &st) > 0);
	assert_int_equal(spop_hello_parse(&f, &h, &st), -1);
	assert_int_equal(st, SPOP_ST_NO_FRAME_SIZE);

	bb_lstr(&bb, "max-frame-size"); bb_hex(&bb, "02 64");
	bb_fixlen(&bb);
	assert_true(spop_frame_parse(bb.b, bb.n, 16380, &f, &st) > 0);
	assert_int_equal(spop_hello_parse(&f, &h, &st), -1);
	assert_int_equal(st, SPOP_ST_NO_CAP);

	bb_lstr(&bb, "capabilities"); bb_hex(&bb, "08 00");
	bb_fixlen(&bb);
	assert_true(spop_frame_parse(bb.b, bb.n, 16380, &f, &st) > 0);
	assert_int_equal(spop_hello_parse(&f, &h, &st), -1);
	assert_int_equal(st, SPOP_ST_BAD_VSN);

	/* Versions "1.0, 2.0" are fine, but a frame size of 100 is not. */
	memset(&bb, 0, sizeof(bb));
	bb_hex(&bb, "00000000 01 00000001 00 00");
	bb_lstr(&bb, "supported-versions"); bb_hex(&bb, "08"); bb_lstr(&bb, "1.0, 2.0");
	bb_lstr(&bb, "max-frame-size"); bb_hex(&bb, "02 64");
	bb_lstr(&bb, "capabilities"); bb_hex(&bb, "08 00");
	bb_lstr(&bb, "unknown-key"); bb_hex(&bb, "09 02 ab cd");
	bb_fixlen(&bb);
	assert_true(spop_frame_parse(bb.b, bb.n, 16380, &f, &st) > 0);
	assert_int_equal(spop_hello_parse(&f, &h, &st), -1);
	assert_int_equal(st, SPOP_ST_BAD_FRAME_SIZE);

	/* Wrong value type for a known key; non-zero ids; no FIN. */
	cap_hc_hello(&bb);
	bb.b[11 + 1 + 18] = 0x09;   /* supported-versions as BINARY */
	assert_true(spop_frame_parse(bb.b, bb.n, 16380, &f, &st) > 0);
	assert_int_equal(spop_hello_parse(&f, &h, &st), -1);
	assert_int_equal(st, SPOP_ST_INVALID);
	cap_hc_hello(&bb);
	bb.b[9] = 1;
	assert_true(spop_frame_parse(bb.b, bb.n, 16380, &f, &st) > 0);
	assert_int_equal(spop_hello_parse(&f, &h, &st), -1);
	cap_hc_hello(&bb);
	bb.b[8] = 0;
	assert_true(spop_frame_parse(bb.b, bb.n, 16380, &f, &st) > 0);
	assert_int_equal(spop_hello_parse(&f, &h, &st), -1);
}

/* Parse every message of NOTIFY <bb>; return -1 at the first error,
 * else the number of messages. */
static int
walk_notify(struct bb *bb)
{
	struct spop_frame f;
	struct spop_iter it;
	struct spop_msg m;
	struct spop_str name;
	struct spop_data v;
	int st, r, n = 0;

	if (spop_frame_parse(bb->b, bb->n, 16380, &f, &st) <= 0)
		return -2;
	spop_notify_begin(&f, &it);
	while ((r = spop_msg_next(&it, &m)) == 1) {
		unsigned a = 0;

		while (spop_arg_next(&m, &name, &v) == 1)
			a++;
		assert_int_equal(a, m.nb_args);
		n++;
	}
	return r < 0 ? -1 : n;
}

static void
test_notify_malformed(void **state)
{
	struct bb bb, cut;

	(void)state;
	/* The payload cut at every byte inside the message. */
	cap_notify(&bb);
	assert_int_equal(walk_notify(&bb), 1);
	for (size_t k = 11; k < bb.n; k++) {
		cut = bb;
		cut.n = k;
		bb_fixlen(&cut);
		assert_int_equal(walk_notify(&cut), k == 11 ? 0 : -1);
	}
	/* nb-args larger than the arguments present. */
	cap_notify(&bb);
	bb.b[11 + 13] = 7;
	assert_int_equal(walk_notify(&bb), -1);
	bb.b[11 + 13] = 255;
	assert_int_equal(walk_notify(&bb), -1);
	/* nb-args smaller: the leftover argument reads as a message whose
	 * nb-args byte is its type byte; here that overruns. */
	cap_notify(&bb);
	bb.b[11 + 13] = 5;
	assert_int_equal(walk_notify(&bb), -1);
	/* Every reserved type in place of the first argument's type. */
	for (uint8_t t = 10; t < 16; t++) {
		cap_notify(&bb);
		bb.b[11 + 13 + 6] = t;
		assert_int_equal(walk_notify(&bb), -1);
	}
	/* A string length that runs past the end of the frame. */
	cap_notify(&bb);
	bb.b[11 + 13 + 7] = 0xef;   /* "alice" claims 239 bytes */
	assert_int_equal(walk_notify(&bb), -1);
	cap_notify(&bb);
	bb.b[11] = 0xee;            /* the message name claims 238 bytes */
	assert_int_equal(walk_notify(&bb), -1);
	/* Truncated IPv4 and IPv6 values. */
	memset(&bb, 0, sizeof(bb));
	bb_hex(&bb, "00000000 03 00000001 02 01");
	bb_lstr(&bb, "m"); bb_hex(&bb, "01"); bb_lstr(&bb, "a"); bb_hex(&bb, "07 00 01 02");
	bb_fixlen(&bb);
	assert_int_equal(walk_notify(&bb), -1);
	memset(&bb, 0, sizeof(bb));
	bb_hex(&bb, "00000000 03 00000001 02 01");
	bb_lstr(&bb, "m"); bb_hex(&bb, "01"); bb_lstr(&bb, "a"); bb_hex(&bb, "06 00 01 02");
	bb_fixlen(&bb);
	assert_int_equal(walk_notify(&bb), -1);
	/* Two messages, an empty argument name, every type once. */
	memset(&bb, 0, sizeof(bb));
	bb_hex(&bb, "00000000 03 00000001 02 01");
	bb_lstr(&bb, "one"); bb_hex(&bb, "00");
	bb_lstr(&bb, "two"); bb_hex(&bb, "0a");
	bb_hex(&bb, "00 00");  bb_hex(&bb, "00 11"); bb_hex(&bb, "00 02 05");
	bb_hex(&bb, "00 03 05"); bb_hex(&bb, "00 04 05"); bb_hex(&bb, "00 05 05");
	bb_hex(&bb, "00 06 01020304");
	bb_hex(&bb, "00 07 00000000000000000000000000000001");
	bb_hex(&bb, "00 08 02 6869"); bb_hex(&bb, "00 09 00");
	bb_fixlen(&bb);
	assert_int_equal(walk_notify(&bb), 2);
	/* Int varint that runs off the end. */
	memset(&bb, 0, sizeof(bb));
	bb_hex(&bb, "00000000 03 00000001 02 01");
	bb_lstr(&bb, "m"); bb_hex(&bb, "01"); bb_lstr(&bb, "a"); bb_hex(&bb, "04 f0 80");
	bb_fixlen(&bb);
	assert_int_equal(walk_notify(&bb), -1);
}

static void
test_misc(void **state)
{
	struct spop_str s = { (const uint8_t *)" pipelining , async", 19 };
	struct spop_str e = { NULL, 0 };

	(void)state;
	assert_true(spop_list_has(s, "pipelining"));
	assert_true(spop_list_has(s, "async"));
	assert_false(spop_list_has(e, "async"));
	assert_true(spop_str_eq(e, ""));
	assert_string_equal(spop_status_str(3), "frame is too big");
	assert_string_equal(spop_status_str(1234), "unknown error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_varint_vectors),
		cmocka_unit_test(test_varint_malformed),
		cmocka_unit_test(test_hello_healthcheck),
		cmocka_unit_test(test_hello_normal),
		cmocka_unit_test(test_agent_hello_encode),
		cmocka_unit_test(test_notify),
		cmocka_unit_test(test_ack_encode),
		cmocka_unit_test(test_ack_types),
		cmocka_unit_test(test_disconnect),
		cmocka_unit_test(test_frame_malformed),
		cmocka_unit_test(test_hello_malformed),
		cmocka_unit_test(test_notify_malformed),
		cmocka_unit_test(test_misc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
