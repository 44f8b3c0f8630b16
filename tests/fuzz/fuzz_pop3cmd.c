/*
 * libFuzzer target for the POP3 pre-auth parser: whole, byte-by-byte and
 * chunked feeding must give the same events; invariants are checked.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3cmd.h"
#include "sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pop3cmd st;

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

static uint64_t
result(enum pop3cmd_rc rc, uint64_t h, int deep)
{
	unsigned i;

	h = mix(h, &rc, sizeof(rc));
	if (rc != POP3CMD_DONE) {
		CHECK(st.error != NULL);
		/* an over-long line is reported as such, and only it */
		CHECK((strcmp(st.error, "line too long") == 0) == !!st.too_long);
		h = mix(h, &st.line_len, sizeof(st.line_len));
		return mix(h, st.error, strlen(st.error));
	}
	CHECK(st.nargs <= POP3CMD_ARGS_MAX);
	CHECK(strlen(st.name) < sizeof(st.name));
	h = mix(h, &st.kind, sizeof(st.kind));
	h = mix(h, st.name, strlen(st.name));
	if (st.kind == POP3CMD_USER || st.kind == POP3CMD_PASS)
		CHECK(st.nargs == 1);
	for (i = 0; i < st.nargs; i++) {
		size_t len;
		const char *v = pop3cmd_arg(&st, i, &len);

		CHECK(v != NULL && v[len] == '\0');
		CHECK(memchr(v, '\0', len) == NULL && memchr(v, '\n', len) == NULL);
		if (st.kind == POP3CMD_USER || st.kind == POP3CMD_PASS)
			CHECK(len > 0);
		h = mix(h, v, len);
		if (deep && (st.kind == POP3CMD_SASL_RESPONSE ||
		             (st.kind == POP3CMD_AUTH && i == 1))) {
			struct sasl_plain p;
			(void)sasl_plain_decode(v, len, &p);
			sasl_plain_wipe(&p);
		}
	}
	if (st.kind == POP3CMD_AUTH && st.nargs == 1)
		pop3cmd_expect_sasl(&st);
	return h;
}

static uint64_t
run(const uint8_t *data, size_t size, int mode, const struct pop3cmd_limits *lim)
{
	uint64_t h = 14695981039346656037ULL;
	size_t off = 0, k = 0;

	pop3cmd_init(&st, lim);
	while (off < size) {
		size_t n = size - off, pos = 0;

		if (mode == 1)
			n = 1;
		else if (mode == 2) {
			size_t want = (size_t)data[k++ % size] % 13 + 1;
			n = want < n ? want : n;
		}
		while (pos < n) {
			size_t used = (size_t)-1;
			enum pop3cmd_rc rc = pop3cmd_parse(&st, (const char *)data + off + pos,
			                                   n - pos, &used);
			CHECK(used <= n - pos);
			if (rc == POP3CMD_AGAIN) {
				CHECK(used == n - pos);
			} else {
				CHECK(used > 0 || rc == POP3CMD_FATAL);
				h = result(rc, h, mode == 0);
			}
			pos += used;
			if (rc == POP3CMD_FATAL)
				return h;
		}
		off += n;
	}
	return h;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pop3cmd_limits small = { .line_max = 20, .auth_max = 40, .skip_max = 200 };
	const struct pop3cmd_limits *lim = NULL;
	uint64_t h0, h1, h2;

	if (size == 0)
		return 0;
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
