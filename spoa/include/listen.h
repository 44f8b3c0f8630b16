/*
 * Listening sockets under resource exhaustion. When accept() fails for
 * lack of file descriptors or memory, the socket stays readable and a
 * level-triggered watcher would spin the loop at full CPU; instead the
 * watcher is paused for a moment (logged once per pause) and resumed by a
 * timer, while established connections keep being served.
 */
#ifndef GH_LISTEN_H
#define GH_LISTEN_H

#include <ev.h>

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
