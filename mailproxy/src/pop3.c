/*
 * POP3 before login: greeting, CAPA, USER/PASS, AUTH PLAIN, STLS, NOOP,
 * QUIT answered locally with RFC 2449 / RFC 3206 response codes, and the
 * mailbox server side of a login: greeting, the client's address (XCLIENT
 * when the server offers it, else XOIP), then USER/PASS or AUTH PLAIN.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mp.h"
#include "pop3cmd.h"

#define MSG_AUTHFAIL "-ERR [AUTH] Authentication failed."
#define MSG_PRIVACY  "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."

/* Upstream steps. */
enum { UPP_GREETING = 0, UPP_CAPA, UPP_CAPA_LIST, UPP_ADDR, UPP_USER, UPP_PASS };

static void
pop3_greet(struct session *s)
{
	session_printf(s, "+OK %s\r\n", s->gen->cfg->mailproxy.greeting_pop3);
}

static void
pop3_bye(struct session *s, const char *why)
{
	session_printf(s, "-ERR %s\r\n", why);
}

/* Say what is temporarily unavailable (<what>), nothing about the account. */
static void
pop3_tempfail(struct session *s, enum tempfail_what what)
{
	session_printf(s, "-ERR [SYS/TEMP] %s temporarily unavailable, try again later.\r\n",
	               what == TEMPFAIL_LOOKUP ? "Account lookup"
	               : what == TEMPFAIL_AUTH ? "Kerberos authentication" : "Mailbox server");
}

/* A GSSAPI challenge was queued: the next line of <s> is the client's response. */
static void
pop3_sasl_expect(struct session *s)
{
	pop3cmd_expect_sasl(s->parser.pop3);
}

static void
pop3_reject(struct session *s, const char *msg)
{
	session_printf(s, "-ERR [LOGIN-DELAY] %s\r\n", msg);
}

static void
pop3_login_failed(struct session *s)
{
	session_printf(s, MSG_AUTHFAIL "\r\n");
}

static void
pop3_capa(struct session *s)
{
	int allowed = login_allowed(s);

	session_printf(s, "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"
	               "AUTH-RESP-CODE\r\nPIPELINING\r\n%s%s.\r\n",
	               !allowed ? "" : kerberos_enabled(s) ? "USER\r\nSASL PLAIN GSSAPI\r\n"
	                                                   : "USER\r\nSASL PLAIN\r\n",
	               (!s->cl.tls && !s->li->implicit_tls && tls_available(s->mp)) ? "STLS\r\n" : "");
}

/* Create the login state of <s>. Returns it or NULL (closed). */
static struct login *
pop3_login_new(struct session *s, enum login_mech mech)
{
	struct login *lg = calloc(1, sizeof(*lg));

	if (lg == NULL) {
		session_close(s, "out of memory");
		return NULL;
	}
	lg->mech = mech;
	s->login = lg;
	return lg;
}

/* Count a bad command of <s>: PH_CLOSE when it was one too many (goodbye queued), else PH_MORE. */
static enum phase
pop3_bad(struct session *s)
{
	return session_bad_command(s) ? PH_CLOSE : PH_MORE;
}

/* Decode SASL PLAIN <b64> for <s>: PH_LOGIN when it holds credentials. */
static enum phase
pop3_sasl_plain(struct session *s, const char *b64, size_t len)
{
	struct sasl_plain sp;
	struct login *lg;

	if (sasl_plain_decode(b64, len, &sp) != SASL_OK) {
		session_printf(s, "-ERR Invalid SASL PLAIN response.\r\n");
		return pop3_bad(s);
	}
	if ((lg = pop3_login_new(s, LOGIN_SASL_PLAIN)) == NULL) {
		sasl_plain_wipe(&sp);
		return PH_MORE;
	}
	lg->cred = sp;
	sasl_plain_wipe(&sp);
	return PH_LOGIN;
}

/*
 * Act on the complete command in the parser of <s>. Returns PH_MORE,
 * PH_LOGIN, PH_STARTTLS or PH_CLOSE.
 */
