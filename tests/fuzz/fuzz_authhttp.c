/*
 * libFuzzer target for the auth_http answer reader: the input is split into
 * lines as libcurl hands them over; every kept value must stay bounded and
 * NUL-terminated, a route must carry a server and a port, and unescaping
 * what was escaped must give the input back.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authhttp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct authhttp_answer a;
	const char *p = (const char *)data, *end = p + size, *nl;
	char esc[3 * 64 + 1], back[65], in[65];
	size_t n;

	authhttp_answer_init(&a);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		(void)authhttp_answer_line(&a, p, n);
		p += n;
	}
	CHECK(memchr(a.status, '\0', sizeof(a.status)) != NULL);
	CHECK(memchr(a.server, '\0', sizeof(a.server)) != NULL);
	CHECK(memchr(a.user, '\0', sizeof(a.user)) != NULL);
	CHECK(a.port >= 0 && a.port <= 65535);
	CHECK(a.wait_s >= -1 && a.wait_s <= AUTHHTTP_WAIT_MAX);
	if (authhttp_answer_verdict(&a) == AUTHHTTP_ROUTE)
		CHECK(a.server[0] != '\0' && a.port > 0 && a.http_status == 200);
	/* escaping round-trips (for text without control bytes or NUL) */
	n = size < 64 ? size : 64;
	memcpy(in, data, n);
	in[n] = '\0';
	if (authhttp_escape(esc, sizeof(esc), in) >= 0) {
		int r = authhttp_unescape(back, sizeof(back), esc, strlen(esc));
		size_t i, ok = 1;

		for (i = 0; in[i]; i++)
			if ((unsigned char)in[i] < 0x20 || in[i] == 0x7f)
				ok = 0;
		if (ok) {
			CHECK(r == (int)strlen(in));
			CHECK(strcmp(back, in) == 0);
		}
	}
	return 0;
}
