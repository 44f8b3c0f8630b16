/*
 * The small HTTP/1.x server both daemons use, driven by the daemon's libev
 * loop and never blocking it. Two modes:
 * - render (the metrics endpoint): each connection gets, after its first
 *   read, the text its render callback writes (Prometheus exposition
 *   format), then is closed;
 * - request (the agent's auth_http endpoint): each connection sends one
 *   request head (bounded in size and time), handed to a callback that
 *   answers with mhttp_reply(), at once or later; then it is closed.
 *
 * Request mode contract: the request callback is called once per
 * connection; mhttp_reply() only queues the answer (it is written from a
 * later loop iteration), so the callback may reply and return without the
 * client having been freed under it. A client dropped before its reply
 * (deadline, peer gone, mhttp_stop()) calls its drop callback, if set,
 * exactly once; after that the client must not be used.
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

struct mhttp_client;

/*
 * Request mode: handle request head <head> (<len> bytes, the blank line
 * included, NUL-terminated) of client <c>; the head is the callback's to
 * read and wipe until it replies.
 */
typedef void (*mhttp_request_fn)(void *arg, struct mhttp_client *c, char *head, size_t len);

/*
 * Listen on "<ip>:<port>" <addr> in request mode: read one request head of
 * at most <max_head> bytes within <deadline_s> seconds and give it to
 * <fn>(<arg>); the reply must come within <deadline_s> more. A head too
 * large or too slow gets 400 (too large) or a close, logged through <lg>
 * under <what>. At most <max_clients> connections at once. Returns the
 * server, or NULL (logged).
 */
struct mhttp *mhttp_start_req(struct ev_loop *loop, const char *addr, mhttp_request_fn fn,
                              void *arg, double deadline_s, size_t max_head,
                              unsigned max_clients, const char *what, const struct logger *lg);

/*
 * Queue <len> bytes <data> (a whole HTTP answer) for client <c>, then close
 * it. Its drop callback is not called any more. Returns 0, or -1 when out
 * of memory (then <c> is closed and dropped at once, its drop callback
 * not called).
 */
int mhttp_reply(struct mhttp_client *c, const char *data, size_t len);

/* Call <fn>(<arg>) if <c> is dropped before mhttp_reply(). */
void mhttp_on_drop(struct mhttp_client *c, void (*fn)(void *), void *arg);

/* Return the textual address of the peer of <c>. */
const char *mhttp_peer(const struct mhttp_client *c);

/* Return the port <m> listens on (useful when <addr> asked for port 0). */
uint16_t mhttp_port(const struct mhttp *m);

/* Return the number of clients <m> is serving now. */
unsigned mhttp_clients(const struct mhttp *m);

/* Close the listener and every client of <m>, and free it. NULL is fine. */
void mhttp_stop(struct mhttp *m);

#endif
