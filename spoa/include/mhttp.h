/*
 * The metrics endpoint both daemons serve: a one-shot HTTP/1.0 responder
 * on a loopback address, driven by the daemon's libev loop and never
 * blocking it. Each connection gets, after its first read, the text its
 * render callback writes (Prometheus exposition format), then is closed.
 */
#ifndef GH_MHTTP_H
#define GH_MHTTP_H

#include <stddef.h>
#include <stdint.h>
#include <ev.h>

#include "log.h"

#define MHTTP_MAX_CLIENTS 64     /* scrapers served at once; more are closed */
#define MHTTP_BUF (128 * 1024)   /* largest answer */

struct mhttp;

/*
 * Write the body into <buf> (<len> bytes) from <*off>, advancing <*off>.
 * Returns 0, or -1 when it does not fit.
 */
typedef int (*mhttp_render_fn)(void *arg, char *buf, size_t len, size_t *off);

/*
 * Listen on "<ip>:<port>" <addr> and answer every connection with what
 * <render>(<arg>) writes. A client is dropped after <deadline_s> seconds.
 * <reuseport> sets SO_REUSEPORT (for an agent started before the old one
 * stops). Returns the server, or NULL (logged through <lg>).
 */
struct mhttp *mhttp_start(struct ev_loop *loop, const char *addr, mhttp_render_fn render,
                          void *arg, double deadline_s, int reuseport, const struct logger *lg);

/* Return the port <m> listens on (useful when <addr> asked for port 0). */
uint16_t mhttp_port(const struct mhttp *m);

/* Return the number of clients <m> is serving now. */
unsigned mhttp_clients(const struct mhttp *m);

/* Close the listener and every client of <m>, and free it. NULL is fine. */
void mhttp_stop(struct mhttp *m);

#endif
