/*
 * IMAP before login: the greeting, the commands answered locally
 * (CAPABILITY, NOOP, LOGOUT, ID, STARTTLS), LOGIN and AUTHENTICATE PLAIN
 * turned into a login attempt (AUTHENTICATE GSSAPI through kerberos.c),
 * and the mailbox server side of that
 * attempt: greeting, ID with the client's address, the login replayed with
 * every client-supplied string re-encoded, and the tagged answer passed
 * back under the client's tag.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imapcmd.h"
#include "mp.h"
#include "parse.h"

#define TAG_ID    "gh1"
#define TAG_LOGIN "gh2"

#define MSG_AUTHFAIL "NO [AUTHENTICATIONFAILED] Authentication failed."
#define MSG_PRIVACY  "NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."

/* Upstream steps. */
enum { UPI_GREETING = 0, UPI_LOGIN };

/* Write the capability list of <s> into <buf> (<len> bytes). Returns 0 or -1. */
int
imap_capabilities(const struct session *s, char *buf, size_t len)
{
	int allowed = login_allowed(s);
	int n = snprintf(buf, len, "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+%s%s%s",
	                 (!s->cl.tls && !s->li->implicit_tls && tls_available(s->mp))
	                 ? " STARTTLS" : "",
	                 allowed ? " AUTH=PLAIN" : " LOGINDISABLED",
	                 allowed && kerberos_enabled(s) ? " AUTH=GSSAPI" : "");

	return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

static void
imap_greet(struct session *s)
{
	char caps[256];

	if (imap_capabilities(s, caps, sizeof(caps)) < 0)
		caps[0] = '\0';
	session_printf(s, "* OK [CAPABILITY %s] %s\r\n", caps, s->gen->cfg->mailproxy.greeting_imap);
}

static void
imap_bye(struct session *s, const char *why)
{
	session_printf(s, "* BYE %s\r\n", why);
}

/* Say what is temporarily unavailable (<what>), nothing about the account. */
static void
imap_tempfail(struct session *s, enum tempfail_what what)
{
	session_printf(s, "%s NO [UNAVAILABLE] %s temporarily unavailable, try again later.\r\n",
	               s->login ? s->login->tag : "*",
	               what == TEMPFAIL_LOOKUP ? "Account lookup"
	               : what == TEMPFAIL_AUTH ? "Kerberos authentication" : "Mailbox server");
}

/* A GSSAPI challenge was queued: the next line of <s> is the client's response. */
static void
imap_sasl_expect(struct session *s)
{
	imapcmd_expect_sasl(s->parser.imap);
}

static void
imap_reject(struct session *s, const char *msg)
{
	session_printf(s, "%s NO [UNAVAILABLE] %s\r\n", s->login ? s->login->tag : "*", msg);
}

static void
imap_login_failed(struct session *s)
{
	session_printf(s, "%s " MSG_AUTHFAIL "\r\n", s->login ? s->login->tag : "*");
}

/* Create the login state of <s> for tag <tag>. Returns it, or NULL (closed). */
static struct login *
login_new(struct session *s, const char *tag)
{
	struct login *lg = calloc(1, sizeof(*lg));

	if (lg == NULL) {
		session_close(s, "out of memory");
		return NULL;
	}
	snprintf(lg->tag, sizeof(lg->tag), "%s", tag);
	s->login = lg;
	return lg;
}

/* Tell whether <v> (<len> octets) is usable as a name or password. */
static int
cred_ok(const char *v, size_t len, size_t max)
{
	return v != NULL && len > 0 && len <= max && memchr(v, '\0', len) == NULL &&
	       memchr(v, '\r', len) == NULL && memchr(v, '\n', len) == NULL;
}

/* Count a bad command of <s>: PH_CLOSE when it was one too many (BYE queued), else PH_MORE. */
static enum phase
imap_bad(struct session *s)
{
	return session_bad_command(s) ? PH_CLOSE : PH_MORE;
}

/* Decode SASL PLAIN <b64> for <s> under <tag>: PH_LOGIN when it holds credentials. */
static enum phase
imap_sasl_plain(struct session *s, const char *tag, const char *b64, size_t len)
{
	struct login *lg;
	struct sasl_plain sp;

	if (sasl_plain_decode(b64, len, &sp) != SASL_OK) {
		session_printf(s, "%s BAD Invalid SASL PLAIN response.\r\n", tag);
		return imap_bad(s);
	}
	if ((lg = login_new(s, tag)) == NULL) {
		sasl_plain_wipe(&sp);
		return PH_MORE;
	}
	lg->mech = LOGIN_SASL_PLAIN;
	lg->cred = sp;
	sasl_plain_wipe(&sp);
	return PH_LOGIN;
}

/*
 * Act on the complete command held by the parser of <s>. Returns PH_MORE,
 * PH_LOGIN, PH_STARTTLS or PH_CLOSE.
 */
static enum phase
imap_command(struct session *s)
{
	struct imapcmd *st = s->parser.imap;
	const char *tag = st->tag;
	const char *a0, *a1;
	size_t l0 = 0, l1 = 0;
	char caps[256];
	struct login *lg;

	switch (st->kind) {
	case IMAPCMD_CAPABILITY:
		if (imap_capabilities(s, caps, sizeof(caps)) < 0)
			caps[0] = '\0';
		session_printf(s, "* CAPABILITY %s\r\n%s OK Pre-login capabilities listed, "
		               "post-login capabilities have more.\r\n", caps, tag);
		break;
	case IMAPCMD_NOOP:
		session_printf(s, "%s OK NOOP completed.\r\n", tag);
		break;
	case IMAPCMD_LOGOUT:
		session_printf(s, "* BYE Logging out\r\n%s OK Logout completed.\r\n", tag);
		return PH_CLOSE;
	case IMAPCMD_ID:
		/* the client's ID is answered here and never forwarded as is */
		session_printf(s, "* ID (\"name\" \"gatehouse\")\r\n%s OK ID completed.\r\n", tag);
		break;
	case IMAPCMD_STARTTLS:
		if (s->cl.tls || s->li->implicit_tls) {
			session_printf(s, "%s BAD TLS is already active.\r\n", tag);
			return imap_bad(s);
		}
		if (!tls_available(s->mp)) {
			session_printf(s, "%s BAD STARTTLS is not available.\r\n", tag);
			return imap_bad(s);
		}
		session_printf(s, "%s OK Begin TLS negotiation now.\r\n", tag);
		/* a fresh parser: nothing said in cleartext survives */
		imapcmd_init(st, &(struct imapcmd_limits){ .sasl_max = kerberos_sasl_max(s) });
		return PH_STARTTLS;
	case IMAPCMD_LOGIN:
		if (!login_allowed(s)) {
			session_printf(s, "%s " MSG_PRIVACY "\r\n", tag);
			break;
		}
		a0 = imapcmd_arg(st, 0, &l0);
		a1 = imapcmd_arg(st, 1, &l1);
		if (!cred_ok(a0, l0, SASL_NAME_MAX) || !cred_ok(a1, l1, SASL_PASS_MAX)) {
			session_printf(s, "%s " MSG_AUTHFAIL "\r\n", tag);
			break;
		}
		if ((lg = login_new(s, tag)) == NULL)
			return PH_MORE;
		lg->mech = LOGIN_USERPASS;
		memcpy(lg->cred.authcid, a0, l0);
		lg->cred.authcid_len = l0;
		memcpy(lg->cred.password, a1, l1);
		lg->cred.password_len = l1;
		return PH_LOGIN;
	case IMAPCMD_AUTHENTICATE:
		a0 = imapcmd_arg(st, 0, &l0);
		if (a0 != NULL && strcasecmp(a0, "GSSAPI") == 0 && kerberos_enabled(s)) {
			if (!login_allowed(s)) {
				session_printf(s, "%s " MSG_PRIVACY "\r\n", tag);
				break;
			}
			if ((lg = login_new(s, tag)) == NULL)
				return PH_MORE;
			a1 = st->nargs >= 2 ? imapcmd_arg(st, 1, &l1) : NULL;
			return kerberos_start(s, a1, l1);
		}
		if (a0 == NULL || strcasecmp(a0, "PLAIN") != 0) {
			session_printf(s, "%s NO Unsupported authentication mechanism.\r\n", tag);
			break;
		}
		if (!login_allowed(s)) {
			session_printf(s, "%s " MSG_PRIVACY "\r\n", tag);
			break;
		}
		if (st->nargs >= 2) {
			a1 = imapcmd_arg(st, 1, &l1);
			return imap_sasl_plain(s, tag, a1 ? a1 : "", l1);
		} else {
			session_send(s, "+ \r\n", 4);
			imapcmd_expect_sasl(st);
		}
		break;
	case IMAPCMD_SASL_RESPONSE:
		a0 = imapcmd_arg(st, 0, &l0);
		if (s->login != NULL && s->login->mech == LOGIN_GSSAPI)
			return kerberos_step(s, a0 ? a0 : "", l0);
		return imap_sasl_plain(s, tag, a0 ? a0 : "", l0);
	case IMAPCMD_SASL_CANCEL:
		login_free(s);
		session_printf(s, "%s BAD Authentication aborted by client.\r\n", tag);
		break;
	default:
		if (st->taglen > 0)
			session_printf(s, "%s BAD Error in IMAP command received by server.\r\n", tag);
		else
			session_printf(s, "* BAD Error in IMAP command received by server.\r\n");
		return imap_bad(s);
	}
	return PH_MORE;
}

/*
 * Parse what the client of <s> sent, answering each command, until one
 * asks for more than an answer. Returns PH_MORE, PH_LOGIN, PH_STARTTLS or
 * PH_CLOSE (the session may be closed: s->dead).
 */
static enum phase
imap_input(struct session *s)
{
	struct imapcmd *st = s->parser.imap;
	enum phase ph = PH_MORE;

	while (ph == PH_MORE && !s->dead && mbuf_len(s->c2u) > 0 &&
	       mbuf_len(s->u2c) < OUT_HIGH) {
		struct mbuf *b = s->c2u;
		size_t used = 0;
		enum imapcmd_rc rc = imapcmd_parse(st, b->d + b->r, mbuf_len(b), &used);

		mbuf_consume(b, used);
		if (mbuf_len(b) == 0)
			mbuf_put_wipe(&s->mp->pool, &s->c2u);   /* may hold a password */
		switch (rc) {
		case IMAPCMD_AGAIN:
			break;
		case IMAPCMD_LITERAL:
			session_send(s, "+ OK\r\n", 6);
			break;
		case IMAPCMD_ERROR:
			if (st->too_long)
				session_log_limited(s, LOG_WARNING, "line-too-long",
				                    "command line too long (%zu octets): answered BAD",
				                    st->line_len);
			if (st->taglen > 0)
				session_printf(s, "%s BAD %s\r\n", st->tag, st->error ? st->error : "Syntax error.");
			else
				session_printf(s, "* BAD %s\r\n", st->error ? st->error : "Syntax error.");
			ph = imap_bad(s);
			break;
		case IMAPCMD_FATAL:
			session_log_limited(s, LOG_WARNING, "protocol-fatal",
			                    "%s (%zu octets): cannot resynchronize, closing",
			                    st->error ? st->error : "protocol error", st->line_len);
			session_printf(s, "* BYE %s\r\n", st->error ? st->error : "Protocol error.");
			ph = PH_CLOSE;
			break;
		case IMAPCMD_DONE: {
			/* credentials were copied: erase the parser's copy */
			int creds = st->kind == IMAPCMD_LOGIN || st->kind == IMAPCMD_SASL_RESPONSE ||
			            (st->kind == IMAPCMD_AUTHENTICATE && st->nargs >= 2);

			ph = imap_command(s);
			if (!s->dead && creds)
				imapcmd_wipe(st);
			break;
		}
		}
		if (rc == IMAPCMD_AGAIN)
			break;
	}
	return ph;
}

/* Tell whether response text <p> starts with status word <w> (then SP or end). */
static int
status_is(const char *p, const char *w)
{
	size_t n = strlen(w);

	return strncasecmp(p, w, n) == 0 && (p[n] == ' ' || p[n] == '\0');
}

/* Tell whether capability <cap> appears in the "[CAPABILITY ...]" of <line>. */
static int
greeting_has(const char *line, const char *cap)
{
	const char *p = strcasestr(line, "[CAPABILITY ");
	const char *end;
	size_t n = strlen(cap);

	if (p == NULL)
		return 0;
	p += 12;
	end = strchr(p, ']');
	if (end == NULL)
		return 0;
	while (p < end) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		size_t l = sp ? (size_t)(sp - p) : (size_t)(end - p);

		if (l == n && strncasecmp(p, cap, n) == 0)
			return 1;
		p += l + 1;
	}
	return 0;
}

