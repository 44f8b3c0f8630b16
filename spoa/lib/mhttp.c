/*
 * One-shot HTTP/1.0 responder for the metrics endpoint. Everything is
 * non-blocking on the caller's libev loop: a scraper that connects and
 * never sends, or never reads, costs one slot until its deadline and
 * delays nobody. The request is not parsed: the first bytes read are
 * enough, as for any Prometheus scrape.
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

/* A client being answered. */
struct mclient {
	struct mhttp *srv;
	int fd;
	ev_io io;
	ev_timer t;
	char *buf;
	size_t off, len;
	int writing;
	LIST_ENTRY(mclient) next;
};

struct mhttp {
	struct ev_loop *loop;
	const struct logger *log;
	mhttp_render_fn render;
	void *arg;
	double deadline;
	int fd;
	uint16_t port;
	ev_io io;
	unsigned nclients;
	struct listen_pause pause;
	LIST_HEAD(, mclient) clients;
};

static void
mclient_free(struct mclient *m)
{
	struct mhttp *srv = m->srv;

	ev_io_stop(srv->loop, &m->io);
	ev_timer_stop(srv->loop, &m->t);
	close(m->fd);
	free(m->buf);
	LIST_REMOVE(m, next);
	srv->nclients--;
	free(m);
}

/* Render the answer into <m>'s buffer, header in front. Returns 0 or -1. */
static int
mclient_render(struct mclient *m)
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
	struct mclient *m = w->data;
	char tmp[2048];
	ssize_t n;

	(void)revents;
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
	struct mclient *m;
	int fd, i;

	(void)revents;
	for (i = 0; i < MHTTP_MAX_CLIENTS; i++) {
		if ((fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
			(void)listen_pause_on_error(&srv->pause, errno);
			return;
		}
		if (srv->nclients >= MHTTP_MAX_CLIENTS || (m = calloc(1, sizeof(*m))) == NULL) {
			close(fd);
			continue;
		}
		m->srv = srv;
		m->fd = fd;
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

/*
 * Listen on <addr> and answer each connection with what <render>(<arg>)
 * writes, dropping a client after <deadline_s>. Returns the server, or
 * NULL (logged).
 */
struct mhttp *
mhttp_start(struct ev_loop *loop, const char *addr, mhttp_render_fn render, void *arg,
            double deadline_s, int reuseport, const struct logger *lg)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct mhttp *srv;
	int one = 1;

	if (addr == NULL || parse_addr(addr, 0, &ss, &len) < 0) {
		log_err(lg, "metrics: bad address '%s'", addr ? addr : "");
		return NULL;
	}
	if ((srv = calloc(1, sizeof(*srv))) == NULL)
		return NULL;
	srv->loop = loop;
	srv->log = lg;
	srv->render = render;
	srv->arg = arg;
	srv->deadline = deadline_s > 0 ? deadline_s : 5.;
	LIST_INIT(&srv->clients);
	srv->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->fd < 0 ||
	    setsockopt(srv->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (reuseport && setsockopt(srv->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    bind(srv->fd, (struct sockaddr *)&ss, len) < 0 || listen(srv->fd, 64) < 0) {
		log_errno(lg, LOG_ERR, "metrics: cannot listen on %s", addr);
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
	listen_pause_init(&srv->pause, loop, &srv->io, lg, "the metrics endpoint");
	ev_io_start(loop, &srv->io);
	return srv;
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
