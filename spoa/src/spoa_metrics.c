/*
 * The Prometheus endpoint: a tiny HTTP/1.0 server on a loopback address.
 * Each connection gets the whole text rendering of the library counters
 * and the daemon's own, then is closed. Requests are not parsed beyond
 * waiting for the first read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics.h"
#include "parse.h"
#include "spoa.h"

#define METRICS_BUF (64 * 1024)

/* A metrics client being answered. */
struct mclient {
	struct spoa *sp;
	int fd;
	ev_io io;
	ev_timer t;
	char *buf;
	size_t off, len;
	int writing;
};

/* Names and help texts of the daemon counters. */
static const struct {
	const char *name, *help, *type;
} sc_desc[SC__COUNT] = {
	[SC_CONN_ACCEPTED] = { "gatehouse_spoa_connections_total", "SPOP connections accepted", "counter" },
	[SC_CONN_REFUSED] = { "gatehouse_spoa_connections_refused_total", "SPOP connections refused (limit)", "counter" },
	[SC_FRAMES_IN] = { "gatehouse_spoa_frames_in_total", "SPOP frames received", "counter" },
	[SC_FRAMES_OUT] = { "gatehouse_spoa_frames_out_total", "SPOP frames sent", "counter" },
	[SC_HELLO] = { "gatehouse_spoa_hello_total", "HAPROXY-HELLO handshakes", "counter" },
	[SC_HEALTHCHECK] = { "gatehouse_spoa_healthchecks_total", "health-check HELLOs", "counter" },
	[SC_NOTIFY] = { "gatehouse_spoa_notify_total", "NOTIFY frames", "counter" },
	[SC_ACK] = { "gatehouse_spoa_ack_total", "ACK frames sent", "counter" },
	[SC_DISCONNECT_IN] = { "gatehouse_spoa_disconnect_in_total", "HAPROXY-DISCONNECT frames", "counter" },
	[SC_PROTO_ERROR] = { "gatehouse_spoa_protocol_errors_total", "connections closed on a protocol error", "counter" },
	[SC_DEADLINE] = { "gatehouse_spoa_deadline_total", "requests answered with status=timeout", "counter" },
	[SC_BUSY] = { "gatehouse_spoa_busy_total", "requests answered busy (queue full)", "counter" },
	[SC_ROUTE_OK] = { "gatehouse_spoa_route_ok_total", "route answers with a server", "counter" },
	[SC_ROUTE_NONE] = { "gatehouse_spoa_route_none_total", "requests naming no user", "counter" },
	[SC_ROUTE_FAIL] = { "gatehouse_spoa_route_fail_total", "route answers without a server", "counter" },
	[SC_LOGIN_REJECT] = { "gatehouse_spoa_login_throttled_total", "logins refused by throttling", "counter" },
};

static void
mclient_free(struct mclient *m)
{
	ev_io_stop(m->sp->loop, &m->io);
	ev_timer_stop(m->sp->loop, &m->t);
	close(m->fd);
	free(m->buf);
	free(m);
}

/* Render everything into <m>'s buffer. Returns 0 or -1. */
static int
mclient_render(struct mclient *m)
{
	struct spoa *sp = m->sp;
	size_t off = 0, hdr;
	char head[128];
	int i, n;

	m->buf = malloc(METRICS_BUF);
	if (m->buf == NULL)
		return -1;
	hdr = 100;   /* room for the header, written last */
	off = hdr;
	if (metrics_render(&sp->gen->ag.metrics, m->buf, METRICS_BUF, &off) < 0)
		return -1;
	for (i = 0; i < SC__COUNT; i++) {
		if (metrics_render_one(sc_desc[i].name, sc_desc[i].help, sc_desc[i].type,
		                       atomic_load(&sp->c[i]), m->buf, METRICS_BUF, &off) < 0)
			return -1;
	}
	if (metrics_render_one("gatehouse_spoa_connections", "SPOP connections open", "gauge",
	                       sp->nconns, m->buf, METRICS_BUF, &off) < 0 ||
	    metrics_hist_render(&sp->ack_latency, "gatehouse_spoa_ack_latency_seconds",
	                        "time from NOTIFY to ACK", m->buf, METRICS_BUF, &off) < 0)
		return -1;
	n = snprintf(head, sizeof(head),
	             "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
	             "Content-Length: %zu\r\n\r\n", off - hdr);
	if (n < 0 || (size_t)n > hdr)
		return -1;
	memcpy(m->buf + hdr - (size_t)n, head, (size_t)n);
	m->off = hdr - (size_t)n;
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
		n = write(m->fd, m->buf + m->off, m->len - m->off);
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
metrics_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct spoa *sp = w->data;
	struct mclient *m;
	int fd;

	(void)revents;
	fd = accept4(sp->mfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		close(fd);
		return;
	}
	m->sp = sp;
	m->fd = fd;
	ev_io_init(&m->io, mclient_io_cb, fd, EV_READ);
	m->io.data = m;
	ev_timer_init(&m->t, mclient_timeout_cb, 5., 0.);
	m->t.data = m;
	ev_io_start(loop, &m->io);
	ev_timer_start(loop, &m->t);
}

/*
 * Serve metrics of <sp> on "<ip>:<port>" <addr> (empty: off). Returns 0,
 * or -1 (logged) when the address is bad or cannot be bound.
 */
int
spoa_metrics_start(struct spoa *sp, const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;

	sp->mfd = -1;
	if (addr == NULL || addr[0] == '\0')
		return 0;
	if (parse_addr(addr, 0, &ss, &len) < 0) {
		log_err(&sp->log, "spoa: bad metrics address '%s'", addr);
		return -1;
	}
	sp->mfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sp->mfd < 0 ||
	    setsockopt(sp->mfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(sp->mfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(sp->mfd, (struct sockaddr *)&ss, len) < 0 || listen(sp->mfd, 64) < 0) {
		log_warn(&sp->log, "spoa: metrics listener %s", addr);
		if (sp->mfd >= 0)
			close(sp->mfd);
		sp->mfd = -1;
		return -1;
	}
	ev_io_init(&sp->metrics_w, metrics_accept_cb, sp->mfd, EV_READ);
	sp->metrics_w.data = sp;
	ev_io_start(sp->loop, &sp->metrics_w);
	return 0;
}

/*
 * Stop serving metrics for <sp>.
 */
void
spoa_metrics_stop(struct spoa *sp)
{
	if (sp->mfd < 0)
		return;
	ev_io_stop(sp->loop, &sp->metrics_w);
	close(sp->mfd);
	sp->mfd = -1;
}
