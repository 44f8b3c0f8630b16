/*
 * One HAProxy connection: the SPOP state machine (HELLO, NOTIFY/ACK,
 * DISCONNECT in both directions), a bounded input buffer holding at most
 * one frame of the negotiated size, and an output buffer that only ever
 * receives whole frames and is flushed with partial writes and EV_WRITE.
 * Frames queued during one loop iteration (a read batch, a batch of job
 * completions) are written together by one ev_prepare watcher, just
 * before the loop waits again: one write() per batch, not per ACK.
 * A connection is freed only by spoa_conn_close(), which stops every
 * watcher and cancels its in-flight requests first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spoa.h"
#include "spop.h"

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_idle_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void conn_flush_all_cb(struct ev_loop *loop, ev_prepare *w, int revents);
static int conn_flush(struct spoa_conn *c);

/*
 * Set up the deferred-output machinery of <sp> (the dirty list and its
 * ev_prepare watcher, started only while the list is not empty).
 */
void
spoa_conn_init(struct spoa *sp)
{
	TAILQ_INIT(&sp->dirty);
	ev_prepare_init(&sp->flush_w, conn_flush_all_cb);
	sp->flush_w.data = sp;
}

/* Put <c> on the list written before the loop blocks, once. */
static void
conn_mark_dirty(struct spoa_conn *c)
{
	struct spoa *sp = c->sp;

	if (c->dirty)
		return;
	if (TAILQ_EMPTY(&sp->dirty))
		ev_prepare_start(sp->loop, &sp->flush_w);
	c->dirty = 1;
	TAILQ_INSERT_TAIL(&sp->dirty, c, dlink);
}

/* Take <c> off the dirty list, if it is on it. */
static void
conn_unmark_dirty(struct spoa_conn *c)
{
	struct spoa *sp = c->sp;

	if (!c->dirty)
		return;
	c->dirty = 0;
	TAILQ_REMOVE(&sp->dirty, c, dlink);
	if (TAILQ_EMPTY(&sp->dirty))
		ev_prepare_stop(sp->loop, &sp->flush_w);
}

/*
 * Write the output queued on every connection of <sp> (each write may
 * close its own connection, e.g. one saying goodbye).
 */
void
spoa_conn_flush_pending(struct spoa *sp)
{
	struct spoa_conn *c;

	/* conn_flush() takes <c> off the list before it may close it. */
	while ((c = TAILQ_FIRST(&sp->dirty)) != NULL)
		conn_flush(c);
}

/* Before the loop blocks: write what this iteration queued. */
static void
conn_flush_all_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)revents;
	spoa_conn_flush_pending(w->data);
}

/* Return the SPOP frame size we offer, from the configuration. */
static uint32_t
our_max_frame(const struct spoa *sp)
{
	uint32_t m = spoa_cfg(sp)->spoa.max_frame_size;

	if (m < SPOP_FRAME_MIN_MAX)
		m = SPOP_FRAME_MIN_MAX;
	return m;
}

/*
 * Take over accepted socket <fd> from <peer> as a new HAProxy connection of
 * <sp>. On allocation failure the socket is closed and logged.
 */
void
spoa_conn_accept(struct spoa *sp, int fd, const char *peer)
{
	struct spoa_conn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		log_err(&sp->log, "spoa: out of memory accepting %s", peer);
		close(fd);
		return;
	}
	c->sp = sp;
	c->fd = fd;
	c->state = CONN_HELLO;
	c->max_frame = our_max_frame(sp);
	/* buffers are borrowed from the pool only while they hold bytes */
	c->in_size = (size_t)c->max_frame + SPOP_LEN_SIZE;
	TAILQ_INIT(&c->reqs);
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
	ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
	c->rio.data = c->wio.data = c;
	ev_init(&c->idle, conn_idle_cb);
	c->idle.repeat = spoa_cfg(sp)->spoa.idle_timeout_ms / 1000.0;
	c->idle.data = c;
	ev_io_start(sp->loop, &c->rio);
	if (c->idle.repeat > 0)
		ev_timer_again(sp->loop, &c->idle);
	TAILQ_INSERT_TAIL(&sp->conns, c, link);
	sp->nconns++;
	spoa_count(sp, SC_CONN_ACCEPTED);
	log_debug(&sp->log, "connection from %s", peer);
}

/*
 * Close <c>: stop its watchers, cancel its in-flight requests, free it.
 * <c> is invalid afterwards.
 */
void
spoa_conn_close(struct spoa_conn *c)
{
	struct spoa *sp = c->sp;
	struct spoa_req *r;

	ev_io_stop(sp->loop, &c->rio);
	ev_io_stop(sp->loop, &c->wio);
	ev_timer_stop(sp->loop, &c->idle);
	conn_unmark_dirty(c);
	/* In-flight lookups: their answers have nowhere to go. */
	while ((r = TAILQ_FIRST(&c->reqs)) != NULL) {
		TAILQ_REMOVE(&c->reqs, r, link);
		r->conn = NULL;
		spoa_msg_req_cancel(r);
	}
	close(c->fd);
	TAILQ_REMOVE(&sp->conns, c, link);
	sp->nconns--;
	mbuf_put(&sp->pool, &c->in);
	mbuf_put(&sp->pool, &c->out);
	free(c);
	if (sp->draining && sp->nconns == 0)
		ev_break(sp->loop, EVBREAK_ALL);
}