/* Append <len> bytes of <v> to the login command of <lg>. Returns 0 or -1. */
static int
cmd_add(struct login *lg, const char *v, size_t len)
{
	if (lg->cmdlen + len >= sizeof(lg->cmd))
		return -1;
	memcpy(lg->cmd + lg->cmdlen, v, len);
	lg->cmdlen += len;
	return 0;
}

/* Append <v> encoded as an astring; a synchronizing literal ends a segment. */
static int
cmd_add_astring(struct login *lg, const char *v, size_t len)
{
	size_t split = 0;
	ssize_t n = imapcmd_quote(lg->cmd + lg->cmdlen, sizeof(lg->cmd) - lg->cmdlen, v, len,
	                          lg->literalplus ? IMAPCMD_QUOTE_LITERALPLUS : 0, &split);

	if (n < 0)
		return -1;
	if (split > 0) {
		if (lg->nseg >= 3)
			return -1;
		lg->seg[lg->nseg++] = lg->cmdlen + split;
	}
	lg->cmdlen += (size_t)n;
	return 0;
}

/* Build the login command of <s> for the mailbox server. Returns 0 or -1. */
static int
build_login(struct session *s)
{
	struct login *lg = s->login;
	char b64[2 * (SASL_PASS_MAX + 2 * SASL_NAME_MAX) + 16];
	ssize_t n;
	int rc;

	lg->cmdlen = 0;
	lg->nseg = lg->sent_seg = 0;
	if (lg->mech == LOGIN_USERPASS) {
		rc = cmd_add(lg, TAG_LOGIN " LOGIN ", strlen(TAG_LOGIN " LOGIN "));
		rc |= cmd_add_astring(lg, lg->cred.authcid, lg->cred.authcid_len);
		rc |= cmd_add(lg, " ", 1);
		rc |= cmd_add_astring(lg, lg->cred.password, lg->cred.password_len);
		rc |= cmd_add(lg, "\r\n", 2);
	} else {
		n = sasl_plain_encode(&lg->cred, b64, sizeof(b64));
		if (n < 0)
			return -1;
		rc = cmd_add(lg, TAG_LOGIN " AUTHENTICATE PLAIN", strlen(TAG_LOGIN " AUTHENTICATE PLAIN"));
		if (lg->sasl_ir) {
			rc |= cmd_add(lg, " ", 1);
		} else {
			rc |= cmd_add(lg, "\r\n", 2);
			lg->seg[lg->nseg++] = lg->cmdlen;
		}
		rc |= cmd_add(lg, b64, (size_t)n);
		rc |= cmd_add(lg, "\r\n", 2);
		explicit_bzero(b64, sizeof(b64));
	}
	if (rc != 0)
		return -1;
	lg->seg[lg->nseg++] = lg->cmdlen;
	return 0;
}

