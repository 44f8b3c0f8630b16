/*
 * libFuzzer target for the small parsers that see user input before any
 * lookup: login name normalisation, RFC 4515 filter escaping, client
 * address / CIDR parsing, Host header normalisation and memcached key
 * building. Each result is
 * checked against an invariant that a bug would break (escaping round
 * trips, no filter syntax leaks, names are idempotent, keys are valid
 * memcached keys).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cidr.h"
#include "filter.h"
#include "keys.h"
#include "name.h"
#include "vhost.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Escape <v>, check that no filter syntax survives and that it decodes back. */
static void
check_filter(const char *v, size_t len)
{
	static char out[3 * 4096 + 64], back[4096 + 1], flt[3 * 4096 + 128];
	int n, i, k = 0, depth = 0, opens = 0;

	n = filter_escape(out, sizeof(out), v, len);
	CHECK(n >= 0 && (size_t)n < sizeof(out) && out[n] == '\0');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out[i];

		CHECK(c != '(' && c != ')' && c != '*' && c != '\0');
		CHECK(c >= 0x20 && c < 0x7f);
		if (c == '\\') {
			CHECK(i + 2 < n && hexval(out[i + 1]) >= 0 && hexval(out[i + 2]) >= 0);
			back[k++] = (char)(hexval(out[i + 1]) * 16 + hexval(out[i + 2]));
			i += 2;
		} else {
			back[k++] = (char)c;
		}
	}
	CHECK((size_t)k == len && memcmp(back, v, len) == 0);

	/* a template's structure is all the filter has: one ( and one ) per pair */
	n = filter_build(flt, sizeof(flt), "(|(mail=%s)(mailLocalAddress=%s))", v, len);
	CHECK(n > 0);
	for (i = 0; i < n; i++) {
		if (flt[i] == '(') {
			depth++;
			opens++;
		} else if (flt[i] == ')') {
			depth--;
			CHECK(depth >= 0);
		}
	}
	CHECK(depth == 0 && opens == 3);
	CHECK(filter_build(flt, sizeof(flt), "(uid=%d)", v, len) == -1);
	CHECK(filter_build(flt, 4, "(uid=%s)", v, len) == -1);
}

/* Normalise <v>; the result must be clean and normalising it again a no-op. */
static void
check_name(const char *v, size_t len)
{
	char out[NAME_MAX_LEN + 1], again[NAME_MAX_LEN + 1], key[KEYS_MAX];
	int n, m, i;

	n = name_normalise_len(out, sizeof(out), v, len, "example.com");
	if (n < 0) {
		CHECK(out[0] == '\0');
		return;
	}
	CHECK(n > 0 && n <= NAME_MAX_LEN && (size_t)n == strlen(out));
	CHECK(strchr(out, '@') != NULL);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out[i];

		CHECK(c >= 0x20 && c != 0x7f && !(c >= 'A' && c <= 'Z'));
	}
	m = name_normalise(again, sizeof(again), out, "example.com");
	CHECK(m == n && strcmp(again, out) == 0);

	/* the cache key of any normalised name is a valid memcached key */
	CHECK(keys_make(key, sizeof(key), KEYS_NAME, out) == 0);
	CHECK(strncmp(key, "gh:n:", 5) == 0 && strlen(key) < 250);
	for (i = 0; key[i] != '\0'; i++)
		CHECK((unsigned char)key[i] > 0x20 && (unsigned char)key[i] < 0x7f);
	/* a plain key never looks like a hashed one unless it is one */
	if (key[5] == '#')
		CHECK(strlen(key) == 5 + 1 + 64);
	CHECK(keys_make(key, strlen(key), KEYS_NAME, out) == -1);
}

/* Parse <s> as an address or block; formatting must parse back the same. */
static void
check_cidr(const char *s)
{
	struct cidr c, d, a;
	char buf[CIDR_STR_MAX], grp[CIDR_STR_MAX];

	if (cidr_parse(s, &c) == 0) {
		CHECK(c.family == AF_INET || c.family == AF_INET6);
		CHECK(c.prefix <= (c.family == AF_INET ? 32u : 128u));
		CHECK(cidr_format(&c, buf, sizeof(buf)) == 0);
		CHECK(cidr_parse(buf, &d) == 0);
		CHECK(d.family == c.family && d.prefix == c.prefix &&
		      memcmp(d.addr, c.addr, sizeof(c.addr)) == 0);
		CHECK(cidr_match(&c, &d) == 1);
	}
	if (cidr_parse_addr(s, &a) == 0) {
		CHECK(a.prefix == (a.family == AF_INET ? 32u : 128u));
		CHECK(cidr_group(s, 64, grp, sizeof(grp)) == 0);
		CHECK(strlen(grp) < sizeof(grp));
	}
	(void)cidr_group(s, 48, grp, sizeof(grp));
	(void)cidr_group(s, 64, grp, 4);
}

/* Normalise Host <s>: clean, lower case, no port, idempotent. */
static void
check_vhost(const char *s)
{
	char out[VHOST_MAX], again[VHOST_MAX];
	int n, i;

	n = vhost_normalise(out, sizeof(out), s);
	if (n < 0) {
		CHECK(out[0] == '\0');
		return;
	}
	CHECK(n > 0 && (size_t)n == strlen(out) && n < VHOST_MAX);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out[i];

		CHECK(!(c >= 'A' && c <= 'Z') && c > 0x20 && c < 0x7f);
		CHECK(c != '(' && c != ')' && c != '*' && c != '\\');
		if (out[0] != '[')
			CHECK(c != ':');
	}
	CHECK(out[n - 1] != '.');
	CHECK(vhost_normalise(again, sizeof(again), out) == n && strcmp(again, out) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char s[4096 + 1];

	if (size > 4096)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	check_filter(s, size);
	check_name(s, size);
	check_cidr(s);
	check_vhost(s);
	return 0;
}
