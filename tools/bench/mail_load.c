/*
 * mail_load: an IMAP load generator for bench_mail.py (plain sockets and
 * poll, one thread). Figures only; it never judges them.
 *
 *   mail_load --mode login --port P --users FILE [--clients 50] [--seconds 10]
 *             [--max N]
 *       LOGIN/LOGOUT cycles on <clients> concurrent connections, each cycle a
 *       new TCP connection. Prints logins, failures, rate, p50/p99 (connect to
 *       tagged OK of LOGIN, ms).
 *   mail_load --mode idle --port P --users FILE --clients N [--seconds S]
 *       Open N connections and log each in (at most 200 logins in flight),
 *       print "ready OK FAIL" and keep them open until stdin closes or a line
 *       arrives, or S seconds pass; then close them all.
 *   mail_load --mode fetch --port P --users FILE [--repeat 5] [--seconds 60]
 *       Log in as the first user, SELECT INBOX, FETCH 1 BODY.PEEK[] once to
 *       warm up, then <repeat> times timed. Prints bytes and MB/s.
 *
 * FILE holds "user password" lines. Everything on 127.0.0.1.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_USERS 20000
#define LINE_MAX_ 8192

enum st { ST_FREE, ST_CONNECTING, ST_GREETING, ST_LOGIN, ST_LOGOUT, ST_IDLE };

struct conn {
	int fd;
	enum st st;
	double t0;
	size_t len;
	char buf[LINE_MAX_];
};

struct users {
	char **name, **pw;
	size_t n;
};

static double
now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int
cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int
load_users(struct users *u, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024], *sp;

	if (f == NULL)
		return -1;
	u->name = calloc(MAX_USERS, sizeof(char *));
	u->pw = calloc(MAX_USERS, sizeof(char *));
	if (u->name == NULL || u->pw == NULL) {
		fclose(f);
		return -1;
	}
	while (u->n < MAX_USERS && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		sp = strchr(line, ' ');
		if (sp == NULL)
			continue;
		*sp = '\0';
		u->name[u->n] = strdup(line);
		u->pw[u->n] = strdup(sp + 1);
		if (u->name[u->n] == NULL || u->pw[u->n] == NULL)
			break;
		u->n++;
	}
	fclose(f);
	return u->n > 0 ? 0 : -1;
}

static int
open_conn(int port)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
send_all(int fd, const char *s, size_t n)
{
	size_t off = 0;
	ssize_t w;
	int spins = 0;

	while (off < n) {
		w = send(fd, s + off, n - off, MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && (errno == EAGAIN || errno == EINTR) && spins++ < 1000) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			poll(&p, 1, 100);
			continue;
		}
		return -1;
	}
	return 0;
}

static int
send_login(struct conn *c, const struct users *u, size_t *next)
{
	char cmd[1200];
	size_t i = (*next)++ % u->n;
	int n = snprintf(cmd, sizeof(cmd), "a LOGIN \"%s\" \"%s\"\r\n", u->name[i], u->pw[i]);

	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	return send_all(c->fd, cmd, (size_t)n);
}

/*
 * Pop one complete line from <c>'s buffer into <line>. Returns 1 when a line
 * was popped, 0 when none is complete.
 */
static int
pop_line(struct conn *c, char *line, size_t cap)
{
	char *nl = memchr(c->buf, '\n', c->len);
	size_t n;

	if (nl == NULL) {
		if (c->len == sizeof(c->buf))   /* overlong: drop it */
			c->len = 0;
		return 0;
	}
	n = (size_t)(nl - c->buf) + 1;
	memcpy(line, c->buf, n < cap ? n : cap - 1);
	line[n < cap ? n : cap - 1] = '\0';
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	return 1;
}

struct stats {
	uint64_t ok, fail, started;
	double *lat;
	size_t nlat, caplat;
};

static void
close_conn(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->st = ST_FREE;
	c->len = 0;
}

/*
 * Advance <c> after readable data. <keep> = stay logged in (idle mode).
 */
