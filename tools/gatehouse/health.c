/*
 * Health probes for the gatehouse command (see health.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "health.h"
#include "parse.h"

/*
 * Return milliseconds of the monotonic clock.
 */
long
health_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Start a non-blocking connect to <sa>. Returns the fd (connected or in
 * progress, *done set when already connected) or -1 with errno. */
static int
start_connect(const struct sockaddr *sa, socklen_t len, int *done)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	*done = 0;
	if (fd < 0)
		return -1;
	if (connect(fd, sa, len) == 0) {
		*done = 1;
		return fd;
	}
	if (errno != EINPROGRESS) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/*
 * Probe every one of <p>[<n>] in parallel within <timeout_ms>.
 */
void
health_tcp_many(struct health_probe *p, int n, int timeout_ms)
{
	struct pollfd *pf;
	long t0 = health_now_ms();
	int i, left = 0;

	pf = calloc(n > 0 ? (size_t)n : 1, sizeof(*pf));
	if (pf == NULL) {
		for (i = 0; i < n; i++)
			snprintf(p[i].err, sizeof(p[i].err), "out of memory");
		return;
	}
	for (i = 0; i < n; i++) {
		int done;

		p[i].ok = 0;
		p[i].err[0] = '\0';
		pf[i].fd = start_connect((const struct sockaddr *)&p[i].addr, p[i].len, &done);
		pf[i].events = POLLOUT;
		if (pf[i].fd < 0) {
			snprintf(p[i].err, sizeof(p[i].err), "%s", strerror(errno));
			p[i].ms = health_now_ms() - t0;
		} else if (done) {
			p[i].ok = 1;
			p[i].ms = health_now_ms() - t0;
			close(pf[i].fd);
			pf[i].fd = -1;
		} else {
			left++;
		}
	}
	while (left > 0) {
		long rem = timeout_ms - (health_now_ms() - t0);
		int r;

		if (rem <= 0)
			break;
		r = poll(pf, (nfds_t)n, (int)rem);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (i = 0; i < n; i++) {
			int soerr = 0;
			socklen_t sl = sizeof(soerr);

			if (pf[i].fd < 0 || pf[i].revents == 0)
				continue;
			getsockopt(pf[i].fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
			p[i].ms = health_now_ms() - t0;
			if (soerr == 0)
				p[i].ok = 1;
			else
				snprintf(p[i].err, sizeof(p[i].err), "%s", strerror(soerr));
			close(pf[i].fd);
			pf[i].fd = -1;
			left--;
		}
	}
	for (i = 0; i < n; i++) {
		if (pf[i].fd >= 0) {
			close(pf[i].fd);
			p[i].ms = timeout_ms;
			snprintf(p[i].err, sizeof(p[i].err), "connect timed out after %d ms",
			         timeout_ms);
		}
	}
	free(pf);
}

/*
 * Connect to <sa> within <timeout_ms>; see health.h.
 */
int
health_connect(const struct sockaddr *sa, socklen_t len, int timeout_ms, char *err,
               size_t errlen)
{
	struct health_probe p;
	struct timeval tv;
	int fd, done;

	memset(&p, 0, sizeof(p));
	memcpy(&p.addr, sa, len);
	p.len = len;
	health_tcp_many(&p, 1, timeout_ms);
	if (!p.ok) {
		snprintf(err, errlen, "%s", p.err);
		return -1;
	}
	/* connect again, blocking now that the peer is known to answer */
	fd = start_connect(sa, len, &done);
	if (fd < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	if (!done) {
		struct pollfd pf = { fd, POLLOUT, 0 };
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (poll(&pf, 1, timeout_ms) <= 0) {
			close(fd);
			snprintf(err, errlen, "connect timed out after %d ms", timeout_ms);
			return -1;
		}
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr != 0) {
			close(fd);
			snprintf(err, errlen, "%s", strerror(soerr));
			return -1;
		}
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Read from <fd> into <buf> until EOF, <stop> appears, <len>-1 bytes or
 * the deadline <until>. Returns bytes read or -1 on error/timeout. */
static ssize_t
read_until(int fd, char *buf, size_t len, const char *stop, long until)
{
	size_t off = 0;

	while (off + 1 < len) {
		ssize_t r;

		if (health_now_ms() > until)
			return -1;
		r = read(fd, buf + off, len - 1 - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return off > 0 ? (ssize_t)off : -1;
		if (r == 0)
			break;
		off += (size_t)r;
		buf[off] = '\0';
		if (stop != NULL && strstr(buf, stop) != NULL)
			break;
	}
	buf[off] = '\0';
	return (ssize_t)off;
}

/*
 * Resolve server address <hostport> (port <dflt> when none) as the library
 * reads it (parse_hostport()). Returns the addresses (freeaddrinfo()), or
 * NULL with the reason in <err>.
 */
static struct addrinfo *
resolve(const char *hostport, uint16_t dflt, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	char host[256], port[8];
	uint16_t p;
	int rc;

	if (parse_hostport(hostport, dflt, host, sizeof(host), &p) < 0) {
		snprintf(err, errlen, "not a host:port address");
		return NULL;
	}
	snprintf(port, sizeof(port), "%u", (unsigned)p);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
		return NULL;
	}
	return res;
}

/*
 * Ask memcached <hostport> for "version"; see health.h.
 */
int
health_memcached(const char *hostport, int timeout_ms, char *ver, size_t verlen, char *err,
                 size_t errlen)
{
	struct addrinfo *res, *ai;
	char buf[256];
	long until = health_now_ms() + timeout_ms;
	int fd = -1;
	ssize_t n;

	ver[0] = '\0';
	/* the daemons' memcached client takes names too, and tries each address */
	res = resolve(hostport, 11211, err, errlen);
	if (res != NULL)
		snprintf(err, errlen, "connect timed out after %d ms", timeout_ms);
	for (ai = res; ai != NULL && fd < 0 && health_now_ms() < until; ai = ai->ai_next)
		fd = health_connect(ai->ai_addr, ai->ai_addrlen, (int)(until - health_now_ms()),
		                    err, errlen);
	if (res != NULL)
		freeaddrinfo(res);
	if (fd < 0)
		return -1;
	if (write(fd, "version\r\n", 9) != 9) {
		snprintf(err, errlen, "write: %s", strerror(errno));
		close(fd);
		return -1;
	}
	n = read_until(fd, buf, sizeof(buf), "\r\n", until);
	close(fd);
	if (n <= 0) {
		snprintf(err, errlen, "no answer to \"version\" within %d ms", timeout_ms);
		return -1;
	}
	if (strncmp(buf, "VERSION ", 8) != 0) {
		buf[strcspn(buf, "\r\n")] = '\0';
		snprintf(err, errlen, "unexpected answer \"%.60s\"", buf);
		return -1;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	snprintf(ver, verlen, "%s", buf + 8);
	return 0;
}

/*
 * GET <path> from <hostport>; see health.h.
 */
int
health_http_get(const char *hostport, const char *path, int timeout_ms, char *buf,
                size_t len, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char req[512];
	long until = health_now_ms() + timeout_ms;
	int fd, n, status;
	ssize_t got;
	char *body;

	if (parse_addr(hostport, 0, &ss, &sl) < 0) {
		snprintf(err, errlen, "not an ip:port address");
		return -1;
	}
	fd = health_connect((const struct sockaddr *)&ss, sl, timeout_ms, err, errlen);
	if (fd < 0)
		return -1;
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n",
	             path, hostport);
	if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n) {
		snprintf(err, errlen, "cannot send the request");
		close(fd);
		return -1;
	}
	got = read_until(fd, buf, len, NULL, until);
	close(fd);
	if (got <= 0 || sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1) {
		snprintf(err, errlen, "no HTTP answer within %d ms", timeout_ms);
		return -1;
	}
	body = strstr(buf, "\r\n\r\n");
	if (body != NULL)
		memmove(buf, body + 4, strlen(body + 4) + 1);
	else
		buf[0] = '\0';
	return status;
}
