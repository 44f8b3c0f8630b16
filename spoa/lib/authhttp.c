/*
 * The auth_http protocol codec: request headers out, answer headers in.
 * Decoders read only inside their input and write only into the answer;
 * every value kept is bounded, and a value that matters but cannot be kept
 * whole makes the answer unusable rather than truncated.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "authhttp.h"

/* Empty <a>. */
void
authhttp_answer_init(struct authhttp_answer *a)
{
	memset(a, 0, sizeof(*a));
	a->wait_s = -1;
}

/* Note in <a> that <what> was malformed (the first reason is kept). */
static int
authhttp_bad(struct authhttp_answer *a, const char *what)
{
	if (a->why[0] == '\0')
		(void)snprintf(a->why, sizeof(a->why), "%s", what);
	return -1;
}

/* Parse decimal <s> (<n> bytes, digits only) up to <max> into <out>. */
static int
authhttp_number(const char *s, size_t n, long max, int *out)
{
	long v = 0;
	size_t i;

	if (n == 0 || n > 10)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = (int)v;
	return 0;
}

/* Tell whether <s> (<n> bytes) holds only visible ASCII (no space). */
static int
authhttp_token(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

/* Read status line <s> (<n> bytes): a new answer starts. */
static int
authhttp_status_line(struct authhttp_answer *a, const char *s, size_t n)
{
	int code;

	authhttp_answer_init(a);
	/* "HTTP/x.y NNN reason" */
	if (n < 12 || s[8] != ' ' || authhttp_number(s + 9, 3, 999, &code) < 0 ||
	    (n > 12 && s[12] != ' '))
		return authhttp_bad(a, "malformed HTTP status line");
	a->http_status = code;
	return 0;
}

/* Read one header line; see authhttp.h. */
int
authhttp_answer_line(struct authhttp_answer *a, const char *line, size_t len)
{
	const char *colon, *v;
	size_t nlen, vlen, i;

	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len >= 5 && strncmp(line, "HTTP/", 5) == 0)
		return authhttp_status_line(a, line, len);
	if (len == 0)
		return 0;                   /* the end of the headers */
	if (len >= AUTHHTTP_LINE_MAX)
		return authhttp_bad(a, "header line too long");
	colon = memchr(line, ':', len);
	if (colon == NULL)
		return 0;                   /* not a header we read */
	nlen = (size_t)(colon - line);
	v = colon + 1;
	vlen = len - nlen - 1;
	while (vlen > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	if (nlen == 11 && strncasecmp(line, "Auth-Status", 11) == 0) {
		a->have_status = 1;
		a->status_ok = vlen == 2 && strncasecmp(v, "OK", 2) == 0;
		if (vlen >= sizeof(a->status))
			vlen = sizeof(a->status) - 1;   /* only ever logged */
		for (i = 0; i < vlen; i++) {
			unsigned char ch = (unsigned char)v[i];

			a->status[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
		}
		a->status[vlen] = '\0';
		return 0;
	}
	if (nlen == 11 && strncasecmp(line, "Auth-Server", 11) == 0) {
		if (vlen == 0 || vlen >= sizeof(a->server) || !authhttp_token(v, vlen))
			return authhttp_bad(a, "malformed Auth-Server");
		memcpy(a->server, v, vlen);
		a->server[vlen] = '\0';
		return 0;
	}
	if (nlen == 9 && strncasecmp(line, "Auth-Port", 9) == 0) {
		if (authhttp_number(v, vlen, 65535, &a->port) < 0 || a->port == 0) {
			a->port = 0;
			return authhttp_bad(a, "malformed Auth-Port");
		}
		return 0;
	}
	if (nlen == 9 && strncasecmp(line, "Auth-Wait", 9) == 0) {
		if (authhttp_number(v, vlen, 0x7fffffff, &a->wait_s) < 0) {
			a->wait_s = -1;
			return authhttp_bad(a, "malformed Auth-Wait");
		}
		if (a->wait_s > AUTHHTTP_WAIT_MAX)
			a->wait_s = AUTHHTTP_WAIT_MAX;
		return 0;
	}
	if (nlen == 9 && strncasecmp(line, "Auth-User", 9) == 0) {
		if (authhttp_unescape(a->user, sizeof(a->user), v, vlen) < 0) {
			a->user[0] = '\0';
			return authhttp_bad(a, "malformed Auth-User");
		}
		return 0;
	}
	return 0;
}

/* Tell what <a> means. */
enum authhttp_verdict
authhttp_answer_verdict(const struct authhttp_answer *a)
{
	if (a->http_status != 200 || a->why[0] != '\0' || !a->have_status)
		return AUTHHTTP_BAD;
	if (!a->status_ok)
		return AUTHHTTP_REFUSED;
	return a->server[0] != '\0' && a->port != 0 ? AUTHHTTP_ROUTE : AUTHHTTP_BAD;
}

/* Escape <src> into <dst> the way nginx escapes user names and passwords. */
int
authhttp_escape(char *dst, size_t len, const char *src)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *src; src++) {
		unsigned char ch = (unsigned char)*src;

		if (ch <= 0x20 || ch == '%' || ch >= 0x7f) {
			if (o + 3 >= len)
				return -1;
			dst[o++] = '%';
			dst[o++] = hex[ch >> 4];
			dst[o++] = hex[ch & 15];
		} else {
			if (o + 1 >= len)
				return -1;
			dst[o++] = (char)ch;
		}
	}
	if (o >= len)
		return -1;
	dst[o] = '\0';
	return (int)o;
}

