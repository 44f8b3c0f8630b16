/*
 * libFuzzer target for HTTP user extraction. The input is split at NUL
 * bytes into path, query, ZM_AUTH_TOKEN value and Authorization header;
 * each part is also fed to its own extractor alone.
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
	r.path = part[0]; r.path_len = plen[0];
	r.query = part[1]; r.query_len = plen[1];
	r.token = part[2]; r.token_len = plen[2];
	r.auth = part[3]; r.auth_len = plen[3];
	if (httpuser_find(&r, out, sizeof(out)) != HTTPUSER_NONE && memchr(out, '\0', sizeof(out)) == NULL)
		abort();
	return 0;
}
