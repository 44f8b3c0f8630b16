/*
 * libFuzzer target for HTTP user extraction. The input is split at NUL
 * bytes into path, query, ZM_AUTH_TOKEN value and Authorization header;
 * each part is also fed to its own extractor alone, and the first to the
 * web form's user name decoder.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpuser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Check that <out> is a NUL-terminated string within <outlen>. */
static void
check_out(const char *out, size_t outlen, int rc)
{
	if (rc == 1 && memchr(out, '\0', outlen) == NULL)
		abort();
}

/* Check the form decoder's contract on <v> (<len> bytes). */
static void
check_form(const char *v, size_t len)
{
	char out[HTTPUSER_MAX], small[8];
	size_t n, i;
	int rc = httpuser_from_form(v, len, out, sizeof(out));

	if (rc < -2 || rc > 1 || memchr(out, '\0', sizeof(out)) == NULL)
		abort();
	n = strlen(out);
	if (rc != 1 && n != 0)
		abort();   /* nothing usable is ever left behind */
	if (rc == 1) {
		if (n == 0 || out[0] == ' ' || out[n - 1] == ' ')
			abort();
		for (i = 0; i < n; i++)
			if ((unsigned char)out[i] <= 0x20 || out[i] == 0x7f || out[i] == '/')
				abort();
	}
	rc = httpuser_from_form(v, len, small, sizeof(small));
	if (memchr(small, '\0', sizeof(small)) == NULL || (rc != 1 && small[0] != '\0'))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *part[4] = { NULL, NULL, NULL, NULL };
	size_t plen[4] = { 0, 0, 0, 0 };
	struct httpuser_req r;
	char out[HTTPUSER_MAX], small[8];
	size_t i, s = 0;
	int k = 0;

	for (i = 0; i <= size && k < 4; i++) {
		if (i == size || data[i] == 0) {
			part[k] = (const char *)data + s;
			plen[k] = i - s;
			k++;
			s = i + 1;
		}
	}
	check_out(out, sizeof(out), httpuser_from_path(part[0], plen[0], out, sizeof(out)));
	check_out(small, sizeof(small), httpuser_from_path(part[0], plen[0], small, sizeof(small)));
	check_out(out, sizeof(out), httpuser_from_query(part[1], plen[1], out, sizeof(out)));
	check_out(out, sizeof(out), httpuser_from_token(part[2], plen[2], out, sizeof(out)));
	check_out(out, sizeof(out), httpuser_from_basic(part[3], plen[3], out, sizeof(out)));
	check_out(small, sizeof(small), httpuser_from_basic(part[3], plen[3], small, sizeof(small)));
	check_form(part[0], plen[0]);
	r.path = part[0]; r.path_len = plen[0];
	r.query = part[1]; r.query_len = plen[1];
	r.token = part[2]; r.token_len = plen[2];
	r.auth = part[3]; r.auth_len = plen[3];
	switch (httpuser_find(&r, out, sizeof(out))) {
	case HTTPUSER_NONE:
		break;
	case HTTPUSER_BAD:
		if (out[0] != '\0')
			abort();   /* a bad request names nobody */
		break;
	default:
		if (memchr(out, '\0', sizeof(out)) == NULL)
			abort();
	}
	return 0;
}
