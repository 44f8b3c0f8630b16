/*
 * One-shot HTTP/1.x server: the metrics endpoint (render mode) and the
 * agent's auth_http endpoint (request mode). Everything is non-blocking on
 * the caller's libev loop: a client that connects and never sends, or
 * never reads, costs one slot until its deadline and delays nobody. In
 * render mode the request is not parsed: the first bytes read are enough,
 * as for any Prometheus scrape. In request mode the head is read up to its
 * blank line, bounded, and handed over whole; its meaning is the caller's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "listen.h"
#include "mhttp.h"
#include "parse.h"

#define MHTTP_HDR 128   /* room kept before the body for the header */
#define MHTTP_LINGER_MAX (256 * 1024)  /* most bytes read after an answer */

/* A client being answered. */
struct mhttp_client {
	struct mhttp *srv;
	int fd;
	ev_io io;
	ev_timer t;
	char *buf;
	size_t off, len;
	int writing;
	int waiting;                   /* request mode: handed over, no reply yet */
	int lingering;                 /* request mode: answered, reading to EOF */
	size_t discarded;              /* bytes read while lingering */
	void (*drop)(void *);          /* told when dropped while <waiting> */
	void *drop_arg;
	char peer[64];
	LIST_ENTRY(mhttp_client) next;
};

struct mhttp {
	struct ev_loop *loop;
	const struct logger *log;
	mhttp_render_fn render;        /* render mode, or NULL */
	mhttp_request_fn request;      /* request mode, or NULL */
	void *arg;
	double deadline;
	size_t max_head;               /* request mode: largest head */
	unsigned max_clients;
	const char *what;              /* for log lines */
	int fd;
	uint16_t port;
	ev_io io;
	unsigned nclients;
	struct listen_pause pause;
	LIST_HEAD(, mhttp_client) clients;
};

static void
mclient_free(struct mhttp_client *m)
{
	struct mhttp *srv = m->srv;

	ev_io_stop(srv->loop, &m->io);
	ev_timer_stop(srv->loop, &m->t);
	close(m->fd);
	if (m->buf != NULL && srv->request != NULL)
		explicit_bzero(m->buf, m->len > m->off ? m->len : m->off);
	free(m->buf);
	LIST_REMOVE(m, next);
	srv->nclients--;
	/* last: the callback may not touch <m> (it is gone from the list) */
	if (m->waiting && m->drop != NULL)
		m->drop(m->drop_arg);
	free(m);
}

/* Start writing what <m> holds from m->off to m->len. */
static void
mclient_write_start(struct mhttp_client *m)
{
	struct mhttp *srv = m->srv;

	m->writing = 1;
	ev_io_stop(srv->loop, &m->io);
	ev_io_set(&m->io, m->fd, EV_WRITE);
	ev_io_start(srv->loop, &m->io);
}

/*
 * Request mode, answer written: read what the peer still sends until it
 * closes (bounded by the deadline and MHTTP_LINGER_MAX), so that closing
 * with unread input does not reset the connection before the peer has
 * read the answer.
 */
static void
mclient_linger(struct mhttp_client *m)
{
	char tmp[4096];
	ssize_t n;

	for (;;) {
		n = read(m->fd, tmp, sizeof(tmp));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0 || (m->discarded += (size_t)n) > MHTTP_LINGER_MAX) {
			mclient_free(m);
			return;
		}
	}
}

/* Answer <m> with a canned 400 and close: request mode, bad head. */
static void
mclient_bad(struct mhttp_client *m)
{
	static const char bad[] = "HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n"
	                          "Connection: close\r\n\r\n";
	char *b;

	explicit_bzero(m->buf, m->off);
	/* the head's buffer may be smaller than the answer */
	if ((b = realloc(m->buf, sizeof(bad))) == NULL) {
		mclient_free(m);
		return;
	}
	m->buf = b;
	memcpy(m->buf, bad, sizeof(bad) - 1);
	m->off = 0;
	m->len = sizeof(bad) - 1;
	mclient_write_start(m);
}

/*
 * Return the length of the request head in <buf> (<len> bytes) through
 * its blank line (CRLF CRLF, or bare LFs), or 0 when it is not complete.
 */