static enum phase
pop3_command(struct session *s)
{
	struct pop3cmd *st = s->parser.pop3;
	const char *a0, *a1;
	size_t l0 = 0, l1 = 0;
	struct login *lg;

	switch (st->kind) {
	case POP3CMD_CAPA:
		pop3_capa(s);
		break;
	case POP3CMD_NOOP:
		session_printf(s, "+OK\r\n");
		break;
	case POP3CMD_QUIT:
		session_printf(s, "+OK Logging out.\r\n");
		return PH_CLOSE;
	case POP3CMD_STLS:
		if (s->cl.tls || s->li->implicit_tls) {
			session_printf(s, "-ERR TLS is already active.\r\n");
			return pop3_bad(s);
		}
		if (!tls_available(s->mp)) {
			session_printf(s, "-ERR STLS is not available.\r\n");
			return pop3_bad(s);
		}
		session_printf(s, "+OK Begin TLS negotiation now.\r\n");
		pop3cmd_init(st, NULL);
		explicit_bzero(s->user, sizeof(s->user));
		return PH_STARTTLS;
	case POP3CMD_USER:
		if (!login_allowed(s)) {
			session_printf(s, MSG_PRIVACY "\r\n");
			break;
		}
		a0 = pop3cmd_arg(st, 0, &l0);
		if (a0 == NULL || l0 == 0 || l0 > SASL_NAME_MAX) {
			session_printf(s, "-ERR Invalid user name.\r\n");
			return pop3_bad(s);
		}
		memcpy(s->user, a0, l0);
		s->user[l0] = '\0';
		session_printf(s, "+OK\r\n");
		break;
	case POP3CMD_PASS:
		if (!login_allowed(s)) {
			session_printf(s, MSG_PRIVACY "\r\n");
			break;
		}
		if (s->user[0] == '\0') {
			session_printf(s, "-ERR No user name given.\r\n");
			return pop3_bad(s);
		}
		a0 = pop3cmd_arg(st, 0, &l0);
		if (a0 == NULL || l0 == 0 || l0 > SASL_PASS_MAX || memchr(a0, '\0', l0) != NULL) {
			session_printf(s, MSG_AUTHFAIL "\r\n");
			break;
		}
		if ((lg = pop3_login_new(s, LOGIN_USERPASS)) == NULL)
			return PH_MORE;
		lg->cred.authcid_len = strlen(s->user);
		memcpy(lg->cred.authcid, s->user, lg->cred.authcid_len + 1);
		memcpy(lg->cred.password, a0, l0);
		lg->cred.password_len = l0;
		explicit_bzero(s->user, sizeof(s->user));
		return PH_LOGIN;
	case POP3CMD_AUTH:
		if (st->nargs == 0) {
			session_printf(s, "+OK\r\n%s%s.\r\n", login_allowed(s) ? "PLAIN\r\n" : "",
			               login_allowed(s) && kerberos_enabled(s) ? "GSSAPI\r\n" : "");
			break;
		}
		a0 = pop3cmd_arg(st, 0, &l0);
		if (a0 != NULL && strcasecmp(a0, "GSSAPI") == 0 && kerberos_enabled(s)) {
			if (!login_allowed(s)) {
				session_printf(s, MSG_PRIVACY "\r\n");
				break;
			}
			if ((lg = pop3_login_new(s, LOGIN_GSSAPI)) == NULL)
				return PH_MORE;
			a1 = st->nargs >= 2 ? pop3cmd_arg(st, 1, &l1) : NULL;
			return kerberos_start(s, a1, l1);
		}
		if (a0 == NULL || strcasecmp(a0, "PLAIN") != 0) {
			session_printf(s, "-ERR Unsupported authentication mechanism.\r\n");
			break;
		}
		if (!login_allowed(s)) {
			session_printf(s, MSG_PRIVACY "\r\n");
			break;
		}
		if (st->nargs >= 2) {
			a1 = pop3cmd_arg(st, 1, &l1);
			return pop3_sasl_plain(s, a1 ? a1 : "", l1);
		} else {
			session_send(s, "+ \r\n", 4);
			pop3cmd_expect_sasl(st);
		}
		break;
	case POP3CMD_SASL_RESPONSE:
		a0 = pop3cmd_arg(st, 0, &l0);
		if (s->login != NULL && s->login->mech == LOGIN_GSSAPI)
			return kerberos_step(s, a0 ? a0 : "", l0);
		return pop3_sasl_plain(s, a0 ? a0 : "", l0);
	case POP3CMD_SASL_CANCEL:
		login_free(s);
		session_printf(s, "-ERR Authentication aborted.\r\n");
		break;
	default:
		session_printf(s, "-ERR Unknown command.\r\n");
		return pop3_bad(s);
	}
	return PH_MORE;
}