static void
on_readable(struct conn *c, const struct users *u, size_t *next, struct stats *s, int keep)
{
	char line[LINE_MAX_];
	ssize_t r;

	r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		if (c->st == ST_LOGOUT)
			close_conn(c);
		else {
			s->fail++;
			close_conn(c);
		}
		return;
	}
	if (r < 0)
		return;
	c->len += (size_t)r;
	while (c->fd >= 0 && pop_line(c, line, sizeof(line))) {
		switch (c->st) {
		case ST_GREETING:
			if (strncmp(line, "* OK", 4) != 0) {
				s->fail++;
				close_conn(c);
				break;
			}
			if (send_login(c, u, next) != 0) {
				s->fail++;
				close_conn(c);
				break;
			}
			c->st = ST_LOGIN;
			break;
		case ST_LOGIN:
			if (strncmp(line, "a ", 2) != 0)
				break;   /* untagged */
			if (strncmp(line, "a OK", 4) != 0) {
				s->fail++;
				if (s->fail <= 3)
					fprintf(stderr, "mail_load: login refused: %s", line);
				close_conn(c);
				break;
			}
			s->ok++;
			if (s->nlat < s->caplat)
				s->lat[s->nlat++] = now_s() - c->t0;
			if (keep) {
				c->st = ST_IDLE;
				break;
			}
			if (send_all(c->fd, "b LOGOUT\r\n", 10) != 0) {
				close_conn(c);
				break;
			}
			c->st = ST_LOGOUT;
			break;
		case ST_LOGOUT:
			if (strncmp(line, "b ", 2) == 0)
				close_conn(c);
			break;
		default:
			break;
		}
	}
}

static int
start_conn(struct conn *c, int port, struct stats *s)
{
	c->fd = open_conn(port);
	c->len = 0;
	c->t0 = now_s();
	s->started++;
	if (c->fd < 0) {
		s->fail++;
		c->st = ST_FREE;
		return -1;
	}
	c->st = ST_GREETING;
	return 0;
}

static int
run_login(int port, const struct users *u, int clients, double seconds, uint64_t max)
{
	struct conn *cs = calloc((size_t)clients, sizeof(*cs));
	struct pollfd *pf = calloc((size_t)clients, sizeof(*pf));
	struct stats s = { 0 };
	size_t next = 0;
	double t0, end, el;
	int i;

	s.caplat = 2000000;
	s.lat = calloc(s.caplat, sizeof(double));
	if (cs == NULL || pf == NULL || s.lat == NULL)
		return 2;
	for (i = 0; i < clients; i++)
		cs[i].fd = -1;
	t0 = now_s();
	end = t0 + seconds;
	for (;;) {
		double t = now_s();
		int active = 0;

		for (i = 0; i < clients; i++) {
			if (cs[i].st == ST_FREE && t < end && s.started < max)
				start_conn(&cs[i], port, &s);
			pf[i].fd = cs[i].fd;
			pf[i].events = POLLIN;
			pf[i].revents = 0;
			if (cs[i].fd >= 0)
				active++;
		}
		if (active == 0 || t > end + 5)
			break;
		if (poll(pf, (nfds_t)clients, 100) < 0 && errno != EINTR)
			break;
		for (i = 0; i < clients; i++)
			if (cs[i].fd >= 0 && (pf[i].revents & (POLLIN | POLLERR | POLLHUP)))
				on_readable(&cs[i], u, &next, &s, 0);
	}
	el = now_s() - t0;
	for (i = 0; i < clients; i++)
		close_conn(&cs[i]);
	qsort(s.lat, s.nlat, sizeof(double), cmp_dbl);
	printf("logins=%llu failures=%llu seconds=%.3f rate=%.1f p50_ms=%.3f p99_ms=%.3f\n",
	       (unsigned long long)s.ok, (unsigned long long)s.fail, el,
	       el > 0 ? (double)s.ok / el : 0.0,
	       s.nlat ? s.lat[s.nlat / 2] * 1e3 : 0.0,
	       s.nlat ? s.lat[(s.nlat * 99) / 100] * 1e3 : 0.0);
	free(cs);
	free(pf);
	free(s.lat);
	return 0;
}

