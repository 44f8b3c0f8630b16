/*
 * The relay: after login, bytes move both ways without parsing. A side
 * whose output buffer is full stops the other side's reads (back-pressure);
 * buffers go back to the pool as soon as they are empty, so an idle
 * logged-in connection holds none. End of stream from the client is passed
 * on as a half-close; end of stream from the mailbox server ends the
 * session once its last bytes reached the client.
 */
#include <sys/socket.h>

#include "mp.h"

/* Switch <s> to relaying; bytes that followed the login answer go to the client. */
void
relay_start(struct session *s)
{
	struct mp *mp = s->mp;
	const struct cfg_mailproxy *mc = &s->gen->cfg->mailproxy;

	s->state = SS_RELAY;
	session_parser_free(s);
	if (mbuf_len(s->uin) > 0) {
		if (s->u2c == NULL) {
			s->u2c = s->uin;
			s->uin = NULL;
		} else if (mbuf_append(&mp->pool, &s->u2c, s->uin->d + s->uin->r,
		                       mbuf_len(s->uin)) < 0) {
			session_close(s, "relay buffer overflow");
			return;
		}
	}
	mbuf_put(&mp->pool, &s->uin);
	mbuf_put_wipe(&mp->pool, &s->uout);       /* the replayed login */
	mbuf_wipe_consumed(s->c2u);               /* the client's login, before what it pipelined */
	session_set_timer(s, s->proto == MP_IMAP ? mc->imap_idle_timeout_ms
	                                         : mc->pop3_idle_timeout_ms);
}

/* Pass the client's end of stream on to the mailbox server. */
static void
relay_half_close(struct session *s)
{
	if (s->up.ssl != NULL)
		SSL_shutdown(s->up.ssl);
	shutdown(s->up.fd, SHUT_WR);
	s->up.shut = 1;
}

/*
 * Move what can be moved between the two sides of <s>. Returns 1 on
 * progress, 0 when everything waits for the sockets, -1 when <s> closed.
 */
int
relay_pump(struct session *s)
{
	struct mp *mp = s->mp;
	size_t before;
	int p = 0, r;

	/* client -> mailbox server */
	if (!s->cl.eof) {
		before = mbuf_len(s->c2u);
		if ((r = relay_fill(s, &s->cl, &s->c2u)) < 0) {
			session_close(s, "client read error");
			return -1;
		}
		mp_count(mp, MPC_BYTES_C2U, mbuf_len(s->c2u) - before);
		p |= r;
	}
	if ((r = relay_flush(s, &s->up, &s->c2u)) < 0) {
		session_close(s, "mailbox server write error");
		return -1;
	}
	p |= r;
	if (s->cl.eof && mbuf_len(s->c2u) == 0 && !s->up.shut)
		relay_half_close(s);

	/* mailbox server -> client */
	if (!s->up.eof) {
		before = mbuf_len(s->u2c);
		if ((r = relay_fill(s, &s->up, &s->u2c)) < 0) {
			session_close(s, "mailbox server read error");
			return -1;
		}
		mp_count(mp, MPC_BYTES_U2C, mbuf_len(s->u2c) - before);
		p |= r;
	}
	if ((r = relay_flush(s, &s->cl, &s->u2c)) < 0) {
		session_close(s, "client write error");
		return -1;
	}
	p |= r;
	if (s->up.eof && mbuf_len(s->u2c) == 0) {
		session_close(s, "mailbox server closed");
		return -1;
	}
	if (p)
		ev_timer_again(mp->loop, &s->timer);
	return p;
}
