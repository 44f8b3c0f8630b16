/*
 * Sessions: the life of one client connection. A table says what each
 * state means (its timeout setting, what it waits for on the sockets, what
 * its step does, what the expiry of its timer does), and session_goto() is
 * the only place a state changes: it arms the timer and the watchers and
 * logs the move. Phases (commands, lookup, connect, mailbox server login,
 * relay) report how they ended; the session decides what comes next.
 * Every callback enters the session and leaves it; a session closed inside
 * a callback is freed only when the outermost callback leaves, so nothing
 * touches freed memory.
 */
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "cfg.h"
#include "imapcmd.h"
#include "mp.h"
#include "parse.h"

#define RUN_MAX 64            /* steps of one session per loop turn (fairness) */
#define CLOSING_MS 5000       /* to write a last answer */
#define RETRY_DELAY_MS 500    /* pause between connect attempts */
#define NO_SETTING SIZE_MAX   /* a fixed timeout, not a configuration setting */

static void session_cb(struct ev_loop *loop, ev_io *w, int revents);
static void session_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static int step_handshake(struct session *s);
static int step_cmd(struct session *s);
static int step_starttls(struct session *s);
static int step_wait(struct session *s);
static int step_up_tls(struct session *s);
static int step_up_login(struct session *s);
static int step_relay(struct session *s);
static int step_closing(struct session *s);

/* What a state waits for on the sockets (beyond client output, always written). */
enum waits {
	W_NOTHING = 0,      /* a job or the timer */
	W_CL_TLS,           /* the client's TLS handshake */
	W_CL_INPUT,         /* client commands, while its output is below OUT_HIGH */
	W_UP_CONNECT,       /* the mailbox server socket to become writable */
	W_UP_IO,            /* the mailbox server: its lines, our queued commands */
	W_RELAY,            /* both ways, each while the other's buffer has room */
};

/* What the expiry of a state's timer does. */
enum expiry {
	X_CLOSE = 0,        /* close at once */
	X_BYE,              /* say goodbye, flush, close */
	X_LOOKUP_TEMPFAIL,  /* the lookup took too long: temporary failure */
	X_AUTH_TEMPFAIL,    /* a GSSAPI step took too long: temporary failure */
	X_ANSWER,           /* the failure delay is over: answer as a wrong password */
	X_CONNECT_FAIL,     /* this connect attempt failed: retry or give up */
	X_CONNECT,          /* the pause is over: connect again */
	X_UP_TEMPFAIL,      /* the mailbox server took too long: temporary failure */
};

/* One state: its name, timeout, waits, step and expiry. */
struct state_def {
	const char *name;
	size_t timeout[2];           /* [mailproxy] setting by protocol (offset), or NO_SETTING */
	uint32_t fixed_ms;           /* the timeout when there is no setting (0: given on entry) */
	int keeps;                   /* entered from this state, the running timer goes on */
	enum waits waits;
	int (*step)(struct session *s);   /* progress: 1 moved, 0 waits, -1 closed */
	enum expiry expiry;
	const char *why;             /* what the expiry is logged as */
};

#define MC(f) offsetof(struct cfg_mailproxy, f)
#define BOTH(f) { MC(f), MC(f) }

