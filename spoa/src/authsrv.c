/*
 * nginx mail auth_http, server side: parse the request head nginx sends
 * and build the answer it reads. The protocol is nginx's
 * ngx_mail_auth_http_module documentation; where it leaves room we do as
 * Zimbra's lookup servlet (NginxLookupHandler) does: every refusal is a
 * 200 with a text in Auth-Status, Auth-User is %-decoded, a missing
 * Auth-Login-Attempt is 1.
 *
 * The head is read line by line inside <len>; a value is never copied
 * unless it is one the agent needs, so the password (Auth-Pass) stays
 * where nginx put it: in the caller's buffer, which the caller wipes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "authsrv.h"

#define INVALID_TEXT  "Invalid login or password"
#define THROTTLE_TEXT "Too many login attempts, try again later"

/* Return 1 when <c> may be part of a header name (an RFC 9110 token). */
static int
is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Return the value of hex digit <c>, or -1. */
static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * %-decode <v> (<n> bytes) into <dst> (<len> bytes), as nginx escapes
 * Auth-User. Returns 0, or -1 on a bad escape, a control character or no
 * room.
 */
static int
pct_decode(const char *v, size_t n, char *dst, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '%') {
			int h, l;

			if (i + 2 >= n)
				return -1;
			if ((h = hexval((unsigned char)v[i + 1])) < 0 ||
			    (l = hexval((unsigned char)v[i + 2])) < 0)
				return -1;
			c = (unsigned char)(h << 4 | l);
			i += 2;
		}
		if (c < 0x20 || c == 0x7f || o + 1 >= len)
			return -1;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return 0;
}

/* Copy <v> (<n> bytes) into <dst> (<len> bytes) when it fits. Returns 0 or -1. */
static int
copy_val(const char *v, size_t n, char *dst, size_t len)
{
	if (n >= len)
		return -1;
	memcpy(dst, v, n);
	dst[n] = '\0';
	return 0;
}

/* Tell whether header name <name> (<n> bytes) is <want>, ignoring case. */
static int
name_is(const char *name, size_t n, const char *want)
{
	return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

/* Which of the headers we read were seen. */
#define SEEN_USER   0x01
#define SEEN_PROTO  0x02
#define SEEN_METHOD 0x04
#define SEEN_IP     0x08
#define SEEN_TRY    0x10

/*
 * Take header <name>: <v> (<nl>, <vl> bytes) into <out>, <seen> telling
 * which came already. Returns 0, or -1 with <*why>.
 */
static int
take_header(const char *name, size_t nl, const char *v, size_t vl,
            struct authsrv_req *out, unsigned *seen, const char **why)
{
	unsigned bit = 0;

	if (name_is(name, nl, "Auth-User"))
		bit = SEEN_USER;
	else if (name_is(name, nl, "Auth-Protocol"))
		bit = SEEN_PROTO;
	else if (name_is(name, nl, "Auth-Method"))
		bit = SEEN_METHOD;
	else if (name_is(name, nl, "Client-IP"))
		bit = SEEN_IP;
	else if (name_is(name, nl, "Auth-Login-Attempt"))
		bit = SEEN_TRY;
	if (bit == 0)
		return 0;     /* Auth-Pass, Auth-Salt, Auth-SMTP-*, ...: not kept */
	if (*seen & bit) {
		*why = "a header given twice";
		return -1;
	}
	*seen |= bit;
	switch (bit) {
	case SEEN_USER:
		if (pct_decode(v, vl, out->user, sizeof(out->user)) < 0) {
			*why = "a bad Auth-User";
			return -1;
		}
		break;
	case SEEN_PROTO:
		if (vl == 4 && strncasecmp(v, "imap", 4) == 0)
			out->proto = AUTHSRV_P_IMAP;
		else if (vl == 4 && strncasecmp(v, "pop3", 4) == 0)
			out->proto = AUTHSRV_P_POP3;
		else if (vl == 4 && strncasecmp(v, "smtp", 4) == 0)
			out->proto = AUTHSRV_P_SMTP;
		else
			out->proto = AUTHSRV_P_OTHER;
		break;
	case SEEN_METHOD:
		if ((vl == 5 && strncasecmp(v, "plain", 5) == 0) ||
		    (vl == 5 && strncasecmp(v, "login", 5) == 0))
			out->method = AUTHSRV_M_PLAIN;
		else
			out->method = AUTHSRV_M_OTHER;
		(void)copy_val(v, vl < sizeof(out->method_name) ? vl : sizeof(out->method_name) - 1,
		               out->method_name, sizeof(out->method_name));
		break;
	case SEEN_IP: {
		unsigned char a[16];

		if (copy_val(v, vl, out->ip, sizeof(out->ip)) < 0 ||
		    (inet_pton(AF_INET, out->ip, a) != 1 && inet_pton(AF_INET6, out->ip, a) != 1)) {
			out->ip[0] = '\0';
			*why = "a bad Client-IP";
			return -1;
		}
		break;
	}
	case SEEN_TRY: {
		uint32_t n = 0;
		size_t i;

		if (vl == 0 || vl > 7) {
			*why = "a bad Auth-Login-Attempt";
			return -1;
		}
		for (i = 0; i < vl; i++) {
			if (v[i] < '0' || v[i] > '9') {
				*why = "a bad Auth-Login-Attempt";
				return -1;
			}
			n = n * 10 + (uint32_t)(v[i] - '0');
		}
		out->attempt = n > 0 ? n : 1;
		break;
	}
	}
	return 0;
}

/*
 * Find the end of the line starting at <p> before <end>: returns the
 * position of its LF and sets <*vend> to where its content ends (before a
 * CR), or NULL when there is no LF.
 */
static const char *
line_end(const char *p, const char *end, const char **vend)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));

	if (lf == NULL)
		return NULL;
	*vend = lf > p && lf[-1] == '\r' ? lf - 1 : lf;
	return lf;
}