/*
 * Parse what the client of <s> sent, answering each command, until one
 * asks for more than an answer. Returns PH_MORE, PH_LOGIN, PH_STARTTLS or
 * PH_CLOSE (the session may be closed: s->dead).
 */
static enum phase
pop3_input(struct session *s)
{
	struct pop3cmd *st = s->parser.pop3;
	enum phase ph = PH_MORE;

	while (ph == PH_MORE && !s->dead && mbuf_len(s->c2u) > 0 &&
	       mbuf_len(s->u2c) < OUT_HIGH) {
		struct mbuf *b = s->c2u;
		size_t used = 0;
		enum pop3cmd_rc rc = pop3cmd_parse(st, b->d + b->r, mbuf_len(b), &used);
		int creds;

		mbuf_consume(b, used);
		if (mbuf_len(b) == 0)
			mbuf_put_wipe(&s->mp->pool, &s->c2u);   /* may hold a password */
		switch (rc) {
		case POP3CMD_AGAIN:
			return ph;
		case POP3CMD_ERROR:
			if (st->too_long)
				session_log_limited(s, LOG_WARNING, "line-too-long",
				                    "command line too long (%zu octets): answered -ERR",
				                    st->line_len);
			session_printf(s, "-ERR %s\r\n", st->error ? st->error : "Syntax error.");
			ph = pop3_bad(s);
			break;
		case POP3CMD_FATAL:
			session_log_limited(s, LOG_WARNING, "protocol-fatal", "%s (%zu octets): closing",
			                    st->error ? st->error : "protocol error", st->line_len);
			session_printf(s, "-ERR %s\r\n", st->error ? st->error : "Protocol error.");
			ph = PH_CLOSE;
			break;
		case POP3CMD_DONE:
			creds = st->kind == POP3CMD_PASS || st->kind == POP3CMD_SASL_RESPONSE ||
			        (st->kind == POP3CMD_AUTH && st->nargs >= 2);
			ph = pop3_command(s);
			if (!s->dead && creds)
				pop3cmd_wipe(st);
			break;
		}
	}
	return ph;
}

#define FULL "mailbox server output buffer full"

/* Queue the login of <s> for the mailbox server. Returns PH_MORE or PH_TEMPFAIL (<why>). */
static enum phase
send_login(struct session *s, const char **why)
{
	struct login *lg = s->login;
	char b64[2 * (SASL_PASS_MAX + 2 * SASL_NAME_MAX) + 16];
	int n, r;
	ssize_t m;

	if (lg->mech == LOGIN_USERPASS) {
		/* the parser guarantees one word without CR/LF/NUL */
		n = snprintf(lg->cmd, sizeof(lg->cmd), "USER %s\r\n", lg->cred.authcid);
		lg->step = UPP_USER;
	} else {
		m = sasl_plain_encode(&lg->cred, b64, sizeof(b64));
		n = m < 0 ? -1 : snprintf(lg->cmd, sizeof(lg->cmd), "AUTH PLAIN %s\r\n", b64);
		explicit_bzero(b64, sizeof(b64));
		lg->step = UPP_PASS;
	}
	if (n < 0 || (size_t)n >= sizeof(lg->cmd)) {
		*why = "cannot encode the login";
		return PH_TEMPFAIL;
	}
	r = upstream_send(s, lg->cmd, (size_t)n);
	explicit_bzero(lg->cmd, sizeof(lg->cmd));
	if (r < 0) {
		*why = FULL;
		return PH_TEMPFAIL;
	}
	return PH_MORE;
}