/*
 * Write what is pending. Returns 0 while the connection lives, -1 when
 * it was closed (then <c> is gone).
 */
static int
conn_flush(struct spoa_conn *c)
{
	struct spoa *sp = c->sp;

	conn_unmark_dirty(c);
	while (mbuf_len(c->out) > 0) {
		ssize_t n = write(c->fd, c->out->d + c->out->r, mbuf_len(c->out));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				ev_io_start(sp->loop, &c->wio);
				return 0;
			}
			log_debug(&sp->log, "%s: write: %s", c->peer, strerror(errno));
			spoa_conn_close(c);
			return -1;
		}
		mbuf_consume(c->out, (size_t)n);
	}
	mbuf_put(&sp->pool, &c->out);
	ev_io_stop(sp->loop, &c->wio);
	if (c->state == CONN_CLOSING) {
		spoa_conn_close(c);
		return -1;
	}
	return 0;
}

/*
 * Queue whole frame <frame> of <len> bytes on <c>; it is written before
 * the loop next waits (or by the write watcher when the socket is full).
 * Returns 0, or -1 when <c> was closed (backlog, out of memory).
 */
int
spoa_conn_send(struct spoa_conn *c, const uint8_t *frame, size_t len)
{
	/* Frames are appended whole, so HAProxy never sees two interleaved. */
	if (mbuf_reserve(&c->sp->pool, &c->out, len, SPOA_OUT_MAX) < 0) {
		if (mbuf_len(c->out) + len > SPOA_OUT_MAX)
			log_limited(&c->sp->log, LOG_WARNING, "spop-backlog",
			            "spoa: %s: output backlog over %d bytes, closing", c->peer,
			            SPOA_OUT_MAX);
		spoa_conn_close(c);
		return -1;
	}
	memcpy(c->out->d + c->out->w, frame, len);
	c->out->w += (uint32_t)len;
	spoa_count(c->sp, SC_FRAMES_OUT);
	if (!ev_is_active(&c->wio))
		conn_mark_dirty(c);   /* else the write watcher flushes it */
	return 0;
}

/*
 * Send AGENT-DISCONNECT with <status> and close once it is written.
 * Returns -1 when <c> is already gone, else 0.
 */
static int
conn_disconnect(struct spoa_conn *c, int status, const char *msg)
{
	uint8_t buf[512];
	int n;

	if (status != SPOP_ST_NORMAL) {
		spoa_count(c->sp, SC_PROTO_ERROR);
		log_limited(&c->sp->log, LOG_WARNING, "spop-error", "spoa: %s: disconnecting: %s",
		            c->peer, msg);
	}
	ev_io_stop(c->sp->loop, &c->rio);
	c->state = CONN_CLOSING;
	n = spop_agent_disconnect_encode(buf, sizeof(buf), (uint32_t)status, msg);
	if (n < 0) {
		spoa_conn_close(c);
		return -1;
	}
	return spoa_conn_send(c, buf, (size_t)n);
}

/*
 * Start draining <c>: an idle connection is sent AGENT-DISCONNECT now, a
 * busy one after its last answer.
 */
void
spoa_conn_drain(struct spoa_conn *c)
{
	/* Draining: a connection with nothing in flight says goodbye now;
	 * the others do when their last answer is sent. */
	if (c->state == CONN_CLOSING)
		return;
	if (c->inflight == 0 || c->state == CONN_HELLO)
		conn_disconnect(c, SPOP_ST_NORMAL, "agent shutting down");
}

/*
 * Send ACK <ack> (<len> bytes) for request <r> (unlinked from <c> first;
 * NULL for none) and, when draining and idle, the AGENT-DISCONNECT.
 * Returns 0, or -1 when <c> is gone.
 */
int
spoa_conn_answer(struct spoa_conn *c, struct spoa_req *r, const uint8_t *ack, size_t len)
{
	if (r != NULL) {
		TAILQ_REMOVE(&c->reqs, r, link);
		c->inflight--;
	}
	if (c->state == CONN_CLOSING)
		return 0;   /* HAProxy said goodbye: the answer has no taker */
	if (spoa_conn_send(c, ack, len) < 0)
		return -1;
	spoa_count(c->sp, SC_ACK);
	if (c->sp->draining && c->inflight == 0 && c->state == CONN_READY)
		return conn_disconnect(c, SPOP_ST_NORMAL, "agent shutting down");
	return 0;
}

