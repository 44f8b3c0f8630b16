/*
 * The relay: after login, bytes move both ways without parsing. A side
 * whose output buffer is full stops the other side's reads (back-pressure);
 * buffers go back to the pool as soon as they are empty, so an idle
 * logged-in connection holds none. End of stream from the client is passed
 * on as a half-close; end of stream from the mailbox server ends the
 * session once its last bytes reached the client.
 */
#include "mp.h"

/*
 * Set up the buffers of <s> for relaying: bytes that followed the login
 * answer go to the client, the login phase's buffers go back. Returns 0,
 * or -1 when they do not fit.
 */
int
relay_start(struct session *s)
{
	struct mp *mp = s->mp;

	if (mbuf_len(s->uin) > 0) {
		if (s->u2c == NULL) {
			s->u2c = s->uin;
			s->uin = NULL;
		} else if (mbuf_append(&mp->pool, &s->u2c, s->uin->d + s->uin->r,
		                       mbuf_len(s->uin)) < 0) {
			return -1;
		}
	}
	mbuf_put(&mp->pool, &s->uin);
	mbuf_put_wipe(&mp->pool, &s->uout);       /* the replayed login */
	mbuf_wipe_consumed(s->c2u);               /* the client's login, before what it pipelined */
	return 0;
}

/*
 * Move what can be moved between the two sides of <s>. Returns 1 on
 * progress, 0 when everything waits for the sockets, -1 when the relay
 * is over (<why>).
 */
int
relay_pump(struct session *s, const char **why)
{
	struct mp *mp = s->mp;
	size_t before;
	int p = 0, r;

	/* client -> mailbox server */
	if (!s->cl.eof) {
		before = mbuf_len(s->c2u);
		if ((r = side_fill(&s->cl, &mp->pool, &s->c2u)) < 0) {
			*why = "client read error";
			return -1;
		}
		mp_count(mp, MPC_BYTES_C2U, mbuf_len(s->c2u) - before);
		p |= r;
	}
	if ((r = side_flush(&s->up, &mp->pool, &s->c2u, 0)) < 0) {
		*why = "mailbox server write error";
		return -1;
	}
	p |= r;
	if (s->cl.eof && mbuf_len(s->c2u) == 0 && !s->up.shut)
		side_shutdown(&s->up);     /* the client's end of stream, passed on */

	/* mailbox server -> client */
	if (!s->up.eof) {
		before = mbuf_len(s->u2c);
		if ((r = side_fill(&s->up, &mp->pool, &s->u2c)) < 0) {
			*why = "mailbox server read error";
			return -1;
		}
		mp_count(mp, MPC_BYTES_U2C, mbuf_len(s->u2c) - before);
		p |= r;
	}
	if ((r = side_flush(&s->cl, &mp->pool, &s->u2c, 0)) < 0) {
		*why = "client write error";
		return -1;
	}
	p |= r;
	if (s->up.eof && mbuf_len(s->u2c) == 0) {
		*why = "mailbox server closed";
		return -1;
	}
	return p;
}