static const struct state_def states[SS__COUNT] = {
	[SS_HANDSHAKE] = { "handshake", BOTH(handshake_timeout_ms), 0, -1, W_CL_TLS,
	                   step_handshake, X_CLOSE, "TLS handshake timeout" },
	[SS_CMD] = { "commands", BOTH(login_timeout_ms), 0, -1, W_CL_INPUT,
	             step_cmd, X_BYE, "Disconnected for inactivity." },
	[SS_STARTTLS_FLUSH] = { "starttls", BOTH(login_timeout_ms), 0, SS_CMD, W_NOTHING,
	                        step_starttls, X_BYE, "Disconnected for inactivity." },
	[SS_SASL] = { "gssapi", BOTH(upstream_timeout_ms), 0, -1, W_NOTHING,
	              step_wait, X_AUTH_TEMPFAIL, "Kerberos step timeout" },
	[SS_LOOKUP] = { "lookup", BOTH(upstream_timeout_ms), 0, -1, W_NOTHING,
	                step_wait, X_LOOKUP_TEMPFAIL, "lookup timeout" },
	[SS_FAIL_DELAY] = { "fail-delay", { NO_SETTING, NO_SETTING }, 0, -1, W_NOTHING,
	                    step_wait, X_ANSWER, "failure delay over" },
	[SS_UP_CONNECT] = { "connect", BOTH(connect_timeout_ms), 0, -1, W_UP_CONNECT,
	                    step_wait, X_CONNECT_FAIL, "connect timeout" },
	[SS_UP_RETRY] = { "retry", { NO_SETTING, NO_SETTING }, RETRY_DELAY_MS, -1, W_NOTHING,
	                  step_wait, X_CONNECT, "retry pause over" },
	[SS_UP_TLS] = { "upstream-tls", BOTH(upstream_timeout_ms), 0, -1, W_UP_IO,
	                step_up_tls, X_UP_TEMPFAIL, "mailbox server timeout" },
	[SS_UP_LOGIN] = { "upstream-login", BOTH(upstream_timeout_ms), 0, SS_UP_TLS, W_UP_IO,
	                  step_up_login, X_UP_TEMPFAIL, "mailbox server timeout" },
	[SS_RELAY] = { "relay", { MC(imap_idle_timeout_ms), MC(pop3_idle_timeout_ms) }, 0, -1,
	               W_RELAY, step_relay, X_CLOSE, "idle timeout" },
	[SS_CLOSING] = { "closing", { NO_SETTING, NO_SETTING }, CLOSING_MS, -1, W_NOTHING,
	                 step_closing, X_CLOSE, "close timeout" },
};

/* Allocate the pre-auth parser of <s>. Returns 0 or -1. */
static int
parser_new(struct session *s)
{
	if (s->proto == MP_IMAP) {
		s->parser.imap = malloc(sizeof(*s->parser.imap));
		if (s->parser.imap == NULL)
			return -1;
		imapcmd_init(s->parser.imap,
		             &(struct imapcmd_limits){ .sasl_max = kerberos_sasl_max(s) });
	} else {
		s->parser.pop3 = malloc(sizeof(*s->parser.pop3));
		if (s->parser.pop3 == NULL)
			return -1;
		pop3cmd_init(s->parser.pop3, NULL);
	}
	return 0;
}

/* Wipe and free the pre-auth parser of <s> (it may hold a password). */
static void
parser_free(struct session *s)
{
	if (s->parser.p == NULL)
		return;
	if (s->proto == MP_IMAP)
		imapcmd_wipe(s->parser.imap);
	else
		pop3cmd_wipe(s->parser.pop3);
	explicit_bzero(s->parser.p, s->proto == MP_IMAP ? sizeof(struct imapcmd)
	                                                : sizeof(struct pop3cmd));
	free(s->parser.p);
	s->parser.p = NULL;
}

/* Work out which events each side of <s> waits for in its state, and arm them. */
static void
session_watch(struct session *s)
{
	struct ev_loop *loop = s->mp->loop;
	int cl = 0, up = 0;

	if (mbuf_len(s->u2c) > 0)
		cl |= EV_WRITE;
	switch (states[s->state].waits) {
	case W_CL_INPUT:
		if (mbuf_len(s->u2c) < OUT_HIGH)
			cl |= EV_READ;
		break;
	case W_UP_CONNECT:
		up = EV_WRITE;
		break;
	case W_UP_IO:
		up = EV_READ | (mbuf_len(s->uout) > 0 ? EV_WRITE : 0);
		break;
	case W_RELAY:
		if (!s->cl.eof && (s->c2u == NULL || mbuf_room(s->c2u) > 0))
			cl |= EV_READ;
		if (!s->up.eof && (s->u2c == NULL || mbuf_room(s->u2c) > 0))
			up |= EV_READ;
		if (mbuf_len(s->c2u) > 0)
			up |= EV_WRITE;
		break;
	case W_CL_TLS:
	case W_NOTHING:
		break;
	}
	side_arm(&s->cl, loop, cl);
	side_arm(&s->up, loop, up);
}

/* (Re)arm the activity timer of <s> to fire after <ms> milliseconds. */
static void
session_set_timer(struct session *s, uint32_t ms)
{
	s->timer.repeat = ms > 0 ? ms / 1000.0 : 1.0;
	ev_timer_again(s->mp->loop, &s->timer);
}