/* Send the client address to the mailbox server of <s>. Returns PH_MORE or PH_TEMPFAIL (<why>). */
static enum phase
send_addr(struct session *s, const char **why)
{
	char buf[160];
	int n;

	if (s->login->xclient)
		n = snprintf(buf, sizeof(buf), "XCLIENT ADDR=%s PORT=%u\r\n", s->ip, s->port);
	else
		n = snprintf(buf, sizeof(buf), "XOIP %s\r\n", s->ip);
	s->login->step = UPP_ADDR;
	if (n > 0 && (size_t)n < sizeof(buf) && upstream_send(s, buf, (size_t)n) < 0) {
		*why = FULL;
		return PH_TEMPFAIL;
	}
	return PH_MORE;
}

/*
 * A line from the mailbox server of <s> during login. Returns PH_MORE, or
 * how the login ended: PH_OK, PH_FAIL (the answer queued for the client),
 * PH_TEMPFAIL (<why>).
 */
static enum phase
pop3_up_line(struct session *s, const char *line, size_t len, const char **why)
{
	struct login *lg = s->login;
	int ok = strncmp(line, "+OK", 3) == 0;
	int n, r;

	(void)len;
	switch (lg->step) {
	case UPP_GREETING:
		if (!ok) {
			*why = "unexpected greeting from the mailbox server";
			return PH_TEMPFAIL;
		}
		if (!s->gen->cfg->mailproxy.send_xoip)
			return send_login(s, why);
		lg->step = UPP_CAPA;
		if (upstream_send(s, "CAPA\r\n", 6) < 0) {
			*why = FULL;
			return PH_TEMPFAIL;
		}
		return PH_MORE;
	case UPP_CAPA:
		if (ok) {
			lg->step = UPP_CAPA_LIST;
			return PH_MORE;
		}
		return send_addr(s, why);
	case UPP_CAPA_LIST:
		if (strcmp(line, ".") == 0)
			return send_addr(s, why);
		if (strcasecmp(line, "XCLIENT") == 0 || strncasecmp(line, "XCLIENT ", 8) == 0)
			lg->xclient = 1;
		return PH_MORE;
	case UPP_ADDR:
		return send_login(s, why);   /* the answer does not matter */
	case UPP_USER:
		if (!ok)
			break;
		n = snprintf(lg->cmd, sizeof(lg->cmd), "PASS %s\r\n", lg->cred.password);
		if (n < 0 || (size_t)n >= sizeof(lg->cmd)) {
			*why = "cannot encode the login";
			return PH_TEMPFAIL;
		}
		r = upstream_send(s, lg->cmd, (size_t)n);
		explicit_bzero(lg->cmd, sizeof(lg->cmd));
		lg->step = UPP_PASS;
		if (r < 0) {
			*why = FULL;
			return PH_TEMPFAIL;
		}
		return PH_MORE;
	case UPP_PASS:
		if (ok) {
			session_printf(s, "%s\r\n", line);
			return PH_OK;
		}
		break;
	}
	if (strncmp(line, "-ERR", 4) == 0) {
		session_printf(s, "%s\r\n", line);
		return PH_FAIL;
	}
	*why = "unexpected answer from the mailbox server";
	return PH_TEMPFAIL;
}

const struct proto_ops pop3_ops = {
	.greet = pop3_greet,
	.input = pop3_input,
	.up_line = pop3_up_line,
	.tempfail = pop3_tempfail,
	.reject = pop3_reject,
	.login_failed = pop3_login_failed,
	.bye = pop3_bye,
	.sasl_expect = pop3_sasl_expect,
};
