/*
 * libFuzzer target for the parts of the SASL GSSAPI mechanism that read
 * client bytes outside the Kerberos library: the security layer message
 * (after unwrap) and the mapping of a principal to an account name; the
 * first input byte picks which. Results are checked against invariants a
 * bug would break: only "no security layer" is ever accepted, an accepted
 * authzid is exactly the message's tail, a mapped name never carries an
 * instance, an escape or a realm, and mapping is stable.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gssapi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static void
fuzz_layer(const uint8_t *d, size_t n)
{
	char authzid[GSSAPI_NAME_MAX + 1];
	int r = gssapi_parse_layer(d, n, authzid, sizeof(authzid));

	if (r != GSSAPI_LAYER_OK)
		return;
	CHECK(n >= 4 && d[0] == 0x01);
	CHECK(strlen(authzid) == n - 4 && memcmp(authzid, d + 4, n - 4) == 0);
	CHECK(strpbrk(authzid, "\r\n") == NULL);
}

static void
fuzz_principal(const uint8_t *d, size_t n)
{
	static struct cfg_list realms;
	char p[1024], out[600], again[1200];
	const char *why = NULL;
	size_t at;

	if (n >= sizeof(p))
		return;
	memcpy(p, d, n);
	p[n] = '\0';
	if (realms.n == 0) {
		realms.n = 2;
		strcpy(realms.item[0], "OTHER.TEST=other.example");
		strcpy(realms.item[1], "X=y");
	}
	if (gssapi_parse_principal(p, "GH.TEST", &realms, out, sizeof(out), &why) < 0) {
		CHECK(why != NULL && out[0] == '\0');
		return;
	}
	CHECK(why == NULL && out[0] != '\0');
	CHECK(strpbrk(out, "/\\ \r\n\"") == NULL);
	at = strcspn(out, "@");
	/* the name part is the principal's, byte for byte */
	CHECK(memcmp(out, p, at) == 0 && p[at] == '@');
	if (out[at] == '\0') {
		CHECK(strcmp(p + at + 1, "GH.TEST") == 0);
	} else {
		CHECK(strcmp(out + at, "@other.example") == 0 || strcmp(out + at, "@y") == 0);
		/* a mapped name is no principal of the default realm */
		CHECK(strchr(out + at + 1, '@') == NULL);
	}
	/* stable: the default-realm form of the name maps to the same name */
	if (out[at] == '\0') {
		snprintf(again, sizeof(again), "%s@GH.TEST", out);
		CHECK(gssapi_parse_principal(again, "GH.TEST", &realms, out + 300, 300, &why) == 0);
		CHECK(strcmp(out + 300, out) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		fuzz_layer(data + 1, size - 1);
	else
		fuzz_principal(data + 1, size - 1);
	return 0;
}