/* Return the value of hex digit <c>, or -1. */
static int
authhttp_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Undo %XX escapes of <src> (<n> bytes) into <dst>. */
int
authhttp_unescape(char *dst, size_t len, const char *src, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		int ch = (unsigned char)src[i];

		if (ch == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -1;
			hi = authhttp_hex(src[i + 1]);
			lo = authhttp_hex(src[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			ch = hi * 16 + lo;
			i += 2;
		}
		if (ch < 0x20 || ch == 0x7f || o + 1 >= len)
			return -1;
		dst[o++] = (char)ch;
	}
	if (o >= len)
		return -1;
	dst[o] = '\0';
	return (int)o;
}

/* Return the Auth-Protocol name of <p>. */
const char *
authhttp_proto_name(enum gh_proto p)
{
	switch (p) {
	case PROTO_HTTP: return "http";
	case PROTO_HTTPS: return "httpssl";
	case PROTO_IMAP: return "imap";
	case PROTO_IMAPS: return "imapssl";
	case PROTO_POP3: return "pop3";
	case PROTO_POP3S: return "pop3ssl";
	case PROTO__COUNT: break;
	}
	return "imap";
}

/* Tell whether the password may go to <url> under <c>. */
int
authhttp_may_send_password(const struct cfg_lookup *c, const char *url)
{
	if (!c->send_password)
		return 0;
	return strncasecmp(url, "https://", 8) == 0 || c->allow_plain_http;
}

/* Format header <name>: <value> into <dst>. */
int
authhttp_header(char *dst, size_t len, const char *name, const char *value, int escape)
{
	size_t nn = strlen(name);
	int n;

	if (strpbrk(value, "\r\n") != NULL || nn + 2 >= len)
		return -1;
	if (value[0] == '\0') {
		n = snprintf(dst, len, "%s;", name);
		return n < 0 || (size_t)n >= len ? -1 : 0;
	}
	memcpy(dst, name, nn);
	dst[nn] = ':';
	dst[nn + 1] = ' ';
	if (escape)
		return authhttp_escape(dst + nn + 2, len - nn - 2, value) < 0 ? -1 : 0;
	n = snprintf(dst + nn + 2, len - nn - 2, "%s", value);
	return n < 0 || (size_t)n >= len - nn - 2 ? -1 : 0;
}
