/*
 * Listening sockets, one module for both daemons: open a TCP listener on
 * "host:port" (SO_REUSEADDR and SO_REUSEPORT, so a new process can start
 * beside a draining one; TCP_NODELAY inherited by accepted sockets) and
 * run its accept loop, which takes a bounded batch per event and hands
 * each non-blocking socket to the owner's callback.
 *
 * Under resource exhaustion, when accept() fails for lack of file
 * descriptors or memory, the socket stays readable and a level-triggered
 * watcher would spin the loop at full CPU; instead the watcher is paused
 * for a moment (logged once per pause) and resumed by a timer, while
 * established connections keep being served.
 */
#ifndef GH_LISTEN_H
#define GH_LISTEN_H

#include <ev.h>
#include <stddef.h>
#include <sys/socket.h>

#include "log.h"

#define LISTEN_PAUSE_S 0.1   /* how long a listener rests after EMFILE and the like */

/* A pausable listener watcher. */
struct listen_pause {
	struct ev_loop *loop;
	ev_io *io;              /* the listener's watcher, not owned */
	ev_timer t;
	const struct logger *log;
	const char *what;       /* for the log line, not owned */
};

#define LISTEN_BATCH 64       /* connections accepted per readiness event */

struct listen_sock;

/*
 * Called for each accepted connection: non-blocking, close-on-exec socket
 * <fd> (now the callee's) from <sa> (<salen> bytes). It may close <l>.
 */
typedef void (*listen_accept_fn)(struct listen_sock *l, int fd, const struct sockaddr *sa,
                                 socklen_t salen);

/* How a listening socket is set up. */
struct listen_opts {
	int keepalive;          /* SO_KEEPALIVE, inherited by accepted sockets */
	int v6only;             /* IPV6_V6ONLY on an IPv6 address */
};

/* One listening socket and its accept watcher. */
struct listen_sock {
	struct ev_loop *loop;
	int fd;                 /* -1 once closed */
	ev_io io;
	struct listen_pause pause;
	listen_accept_fn accept;
	void *data;             /* the owner's */
	char name[32];          /* for log lines */
	char path[108];         /* a UNIX socket's file, removed at close; "" for TCP */
};

/*
 * Open listener <l> on <addr> ("ip:port", "[v6]:port") with options <o>
 * (NULL: none) and start accepting on <loop>: each connection goes to
 * <cb>; <name> names it in log lines through <lg>; <data> is the owner's.
 * Returns 0, or -1 with the reason in <err> (<errlen> bytes).
 */
int listen_open(struct listen_sock *l, struct ev_loop *loop, const char *addr,
                const struct listen_opts *o, const char *name, listen_accept_fn cb, void *data,
                const struct logger *lg, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Stop accepting on <l> and close its socket (again: nothing). */
void listen_close(struct listen_sock *l);

/* Attach pause handling to listener watcher <io> on <loop>, logging <what> through <lg>. */
void listen_pause_init(struct listen_pause *p, struct ev_loop *loop, ev_io *io,
                       const struct logger *lg, const char *what);

/*
 * Handle accept() failure <err>: EMFILE, ENFILE, ENOBUFS or ENOMEM pause
 * the watcher for LISTEN_PAUSE_S (returns 1); other errors return 0.
 */
int listen_pause_on_error(struct listen_pause *p, int err);

/* Stop the resume timer of <p> (before the watcher or socket goes away). */
void listen_pause_stop(struct listen_pause *p);

#endif
