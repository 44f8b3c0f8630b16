/*
 * Account name normalisation. Logins arrive from IMAP, POP3 and HTTP in any
 * case and sometimes without a domain; the cache keys, LDAP filters and
 * throttle counters must all see the same form.
 */
#include <string.h>

#include "name.h"

/*
 * Normalise the <inlen> bytes at <in> into <out> (<outlen> bytes): trim, ASCII
 * lower-case, add "@<default_domain>" when there is no '@'. Returns the
 * length, or -1 on empty, control characters or overflow.
 */
int
name_normalise_len(char *out, size_t outlen, const char *in, size_t inlen,
                   const char *default_domain)
{
	size_t b = 0, e = inlen, i, n, dlen = 0;
	int has_at = 0;

	if (out == NULL || outlen == 0 || in == NULL)
		return -1;
	out[0] = '\0';
	while (b < e && (in[b] == ' ' || in[b] == '\t'))
		b++;
	while (e > b && (in[e - 1] == ' ' || in[e - 1] == '\t'))
		e--;
	n = e - b;
	if (n == 0)
		return -1;
	for (i = b; i < e; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c < 0x20 || c == 0x7f)
			return -1;
		if (c == '@')
			has_at = 1;
	}
	if (!has_at && default_domain != NULL && default_domain[0] != '\0')
		dlen = 1 + strlen(default_domain);
	if (n + dlen > NAME_MAX_LEN || n + dlen + 1 > outlen)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[b + i];

		out[i] = (char)((c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c);
	}
	if (dlen) {
		out[n] = '@';
		for (i = 1; i < dlen; i++) {
			unsigned char c = (unsigned char)default_domain[i - 1];

			out[n + i] = (char)((c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c);
		}
	}
	out[n + dlen] = '\0';
	return (int)(n + dlen);
}

/*
 * Normalise C string <in> into <out> (<outlen> bytes) with
 * <default_domain>. Returns the length or -1, as name_normalise_len().
 */
int
name_normalise(char *out, size_t outlen, const char *in, const char *default_domain)
{
	if (in == NULL) {
		if (out != NULL && outlen > 0)
			out[0] = '\0';
		return -1;
	}
	return name_normalise_len(out, outlen, in, strlen(in), default_domain);
}
