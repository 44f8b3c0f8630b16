/*
 * Sessions: one client connection, its state machine, its single activity
 * timer and the pump that moves bytes between the sockets, the buffers and
 * the protocol handlers. Every callback enters the session and leaves it;
 * a session closed inside a callback is freed only when the outermost
 * callback leaves, so nothing touches freed memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "cfg.h"
#include "imapcmd.h"
#include "mp.h"
#include "parse.h"


static void session_cb(struct ev_loop *loop, ev_io *w, int revents);
static void session_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* Return the protocol handlers of <s>. */
const struct proto_ops *
session_ops(const struct session *s)
{
	return s->proto == MP_IMAP ? &imap_ops : &pop3_ops;
}

/* Log <fmt> with <ap> for session <s> at <level>, prefixed with its id and client. */
static void
session_vlog(const struct session *s, int level, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_msg(&s->mp->log, level, "session %llu %s:%u %s%s%s: %s",
	        (unsigned long long)s->id, s->ip, s->port, s->li->name,
	        s->account[0] ? " user=" : "", s->account, msg);
}

/* Log <fmt> for session <s> at <level>, prefixed with its id and client. */
void
session_log(const struct session *s, int level, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(&s->mp->log, level))
		return;
	va_start(ap, fmt);
	session_vlog(s, level, fmt, ap);
	va_end(ap);
}

/*
 * Log <fmt> for session <s> at <level> like session_log(), unless messages
 * of <kind> are over their rate limit: for what a client causes at will.
 */
void
session_log_limited(const struct session *s, int level, const char *kind, const char *fmt, ...)
{
	va_list ap;

	if (!log_limit_allow(&s->mp->log, level, kind))
		return;
	va_start(ap, fmt);
	session_vlog(s, level, fmt, ap);
	va_end(ap);
}

/* Allocate the pre-auth parser of <s>. Returns 0 or -1. */
static int
parser_new(struct session *s)
{
	if (s->proto == MP_IMAP) {
		s->parser.imap = malloc(sizeof(*s->parser.imap));
		if (s->parser.imap == NULL)
			return -1;
		imapcmd_init(s->parser.imap, NULL);
	} else {
		s->parser.pop3 = malloc(sizeof(*s->parser.pop3));
		if (s->parser.pop3 == NULL)
			return -1;
		pop3cmd_init(s->parser.pop3, NULL);
	}
	return 0;
}

/* Wipe and free the pre-auth parser of <s> (it may hold a password). */
void
session_parser_free(struct session *s)
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
	s->cl.s = s->up.s = s;
	s->cl.fd = fd;
	s->cl.wr_ready = 1;
	s->up.fd = -1;
	memcpy(&s->peer, sa, salen < sizeof(s->peer) ? salen : sizeof(s->peer));
	parse_addr_str(sa, 0, s->ip, sizeof(s->ip));
	if (sa->sa_family == AF_INET)
		s->port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	else if (sa->sa_family == AF_INET6)
		s->port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	/* TCP_NODELAY and SO_KEEPALIVE come from the listening socket */
	if (li->local_exact)
		s->local = li->local;
	ev_io_init(&s->cl.io, session_cb, fd, 0);
	s->cl.io.data = &s->cl;
	ev_init(&s->up.io, session_cb);
	s->up.io.data = &s->up;
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
	} else {
		s->state = SS_CMD;
		session_set_timer(s, s->gen->cfg->mailproxy.login_timeout_ms);
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

/* Free what is left of closed session <s>. */
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

/* Stop and release side <sd>'s socket and TLS state. */
static void
side_release(struct mp *mp, struct side *sd)
{
	ev_io_stop(mp->loop, &sd->io);
	sd->events = 0;
	if (sd->ssl != NULL) {
		/*
		 * Best effort close_notify, so that clients see a clean end of
		 * TLS rather than a truncation; never waits for the peer's.
		 */
		if (SSL_is_init_finished(sd->ssl) &&
		    !(SSL_get_shutdown(sd->ssl) & SSL_SENT_SHUTDOWN))
			(void)SSL_shutdown(sd->ssl);
		ERR_clear_error();
		SSL_free(sd->ssl);
		sd->ssl = NULL;
	}
	if (sd->fd >= 0) {
		close(sd->fd);
		sd->fd = -1;
	}
	sd->rd_ww = sd->wr_wr = sd->eof = sd->shut = sd->tls = 0;
}

/* Close the mailbox server side of <s> (login failed or retry). */
void
upstream_close(struct session *s)
{
	side_release(s->mp, &s->up);
	s->up.hs = 0;
	mbuf_put(&s->mp->pool, &s->uin);
	mbuf_put_wipe(&s->mp->pool, &s->uout);   /* the replayed login */
}

/*
 * Close session <s> for reason <why> (logged at debug, or info for
 * errors): stops every watcher, cancels its job, releases buffers. The
 * memory is freed when the outermost callback leaves.
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
	side_release(mp, &s->cl);
	upstream_close(s);
	if (s->state == SS_RELAY)
		mbuf_put(&mp->pool, &s->c2u);
	else
		mbuf_put_wipe(&mp->pool, &s->c2u);   /* may hold a password */
	mbuf_put(&mp->pool, &s->u2c);
	session_parser_free(s);
	explicit_bzero(s->user, sizeof(s->user));
	LIST_REMOVE(s, next);
	mp->nsessions--;
	if (mp->stopping && mp->nsessions == 0)
		ev_break(mp->loop, EVBREAK_ALL);
	if (s->depth == 0)
		session_free(s);
}