static int
run_idle(int port, const struct users *u, int clients, double seconds)
{
	struct conn *cs = calloc((size_t)clients, sizeof(*cs));
	struct pollfd *pf = calloc((size_t)clients + 1, sizeof(*pf));
	struct stats s = { 0 };
	size_t next = 0;
	int i, opened = 0, inflight, announced = 0;
	double end = now_s() + seconds, ready_deadline = now_s() + 120;

	s.caplat = (size_t)clients;
	s.lat = calloc(s.caplat + 1, sizeof(double));
	if (cs == NULL || pf == NULL || s.lat == NULL)
		return 2;
	for (i = 0; i < clients; i++)
		cs[i].fd = -1;
	while (now_s() < end) {
		inflight = 0;
		for (i = 0; i < opened; i++)
			if (cs[i].st == ST_GREETING || cs[i].st == ST_LOGIN || cs[i].st == ST_CONNECTING)
				inflight++;
		while (opened < clients && inflight < 200) {
			start_conn(&cs[opened], port, &s);
			opened++;
			inflight++;
		}
		if (!announced && opened == clients &&
		    (inflight == 0 || now_s() > ready_deadline)) {
			printf("ready %llu %llu\n", (unsigned long long)s.ok, (unsigned long long)s.fail);
			fflush(stdout);
			announced = 1;
		}
		for (i = 0; i < clients; i++) {
			pf[i].fd = cs[i].fd;
			pf[i].events = POLLIN;
			pf[i].revents = 0;
		}
		pf[clients].fd = announced ? 0 : -1;
		pf[clients].events = POLLIN;
		pf[clients].revents = 0;
		if (poll(pf, (nfds_t)clients + 1, 100) < 0 && errno != EINTR)
			break;
		if (announced && (pf[clients].revents & (POLLIN | POLLHUP | POLLERR)))
			break;
		for (i = 0; i < clients; i++) {
			if (cs[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLERR | POLLHUP)))
				continue;
			if (cs[i].st == ST_IDLE) {
				char tmp[512];
				ssize_t r = recv(cs[i].fd, tmp, sizeof(tmp), 0);

				if (r == 0 || (r < 0 && errno != EAGAIN))
					close_conn(&cs[i]);
				continue;
			}
			on_readable(&cs[i], u, &next, &s, 1);
		}
	}
	if (!announced)
		printf("ready %llu %llu\n", (unsigned long long)s.ok, (unsigned long long)s.fail);
	for (i = 0; i < clients; i++)
		close_conn(&cs[i]);
	printf("closed\n");
	free(cs);
	free(pf);
	free(s.lat);
	return 0;
}

/* Blocking helpers for fetch mode. */
static int
read_until_tag(int fd, const char *tag, char *tail, size_t tailcap, uint64_t *bytes,
               double deadline)
{
	static char buf[1 << 18];
	char win[8192];
	size_t wl = 0, tl = strlen(tag);
	ssize_t r;

	for (;;) {
		if (now_s() > deadline)
			return -1;
		r = recv(fd, buf, sizeof(buf), 0);
		if (r <= 0) {
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			return -1;
		}
		*bytes += (uint64_t)r;
		/* keep the last bytes to find "\r\n<tag> " at a line start */
		if ((size_t)r >= sizeof(win) / 2) {
			memcpy(win, buf + r - sizeof(win) / 2, sizeof(win) / 2);
			wl = sizeof(win) / 2;
		} else {
			if (wl + (size_t)r > sizeof(win)) {
				memmove(win, win + wl + (size_t)r - sizeof(win), sizeof(win) - (size_t)r);
				wl = sizeof(win) - (size_t)r;
			}
			memcpy(win + wl, buf, (size_t)r);
			wl += (size_t)r;
		}
		if (wl >= 2 && win[wl - 1] == '\n') {
			/* find the start of the last line */
			size_t s = wl - 1;

			while (s > 0 && win[s - 1] != '\n')
				s--;
			if (wl - s > tl && memcmp(win + s, tag, tl) == 0 && win[s + tl] == ' ') {
				size_t n = wl - s < tailcap ? wl - s : tailcap - 1;

				memcpy(tail, win + s, n);
				tail[n] = '\0';
				return 0;
			}
		}
	}
}

