/*
 * libFuzzer target for the auth_http request parser and answer builder:
 * any input is parsed without reading outside it; a parsed request has
 * NUL-terminated fields free of control characters, and every answer
 * decided from it is one head whose header lines cannot be split.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authsrv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort unless <s> (<len> bytes) holds a NUL and no control character before it. */
static void
check_field(const char *s, size_t len)
{
	size_t i, n;

	if (memchr(s, '\0', len) == NULL)
		abort();
	n = strlen(s);
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

/* Abort unless <buf> (<n> bytes) ends its head once, at its end. */
static void
check_answer(const char *buf, int n)
{
	const char *end;

	if (n <= 0)
		abort();
	end = strstr(buf, "\r\n\r\n");
	if (end == NULL || end + 4 != buf + n || memchr(buf, '\0', (size_t)n) != NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct authsrv_req rq;
	struct authsrv_answer a;
	struct route_result rr;
	struct throttle_result tr;
	const char *why;
	char *copy, ip[64], buf[AUTHSRV_ANSWER_MAX];
	int k;

	if (size > AUTHSRV_HEAD_MAX)
		return 0;
	/* an exact-size copy: ASan sees any read past the input */
	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	if (authsrv_parse(copy, size, &rq, &why) < 0) {
		if (why == NULL)
			abort();
		free(copy);
		return 0;
	}
	check_field(rq.user, sizeof(rq.user));
	check_field(rq.ip, sizeof(rq.ip));
	if (rq.attempt == 0)
		abort();
	memset(&rr, 0, sizeof(rr));
	memset(&tr, 0, sizeof(tr));
	/* the user name stands in for a configured reject message */
	tr.message = rq.user;
	for (k = 0; k <= ROUTE_DEFER; k++) {
		rr.status = (enum route_status)k;
		rr.addr.ss_family = AF_INET;
		rr.port = 143;
		authsrv_decide(&rq, &rr, &tr, k == 1, &a, ip, sizeof(ip));
		check_answer(buf, authsrv_answer(&a, buf, sizeof(buf)));
	}
	free(copy);
	return 0;
}
