/*
 * The mailbox server side during login: a non-blocking connect, the TLS
 * handshake, the commands queued for the server, and a line reader that
 * hands each complete line to the protocol handler. Bytes from the server are only
 * ever parsed after its TLS handshake finished. Each call reports how its
 * step ended; retries, timeouts and what follows are the session's.
 */
#include <errno.h>
#include <string.h>

#include "mp.h"

#define UP_LINE_MAX 8192      /* longest line accepted from a mailbox server during login */

/*
 * Start a connect attempt of <s> to its routed server. Returns PH_OK when
 * connected, PH_MORE when in progress, PH_FAIL when the attempt failed
 * (logged; another may follow), PH_TEMPFAIL when none can be made (<why>).
 */
enum phase
upstream_connect(struct session *s, const char **why)
{
	struct login *lg = s->login;
	int r;

	lg->attempts++;
	r = side_connect(&s->up, (struct sockaddr *)&lg->route.addr, lg->route.addrlen);
	if (r == -2) {
		session_log_limited(s, LOG_ERR, "upstream-socket", "socket: %s", strerror(errno));
		*why = "cannot create a socket";
		return PH_TEMPFAIL;
	}
	if (r == -1) {
		session_log_limited(s, LOG_WARNING, "upstream-connect", "connect to %s failed: %s",
		                    lg->route.server, strerror(errno));
		return PH_FAIL;
	}
	return r == 1 ? PH_OK : PH_MORE;
}

/* Finish the connect of <s> once its socket is writable: PH_OK when connected, else PH_FAIL (logged). */
enum phase
upstream_connect_done(struct session *s)
{
	int err = side_connect_error(&s->up);

	if (err == 0)
		return PH_OK;
	session_log_limited(s, LOG_WARNING, "upstream-connect", "connect to %s failed: %s",
	                    s->login->route.server, strerror(err));
	return PH_FAIL;
}

/* Close the mailbox server side of <s> and drop its login-phase buffers. */
void
upstream_close(struct session *s)
{
	side_release(&s->up, s->mp->loop);
	mbuf_put(&s->mp->pool, &s->uin);
	mbuf_put_wipe(&s->mp->pool, &s->uout);   /* the replayed login */
}

/* Queue <len> bytes of <data> for the mailbox server of <s>. Returns 0, or -1 when full. */
int
upstream_send(struct session *s, const char *data, size_t len)
{
	return mbuf_append(&s->mp->pool, &s->uout, data, len);
}

/* Queue the next segment of the login command of <s> (after a "+"). Returns 0 or -1. */
int
upstream_send_seg(struct session *s)
{
	struct login *lg = s->login;
	size_t from = lg->sent_seg > 0 ? lg->seg[lg->sent_seg - 1] : 0;

	if (lg->sent_seg >= lg->nseg)
		return 0;
	lg->sent_seg++;
	return upstream_send(s, lg->cmd + from, lg->seg[lg->sent_seg - 1] - from);
}

/*
 * Drive the TLS handshake with the mailbox server of <s>. Returns PH_OK
 * when done, PH_MORE while it waits, PH_TEMPFAIL when it failed (logged).
 */
enum phase
upstream_handshake(struct session *s, const char **why)
{
	char err[256];
	int r = side_handshake(&s->up, err, sizeof(err));

	if (r > 0)
		return PH_OK;
	if (r == 0)
		return PH_MORE;
	/* its own budget: a client flood must not hide a mailbox server's failures */
	session_log_limited(s, LOG_INFO, "upstream-tls",
	                    "TLS handshake with the mailbox server failed: %s", err);
	*why = "TLS handshake with the mailbox server failed";
	return PH_TEMPFAIL;
}

/*
 * Hand every complete line in the mailbox server input of <s> to the
 * protocol handler until one decides the login. Returns what it decided
 * (PH_OK, PH_FAIL, PH_TEMPFAIL with <why>), or PH_MORE.
 */
static enum phase
upstream_lines(struct session *s, const char **why)
{
	char line[UP_LINE_MAX + 1];
	enum phase rc = PH_MORE;

	while (rc == PH_MORE && !s->dead && mbuf_len(s->uin) > 0) {
		struct mbuf *b = s->uin;
		const char *start = b->d + b->r;
		const char *lf = memchr(start, '\n', mbuf_len(b));
		size_t n;

		if (lf == NULL) {
			if (mbuf_len(b) > UP_LINE_MAX) {
				*why = "line too long from the mailbox server";
				return PH_TEMPFAIL;
			}
			break;
		}
		n = (size_t)(lf - start);
		if (n > UP_LINE_MAX) {
			*why = "line too long from the mailbox server";
			return PH_TEMPFAIL;
		}
		memcpy(line, start, n);
		mbuf_consume(b, n + 1);
		if (n > 0 && line[n - 1] == '\r')
			n--;
		line[n] = '\0';
		if (mbuf_len(s->uin) == 0)
			mbuf_put(&s->mp->pool, &s->uin);
		rc = session_ops(s)->up_line(s, line, n, why);
	}
	return rc;
}

/*
 * Move the login conversation with the mailbox server of <s> on: write
 * what is queued for it, read its lines and hand them to the protocol
 * handler. Sets <*progress> when bytes moved. Returns PH_MORE, or how the
 * login ended: PH_OK, PH_FAIL, PH_TEMPFAIL (<why>; also when the server
 * closes or fails before it answered).
 */
enum phase
upstream_pump(struct session *s, int *progress, const char **why)
{
	struct mbuf_pool *pool = &s->mp->pool;
	enum phase ph;
	int r;

	r = side_flush(&s->up, pool, &s->uout, 1);   /* the replayed login: wiped */
	if (r < 0) {
		*why = "mailbox server write error";
		return PH_TEMPFAIL;
	}
	*progress |= r;
	r = side_fill(&s->up, pool, &s->uin);
	if (r < 0 || (r == 0 && s->up.eof && mbuf_len(s->uin) == 0)) {
		*why = "mailbox server closed the connection";
		return PH_TEMPFAIL;
	}
	*progress |= r;
	if (mbuf_len(s->uin) == 0)
		return PH_MORE;
	ph = upstream_lines(s, why);
	if (ph == PH_MORE && s->up.eof) {
		*why = "mailbox server closed the connection";
		return PH_TEMPFAIL;
	}
	return ph;
}