/* Parse request head <head> (<len> bytes) into <out>. Returns 0 or -1 (<*why>). */
int
authsrv_parse(const char *head, size_t len, struct authsrv_req *out, const char **why)
{
	const char *p = head, *end = head + len, *lf, *ve, *sp;
	unsigned seen = 0, n = 0;

	memset(out, 0, sizeof(*out));
	out->attempt = 1;
	*why = "a malformed head";
	if (memchr(head, '\0', len) != NULL)
		return -1;
	/* the request line: GET <target> HTTP/1.x */
	if ((lf = line_end(p, end, &ve)) == NULL)
		return -1;
	if ((size_t)(ve - p) < 14 || memcmp(p, "GET ", 4) != 0) {
		*why = "not a GET request";
		return -1;
	}
	sp = memchr(p + 4, ' ', (size_t)(ve - p - 4));
	if (sp == NULL || sp == p + 4 || p[4] != '/' || ve - sp != 9 ||
	    memcmp(sp + 1, "HTTP/1.", 7) != 0 || (sp[8] != '0' && sp[8] != '1'))
		return -1;
	p = lf + 1;
	for (;;) {
		const char *colon, *v, *vend;

		if ((lf = line_end(p, end, &ve)) == NULL)
			return -1;         /* no blank line */
		if (ve == p)
			break;             /* the blank line */
		if (++n > AUTHSRV_HEADERS_MAX) {
			*why = "too many header lines";
			return -1;
		}
		colon = memchr(p, ':', (size_t)(ve - p));
		if (colon == NULL || colon == p)
			return -1;
		for (v = p; v < colon; v++)
			if (!is_tchar((unsigned char)*v))
				return -1;   /* also a folded line (leading blank) */
		for (v = colon + 1; v < ve && (*v == ' ' || *v == '\t'); v++)
			;
		for (vend = ve; vend > v && (vend[-1] == ' ' || vend[-1] == '\t'); vend--)
			;
		for (sp = v; sp < vend; sp++)
			if ((unsigned char)*sp < 0x20 && *sp != '\t')
				return -1;
		if (take_header(p, (size_t)(colon - p), v, (size_t)(vend - v), out, &seen, why) < 0)
			return -1;
		p = lf + 1;
	}
	if (!(seen & SEEN_USER) || !(seen & SEEN_PROTO) || !(seen & SEEN_METHOD) ||
	    !(seen & SEEN_IP)) {
		*why = "Auth-User, Auth-Method, Auth-Protocol or Client-IP missing";
		return -1;
	}
	*why = NULL;
	return 0;
}

