/*
 * RFC 4515 filter value escaping and template expansion. Written here
 * rather than calling ldap_bv2escaped_filter_value() so that building a
 * filter never allocates and is bounded by the caller's buffer.
 */
#include <string.h>

#include "filter.h"

/* Tell whether byte <c> must be written as \xx in an assertion value. */
static int
filter_needs_escape(unsigned char c)
{
	return c < 0x20 || c >= 0x7f || c == '*' || c == '(' || c == ')' || c == '\\';
}

/*
 * Escape the <len> bytes at <val> into <out> (<outlen> bytes). Returns the
 * length written (without the NUL), or -1 when it does not fit.
 */
int
filter_escape(char *out, size_t outlen, const char *val, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	if (outlen == 0)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)val[i];

		if (filter_needs_escape(c)) {
			if (o + 3 >= outlen)
				goto toolong;
			out[o++] = '\\';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			if (o + 1 >= outlen)
				goto toolong;
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return (int)o;
toolong:
	out[0] = '\0';
	return -1;
}

/*
 * Expand template <tmpl> with the escaped <val> (<len> bytes) for every
 * "%s" into <out> (<outlen> bytes). Returns the length, or -1 on a bad
 * template or overflow.
 */
int
filter_build(char *out, size_t outlen, const char *tmpl, const char *val, size_t len)
{
	size_t o = 0;
	int n;

	if (outlen == 0)
		return -1;
	for (; *tmpl; tmpl++) {
		if (*tmpl != '%') {
			if (o + 1 >= outlen)
				goto fail;
			out[o++] = *tmpl;
			continue;
		}
		if (tmpl[1] != 's')
			goto fail;
		tmpl++;
		n = filter_escape(out + o, outlen - o, val, len);
		if (n < 0)
			goto fail;
		o += (size_t)n;
	}
	out[o] = '\0';
	return (int)o;
fail:
	out[0] = '\0';
	return -1;
}