static int
run_fetch(int port, const struct users *u, int repeat, double seconds)
{
	struct timeval tv = { .tv_sec = 30 };
	struct sockaddr_in sa;
	char cmd[1200], tail[512];
	uint64_t bytes = 0, total = 0;
	double deadline = now_s() + seconds, t0, tt = 0;
	int fd, i, n, done = 0;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 2;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "mail_load: connect: %s\n", strerror(errno));
		return 1;
	}
	if (read_until_tag(fd, "*", tail, sizeof(tail), &bytes, deadline) != 0)
		return 1;
	n = snprintf(cmd, sizeof(cmd), "a LOGIN \"%s\" \"%s\"\r\n", u->name[0], u->pw[0]);
	if (n < 0 || (size_t)n >= sizeof(cmd) || send_all(fd, cmd, (size_t)n) != 0 ||
	    read_until_tag(fd, "a", tail, sizeof(tail), &bytes, deadline) != 0 ||
	    strncmp(tail, "a OK", 4) != 0) {
		fprintf(stderr, "mail_load: login failed: %s\n", tail);
		return 1;
	}
	if (send_all(fd, "s SELECT INBOX\r\n", 16) != 0 ||
	    read_until_tag(fd, "s", tail, sizeof(tail), &bytes, deadline) != 0 ||
	    strncmp(tail, "s OK", 4) != 0) {
		fprintf(stderr, "mail_load: select failed: %s\n", tail);
		return 1;
	}
	for (i = 0; i <= repeat && now_s() < deadline; i++) {
		bytes = 0;
		t0 = now_s();
		if (send_all(fd, "f FETCH 1 BODY.PEEK[]\r\n", 23) != 0 ||
		    read_until_tag(fd, "f", tail, sizeof(tail), &bytes, deadline) != 0 ||
		    strncmp(tail, "f OK", 4) != 0) {
			fprintf(stderr, "mail_load: fetch failed\n");
			return 1;
		}
		if (i == 0)
			continue;   /* warm-up */
		tt += now_s() - t0;
		total += bytes;
		done++;
	}
	send_all(fd, "b LOGOUT\r\n", 10);
	close(fd);
	printf("fetches=%d bytes=%llu seconds=%.3f mbps=%.1f\n", done,
	       (unsigned long long)total, tt, tt > 0 ? (double)total / tt / 1e6 : 0.0);
	return done > 0 ? 0 : 1;
}

static void
usage(void)
{
	fprintf(stderr, "usage: mail_load --mode login|idle|fetch --port P --users FILE "
	        "[--clients N] [--seconds S] [--max N] [--repeat R]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct users u = { 0 };
	const char *mode = NULL, *users = NULL;
	int port = 0, clients = 50, repeat = 5, i;
	double seconds = 10;
	uint64_t max = 10000000;

	for (i = 1; i + 1 < argc; i += 2) {
		const char *o = argv[i], *v = argv[i + 1];

		if (strcmp(o, "--mode") == 0)
			mode = v;
		else if (strcmp(o, "--port") == 0)
			port = atoi(v);
		else if (strcmp(o, "--users") == 0)
			users = v;
		else if (strcmp(o, "--clients") == 0)
			clients = atoi(v);
		else if (strcmp(o, "--seconds") == 0)
			seconds = atof(v);
		else if (strcmp(o, "--max") == 0)
			max = strtoull(v, NULL, 10);
		else if (strcmp(o, "--repeat") == 0)
			repeat = atoi(v);
		else
			usage();
	}
	if (i != argc || mode == NULL || users == NULL || port <= 0 || port > 65535 ||
	    clients < 1 || clients > 100000 || seconds <= 0 || seconds > 3600)
		usage();
	if (load_users(&u, users) != 0) {
		fprintf(stderr, "mail_load: no users in %s\n", users);
		return 2;
	}
	if (strcmp(mode, "login") == 0)
		return run_login(port, &u, clients, seconds, max);
	if (strcmp(mode, "idle") == 0)
		return run_idle(port, &u, clients, seconds);
	if (strcmp(mode, "fetch") == 0)
		return run_fetch(port, &u, repeat, seconds);
	usage();
	return 2;
}