/*
 * Move <s> to state <to>: the only place a state changes. Arms the timer
 * with the state's timeout (<ms> when it has none of its own; a state
 * that continues the one it comes from keeps the running timer), sets the
 * watchers and logs the move at debug.
 */
static void
session_goto(struct session *s, enum sstate to, uint32_t ms)
{
	const struct state_def *d = &states[to];
	enum sstate from = s->state;

	if (s->dead)
		return;           /* closed: no timer, no watcher */
	session_log(s, LOG_DEBUG, "%s -> %s", from < SS__COUNT ? states[from].name : "new", d->name);
	s->state = to;
	if (d->keeps != (int)from || from == to) {
		size_t off = d->timeout[s->proto == MP_IMAP ? 0 : 1];

		if (off != NO_SETTING)
			ms = *(const uint32_t *)(const void *)((const char *)&s->gen->cfg->mailproxy + off);
		else if (d->fixed_ms > 0)
			ms = d->fixed_ms;
		session_set_timer(s, ms);
	}
	session_watch(s);
}

/*
 * Create a session for accepted socket <fd> from <sa> (<salen> bytes) on
 * listener <li>, greet the client or start TLS. Returns the session or NULL
 * (the socket is then closed).
 */
struct session *
session_new(struct listener *li, int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct mp *mp = li->mp;
	struct session *s;

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		close(fd);
		return NULL;
	}
	s->mp = mp;
	s->gen = gen_get(&mp->gens);
	s->li = li;
	s->proto = li->proto;
	s->id = ++mp->next_id;
	s->state = SS__COUNT;                   /* none yet: the first session_goto() sets it */
	side_init(&s->cl, fd, session_cb, s);
	side_init(&s->up, -1, session_cb, s);
	memcpy(&s->peer, sa, salen < sizeof(s->peer) ? salen : sizeof(s->peer));
	parse_addr_str(sa, 0, s->ip, sizeof(s->ip));
	if (sa->sa_family == AF_INET)
		s->port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	else if (sa->sa_family == AF_INET6)
		s->port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	/* TCP_NODELAY and SO_KEEPALIVE come from the listening socket */
	if (li->local_exact)
		s->local = li->local;
	ev_init(&s->timer, session_timer_cb);
	s->timer.data = s;
	LIST_INSERT_HEAD(&mp->sessions, s, next);
	mp->nsessions++;
	mp_count(mp, MPC_ACCEPTED, 1);

	session_enter(s);
	if (parser_new(s) < 0) {
		session_close(s, "out of memory");
	} else if (li->implicit_tls) {
		if (tls_server_start(s) < 0)
			session_close(s, "cannot start TLS");
		else
			session_goto(s, SS_HANDSHAKE, 0);
	} else {
		session_goto(s, SS_CMD, 0);
		session_ops(s)->greet(s);
	}
	if (!s->dead)
		session_run(s);
	if (session_leave(s))
		return NULL;
	return s;
}

/* Return the local address the client of <s> connected to (asked once, when first needed). */
const struct sockaddr_storage *
session_local(struct session *s)
{
	socklen_t llen = sizeof(s->local);

	if (s->local.ss_family == 0 &&
	    getsockname(s->cl.fd, (struct sockaddr *)&s->local, &llen) < 0)
		memset(&s->local, 0, sizeof(s->local));
	return &s->local;
}

/* Mark <s> as being inside a callback. */
void
session_enter(struct session *s)
{
	s->depth++;
}

/* Free <s> and drop its hold on its configuration generation. */
static void
session_free(struct session *s)
{
	gen_put(s->gen);
	free(s);
}

/*
 * Leave a callback of <s>; frees it when it was closed and this was the
 * outermost callback. Returns 1 when <s> is closed (do not touch it).
 */
int
session_leave(struct session *s)
{
	int dead = s->dead;

	if (--s->depth == 0 && dead)
		session_free(s);
	return dead;
}

/*
 * Close session <s> for reason <why> (logged at debug): stops every
 * watcher, cancels its job, releases buffers. The memory is freed when the
 * outermost callback leaves.
 */