/* (Re)arm the activity timer of <s> to fire after <ms> milliseconds. */
void
session_set_timer(struct session *s, uint32_t ms)
{
	s->timer.repeat = ms > 0 ? ms / 1000.0 : 1.0;
	ev_timer_again(s->mp->loop, &s->timer);
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

/* Flush what is queued for the client, then close <s>. */
void
session_finish(struct session *s)
{
	if (s->dead)
		return;
	s->state = SS_CLOSING;
	session_set_timer(s, 5000);
}

/* Count a bad command of <s>; after the configured number, say BYE and close. */
void
session_bad_command(struct session *s)
{
	mp_count(s->mp, MPC_BAD_COMMANDS, 1);
	if (++s->bad >= s->gen->cfg->mailproxy.max_bad_commands) {
		session_log_limited(s, LOG_INFO, "bad-commands", "too many bad commands");
		session_ops(s)->bye(s, "Too many invalid commands.");
		session_finish(s);
	}
}

/* Answered STARTTLS/STLS: drop pipelined plaintext and wait for the answer to go out. */
void
session_starttls(struct session *s)
{
	mbuf_put_wipe(&s->mp->pool, &s->c2u);
	s->state = SS_STARTTLS_FLUSH;
	s->starttls_done = 1;
	mp_count(s->mp, MPC_STARTTLS, 1);
}

/*
 * Read up to <len> bytes from side <sd> into <buf>. Returns the count,
 * 0 at end of stream, -1 when nothing is available now, -2 on error.
 */
ssize_t
side_read(struct side *sd, void *buf, size_t len)
{
	ssize_t n;

	if (sd->ssl != NULL) {
		int r;

		sd->rd_ww = 0;
		ERR_clear_error();
		r = SSL_read(sd->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
		if (r > 0)
			return r;
		switch (SSL_get_error(sd->ssl, r)) {
		case SSL_ERROR_WANT_READ:
			return -1;
		case SSL_ERROR_WANT_WRITE:
			sd->rd_ww = 1;
			return -1;
		case SSL_ERROR_ZERO_RETURN:
			return 0;
		case SSL_ERROR_SYSCALL:
			return (errno == 0 || errno == ECONNRESET) ? 0 : -2;
		default:
			return -2;
		}
	}
	n = read(sd->fd, buf, len);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return -1;
	return errno == ECONNRESET ? 0 : -2;
}

/*
 * Write up to <len> bytes of <buf> to side <sd>. Returns the count written,
 * -1 when the socket cannot take more now, -2 on error.
 */
ssize_t
side_write(struct side *sd, const void *buf, size_t len)
{
	ssize_t n;

	if (sd->ssl != NULL) {
		int r;

		sd->wr_wr = 0;
		ERR_clear_error();
		r = SSL_write(sd->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
		if (r > 0)
			return r;
		switch (SSL_get_error(sd->ssl, r)) {
		case SSL_ERROR_WANT_WRITE:
			return -1;
		case SSL_ERROR_WANT_READ:
			sd->wr_wr = 1;
			return -1;
		default:
			return -2;
		}
	}
	n = send(sd->fd, buf, len, MSG_NOSIGNAL);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return -1;
	return -2;
}

/*
 * Read from <sd> into <*bp> (borrowed on demand). Returns 1 when bytes
 * arrived, 0 when none (eof sets sd->eof), -1 on error.
 */
static int
fill(struct session *s, struct side *sd, struct mbuf **bp)
{
	struct mbuf *b;
	ssize_t n;

	size_t want;

	/* a socket drained since its last event has nothing: skip the EAGAIN */
	if (!sd->rd_ready)
		return 0;
	if (*bp == NULL && (*bp = mbuf_get(&s->mp->pool)) == NULL)
		return -1;
	b = *bp;
	if (b->w == b->cap && b->r > 0) {
		memmove(b->d, b->d + b->r, b->w - b->r);
		b->w -= b->r;
		b->r = 0;
	}
	if (b->w == b->cap)
		return 0;
	want = b->cap - b->w;
	n = side_read(sd, b->d + b->w, want);
	if (n > 0) {
		b->w += (uint32_t)n;
		/* level-triggered events: a short plain read means drained for
		 * now; TLS returns one record at a time, so only WANT_* tells */
		if (sd->ssl == NULL && (size_t)n < want)
			sd->rd_ready = 0;
		return 1;
	}
	if (n == -1)
		sd->rd_ready = 0;
	if (b->w == b->r)
		mbuf_put(&s->mp->pool, bp);
	if (n == 0)
		sd->eof = 1;
	return n == -2 ? -1 : 0;
}

/* Write <*bp> to <sd>; returns the buffer when empty. 1 progress, 0 none, -1 error. */
static int
flush(struct session *s, struct side *sd, struct mbuf **bp)
{
	int progress = 0;

	while (mbuf_len(*bp) > 0 && sd->wr_ready) {
		size_t len = mbuf_len(*bp);
		ssize_t n = side_write(sd, (*bp)->d + (*bp)->r, len);

		if (n == -2)
			return -1;
		if (n < 0) {
			sd->wr_ready = 0;
			break;
		}
		mbuf_consume(*bp, (size_t)n);
		progress = 1;
		/* a short plain write means the socket buffer is full: wait for
		 * EV_WRITE (TLS may write one record at a time: only WANT_* tells) */
		if (sd->ssl == NULL && (size_t)n < len)
			sd->wr_ready = 0;
	}
	if (*bp != NULL && mbuf_len(*bp) == 0) {
		if (bp == &s->uout)
			mbuf_put_wipe(&s->mp->pool, bp);   /* the replayed login */
		else
			mbuf_put(&s->mp->pool, bp);
	}
	return progress;
}

/* Read from side <sd> of <s> into <*bp>: see fill(). */
int
relay_fill(struct session *s, struct side *sd, struct mbuf **bp)
{
	return fill(s, sd, bp);
}

/* Write <*bp> to side <sd> of <s>: see flush(). */
int
relay_flush(struct session *s, struct side *sd, struct mbuf **bp)
{
	return flush(s, sd, bp);
}

/* Client TLS handshake step. Returns 1 when done, 0 waiting, -1 closed. */
static int
step_handshake(struct session *s)
{
	int r = tls_handshake(s, &s->cl);

	if (r < 0) {
		mp_count(s->mp, MPC_TLS_HANDSHAKE_FAIL, 1);
		session_close(s, "TLS handshake failed");
		return -1;
	}
	if (r == 0)
		return 0;
	s->cl.hs = 0;
	s->mp->nhandshakes--;
	certs_unref(s->hs_certs);
	s->hs_certs = NULL;
	s->state = SS_CMD;
	session_set_timer(s, s->gen->cfg->mailproxy.login_timeout_ms);
	if (!s->starttls_done)
		session_ops(s)->greet(s);
	return 1;
}

/* Pre-auth and login-phase step. Returns 1 on progress, 0 none, -1 closed. */
static int
step_preauth(struct session *s)
{
	const struct proto_ops *ops = session_ops(s);
	int p = 0, r;

	r = flush(s, &s->cl, &s->u2c);
	if (r < 0) {
		session_close(s, "client write error");
		return -1;
	}
	p |= r;
	if (s->state == SS_CLOSING) {
		if (mbuf_len(s->u2c) == 0)
			session_close(s, "finished");
		return s->dead ? -1 : 0;
	}
	if (s->state == SS_STARTTLS_FLUSH) {
		if (mbuf_len(s->u2c) > 0)
			return 0;
		if (tls_server_start(s) < 0) {
			session_close(s, "cannot start TLS");
			return -1;
		}
		return 1;
	}
	if (s->state == SS_CMD) {
		if (mbuf_len(s->c2u) > 0) {
			size_t before = mbuf_len(s->c2u);

			if (ops->input(s) < 0 || s->dead)
				return -1;
			if (mbuf_len(s->c2u) != before)
				p = 1;
		}
		if (s->state == SS_CMD && mbuf_len(s->u2c) < OUT_HIGH &&
		    mbuf_len(s->c2u) == 0) {
			r = fill(s, &s->cl, &s->c2u);
			if (r < 0 || (r == 0 && s->cl.eof)) {
				session_close(s, r < 0 ? "client read error" : "client closed");
				return -1;
			}
			p |= r;
		}
	}
	if (s->state == SS_UP_TLS) {
		r = tls_handshake(s, &s->up);
		if (r < 0) {
			login_upstream_tempfail(s, "TLS handshake with the mailbox server failed");
			return s->dead ? -1 : 1;
		}
		if (r > 0) {
			s->up.hs = 0;
			s->state = SS_UP_LOGIN;
			p = 1;
		}
	}
	if (s->state == SS_UP_LOGIN) {
		r = flush(s, &s->up, &s->uout);
		if (r < 0) {
			login_upstream_tempfail(s, "mailbox server write error");
			return s->dead ? -1 : 1;
		}
		p |= r;
		r = fill(s, &s->up, &s->uin);
		if (r < 0 || (r == 0 && s->up.eof && mbuf_len(s->uin) == 0)) {
			login_upstream_tempfail(s, "mailbox server closed the connection");
			return s->dead ? -1 : 1;
		}
		p |= r;
		if (mbuf_len(s->uin) > 0) {
			if (upstream_input(s) < 0)
				return -1;
			if (s->state == SS_UP_LOGIN && s->up.eof) {
				login_upstream_tempfail(s, "mailbox server closed the connection");
				return s->dead ? -1 : 1;
			}
		}
	}
	return p;
}

/* Arm side <sd> of <s> for events <ev>. */
static void
side_arm(struct session *s, struct side *sd, int ev)
{
	if (sd->fd < 0 || ev == sd->events)
		return;
	ev_io_stop(s->mp->loop, &sd->io);
	ev_io_set(&sd->io, sd->fd, ev);
	if (ev != 0)
		ev_io_start(s->mp->loop, &sd->io);
	sd->events = ev;
}

/* Add what TLS needs of <sd> to <ev>. */
static int
tls_events(const struct side *sd, int ev)
{
	if (sd->ssl == NULL)
		return ev;
	if (sd->hs)
		return sd->hs_want;
	if (sd->rd_ww)
		ev |= EV_WRITE;
	if (sd->wr_wr)
		ev |= EV_READ;
	return ev;
}

/* Work out which events each side of <s> waits for. */
static void
update_watchers(struct session *s)
{
	int cl = 0, up = 0;

	if (mbuf_len(s->u2c) > 0)
		cl |= EV_WRITE;
	switch (s->state) {
	case SS_CMD:
		if (mbuf_len(s->u2c) < OUT_HIGH)
			cl |= EV_READ;
		break;
	case SS_UP_CONNECT:
		up = EV_WRITE;
		break;
	case SS_UP_LOGIN:
		up = EV_READ | (mbuf_len(s->uout) > 0 ? EV_WRITE : 0);
		break;
	case SS_RELAY:
		if (!s->cl.eof && (s->c2u == NULL || mbuf_room(s->c2u) > 0))
			cl |= EV_READ;
		if (!s->up.eof && (s->u2c == NULL || mbuf_room(s->u2c) > 0))
			up |= EV_READ;
		if (mbuf_len(s->c2u) > 0)
			up |= EV_WRITE;
		break;
	default:
		break;
	}
	side_arm(s, &s->cl, tls_events(&s->cl, cl));
	if (s->state != SS_UP_CONNECT)
		up = tls_events(&s->up, up);
	side_arm(s, &s->up, up);
}

/* Make every possible bit of progress on <s>, then re-arm its watchers. */
void
session_run(struct session *s)
{
	int i, p;

	session_enter(s);
	for (i = 0; i < 64 && !s->dead; i++) {
		if (s->state == SS_HANDSHAKE)
			p = step_handshake(s);
		else if (s->state == SS_RELAY)
			p = relay_pump(s);
		else
			p = step_preauth(s);
		if (p <= 0)
			break;
	}
	if (!s->dead)
		update_watchers(s);
	/* stopped for fairness while still moving: TLS may hold decrypted
	 * bytes no socket event will announce, so come back next turn (after
	 * update_watchers: stopping a watcher drops its pending events) */
	if (i == 64 && !s->dead)
		ev_feed_event(s->mp->loop, &s->cl.io, EV_READ);
	session_leave(s);
}

/* I/O callback of either side. */
static void
session_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct side *sd = w->data;
	struct session *s = sd->s;

	(void)loop;
	session_enter(s);
	/* TLS can need either direction for either operation */
	if ((revents & EV_READ) || (sd->ssl != NULL && (revents & EV_WRITE)))
		sd->rd_ready = 1;
	if ((revents & EV_WRITE) || (sd->ssl != NULL && (revents & EV_READ)))
		sd->wr_ready = 1;
	if (sd == &s->up && s->state == SS_UP_CONNECT && (revents & EV_WRITE)) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(sd->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
			session_log_limited(s, LOG_WARNING, "upstream-connect", "connect to %s failed: %s",
			                    s->login->route.server, strerror(err ? err : errno));
			upstream_retry(s);
		} else {
			upstream_connected(s);
		}
	}
	if (!s->dead)
		session_run(s);
	session_leave(s);
}

/* The activity timer of <s> expired: what that means depends on the state. */
static void
session_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct session *s = w->data;

	(void)loop;
	(void)revents;
	session_enter(s);
	ev_timer_stop(s->mp->loop, &s->timer);
	switch (s->state) {
	case SS_HANDSHAKE:
		session_close(s, "TLS handshake timeout");
		break;
	case SS_CMD:
	case SS_STARTTLS_FLUSH:
		session_ops(s)->bye(s, "Disconnected for inactivity.");
		session_finish(s);
		break;
	case SS_LOOKUP:
		login_lookup_tempfail(s, "lookup timeout");
		break;
	case SS_FAIL_DELAY:
		login_unknown_answer(s);
		break;
	case SS_UP_CONNECT:
		session_log_limited(s, LOG_WARNING, "upstream-connect", "connect to %s timed out",
		                    s->login->route.server);
		upstream_retry(s);
		break;
	case SS_UP_RETRY:
		upstream_connect(s);
		break;
	case SS_UP_TLS:
	case SS_UP_LOGIN:
		login_upstream_tempfail(s, "mailbox server timeout");
		break;
	case SS_RELAY:
		session_close(s, "idle timeout");
		break;
	case SS_CLOSING:
		session_close(s, "close timeout");
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
			session_finish(s);
			session_run(s);
		} else {
			session_close(s, "shutdown");
		}
		session_leave(s);
	}
}
