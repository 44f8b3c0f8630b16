/*
 * The listeners of the four mail services (IPv4 and IPv6, SO_KEEPALIVE),
 * on the library's listening sockets, and what is done with each accepted
 * connection: max_connections is enforced with a short goodbye.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "mp.h"

/* A connection on <ls>: refused with a short goodbye over max_connections. */
static void
listener_accept(struct listen_sock *ls, int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct listener *li = ls->data;
	struct mp *mp = li->mp;

	if (mp->stopping) {
		close(fd);
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
		return;
	}
	session_new(li, fd, sa, salen);
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
	static const struct listen_opts opts = { .keepalive = 1, .v6only = 1 };
	struct listener *li;
	socklen_t len;

	li = calloc(1, sizeof(*li));
	if (li == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	li->mp = mp;
	li->proto = proto;
	li->implicit_tls = implicit_tls;
	snprintf(li->name, sizeof(li->name), "%s", name);
	if (listen_open(&li->ls, mp->loop, addr, &opts, name, listener_accept, li, &mp->log, err,
	                errlen) < 0) {
		free(li);
		return -1;
	}
	len = sizeof(li->local);
	if (getsockname(li->ls.fd, (struct sockaddr *)&li->local, &len) == 0)
		li->local_exact = !listener_wildcard(&li->local);
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

	SLIST_FOREACH(li, &mp->listeners, next)
		listen_close(&li->ls);
}

/* Close and free every listener of <mp>. */
void
listener_close_all(struct mp *mp)
{
	struct listener *li;

	while ((li = SLIST_FIRST(&mp->listeners)) != NULL) {
		SLIST_REMOVE_HEAD(&mp->listeners, next);
		listen_close(&li->ls);
		free(li);
	}
}
