/*
 * HTTP user extraction: which account an HTTP request is for, from its URL,
 * its ActiveSync query, its ZM_AUTH_TOKEN cookie or its Basic credentials.
 * Everything is bounded and allocation-free; nothing here is trusted for
 * more than choosing a mailbox server (the server authenticates).
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "httpuser.h"

/* URL prefixes followed by the user's name, as Zimbra's proxy knows them. */
static const char *const path_prefixes[] = {
	"/home/",
	"/service/home/",
	"/dav/",
	"/principals/users/",
};

/* Hex digit values, -1 for anything else (read for every byte of a token). */
static const signed char hexvals[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7,
	['7'] = 8, ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14,
	['e'] = 15, ['f'] = 16, ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15,
	['F'] = 16,
};

static int
hexval(unsigned char c)
{
	return hexvals[c] - 1;   /* stored + 1, so that 0 means "not a digit" */
}

/*
 * Percent-decode <s> (<len> bytes) into <out> (<outlen> bytes, NUL added),
 * '+' becoming a space when <plus> is set. Returns the decoded length, or
 * -1 on a bad escape or when it does not fit.
 */
static int
pct_decode(const char *s, size_t len, int plus, char *out, size_t outlen)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			int h, l;

			if (len - i < 3)
				return -1;
			h = hexval((unsigned char)s[i + 1]);
			l = hexval((unsigned char)s[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = (unsigned char)(h << 4 | l);
			i += 2;
		} else if (c == '+' && plus) {
			c = ' ';
		}
		if (n + 1 >= outlen)
			return -1;
		out[n++] = (char)c;
	}
	if (outlen == 0)
		return -1;
	out[n] = '\0';
	return (int)n;
}

/*
 * Check decoded name <s> of <n> bytes: no control characters, spaces,
 * slashes or NULs (UTF-8 bytes are allowed). Returns 1 when acceptable.
 */
static int
name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c == 0x7f || c == '/')
			return 0;
	}
	return 1;
}

/*
 * Take the user from path <p> (<len>) into <out> (<outlen>). Returns 1
 * found, 0 none, -1 malformed.
 */
int
httpuser_from_path(const char *p, size_t len, char *out, size_t outlen)
{
	size_t i, plen, end;
	const char *seg;
	int n;

	if (p == NULL)
		return 0;
	for (i = 0; i < sizeof(path_prefixes) / sizeof(path_prefixes[0]); i++) {
		plen = strlen(path_prefixes[i]);
		if (len > plen && memcmp(p, path_prefixes[i], plen) == 0)
			break;
	}
	if (i == sizeof(path_prefixes) / sizeof(path_prefixes[0]))
		return 0;
	seg = p + plen;
	for (end = 0; plen + end < len && seg[end] != '/' && seg[end] != '?'; end++)
		;
	/* "~user" is the same user; a bare "~" means "the token's owner". */
	if (end > 0 && seg[0] == '~') {
		seg++;
		end--;
	} else if (end >= 3 && memcmp(seg, "%7E", 3) == 0) {
		seg += 3;
		end -= 3;
	} else if (end >= 3 && memcmp(seg, "%7e", 3) == 0) {
		seg += 3;
		end -= 3;
	}
	if (end == 0)
		return 0;
	n = pct_decode(seg, end, 0, out, outlen);
	if (n < 0 || !name_ok(out, (size_t)n)) {
		if (outlen)
			out[0] = '\0';
		return -1;
	}
	return 1;
}

/*
 * Take query parameter "User" of <q> (<len>) into <out>. Returns 1, 0, -1.
 */
int
httpuser_from_query(const char *q, size_t len, char *out, size_t outlen)
{
	size_t i = 0;

	if (q == NULL)
		return 0;
	while (i < len) {
		size_t s = i, eq = SIZE_MAX, e;
		int n;

		while (i < len && q[i] != '&')
			i++;
		e = i++;
		for (size_t j = s; j < e; j++) {
			if (q[j] == '=') {
				eq = j;
				break;
			}
		}
		if (eq == SIZE_MAX || eq - s != 4 || strncasecmp(q + s, "User", 4) != 0)
			continue;
		n = pct_decode(q + eq + 1, e - eq - 1, 1, out, outlen);
		if (n < 0 || !name_ok(out, (size_t)n)) {
			if (outlen)
				out[0] = '\0';
			return n == 0 ? 0 : -1;
		}
		return 1;
	}
	return 0;
}