static size_t
head_end(const char *buf, size_t len, size_t from)
{
	size_t i = from > 3 ? from - 3 : 0;

	for (; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/*
 * Request mode: read what <m> sent; hand a complete head over, answer an
 * oversized one with 400. Returns -1 when <m> was freed.
 */
static int
mclient_read_req(struct mhttp_client *m)
{
	struct mhttp *srv = m->srv;
	size_t end;
	ssize_t n;

	if (m->buf == NULL && (m->buf = malloc(srv->max_head + 1)) == NULL) {
		mclient_free(m);
		return -1;
	}
	for (;;) {
		if (m->off >= srv->max_head) {
			log_limited(srv->log, LOG_WARNING, "mhttp-bad",
			            "%s: %s: request head over %zu bytes: answering 400",
			            srv->what, m->peer, srv->max_head);
			mclient_bad(m);
			return 0;
		}
		n = read(m->fd, m->buf + m->off, srv->max_head - m->off);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0) {
			mclient_free(m);
			return -1;
		}
		end = head_end(m->buf, m->off + (size_t)n, m->off);
		m->off += (size_t)n;
		if (end > 0)
			break;
	}
	/* bytes after the head (a body, pipelining) are not read: one
	 * request per connection */
	m->buf[end] = '\0';
	m->waiting = 1;
	ev_io_stop(srv->loop, &m->io);
	ev_timer_stop(srv->loop, &m->t);
	ev_timer_set(&m->t, srv->deadline, 0.);
	ev_timer_start(srv->loop, &m->t);
	srv->request(srv->arg, m, m->buf, end);
	return 0;
}

/* Render the answer into <m>'s buffer, header in front. Returns 0 or -1. */
static int
mclient_render(struct mhttp_client *m)
{
	struct mhttp *srv = m->srv;
	size_t off = MHTTP_HDR;
	char head[MHTTP_HDR];
	int n;

	if ((m->buf = malloc(MHTTP_BUF)) == NULL)
		return -1;
	if (srv->render(srv->arg, m->buf, MHTTP_BUF, &off) < 0) {
		log_warnx(srv->log, "metrics: the answer does not fit in %d bytes", MHTTP_BUF);
		return -1;
	}
	n = snprintf(head, sizeof(head),
	             "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
	             "Content-Length: %zu\r\nConnection: close\r\n\r\n", off - MHTTP_HDR);
	if (n < 0 || (size_t)n > MHTTP_HDR)
		return -1;
	memcpy(m->buf + MHTTP_HDR - (size_t)n, head, (size_t)n);
	m->off = MHTTP_HDR - (size_t)n;
	m->len = off;
	return 0;
}

static void
mclient_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct mhttp_client *m = w->data;
	char tmp[2048];
	ssize_t n;

	(void)revents;
	if (m->lingering) {
		mclient_linger(m);
		return;
	}
	if (!m->writing && m->srv->request != NULL) {
		(void)mclient_read_req(m);
		return;
	}
	if (!m->writing) {
		n = read(m->fd, tmp, sizeof(tmp));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0 || mclient_render(m) < 0) {
			mclient_free(m);
			return;
		}
		m->writing = 1;
		ev_io_stop(loop, &m->io);
		ev_io_set(&m->io, m->fd, EV_WRITE);
		ev_io_start(loop, &m->io);
	}
	while (m->off < m->len) {
		n = send(m->fd, m->buf + m->off, m->len - m->off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			break;
		}
		m->off += (size_t)n;
	}
	if (m->off >= m->len && m->srv->request != NULL && shutdown(m->fd, SHUT_WR) == 0) {
		m->lingering = 1;
		ev_io_stop(loop, &m->io);
		ev_io_set(&m->io, m->fd, EV_READ);
		ev_io_start(loop, &m->io);
		return;
	}
	mclient_free(m);
}

static void
mclient_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	mclient_free(w->data);
}

