/*
 * Pausing a listener whose accept() fails for lack of resources, so that
 * the loop neither spins nor floods the log.
 */
#include <errno.h>

#include "listen.h"

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
