/*
 * The mailbox server side during login: non-blocking connect with a
 * timeout and a bounded number of attempts, optional TLS, and a line
 * reader that hands each complete line to the protocol handler. Bytes
 * from the server are only ever parsed after its TLS handshake finished.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "mp.h"

#define UP_LINE_MAX 8192      /* longest line accepted from a mailbox server during login */
#define RETRY_DELAY_MS 500    /* pause between connect attempts */

/* Connect attempt to the routed server of <s>; on failure retries or tempfails. */
void
upstream_connect(struct session *s)
{
	struct login *lg = s->login;
	int fd, one = 1;

	lg->attempts++;
	fd = socket(lg->route.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		session_log_limited(s, LOG_ERR, "upstream-socket", "socket: %s", strerror(errno));
		login_upstream_tempfail(s, "cannot create a socket");
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	s->up.fd = fd;
	s->up.events = 0;
	s->up.rd_ready = 0;
	s->up.wr_ready = 1;
	ev_io_set(&s->up.io, fd, 0);
	if (connect(fd, (struct sockaddr *)&lg->route.addr, lg->route.addrlen) == 0) {
		upstream_connected(s);
		return;
	}
	if (errno != EINPROGRESS) {
		session_log_limited(s, LOG_WARNING, "upstream-connect", "connect to %s failed: %s",
		                    lg->route.server, strerror(errno));
		upstream_retry(s);
		return;
	}
	s->state = SS_UP_CONNECT;
	session_set_timer(s, s->gen->cfg->mailproxy.connect_timeout_ms);
}

/* The TCP connection of <s> is up: start TLS or wait for the greeting. */
void
upstream_connected(struct session *s)
{
	const struct cfg_mailproxy *mc = &s->gen->cfg->mailproxy;

	s->login->step = 0;
	session_set_timer(s, mc->upstream_timeout_ms);
	if (mc->upstream_tls) {
		if (tls_client_start(s) < 0) {
			login_upstream_tempfail(s, "cannot start TLS to the mailbox server");
			return;
		}
		s->state = SS_UP_TLS;
	} else {
		s->state = SS_UP_LOGIN;
	}
}

/* A connect attempt of <s> failed: try again after a pause, or give up. */
void
upstream_retry(struct session *s)
{
	struct mp *mp = s->mp;
	unsigned max = s->gen->cfg->mailproxy.upstream_retries;

	mp_count(mp, MPC_UPSTREAM_CONNECT_FAIL, 1);
	upstream_close(s);
	if (max == 0)
		max = 1;
	if (s->login->attempts >= max) {
		login_upstream_tempfail(s, "mailbox server unreachable");
		return;
	}
	s->state = SS_UP_RETRY;
	session_set_timer(s, RETRY_DELAY_MS);
}

/* Queue <len> bytes of <data> for the mailbox server of <s>. */
void
upstream_send(struct session *s, const char *data, size_t len)
{
	if (mbuf_append(&s->mp->pool, &s->uout, data, len) < 0)
		login_upstream_tempfail(s, "mailbox server output buffer full");
}

/* Queue the next segment of the login command of <s> (after a "+"). */
void
upstream_send_seg(struct session *s)
{
	struct login *lg = s->login;
	size_t from = lg->sent_seg > 0 ? lg->seg[lg->sent_seg - 1] : 0;

	if (lg->sent_seg >= lg->nseg)
		return;
	upstream_send(s, lg->cmd + from, lg->seg[lg->sent_seg] - from);
	lg->sent_seg++;
}

/*
 * Hand every complete line in the mailbox server input of <s> to the
 * protocol handler, while the login phase lasts. Returns 0, or -1 when
 * <s> was closed.
 */
int
upstream_input(struct session *s)
{
	char line[UP_LINE_MAX + 1];

	while (!s->dead && s->state == SS_UP_LOGIN && mbuf_len(s->uin) > 0) {
		struct mbuf *b = s->uin;
		const char *start = b->d + b->r;
		const char *lf = memchr(start, '\n', mbuf_len(b));
		size_t n;

		if (lf == NULL) {
			if (mbuf_len(b) > UP_LINE_MAX)
				login_upstream_tempfail(s, "line too long from the mailbox server");
			break;
		}
		n = (size_t)(lf - start);
		if (n > UP_LINE_MAX) {
			login_upstream_tempfail(s, "line too long from the mailbox server");
			break;
		}
		memcpy(line, start, n);
		mbuf_consume(b, n + 1);
		if (n > 0 && line[n - 1] == '\r')
			n--;
		line[n] = '\0';
		if (mbuf_len(s->uin) == 0)
			mbuf_put(&s->mp->pool, &s->uin);
		session_ops(s)->up_line(s, line, n);
	}
	return s->dead ? -1 : 0;
}