void
session_close(struct session *s, const char *why)
{
	struct mp *mp = s->mp;

	if (s->dead)
		return;
	session_log(s, LOG_DEBUG, "closed: %s", why);
	s->dead = 1;
	ev_timer_stop(mp->loop, &s->timer);
	if (s->cl.hs) {
		mp->nhandshakes--;
		s->cl.hs = 0;
	}
	certs_unref(s->hs_certs);
	s->hs_certs = NULL;
	login_free(s);
	side_release(&s->cl, mp->loop);
	upstream_close(s);
	if (s->state == SS_RELAY)
		mbuf_put(&mp->pool, &s->c2u);
	else
		mbuf_put_wipe(&mp->pool, &s->c2u);   /* may hold a password */
	mbuf_put(&mp->pool, &s->u2c);
	parser_free(s);
	explicit_bzero(s->user, sizeof(s->user));
	LIST_REMOVE(s, next);
	if (s->again) {
		LIST_REMOVE(s, again_link);
		s->again = 0;
	}
	mp->nsessions--;
	if (mp->stopping && mp->nsessions == 0)
		ev_break(mp->loop, EVBREAK_ALL);
	if (s->depth == 0)
		session_free(s);
}

/* Queue <len> bytes of <data> for the client; closes <s> when they do not fit. */
void
session_send(struct session *s, const char *data, size_t len)
{
	if (s->dead)
		return;
	if (mbuf_append(&s->mp->pool, &s->u2c, data, len) < 0)
		session_close(s, "client output buffer full");
}

/* Queue a formatted line for the client. */
void
session_printf(struct session *s, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = (int)sizeof(buf) - 1;
	session_send(s, buf, (size_t)n);
}

/*
 * Count a bad command of <s>. Returns 1 when it was one too many (the
 * goodbye is queued: the caller ends the commands), else 0.
 */
int
session_bad_command(struct session *s)
{
	mp_count(s->mp, MPC_BAD_COMMANDS, 1);
	if (++s->bad < s->gen->cfg->mailproxy.max_bad_commands)
		return 0;
	session_log_limited(s, LOG_INFO, "bad-commands", "too many bad commands");
	session_ops(s)->bye(s, "Too many invalid commands.");
	return 1;
}

/* Back to pre-auth commands after a login attempt of <s> ended without success. */
static void
session_back(struct session *s)
{
	upstream_close(s);
	login_free(s);
	session_goto(s, SS_CMD, 0);
}

/* The login of <s> failed for now (<why>); the client hears about <what>. */
static void
session_tempfail(struct session *s, const char *why, enum tempfail_what what)
{
	login_tempfail(s, why, what);
	if (!s->dead)
		session_back(s);
}

/* Answer the refused login of <s> as a wrong password is answered, back to commands. */
static void
session_refused(struct session *s)
{
	login_unknown_answer(s);
	if (!s->dead)
		session_back(s);
}

/* Start a connect attempt of <s> to its mailbox server; act on how it went. */
static void session_connect(struct session *s);

/* The mailbox server socket of <s> is connected: TLS or straight to its greeting. */
static void
session_connected(struct session *s)
{
	s->login->step = 0;
	if (!s->gen->cfg->mailproxy.upstream_tls) {
		session_goto(s, SS_UP_LOGIN, 0);
	} else if (tls_client_start(s) < 0) {
		session_tempfail(s, "cannot start TLS to the mailbox server", TEMPFAIL_MAILBOX);
	} else {
		session_goto(s, SS_UP_TLS, 0);
	}
}

/* A connect attempt of <s> failed: try again after a pause, or give up. */
static void
session_connect_failed(struct session *s)
{
	unsigned max = s->gen->cfg->mailproxy.upstream_retries;

	mp_count(s->mp, MPC_UPSTREAM_CONNECT_FAIL, 1);
	upstream_close(s);
	if (s->login->attempts >= (max == 0 ? 1 : max))
		session_tempfail(s, "mailbox server unreachable", TEMPFAIL_MAILBOX);
	else
		session_goto(s, SS_UP_RETRY, 0);
}

static void
session_connect(struct session *s)
{
	const char *why = NULL;

	switch (upstream_connect(s, &why)) {
	case PH_OK:
		session_connected(s);
		break;
	case PH_MORE:
		session_goto(s, SS_UP_CONNECT, 0);
		break;
	case PH_TEMPFAIL:
		session_tempfail(s, why, TEMPFAIL_MAILBOX);
		break;
	default:
		session_connect_failed(s);
		break;
	}
}

/* Answer the refused login of <s> when a wrong password would have been answered. */
static void
session_fail_later(struct session *s)
{
	uint32_t delay = login_fail_delay(s);

	if (delay > 0)
		session_goto(s, SS_FAIL_DELAY, delay);
	else
		session_refused(s);
}

