/*
 * Listening sockets: opening one, its accept loop, and pausing it when
 * accept() fails for lack of resources, so that the loop neither spins
 * nor floods the log.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "listen.h"
#include "parse.h"

#define LISTEN_BACKLOG 1024

static void
listen_resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct listen_pause *p = w->data;

	(void)revents;
	ev_io_start(loop, p->io);
}

/* Attach pause handling to <io>. */
void
listen_pause_init(struct listen_pause *p, struct ev_loop *loop, ev_io *io,
                  const struct logger *lg, const char *what)
{
	p->loop = loop;
	p->io = io;
	p->log = lg;
	p->what = what;
	ev_timer_init(&p->t, listen_resume_cb, LISTEN_PAUSE_S, 0.);
	p->t.data = p;
}

/* Pause on resource exhaustion <err>. Returns 1 when paused. */
int
listen_pause_on_error(struct listen_pause *p, int err)
{
	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
		return 0;
	if (!ev_is_active(&p->t)) {
		errno = err;
		log_limited_errno(p->log, LOG_WARNING, "accept-pause",
		                  "accept on %s: pausing new connections for %.0f ms", p->what,
		                  LISTEN_PAUSE_S * 1000);
		ev_io_stop(p->loop, p->io);
		ev_timer_start(p->loop, &p->t);
	}
	return 1;
}

/* Stop the resume timer of <p>. */
void
listen_pause_stop(struct listen_pause *p)
{
	if (p->loop != NULL)
		ev_timer_stop(p->loop, &p->t);
}

static void
listen_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listen_sock *l = w->data;
	int i;

	(void)loop;
	(void)revents;
	/* a bounded batch: clients connect in bursts, others wait meanwhile */
	for (i = 0; i < LISTEN_BATCH && l->fd >= 0; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (!listen_pause_on_error(&l->pause, errno) && errno != EAGAIN &&
			    errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
				log_limited_errno(l->pause.log, LOG_WARNING, "accept", "accept on %s",
				                  l->name);
			return;
		}
		l->accept(l, fd, (struct sockaddr *)&ss, len);
	}
}

/* Bind a UNIX stream socket to <sun> for <l>, replacing a stale socket file
 * (never any other file), mode 0660. Returns the fd or -1 (errno set). */
static int
listen_unix(struct listen_sock *l, const struct sockaddr_storage *ss, socklen_t len)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)ss;
	struct stat st;
	int fd;

	if (lstat(sun->sun_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			errno = EEXIST;
			return -1;
		}
		/* left by a process that is gone, or by our own previous start */
		if (unlink(sun->sun_path) < 0)
			return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (const struct sockaddr *)ss, len) < 0 ||
	    chmod(sun->sun_path, 0660) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	snprintf(l->path, sizeof(l->path), "%s", sun->sun_path);
	return fd;
}

/* Open <l> on <addr> with <o> and start accepting into <cb>. Returns 0, or -1 with <err>. */
int
listen_open(struct listen_sock *l, struct ev_loop *loop, const char *addr,
            const struct listen_opts *o, const char *name, listen_accept_fn cb, void *data,
            const struct logger *lg, char *err, size_t errlen)
{
	static const struct listen_opts none;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	memset(l, 0, sizeof(*l));
	l->fd = -1;
	if (o == NULL)
		o = &none;
	if (parse_listen_addr(addr, &ss, &len) < 0) {
		snprintf(err, errlen, "%s: bad address '%s'", name, addr);
		return -1;
	}
	if (ss.ss_family == AF_UNIX) {
		fd = listen_unix(l, &ss, len);
		if (fd < 0) {
			snprintf(err, errlen, "%s %s: %s", name, addr, strerror(errno));
			return -1;
		}
	} else {
		fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0 ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
		    (ss.ss_family == AF_INET6 && o->v6only &&
		     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
		    /* accepted sockets inherit these (Linux): no setsockopt per connection */
		    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
		    (o->keepalive && setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) < 0) ||
		    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
			snprintf(err, errlen, "%s %s: %s", name, addr, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
	}
	l->loop = loop;
	l->fd = fd;
	l->accept = cb;
	l->data = data;
	snprintf(l->name, sizeof(l->name), "%s", name);
	ev_io_init(&l->io, listen_accept_cb, fd, EV_READ);
	l->io.data = l;
	listen_pause_init(&l->pause, loop, &l->io, lg, l->name);
	ev_io_start(loop, &l->io);
	return 0;
}

/* Stop accepting on <l> and close its socket. */
void
listen_close(struct listen_sock *l)
{
	if (l->fd < 0)
		return;
	listen_pause_stop(&l->pause);
	ev_io_stop(l->loop, &l->io);
	close(l->fd);
	l->fd = -1;
	if (l->path[0] != '\0')
		(void)unlink(l->path);   /* a UNIX socket's file goes with it */
	l->path[0] = '\0';
}