/* Send ID with the address the client really connects from. Returns 0 or -1 (no room). */
static int
send_id(struct session *s)
{
	const struct sockaddr_storage *local = session_local(s);
	char buf[512], lip[64];
	uint16_t lport = 0;
	int n;

	parse_addr_str((const struct sockaddr *)local, 0, lip, sizeof(lip));
	if (local->ss_family == AF_INET)
		lport = ntohs(((const struct sockaddr_in *)local)->sin_port);
	else if (local->ss_family == AF_INET6)
		lport = ntohs(((const struct sockaddr_in6 *)local)->sin6_port);
	n = snprintf(buf, sizeof(buf),
	             TAG_ID " ID (\"x-originating-ip\" \"%s\" \"x-originating-port\" \"%u\" "
	             "\"x-connected-ip\" \"%s\" \"x-connected-port\" \"%u\" "
	             "\"x-session-ext-id\" \"gh%llu\")\r\n",
	             s->ip, s->port, lip, lport, (unsigned long long)s->id);
	if (n > 0 && (size_t)n < sizeof(buf))
		return upstream_send(s, buf, (size_t)n);
	return 0;
}

#define FULL "mailbox server output buffer full"

/*
 * A line from the mailbox server of <s> during login. Returns PH_MORE, or
 * how the login ended: PH_OK, PH_FAIL (the answer queued for the client),
 * PH_TEMPFAIL (<why>).
 */