/* The lookup of the login of <s> ended with <rc> (<why>): connect, answer or fail. */
static void
session_lookup_result(struct session *s, enum phase rc, const char *why)
{
	switch (rc) {
	case PH_MORE:
		break;
	case PH_OK:
		if (s->login->mech == LOGIN_GSSAPI && !kerberos_upstream_ok(s)) {
			/* the master secret never crosses the network in cleartext */
			session_log_limited(s, LOG_ERR, "master-cleartext", "not sending the master "
			                    "login to %s without TLS", s->login->route.server);
			session_tempfail(s, "master login needs TLS", TEMPFAIL_MAILBOX);
			break;
		}
		session_connect(s);
		break;
	case PH_FAIL:
		session_back(s);
		break;
	case PH_FAIL_LATER:
		session_fail_later(s);
		break;
	default:
		session_tempfail(s, why, TEMPFAIL_LOOKUP);
		break;
	}
}

/* A worker finished the lookup <job> of <s>. */
static void
session_lookup_done(struct session *s, void *job)
{
	const char *why = "lookup failed";
	enum phase rc;

	session_enter(s);
	rc = login_lookup_end(s, job, &why);
	if (!s->dead)
		session_lookup_result(s, rc, why);
	if (!s->dead)
		session_run(s);
	session_leave(s);
}

/* The client of <s> sent credentials: look them up. */
static void
session_login(struct session *s)
{
	const char *why = "lookup failed";
	enum phase rc;

	session_goto(s, SS_LOOKUP, 0);
	rc = login_start(s, session_lookup_done, &why);
	if (!s->dead)
		session_lookup_result(s, rc, why);
}

/* A GSSAPI step of <s> ended with <rc> (<why>): wait for the client, log in, refuse or fail. */
static void
session_sasl_result(struct session *s, enum phase rc, const char *why)
{
	switch (rc) {
	case PH_MORE:
		session_goto(s, SS_CMD, 0);      /* the challenge is queued: the client answers */
		break;
	case PH_LOGIN:
		session_login(s);
		break;
	case PH_FAIL_LATER:
		session_fail_later(s);
		break;
	default:
		session_tempfail(s, why, TEMPFAIL_AUTH);
		break;
	}
}

/* A worker finished GSSAPI step <job> of <s>. */
static void
session_sasl_done(struct session *s, void *job)
{
	const char *why = "Kerberos unavailable";
	enum phase rc;

	session_enter(s);
	rc = kerberos_end(s, job, &why);
	if (!s->dead)
		session_sasl_result(s, rc, why);
	if (!s->dead)
		session_run(s);
	session_leave(s);
}

/* The mailbox server accepted the login of <s>: relay from now on. */
static void
session_relay(struct session *s)
{
	login_succeeded(s);
	parser_free(s);
	if (relay_start(s) < 0) {
		session_close(s, "relay buffer overflow");
		return;
	}
	session_goto(s, SS_RELAY, 0);
}

/* The mailbox server login phase of <s> ended with <rc> (<why>). */
static void
session_up_result(struct session *s, enum phase rc, const char *why)
{
	switch (rc) {
	case PH_MORE:
		break;
	case PH_OK:
		session_relay(s);
		break;
	case PH_FAIL:
		login_failed(s);
		session_back(s);
		break;
	default:
		session_tempfail(s, why, TEMPFAIL_MAILBOX);
		break;
	}
}

/* Write what is queued for the client of <s>. Returns 1 on progress, 0 none, -1 closed. */
static int
step_out(struct session *s)
{
	int r = side_flush(&s->cl, &s->mp->pool, &s->u2c, 0);

	if (r < 0)
		session_close(s, "client write error");
	return r;
}

/* Client TLS handshake step. Returns 1 when done, 0 waiting, -1 closed. */
static int
step_handshake(struct session *s)
{
	char err[256];
	int r = side_handshake(&s->cl, err, sizeof(err));

	if (r == -2) {
		/* a readiness probe or a port scan: nothing was attempted */
		session_log(s, LOG_DEBUG, "TLS: %s", err);
		session_close(s, "closed by the client before the TLS handshake");
		return -1;
	}
	if (r < 0) {
		session_log_limited(s, LOG_INFO, "tls-handshake",
		                    "TLS handshake with the client failed: %s", err);
		mp_count(s->mp, MPC_TLS_HANDSHAKE_FAIL, 1);
		session_close(s, "TLS handshake failed");
		return -1;
	}
	if (r == 0)
		return 0;
	s->mp->nhandshakes--;
	certs_unref(s->hs_certs);
	s->hs_certs = NULL;
	session_goto(s, SS_CMD, 0);
	if (!s->starttls_done)
		session_ops(s)->greet(s);
	return 1;
}