/* Decide the answer to <rq> from <rr> and <tr>/<throttled> into <out>. */
void
authsrv_decide(const struct authsrv_req *rq, const struct route_result *rr,
                const struct throttle_result *tr, int throttled,
                struct authsrv_answer *out, char *ipbuf, size_t iplen)
{
	/* nginx keeps every attempt of a session in memory: from the
	 * tenth on, refuse without Auth-Wait, which closes the session */
	uint32_t wait = rq->attempt < AUTHSRV_MAX_ATTEMPTS ? AUTHSRV_WAIT : 0;

	memset(out, 0, sizeof(*out));
	out->proto = rq->proto;
	if (rq->proto != AUTHSRV_P_IMAP && rq->proto != AUTHSRV_P_POP3) {
		out->kind = AUTHSRV_UNSUPPORTED;
		return;                      /* no Auth-Wait: closed */
	}
	if (rq->method != AUTHSRV_M_PLAIN) {
		out->kind = AUTHSRV_UNSUPPORTED;
		out->wait = wait;            /* the client may try LOGIN/PLAIN */
		return;
	}
	if (throttled) {
		out->kind = AUTHSRV_THROTTLED;
		out->message = tr != NULL && tr->message != NULL && tr->message[0] ? tr->message
		                                                                    : NULL;
		out->wait = wait;
		return;
	}
	if (rr == NULL || rq->user[0] == '\0') {
		out->kind = AUTHSRV_INVALID;
		out->wait = wait;
		return;
	}
	switch (rr->status) {
	case ROUTE_OK:
		ipbuf[0] = '\0';
		if (rr->addr.ss_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)&rr->addr)->sin_addr,
			          ipbuf, (socklen_t)iplen);
		else if (rr->addr.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&rr->addr)->sin6_addr,
			          ipbuf, (socklen_t)iplen);
		if (ipbuf[0] == '\0' || rr->port == 0) {
			out->kind = AUTHSRV_TEMPFAIL;
			return;
		}
		out->kind = AUTHSRV_OK;
		out->server = ipbuf;
		out->port = rr->port;
		return;
	case ROUTE_UNKNOWN:
	case ROUTE_REFUSED:
	case ROUTE_UNUSABLE:
		/* to the client all look like a wrong password */
		out->kind = AUTHSRV_INVALID;
		out->wait = wait;
		return;
	default:
		out->kind = AUTHSRV_TEMPFAIL;   /* no Auth-Wait: nginx closes */
		return;
	}
}

