/*
 * The mailbox server side during login: a non-blocking connect, the
 * commands queued for the server, and a line reader that hands each
 * complete line to the protocol handler. Bytes from the server are only
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

/* The connecting socket of <s> became writable: PH_OK when connected, else PH_FAIL (logged). */
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
 * Hand every complete line in the mailbox server input of <s> to the
 * protocol handler until one decides the login. Returns what it decided
 * (PH_OK, PH_FAIL, PH_TEMPFAIL with <why>), or PH_MORE.
 */
enum phase
upstream_input(struct session *s, const char **why)
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