/* Pre-auth commands: answer what the client sent, read more. */
static int
step_cmd(struct session *s)
{
	int p, r;

	if ((p = step_out(s)) < 0)
		return -1;
	if (mbuf_len(s->c2u) > 0) {
		size_t before = mbuf_len(s->c2u);
		enum phase ph = session_ops(s)->input(s);

		if (s->dead)
			return -1;
		if (mbuf_len(s->c2u) != before)
			p = 1;
		switch (ph) {
		case PH_LOGIN:
			session_login(s);
			return s->dead ? -1 : 1;
		case PH_SASL: {
			const char *why = "busy";

			session_goto(s, SS_SASL, 0);
			if (kerberos_run(s, session_sasl_done, &why) != PH_MORE)
				session_sasl_result(s, PH_TEMPFAIL, why);
			return s->dead ? -1 : 1;
		}
		case PH_FAIL_LATER:
		case PH_TEMPFAIL:
			session_sasl_result(s, ph, "out of memory");
			return s->dead ? -1 : 1;
		case PH_STARTTLS:
			/* what the client pipelined in cleartext is dropped */
			mbuf_put_wipe(&s->mp->pool, &s->c2u);
			s->starttls_done = 1;
			mp_count(s->mp, MPC_STARTTLS, 1);
			session_goto(s, SS_STARTTLS_FLUSH, 0);
			return 1;
		case PH_CLOSE:
			session_goto(s, SS_CLOSING, 0);
			return 1;
		default:
			break;
		}
	}
	if (mbuf_len(s->u2c) < OUT_HIGH && mbuf_len(s->c2u) == 0) {
		r = side_fill(&s->cl, &s->mp->pool, &s->c2u);
		if (r < 0 || (r == 0 && s->cl.eof)) {
			session_close(s, r < 0 ? "client read error" : "client closed");
			return -1;
		}
		p |= r;
	}
	return p;
}

/* STARTTLS answered: once it is written, the handshake starts. */
static int
step_starttls(struct session *s)
{
	if (step_out(s) < 0)
		return -1;
	if (mbuf_len(s->u2c) > 0)
		return 0;
	if (tls_server_start(s) < 0) {
		session_close(s, "cannot start TLS");
		return -1;
	}
	session_goto(s, SS_HANDSHAKE, 0);
	return 1;
}

/* A state that waits for a job or its timer: only client output moves. */
static int
step_wait(struct session *s)
{
	return step_out(s);
}

/* TLS handshake with the mailbox server. */
static int
step_up_tls(struct session *s)
{
	const char *why = "TLS handshake with the mailbox server failed";
	int p;

	if ((p = step_out(s)) < 0)
		return -1;
	switch (upstream_handshake(s, &why)) {
	case PH_MORE:
		return p;
	case PH_OK:
		session_goto(s, SS_UP_LOGIN, 0);
		return 1;
	default:
		session_tempfail(s, why, TEMPFAIL_MAILBOX);
		return s->dead ? -1 : 1;
	}
}

/* The login conversation with the mailbox server. */
static int
step_up_login(struct session *s)
{
	const char *why = "mailbox server closed the connection";
	enum phase ph;
	int p, r = 0;

	if ((p = step_out(s)) < 0)
		return -1;
	ph = upstream_pump(s, &r, &why);
	if (s->dead)
		return -1;
	if (ph == PH_MORE)
		return p | r;
	session_up_result(s, ph, why);
	return s->dead ? -1 : 1;
}

/* Logged in: bytes both ways; activity keeps the idle timer away. */
static int
step_relay(struct session *s)
{
	const char *why = "relay ended";
	int p = relay_pump(s, &why);

	if (p < 0) {
		session_close(s, why);
		return -1;
	}
	if (p)
		ev_timer_again(s->mp->loop, &s->timer);
	return p;
}

