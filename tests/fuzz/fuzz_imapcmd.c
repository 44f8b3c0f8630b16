/*
 * libFuzzer target for the IMAP pre-auth parser. The input is fed whole,
 * byte by byte and in chunks whose sizes come from the input; all three
 * must give the same events. Also checks the parser's invariants and that
 * re-encoding a LOGIN argument with imapcmd_quote() parses back to it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imapcmd.h"
#include "sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct imapcmd st, st2;

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static uint64_t
mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ c[i]) * 1099511628211ULL;
	return h;
}

/* Re-encode <v> and parse it back as a LOGIN password. */
static void
check_quote(const char *v, size_t len)
{
	static char out[IMAPCMD_LITERAL_MAX_LIMIT + 64], line[IMAPCMD_LITERAL_MAX_LIMIT + 96];
	size_t split, used, l2;
	ssize_t n;
	const char *back;

	if (memchr(v, '\0', len) != NULL)
		return;
	n = imapcmd_quote(out, sizeof(out), v, len, IMAPCMD_QUOTE_LITERALPLUS, &split);
	CHECK(n >= 0 && split == 0);
	memcpy(line, "t LOGIN x ", 10);
	memcpy(line + 10, out, (size_t)n);
	memcpy(line + 10 + n, "\r\n", 2);
	imapcmd_init(&st2, NULL);
	CHECK(imapcmd_parse(&st2, line, (size_t)n + 12, &used) == IMAPCMD_DONE);
	back = imapcmd_arg(&st2, 1, &l2);
	CHECK(back != NULL && l2 == len && memcmp(back, v, len) == 0);
}

/* Check the result fields and fold them into <h>; acts like the daemon. */
static uint64_t
result(enum imapcmd_rc rc, uint64_t h, int deep)
{
	unsigned i;

	h = mix(h, &rc, sizeof(rc));
	CHECK(st.taglen <= IMAPCMD_TAG_MAX && strlen(st.tag) == st.taglen);
	h = mix(h, st.tag, st.taglen);
	if (rc == IMAPCMD_ERROR || rc == IMAPCMD_FATAL) {
		CHECK(st.error != NULL);
		/* an over-long line is reported as such, and only it */
		CHECK(strcmp(st.error, "line too long") != 0 || st.too_long);
		CHECK(!st.too_long || rc == IMAPCMD_FATAL ||
		      strcmp(st.error, "line too long") == 0);
		h = mix(h, &st.too_long, sizeof(st.too_long));
		h = mix(h, &st.line_len, sizeof(st.line_len));
		h = mix(h, st.error, strlen(st.error));
		return h;
	}
	if (rc == IMAPCMD_LITERAL) {
		CHECK(st.literal_size <= IMAPCMD_LITERAL_MAX_LIMIT);
		return mix(h, &st.literal_size, sizeof(st.literal_size));
	}
	h = mix(h, &st.kind, sizeof(st.kind));
	h = mix(h, &st.id_nil, sizeof(st.id_nil));
	CHECK(st.nargs <= IMAPCMD_ARGS_MAX);
	if (st.kind == IMAPCMD_LOGIN)
		CHECK(st.nargs == 2);
	if (st.kind == IMAPCMD_AUTHENTICATE)
		CHECK(st.nargs == 1 || st.nargs == 2);
	if (st.kind == IMAPCMD_ID)
		CHECK(st.nargs % 2 == 0 && st.nargs <= 2 * IMAPCMD_ID_PAIRS_MAX);
	for (i = 0; i < st.nargs; i++) {
		const struct imapcmd_arg *a = &st.args[i];
		size_t len;
		const char *v = imapcmd_arg(&st, i, &len);

		CHECK((size_t)a->off + a->len < IMAPCMD_BUF_SIZE);
		CHECK(st.buf[a->off + a->len] == '\0');
		h = mix(h, a, sizeof(*a));
		if (v != NULL)
			h = mix(h, v, len);
		if (deep && st.kind == IMAPCMD_LOGIN && v != NULL)
			check_quote(v, len);
		if (deep && v != NULL && (st.kind == IMAPCMD_SASL_RESPONSE ||
		                          (st.kind == IMAPCMD_AUTHENTICATE && i == 1))) {
			struct sasl_plain p;
			static char enc[4096];
			if (sasl_plain_decode(v, len, &p) == SASL_OK) {
				struct sasl_plain q;
				ssize_t n = sasl_plain_encode(&p, enc, sizeof(enc));
				CHECK(n > 0);
				CHECK(sasl_plain_decode(enc, (size_t)n, &q) == SASL_OK);
				CHECK(q.password_len == p.password_len &&
				      memcmp(q.password, p.password, p.password_len) == 0);
			}
		}
	}
	if (st.kind == IMAPCMD_AUTHENTICATE && st.nargs == 1)
		imapcmd_expect_sasl(&st);
	return h;
}

/* Feed <data> in chunks: <mode> 0 whole, 1 byte by byte, 2 sizes from <sz>. */
static uint64_t
run(const uint8_t *data, size_t size, int mode, const struct imapcmd_limits *lim)
{
	uint64_t h = 14695981039346656037ULL;
	size_t off = 0, k = 0;

	imapcmd_init(&st, lim);
	while (off < size) {
		size_t n = size - off, pos = 0;

		if (mode == 1)
			n = 1;
		else if (mode == 2) {
			size_t want = (size_t)data[k++ % size] % 17 + 1;
			n = want < n ? want : n;
		}
		while (pos < n) {
			size_t used = (size_t)-1;
			enum imapcmd_rc rc = imapcmd_parse(&st, (const char *)data + off + pos,
			                                   n - pos, &used);
			CHECK(used <= n - pos);
			if (rc == IMAPCMD_AGAIN) {
				CHECK(used == n - pos);
			} else {
				CHECK(used > 0 || rc == IMAPCMD_FATAL);
				h = result(rc, h, mode == 0);
			}
			pos += used;
			if (rc == IMAPCMD_FATAL)
				return h;
		}
		off += n;
	}
	return h;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imapcmd_limits small = { .line_max = 48, .literal_max = 16, .sasl_max = 40,
	                                .skip_max = 400 };
	const struct imapcmd_limits *lim = NULL;
	uint64_t h0, h1, h2;

	if (size == 0)
		return 0;
	/* the first octet picks the limits, so small limits are reached often */
	if (data[0] & 1)
		lim = &small;
	data++;
	size--;
	h0 = run(data, size, 0, lim);
	h1 = run(data, size, 1, lim);
	h2 = run(data, size, 2, lim);
	CHECK(h0 == h1 && h0 == h2);
	return 0;
}