/* Answer HAPROXY-HELLO frame <f>. Returns -1 when <c> is gone. */
static int
conn_hello(struct spoa_conn *c, const struct spop_frame *f)
{
	struct spop_hello h;
	uint8_t buf[256];
	int st, n;

	if (spop_hello_parse(f, &h, &st) < 0)
		return conn_disconnect(c, st, spop_status_str(st));
	if (h.max_frame_size < c->max_frame)
		c->max_frame = h.max_frame_size;
	n = spop_agent_hello_encode(buf, sizeof(buf), c->max_frame);
	if (n < 0)
		return conn_disconnect(c, SPOP_ST_RES, "cannot encode AGENT-HELLO");
	if (h.healthcheck) {
		spoa_count(c->sp, SC_HEALTHCHECK);
		/* Health check: answer, then close once it is written. */
		c->state = CONN_CLOSING;
		ev_io_stop(c->sp->loop, &c->rio);
	} else {
		spoa_count(c->sp, SC_HELLO);
		c->state = CONN_READY;
	}
	return spoa_conn_send(c, buf, (size_t)n);
}

/* Handle one whole frame <f>. Returns -1 when <c> is gone or closing. */
static int
conn_frame(struct spoa_conn *c, const struct spop_frame *f)
{
	struct spop_disconnect d;

	spoa_count(c->sp, SC_FRAMES_IN);
	if (c->state == CONN_HELLO) {
		if (f->type != SPOP_FRM_HAPROXY_HELLO)
			return conn_disconnect(c, SPOP_ST_INVALID, "expected HAPROXY-HELLO");
		return conn_hello(c, f);
	}
	switch (f->type) {
	case SPOP_FRM_NOTIFY:
		if (!(f->flags & SPOP_FL_FIN))
			return conn_disconnect(c, SPOP_ST_FRAG, spop_status_str(SPOP_ST_FRAG));
		spoa_count(c->sp, SC_NOTIFY);
		switch (spoa_msg_notify(c, f)) {
		case 0:
			return 0;
		case 1:
			return conn_disconnect(c, SPOP_ST_INVALID, "invalid NOTIFY");
		default:
			return -1;
		}
	case SPOP_FRM_UNSET:
		return conn_disconnect(c, SPOP_ST_FRAG, spop_status_str(SPOP_ST_FRAG));
	case SPOP_FRM_HAPROXY_DISCONNECT:
		spoa_count(c->sp, SC_DISCONNECT_IN);
		if (spop_disconnect_parse(f, &d) == 0 && d.status != SPOP_ST_NORMAL)
			log_limited(&c->sp->log, LOG_INFO, "spop-peer-error",
			            "spoa: %s: HAProxy disconnects: status %u (%.*s)", c->peer, d.status,
			            (int)(d.message.len > 200 ? 200 : d.message.len),
			            d.message.ptr ? (const char *)d.message.ptr : "");
		conn_disconnect(c, SPOP_ST_NORMAL, "");
		return -1;
	default:
		return conn_disconnect(c, SPOP_ST_INVALID, "unexpected frame type");
	}
}

static void
conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct spoa_conn *c = w->data;
	struct spop_frame f;
	size_t off = 0;
	ssize_t n;
	int st, r;

	(void)loop;
	(void)revents;
	/* room for the rest of one frame; the buffer goes back once parsed */
	if (mbuf_reserve(&c->sp->pool, &c->in, c->in_size - mbuf_len(c->in), c->in_size) < 0) {
		log_err(&c->sp->log, "spoa: %s: out of memory", c->peer);
		spoa_conn_close(c);
		return;
	}
	n = read(c->fd, c->in->d + c->in->w, c->in_size - mbuf_len(c->in));
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			if (mbuf_len(c->in) == 0)
				mbuf_put(&c->sp->pool, &c->in);
			return;
		}
		/* EOF or RST: HAProxy 3.x may close without DISCONNECT. */
		log_debug(&c->sp->log, "%s: closed by peer", c->peer);
		spoa_conn_close(c);
		return;
	}
	c->in->w += (uint32_t)n;
	if (c->idle.repeat > 0)
		ev_timer_again(c->sp->loop, &c->idle);
	while (c->state != CONN_CLOSING) {
		r = spop_frame_parse((const uint8_t *)c->in->d + c->in->r + off,
		                     mbuf_len(c->in) - off, c->max_frame, &f, &st);
		if (r == 0)
			break;
		if (r < 0) {
			conn_disconnect(c, st, spop_status_str(st));
			return;
		}
		off += (size_t)r;
		if (conn_frame(c, &f) < 0)
			return;   /* closing or gone: the rest of the input is moot */
	}
	if (c->state == CONN_CLOSING)
		return;
	mbuf_consume(c->in, off);
	if (mbuf_len(c->in) == 0)
		mbuf_put(&c->sp->pool, &c->in);
}

static void
conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	conn_flush(w->data);
}

static void
conn_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct spoa_conn *c = w->data;

	(void)loop;
	(void)revents;
	if (c->state == CONN_CLOSING) {
		/* the goodbye could not be written in a whole idle period */
		spoa_conn_close(c);
		return;
	}
	if (c->inflight > 0) {
		ev_timer_again(c->sp->loop, &c->idle);
		return;
	}
	conn_disconnect(c, SPOP_ST_TIMEOUT, "idle timeout");
}
