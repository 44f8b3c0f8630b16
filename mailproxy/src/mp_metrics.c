/*
 * The Prometheus endpoint: a tiny HTTP responder on a loopback port that
 * answers any request with the library counters, the daemon's own counters
 * and gauges, and the login latency histogram, then closes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "metrics.h"
#include "mp.h"
#include "parse.h"

#define METRICS_BUF 32768

static const struct { const char *name, *help; } counter_names[MPC__COUNT] = {
	[MPC_ACCEPTED] = { "gatehouse_mail_connections_total", "Client connections accepted" },
	[MPC_REFUSED_MAXCONN] = { "gatehouse_mail_refused_total", "Connections refused at max_connections" },
	[MPC_LOGIN_OK] = { "gatehouse_mail_login_ok_total", "Successful logins" },
	[MPC_LOGIN_FAIL] = { "gatehouse_mail_login_fail_total", "Failed logins" },
	[MPC_LOGIN_TEMPFAIL] = { "gatehouse_mail_login_tempfail_total", "Logins failed temporarily" },
	[MPC_LOGIN_THROTTLED] = { "gatehouse_mail_login_throttled_total", "Logins refused by the throttle" },
	[MPC_TLS_HANDSHAKE_FAIL] = { "gatehouse_mail_tls_handshake_fail_total", "Failed client TLS handshakes" },
	[MPC_STARTTLS] = { "gatehouse_mail_starttls_total", "STARTTLS/STLS upgrades" },
	[MPC_BAD_COMMANDS] = { "gatehouse_mail_bad_commands_total", "Bad pre-auth commands" },
	[MPC_UPSTREAM_CONNECT_FAIL] = { "gatehouse_mail_upstream_connect_fail_total", "Failed connects to mailbox servers" },
	[MPC_BYTES_C2U] = { "gatehouse_mail_bytes_client_to_server_total", "Relayed bytes, client to mailbox server" },
	[MPC_BYTES_U2C] = { "gatehouse_mail_bytes_server_to_client_total", "Relayed bytes, mailbox server to client" },
};

/* Render every metric of <mp> into <buf>. Returns the length. */
static size_t
render(struct mp *mp, char *buf, size_t len)
{
	size_t off = 0;
	int i;

	metrics_render(&mp->ag.metrics, buf, len, &off);
	for (i = 0; i < MPC__COUNT; i++)
		metrics_render_one(counter_names[i].name, counter_names[i].help, "counter",
		                   mp->counters[i], buf, len, &off);
	metrics_render_one("gatehouse_mail_sessions", "Open client sessions", "gauge",
	                   mp->nsessions, buf, len, &off);
	metrics_render_one("gatehouse_mail_handshakes", "TLS handshakes in progress", "gauge",
	                   mp->nhandshakes, buf, len, &off);
	metrics_render_one("gatehouse_mail_buffers", "Relay buffers in use", "gauge",
	                   mp->pool.in_use, buf, len, &off);
	metrics_hist_render(&mp->login_latency, "gatehouse_mail_login_seconds",
	                    "Login latency (lookup, connect, login)", buf, len, &off);
	return off;
}

static void
metrics_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct mp *mp = w->data;
	struct timeval tv = { .tv_usec = 200000 };
	char req[2048], hdr[160];
	char *body;
	size_t blen;
	ssize_t n;
	int fd, h;

	(void)loop;
	(void)revents;
	fd = accept4(mp->metrics_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	/* loopback only and tiny answers: short blocking I/O bounded by 200 ms timeouts */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	n = recv(fd, req, sizeof(req) - 1, 0);
	(void)n;
	body = malloc(METRICS_BUF);
	if (body == NULL) {
		close(fd);
		return;
	}
	blen = render(mp, body, METRICS_BUF);
	h = snprintf(hdr, sizeof(hdr), "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
	             "Content-Length: %zu\r\nConnection: close\r\n\r\n", blen);
	if (send(fd, hdr, (size_t)h, MSG_NOSIGNAL) == h)
		(void)!send(fd, body, blen, MSG_NOSIGNAL);
	free(body);
	shutdown(fd, SHUT_WR);
	close(fd);
}

/* Open the metrics endpoint of <mp> when configured. Returns 0 or -1 (logged). */
int
mp_metrics_start(struct mp *mp)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;

	mp->metrics_fd = -1;
	if (mp->cfg->mailproxy.metrics[0] == '\0')
		return 0;
	if (parse_addr(mp->cfg->mailproxy.metrics, 0, &ss, &len) < 0) {
		log_err(&mp->log, "metrics: bad address %s", mp->cfg->mailproxy.metrics);
		return -1;
	}
	mp->metrics_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (mp->metrics_fd < 0)
		return -1;
	setsockopt(mp->metrics_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(mp->metrics_fd, (struct sockaddr *)&ss, len) < 0 ||
	    listen(mp->metrics_fd, 16) < 0) {
		log_errno(&mp->log, LOG_ERR, "metrics: %s", mp->cfg->mailproxy.metrics);
		close(mp->metrics_fd);
		mp->metrics_fd = -1;
		return -1;
	}
	ev_io_init(&mp->metrics_io, metrics_accept_cb, mp->metrics_fd, EV_READ);
	mp->metrics_io.data = mp;
	ev_io_start(mp->loop, &mp->metrics_io);
	return 0;
}

/* Close the metrics endpoint of <mp>. */
void
mp_metrics_stop(struct mp *mp)
{
	if (mp->metrics_fd < 0)
		return;
	ev_io_stop(mp->loop, &mp->metrics_io);
	close(mp->metrics_fd);
	mp->metrics_fd = -1;
}
