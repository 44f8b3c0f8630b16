/*
 * Listening sockets for the four mail services (IPv4 and IPv6, SO_REUSEPORT
 * so a new process can start beside a draining one) and the accept loop,
 * which enforces max_connections with a short goodbye.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "mp.h"
#include "parse.h"

#define ACCEPT_BATCH 64

static void
listener_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *li = w->data;
	struct mp *mp = li->mp;
	int i;

	(void)loop;
	(void)revents;
	for (i = 0; i < ACCEPT_BATCH && !mp->stopping; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(li->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (!listen_pause_on_error(&li->pause, errno) && errno != EAGAIN &&
			    errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
				log_limited_errno(&mp->log, LOG_WARNING, "accept", "accept on %s",
				                  li->name);
			return;
		}
		if (mp->nsessions >= mp_cfg(mp)->mailproxy.max_connections) {
			static const char imap_bye[] = "* BYE Too many connections, try again later.\r\n";
			static const char pop3_bye[] = "-ERR [SYS/TEMP] Too many connections, try again later.\r\n";

			mp_count(mp, MPC_REFUSED_MAXCONN, 1);
			if (!li->implicit_tls) {
				if (li->proto == MP_IMAP)
					(void)!send(fd, imap_bye, sizeof(imap_bye) - 1, MSG_NOSIGNAL);
				else
					(void)!send(fd, pop3_bye, sizeof(pop3_bye) - 1, MSG_NOSIGNAL);
			}
			close(fd);
			continue;
		}
		session_new(li, fd, (struct sockaddr *)&ss, len);
	}
}

/* Tell whether <ss> is the any-address, where each connection's local address differs. */
static int
listener_wildcard(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return 1;
}

/* Open one listener for <addr> speaking <proto>. Returns 0 or -1 with <err>. */
static int
listener_open(struct mp *mp, const char *addr, const char *name, enum mp_proto proto,
              int implicit_tls, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct listener *li;
	int fd, one = 1;

	if (parse_addr(addr, 0, &ss, &len) < 0) {
		snprintf(err, errlen, "[mailproxy] %s: bad address '%s'", name, addr);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "%s %s: socket: %s", name, addr, strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* accepted sockets inherit these (Linux): no setsockopt per connection */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1024) < 0) {
		snprintf(err, errlen, "%s %s: %s", name, addr, strerror(errno));
		close(fd);
		return -1;
	}
	li = calloc(1, sizeof(*li));
	if (li == NULL) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	li->mp = mp;
	li->fd = fd;
	li->proto = proto;
	li->implicit_tls = implicit_tls;
	len = sizeof(li->local);
	if (getsockname(fd, (struct sockaddr *)&li->local, &len) == 0)
		li->local_exact = !listener_wildcard(&li->local);
	snprintf(li->name, sizeof(li->name), "%s", name);
	ev_io_init(&li->io, listener_cb, fd, EV_READ);
	li->io.data = li;
	listen_pause_init(&li->pause, mp->loop, &li->io, &mp->log, li->name);
	ev_io_start(mp->loop, &li->io);
	SLIST_INSERT_HEAD(&mp->listeners, li, next);
	log_info(&mp->log, "listening for %s on %s", name, addr);
	return 0;
}

/* Open every configured listener of <mp>. Returns 0, or -1 with <err>. */
int
listener_open_all(struct mp *mp, char *err, size_t errlen)
{
	const struct cfg_mailproxy *mc = &mp_cfg(mp)->mailproxy;
	const struct {
		const struct cfg_list *l;
		const char *name;
		enum mp_proto proto;
		int tls;
	} kinds[] = {
		{ &mc->imap, "imap", MP_IMAP, 0 }, { &mc->imaps, "imaps", MP_IMAP, 1 },
		{ &mc->pop3, "pop3", MP_POP3, 0 }, { &mc->pop3s, "pop3s", MP_POP3, 1 },
	};
	size_t k;
	int i;

	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		for (i = 0; i < kinds[k].l->n; i++)
			if (listener_open(mp, kinds[k].l->item[i], kinds[k].name, kinds[k].proto,
			                  kinds[k].tls, err, errlen) < 0)
				return -1;
	return 0;
}

/* Stop accepting on every listener of <mp> and close the sockets (sessions keep <li>). */
void
listener_stop_all(struct mp *mp)
{
	struct listener *li;

	SLIST_FOREACH(li, &mp->listeners, next) {
		listen_pause_stop(&li->pause);
		ev_io_stop(mp->loop, &li->io);
		if (li->fd >= 0)
			close(li->fd);
		li->fd = -1;
	}
}

/* Close and free every listener of <mp>. */
void
listener_close_all(struct mp *mp)
{
	struct listener *li;

	while ((li = SLIST_FIRST(&mp->listeners)) != NULL) {
		SLIST_REMOVE_HEAD(&mp->listeners, next);
		listen_pause_stop(&li->pause);
		ev_io_stop(mp->loop, &li->io);
		if (li->fd >= 0)
			close(li->fd);
		free(li);
	}
}