/* Append "<name>: <value>\r\n" with <value> cleaned to <buf> at <*off>. Returns 0 or -1. */
static int
put_header(char *buf, size_t len, size_t *off, const char *name, const char *value)
{
	size_t nl = strlen(name), i;

	if (*off + nl + 2 >= len)
		return -1;
	memcpy(buf + *off, name, nl);
	*off += nl;
	buf[(*off)++] = ':';
	buf[(*off)++] = ' ';
	for (i = 0; value[i] != '\0'; i++) {
		unsigned char c = (unsigned char)value[i];

		if (*off + 1 >= len)
			return -1;
		/* a value is one line of visible text: nothing can end it early */
		buf[(*off)++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	if (*off + 2 >= len)
		return -1;
	buf[(*off)++] = '\r';
	buf[(*off)++] = '\n';
	return 0;
}

/* Write answer <a> into <buf> (<len> bytes). Returns its length or -1. */
int
authsrv_answer(const struct authsrv_answer *a, char *buf, size_t len)
{
	static const char head[] = "HTTP/1.0 200 OK\r\n";
	static const char tail[] = "Content-Length: 0\r\nConnection: close\r\n\r\n";
	const char *status = NULL, *errcode = NULL;
	char num[16];
	size_t off = sizeof(head) - 1;
	int rc = 0;

	if (len < sizeof(head))
		return -1;
	memcpy(buf, head, sizeof(head) - 1);
	switch (a->kind) {
	case AUTHSRV_OK:
		if (a->server == NULL)
			return -1;
		snprintf(num, sizeof(num), "%u", (unsigned)a->port);
		rc = put_header(buf, len, &off, "Auth-Status", "OK") |
		     put_header(buf, len, &off, "Auth-Server", a->server) |
		     put_header(buf, len, &off, "Auth-Port", num);
		break;
	case AUTHSRV_INVALID:
		status = INVALID_TEXT;
		errcode = "535 5.7.8";
		break;
	case AUTHSRV_THROTTLED:
		status = a->message != NULL ? a->message : THROTTLE_TEXT;
		errcode = "454 4.7.0";
		break;
	case AUTHSRV_TEMPFAIL:
		/* RFC 5530 / RFC 3206 codes: nginx puts the text after NO / -ERR */
		status = a->proto == AUTHSRV_P_POP3
		         ? "[SYS/TEMP] Login service temporarily unavailable, try again later"
		         : "[UNAVAILABLE] Login service temporarily unavailable, try again later";
		errcode = "451 4.3.0";
		break;
	case AUTHSRV_UNSUPPORTED:
		status = a->proto == AUTHSRV_P_IMAP || a->proto == AUTHSRV_P_POP3
		         ? "Authentication method not supported, use LOGIN or PLAIN"
		         : "Protocol not served by this proxy";
		errcode = "554 5.7.0";
		break;
	}
	if (status != NULL) {
		rc = put_header(buf, len, &off, "Auth-Status", status);
		/* nginx reads it for SMTP only; harmless for the others */
		if (a->proto == AUTHSRV_P_SMTP)
			rc |= put_header(buf, len, &off, "Auth-Error-Code", errcode);
		if (a->wait > 0) {
			snprintf(num, sizeof(num), "%u", (unsigned)a->wait);
			rc |= put_header(buf, len, &off, "Auth-Wait", num);
		}
	}
	if (rc != 0 || off + sizeof(tail) > len)
		return -1;
	memcpy(buf + off, tail, sizeof(tail));   /* with its NUL */
	return (int)(off + sizeof(tail) - 1);
}

/* Write the 400 answer into <buf>. Returns its length or -1. */
int
authsrv_answer_bad(char *buf, size_t len)
{
	static const char bad[] = "HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n"
	                          "Connection: close\r\n\r\n";

	if (len < sizeof(bad))
		return -1;
	memcpy(buf, bad, sizeof(bad));
	return (int)sizeof(bad) - 1;
}

/* Return a short name for <k>. */
const char *
authsrv_kind_name(enum authsrv_kind k)
{
	switch (k) {
	case AUTHSRV_OK: return "ok";
	case AUTHSRV_INVALID: return "invalid";
	case AUTHSRV_THROTTLED: return "throttled";
	case AUTHSRV_TEMPFAIL: return "tempfail";
	case AUTHSRV_UNSUPPORTED: return "unsupported";
	}
	return "?";
}

/* Return the name of <p>. */
const char *
authsrv_proto_name(enum authsrv_proto p)
{
	switch (p) {
	case AUTHSRV_P_IMAP: return "imap";
	case AUTHSRV_P_POP3: return "pop3";
	case AUTHSRV_P_SMTP: return "smtp";
	case AUTHSRV_P_OTHER: break;
	}
	return "other";
}