static enum phase
imap_up_line(struct session *s, const char *line, size_t len, const char **why)
{
	struct login *lg = s->login;

	(void)len;
	if (lg->step == UPI_GREETING) {
		if (strncasecmp(line, "* OK", 4) != 0) {
			/* PREAUTH, BYE or garbage: never relay to an unknown state */
			*why = "unexpected greeting from the mailbox server";
			return PH_TEMPFAIL;
		}
		lg->literalplus = greeting_has(line, "LITERAL+");
		lg->sasl_ir = greeting_has(line, "SASL-IR");
		if (build_login(s) < 0) {
			*why = "cannot encode the login";
			return PH_TEMPFAIL;
		}
		if ((s->gen->cfg->mailproxy.send_id && send_id(s) < 0) || upstream_send_seg(s) < 0) {
			*why = FULL;
			return PH_TEMPFAIL;
		}
		lg->step = UPI_LOGIN;
		return PH_MORE;
	}
	if (strncmp(line, TAG_ID " ", 4) == 0)
		return PH_MORE;               /* the ID answer does not matter */
	if (line[0] == '+') {
		if (lg->sent_seg >= lg->nseg) {
			*why = "unexpected continuation from the mailbox server";
			return PH_TEMPFAIL;
		}
		if (upstream_send_seg(s) < 0) {
			*why = FULL;
			return PH_TEMPFAIL;
		}
		return PH_MORE;
	}
	if (strncmp(line, TAG_LOGIN " ", 4) != 0)
		return PH_MORE;               /* untagged data */
	line += 4;
	if (status_is(line, "OK")) {
		session_printf(s, "%s %s\r\n", lg->tag, line);
		return PH_OK;
	}
	if (status_is(line, "NO")) {
		session_printf(s, "%s %s\r\n", lg->tag, line);
		return PH_FAIL;
	}
	*why = "mailbox server rejected the login command";
	return PH_TEMPFAIL;
}

const struct proto_ops imap_ops = {
	.greet = imap_greet,
	.input = imap_input,
	.up_line = imap_up_line,
	.tempfail = imap_tempfail,
	.reject = imap_reject,
	.login_failed = imap_login_failed,
	.bye = imap_bye,
	.sasl_expect = imap_sasl_expect,
};