/* Last words queued: close once they are written. */
static int
step_closing(struct session *s)
{
	if (step_out(s) < 0)
		return -1;
	if (mbuf_len(s->u2c) == 0) {
		session_close(s, "finished");
		return -1;
	}
	return 0;
}

/* Make every possible bit of progress on <s>, then re-arm its watchers. */
void
session_run(struct session *s)
{
	int i, p;

	session_enter(s);
	for (i = 0; i < RUN_MAX && !s->dead; i++) {
		p = states[s->state].step(s);
		if (p <= 0)
			break;
	}
	if (!s->dead)
		session_watch(s);
	/* stopped for fairness while still moving: TLS may hold decrypted
	 * bytes no socket event will announce, so come back, but at the next
	 * turn: an event fed now would run before every other one already
	 * pending (libev runs the newest first) and the cap would be void */
	if (i == RUN_MAX && !s->dead && !s->again) {
		s->again = 1;
		LIST_INSERT_HEAD(&s->mp->again, s, again_link);
		ev_prepare_start(s->mp->loop, &s->mp->again_w);
	}
	session_leave(s);
}

/* Before the loop polls: give each session stopped at RUN_MAX its next turn. */
static void
session_again_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct mp *mp = w->data;
	struct session *s;

	(void)revents;
	while ((s = LIST_FIRST(&mp->again)) != NULL) {
		LIST_REMOVE(s, again_link);
		s->again = 0;
		/* after its watchers were set: stopping one drops this event */
		ev_feed_event(loop, &s->cl.io, EV_READ);
	}
	ev_prepare_stop(loop, w);
}

/* Set up the fairness turns of <mp>'s sessions. */
void
session_sched_init(struct mp *mp)
{
	LIST_INIT(&mp->again);
	ev_prepare_init(&mp->again_w, session_again_cb);
	mp->again_w.data = mp;
}

/* I/O callback of either side. */
static void
session_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct session *s = w->data;
	struct side *sd = w == &s->cl.io ? &s->cl : &s->up;

	(void)loop;
	session_enter(s);
	side_note(sd, revents);
	if (sd == &s->up && s->state == SS_UP_CONNECT && (revents & EV_WRITE)) {
		if (upstream_connect_done(s) == PH_OK)
			session_connected(s);
		else
			session_connect_failed(s);
	}
	if (!s->dead)
		session_run(s);
	session_leave(s);
}

/* The activity timer of <s> expired: the state table says what that means. */
static void
session_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct session *s = w->data;
	const struct state_def *d = &states[s->state];

	(void)loop;
	(void)revents;
	session_enter(s);
	ev_timer_stop(s->mp->loop, &s->timer);
	switch (d->expiry) {
	case X_CLOSE:
		session_close(s, d->why);
		break;
	case X_BYE:
		session_ops(s)->bye(s, d->why);
		session_goto(s, SS_CLOSING, 0);
		break;
	case X_LOOKUP_TEMPFAIL:
		session_tempfail(s, d->why, TEMPFAIL_LOOKUP);
		break;
	case X_AUTH_TEMPFAIL:
		session_tempfail(s, d->why, TEMPFAIL_AUTH);
		break;
	case X_ANSWER:
		session_refused(s);
		break;
	case X_CONNECT_FAIL:
		session_log_limited(s, LOG_WARNING, "upstream-connect", "connect to %s timed out",
		                    s->login->route.server);
		session_connect_failed(s);
		break;
	case X_CONNECT:
		session_connect(s);
		break;
	case X_UP_TEMPFAIL:
		session_tempfail(s, d->why, TEMPFAIL_MAILBOX);
		break;
	}
	if (!s->dead)
		session_run(s);
	session_leave(s);
}

/*
 * Shut down sessions of <mp>: pre-auth ones get a BYE at once; with
 * <force>, logged-in ones are closed too.
 */
void
session_shutdown_all(struct mp *mp, int force)
{
	struct session *s, *tmp;

	LIST_FOREACH_SAFE(s, &mp->sessions, next, tmp) {
		if (s->state == SS_RELAY && !force)
			continue;
		session_enter(s);
		if (s->state == SS_CMD && !force) {
			session_ops(s)->bye(s, "Server shutting down.");
			session_goto(s, SS_CLOSING, 0);
			session_run(s);
		} else {
			session_close(s, "shutdown");
		}
		session_leave(s);
	}
}