/* Tell whether <s> of <n> bytes is a UUID: 8-4-4-4-12 hex digits. */
static int
uuid_ok(const char *s, size_t n)
{
	size_t i;

	if (n != 36)
		return 0;
	for (i = 0; i < n; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (hexval((unsigned char)s[i]) < 0) {
			return 0;
		}
	}
	return 1;
}

/*
 * Take the account id of ZM_AUTH_TOKEN <t> (<len>) into <out>. Returns
 * 1, 0 or -1; the token is not verified.
 */
int
httpuser_from_token(const char *t, size_t len, char *out, size_t outlen)
{
	char data[HTTPUSER_TOKEN_MAX / 2];
	size_t i, u1, u2, dlen, hexlen;

	if (t == NULL || len == 0)
		return 0;
	if (len > HTTPUSER_TOKEN_MAX)
		return -1;
	/* <key version digits> '_' <hmac hex> '_' <data hex> */
	for (u1 = 0; u1 < len && t[u1] >= '0' && t[u1] <= '9'; u1++)
		;
	if (u1 == 0 || u1 >= len || t[u1] != '_')
		return -1;
	for (u2 = u1 + 1; u2 < len && hexval((unsigned char)t[u2]) >= 0; u2++)
		;
	if (u2 == u1 + 1 || u2 >= len || t[u2] != '_')
		return -1;
	hexlen = len - u2 - 1;
	if (hexlen == 0 || hexlen % 2 != 0)
		return -1;
	dlen = hexlen / 2;
	for (i = 0; i < dlen; i++) {
		int h = hexval((unsigned char)t[u2 + 1 + 2 * i]);
		int l = hexval((unsigned char)t[u2 + 2 + 2 * i]);

		if (h < 0 || l < 0)
			return -1;
		data[i] = (char)(h << 4 | l);
	}
	/* Fields: name '=' decimal-length ':' value ';' */
	i = 0;
	while (i < dlen) {
		size_t ns = i, ne, vlen = 0;

		while (i < dlen && data[i] != '=')
			i++;
		if (i >= dlen)
			return -1;
		ne = i++;
		if (i >= dlen || data[i] < '0' || data[i] > '9')
			return -1;
		while (i < dlen && data[i] >= '0' && data[i] <= '9') {
			vlen = vlen * 10 + (size_t)(data[i] - '0');
			if (vlen > dlen)
				return -1;
			i++;
		}
		if (i >= dlen || data[i] != ':')
			return -1;
		i++;
		if (vlen > dlen - i)
			return -1;
		if (ne - ns == 2 && memcmp(data + ns, "id", 2) == 0) {
			if (!uuid_ok(data + i, vlen) || vlen + 1 > outlen)
				return -1;
			memcpy(out, data + i, vlen);
			out[vlen] = '\0';
			return 1;
		}
		i += vlen;
		if (i < dlen && data[i] == ';')
			i++;
		else if (i < dlen)
			return -1;
	}
	return 0;
}

/* Decode base64 <s> (<len> bytes, padding optional) into <out> of
 * <outlen> bytes. Returns the decoded length or -1. */
static int
b64_decode(const char *s, size_t len, unsigned char *out, size_t outlen)
{
	uint32_t acc = 0;
	size_t i, n = 0;
	int bits = 0, pad = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int v;

		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else if (c == '=') {
			pad++;
			continue;
		} else
			return -1;
		if (pad)
			return -1;   /* data after padding */
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= outlen)
				return -1;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (pad > 2)
		return -1;
	return (int)n;
}

/* Tell whether <s> (<n> bytes) holds a control character. */
static int
has_ctl(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 1;
	return 0;
}

/*
 * Copy name <s> (<n> bytes) without the spaces around it into <out>
 * (<outlen> bytes). Returns 1, 0 when nothing is left, or -2 when no
 * account can have it (a control character, a space or slash inside, too
 * long): such credentials are a bad request, never a name counted under
 * nothing. <out> is "" unless 1 is returned.
 */