static void
mhttp_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct mhttp *srv = w->data;
	struct mhttp_client *m;
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd, i;

	(void)revents;
	for (i = 0; i < MHTTP_MAX_CLIENTS; i++) {
		sslen = sizeof(ss);
		if ((fd = accept4(srv->fd, (struct sockaddr *)&ss, &sslen,
		                  SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
			(void)listen_pause_on_error(&srv->pause, errno);
			return;
		}
		if (srv->nclients >= srv->max_clients || (m = calloc(1, sizeof(*m))) == NULL) {
			if (srv->request != NULL)
				log_limited(srv->log, LOG_WARNING, "mhttp-full",
				            "%s: %u clients at once: refusing", srv->what,
				            srv->max_clients);
			close(fd);
			continue;
		}
		m->srv = srv;
		m->fd = fd;
		parse_addr_str((struct sockaddr *)&ss, 0, m->peer, sizeof(m->peer));
		ev_io_init(&m->io, mclient_io_cb, fd, EV_READ);
		m->io.data = m;
		ev_timer_init(&m->t, mclient_timeout_cb, srv->deadline, 0.);
		m->t.data = m;
		LIST_INSERT_HEAD(&srv->clients, m, next);
		srv->nclients++;
		ev_io_start(loop, &m->io);
		ev_timer_start(loop, &m->t);
	}
}

/* Listen on <addr> for <srv>, whose mode fields are set. Returns it, or NULL. */
static struct mhttp *
mhttp_listen(struct mhttp *srv, struct ev_loop *loop, const char *addr, double deadline_s,
             int reuseport, const struct logger *lg)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;

	if (addr == NULL || parse_addr(addr, 0, &ss, &len) < 0) {
		log_err(lg, "%s: bad address '%s'", srv->what, addr ? addr : "");
		free(srv);
		return NULL;
	}
	srv->loop = loop;
	srv->log = lg;
	srv->deadline = deadline_s > 0 ? deadline_s : 5.;
	LIST_INIT(&srv->clients);
	srv->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->fd < 0 ||
	    setsockopt(srv->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (reuseport && setsockopt(srv->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    bind(srv->fd, (struct sockaddr *)&ss, len) < 0 || listen(srv->fd, 64) < 0) {
		log_errno(lg, LOG_ERR, "%s: cannot listen on %s", srv->what, addr);
		if (srv->fd >= 0)
			close(srv->fd);
		free(srv);
		return NULL;
	}
	len = sizeof(ss);
	if (getsockname(srv->fd, (struct sockaddr *)&ss, &len) == 0)
		srv->port = ntohs(ss.ss_family == AF_INET6
		                  ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                  : ((struct sockaddr_in *)&ss)->sin_port);
	ev_io_init(&srv->io, mhttp_accept_cb, srv->fd, EV_READ);
	srv->io.data = srv;
	listen_pause_init(&srv->pause, loop, &srv->io, lg, srv->what);
	ev_io_start(loop, &srv->io);
	return srv;
}

/*
 * Listen on <addr> and answer each connection with what <render>(<arg>)
 * writes, dropping a client after <deadline_s>. Returns the server, or
 * NULL (logged).
 */
struct mhttp *
mhttp_start(struct ev_loop *loop, const char *addr, mhttp_render_fn render, void *arg,
            double deadline_s, int reuseport, const struct logger *lg)
{
	struct mhttp *srv = calloc(1, sizeof(*srv));

	if (srv == NULL)
		return NULL;
	srv->render = render;
	srv->arg = arg;
	srv->max_clients = MHTTP_MAX_CLIENTS;
	srv->what = "metrics";
	return mhttp_listen(srv, loop, addr, deadline_s, reuseport, lg);
}

/*
 * Listen on <addr> in request mode: one head of at most <max_head> bytes
 * per connection, given to <fn>(<arg>). Returns the server, or NULL.
 */
struct mhttp *
mhttp_start_req(struct ev_loop *loop, const char *addr, mhttp_request_fn fn, void *arg,
                double deadline_s, size_t max_head, unsigned max_clients, const char *what,
                const struct logger *lg)
{
	struct mhttp *srv = calloc(1, sizeof(*srv));

	if (srv == NULL)
		return NULL;
	srv->request = fn;
	srv->arg = arg;
	srv->max_head = max_head > 0 ? max_head : 8192;
	srv->max_clients = max_clients > 0 ? max_clients : MHTTP_MAX_CLIENTS;
	srv->what = what;
	return mhttp_listen(srv, loop, addr, deadline_s, 1, lg);
}

/* Queue answer <data> (<len> bytes) for <c>, then close it. Returns 0 or -1. */
int
mhttp_reply(struct mhttp_client *c, const char *data, size_t len)
{
	char *b;

	c->waiting = 0;
	if (c->buf != NULL)
		explicit_bzero(c->buf, c->off);
	if ((b = realloc(c->buf, len > 0 ? len : 1)) == NULL) {
		mclient_free(c);
		return -1;
	}
	c->buf = b;
	memcpy(c->buf, data, len);
	c->off = 0;
	c->len = len;
	mclient_write_start(c);
	return 0;
}

/* Call <fn>(<arg>) if <c> is dropped before its reply. */
void
mhttp_on_drop(struct mhttp_client *c, void (*fn)(void *), void *arg)
{
	c->drop = fn;
	c->drop_arg = arg;
}

/* Return the peer address of <c>. */
const char *
mhttp_peer(const struct mhttp_client *c)
{
	return c->peer;
}

/* Return the port <m> listens on. */
uint16_t
mhttp_port(const struct mhttp *m)
{
	return m->port;
}

/* Return the number of clients <m> is serving. */
unsigned
mhttp_clients(const struct mhttp *m)
{
	return m->nclients;
}

/* Close the listener and every client of <m>, and free it. */
void
mhttp_stop(struct mhttp *m)
{
	if (m == NULL)
		return;
	while (!LIST_EMPTY(&m->clients))
		mclient_free(LIST_FIRST(&m->clients));
	listen_pause_stop(&m->pause);
	ev_io_stop(m->loop, &m->io);
	close(m->fd);
	free(m);
}