static int
take_name(const char *s, size_t n, char *out, size_t outlen)
{
	while (n > 0 && s[0] == ' ') {
		s++;
		n--;
	}
	while (n > 0 && s[n - 1] == ' ')
		n--;
	if (outlen)
		out[0] = '\0';
	if (n == 0)
		return 0;
	if (has_ctl(s, n) || !name_ok(s, n) || n + 1 > outlen)
		return -2;
	memcpy(out, s, n);
	out[n] = '\0';
	return 1;
}

/*
 * Take the user of Basic credentials <a> (<len>) into <out>, without the
 * spaces around it; the password is wiped. Returns 1, 0 or -2 (bad request).
 */
int
httpuser_from_basic(const char *a, size_t len, char *out, size_t outlen)
{
	unsigned char dec[HTTPUSER_AUTH_MAX];
	size_t i = 0, colon;
	int n, rc = -2;

	if (outlen)
		out[0] = '\0';
	if (a == NULL)
		return 0;
	while (i < len && a[i] == ' ')
		i++;
	if (len - i < 6 || strncasecmp(a + i, "basic", 5) != 0 || a[i + 5] != ' ')
		return 0;
	i += 6;
	while (i < len && a[i] == ' ')
		i++;
	while (len > i && a[len - 1] == ' ')
		len--;
	if (len - i > HTTPUSER_AUTH_MAX)
		return -2;
	n = b64_decode(a + i, len - i, dec, sizeof(dec));
	if (n <= 0)
		goto out;
	for (colon = 0; colon < (size_t)n && dec[colon] != ':'; colon++)
		;
	if (colon < (size_t)n && take_name((const char *)dec, colon, out, outlen) == 1)
		rc = 1;
out:
	/* The password was in <dec>: do not leave it on the stack. */
	explicit_bzero(dec, sizeof(dec));
	return rc;
}

/*
 * Tell whether path <p> (<len>) is an ActiveSync request.
 */
int
httpuser_is_activesync(const char *p, size_t len)
{
	static const char as[] = "/Microsoft-Server-ActiveSync";
	size_t n = sizeof(as) - 1;

	return p != NULL && len >= n && strncasecmp(p, as, n) == 0 &&
	       (len == n || p[n] == '/' || p[n] == '?');
}

/*
 * Decode form field value <v> (<len>) into <out> (<outlen>), trimmed.
 * Returns 1, 0 (empty) or -2 (bad request).
 */
int
httpuser_from_form(const char *v, size_t len, char *out, size_t outlen)
{
	char dec[HTTPUSER_FORM_MAX];
	int n;

	if (outlen)
		out[0] = '\0';
	if (v == NULL || len == 0)
		return 0;
	n = pct_decode(v, len, 1, dec, sizeof(dec));
	if (n < 0)
		return -2;
	return take_name(dec, (size_t)n, out, outlen);
}

/*
 * Find the user of <r> (URL, ActiveSync, token, Basic) into <out>.
 * Returns how it was found.
 */
enum httpuser_by
httpuser_find(const struct httpuser_req *r, char *out, size_t outlen)
{
	int rc;

	if (httpuser_from_path(r->path, r->path_len, out, outlen) == 1)
		return HTTPUSER_URL;
	if (httpuser_is_activesync(r->path, r->path_len) &&
	    httpuser_from_query(r->query, r->query_len, out, outlen) == 1)
		return HTTPUSER_URL;
	if (httpuser_from_token(r->token, r->token_len, out, outlen) == 1)
		return HTTPUSER_COOKIE;
	rc = httpuser_from_basic(r->auth, r->auth_len, out, outlen);
	if (rc == 1)
		return HTTPUSER_BASIC;
	if (outlen)
		out[0] = '\0';
	if (rc == -2)
		return HTTPUSER_BAD;
	if (outlen)
		out[0] = '\0';
	return HTTPUSER_NONE;
}

/*
 * Return the name of <by>.
 */
const char *
httpuser_by_name(enum httpuser_by by)
{
	switch (by) {
	case HTTPUSER_URL:    return "url";
	case HTTPUSER_COOKIE: return "cookie";
	case HTTPUSER_BASIC:  return "basic";
	case HTTPUSER_BAD:    return "bad";
	default:              return "none";
	}
}
