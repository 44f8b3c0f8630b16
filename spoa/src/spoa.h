/*
 * gatehouse-spoa internals: the daemon's context, HAProxy connections and
 * in-flight requests. One libev loop owns every connection; blocking
 * lookups run on the library's job queue and come back to that loop.
 */
#ifndef GH_SPOA_H
#define GH_SPOA_H

#include <stdint.h>
#include <ev.h>
#include <bsd/sys/queue.h>

#include "agent.h"
#include "cfg-t.h"
#include "gen.h"
#include "httpuser.h"
#include "jobq.h"
#include "log.h"
#include "log_limit.h"
#include "mbuf.h"
#include "metrics-t.h"
#include "listen.h"
#include "mhttp.h"
#include "route-t.h"
#include "spop-t.h"
#include "throttle.h"

#define SPOA_OUT_MAX   (1024 * 1024)   /* pending output per connection */
#define SPOA_BUF_MIN   16384           /* smallest pooled buffer: a batch of ACKs */
#define SPOA_BUF_SPARE 256             /* spare buffers the pool keeps */
#define SPOA_IP_MAX    64

/* Daemon counters, rendered next to the library's. */
enum spoa_counter {
	SC_CONN_ACCEPTED = 0,
	SC_CONN_REFUSED,        /* over max_connections */
	SC_FRAMES_IN,
	SC_FRAMES_OUT,
	SC_HELLO,
	SC_HEALTHCHECK,
	SC_NOTIFY,
	SC_ACK,
	SC_DISCONNECT_IN,
	SC_PROTO_ERROR,         /* we sent AGENT-DISCONNECT with an error */
	SC_DEADLINE,            /* answered with status=timeout */
	SC_BUSY,                /* job queue full */
	SC_ROUTE_OK,
	SC_ROUTE_NONE,          /* no user in the request */
	SC_ROUTE_FAIL,          /* unknown, refused, tempfail, error */
	SC_LOGIN_REJECT,
	SC_AUTH_OK,             /* auth_http: answered with a server */
	SC_AUTH_INVALID,        /* auth_http: "Invalid login or password" */
	SC_AUTH_THROTTLED,      /* auth_http: throttled */
	SC_AUTH_TEMPFAIL,       /* auth_http: temporary failure */
	SC_AUTH_UNSUPPORTED,    /* auth_http: SMTP, or not a password login */
	SC_AUTH_BAD,            /* auth_http: bad request (400) */
	SC__COUNT
};

/* The daemon. */
struct spoa {
	struct ev_loop *loop;
	struct logger log;
	struct log_limit log_limit;       /* rate limit of peer-caused warnings */
	ev_timer log_flush_w;             /* reports suppressed counts */
	const char *conf_path;
	int foreground;
	struct gen_ctl gens;              /* configuration generations (current: gens.cur) */
	int nlisten;                      /* SPOP listeners (SO_REUSEPORT) */
	struct listen_sock lis[CFG_MAX_LISTS];
	struct mhttp *metrics;            /* metrics endpoint, NULL = off */
	struct mhttp *authhttp;           /* auth_http endpoint, NULL = off */
	ev_signal sigterm_w, sigint_w, sighup_w;
	ev_timer drain_w;
	int draining;
	int stopped;                      /* the loop has returned */
	unsigned nconns;
	TAILQ_HEAD(, spoa_conn) conns;
	struct mbuf_pool pool;            /* connections' input and output buffers */
	TAILQ_HEAD(, spoa_conn) dirty;    /* output queued, not yet written */
	ev_prepare flush_w;               /* writes <dirty> before the loop blocks */
	_Atomic uint64_t c[SC__COUNT];
	struct metrics_hist ack_latency;
};

/* Where a connection is in the SPOP exchange. */
enum spoa_conn_state {
	CONN_HELLO = 0,         /* waiting for HAPROXY-HELLO */
	CONN_READY,             /* NOTIFY / ACK */
	CONN_CLOSING,           /* flush the output, then close */
};

struct spoa_req;

/* One connection from HAProxy. */
struct spoa_conn {
	struct spoa *sp;
	int fd;
	ev_io rio, wio;
	ev_timer idle;
	enum spoa_conn_state state;
	uint32_t max_frame;           /* negotiated (or ours before HELLO) */
	struct mbuf *in;              /* borrowed while it holds part of a frame */
	size_t in_size;               /* at most one frame of max_frame */
	struct mbuf *out;             /* borrowed while it holds frames to write */
	unsigned inflight;
	int dirty;                    /* on sp->dirty */
	TAILQ_HEAD(, spoa_req) reqs;
	TAILQ_ENTRY(spoa_conn) link;
	TAILQ_ENTRY(spoa_conn) dlink; /* sp->dirty */
	char peer[SPOA_IP_MAX];
};

/* What a NOTIFY asks for. */
#define REQ_ROUTE        0x01
#define REQ_LOGIN        0x02
#define REQ_LOGIN_RESULT 0x04

/* One NOTIFY being answered. Freed by spoa_msg_req_free() or the job
 * queue's release callback, never both. Created by req_new() in
 * spoa_msg.c, which zeroes everything up to <ip> and only the first byte
 * of each string after it (one request costs no 2 kB memset): keep every
 * field that is not a NUL-terminated string above <ip>. */
struct spoa_req {
	struct spoa *sp;
	struct spoa_conn *conn;       /* NULL once the connection is gone */
	struct gen *gen;              /* held until the request is freed */
	uint64_t sid, fid;
	unsigned what;                /* REQ_* */
	struct jobq_job *job;
	ev_timer deadline;
	ev_tstamp start;
	TAILQ_ENTRY(spoa_req) link;
	/* inputs */
	enum httpuser_by by;
	enum gh_proto proto;
	int bad;                      /* malformed credentials: answered "bad" (400) */
	int http_status;              /* login-result */
	int vhost;                    /* -1 unchecked, -2 undecided (worker), 0 refused, 1 allowed */
	int vhost_job;                /* the worker's answer; copied to vhost on the loop */
	int vhost_soft;               /* allowed only because LDAP could not tell (tempfail) */
	int vhost_soft_job;           /* the worker's; copied to vhost_soft on the loop */
	/* outputs (written by the worker) */
	_Atomic int route_done;       /* rr is final (the deadline may answer it) */
	int vhost_done;               /* vhost_job is final */
	struct throttle_result tr;
	int throttled;
	/* strings: from here on only the first byte is set at creation */
	char ip[SPOA_IP_MAX];
	char host[256];
	char user[HTTPUSER_MAX];      /* name or id to route on */
	char login_user[HTTPUSER_MAX];/* from the login message, form-decoded */
	char basic_user[HTTPUSER_MAX];/* the user of Basic credentials, whatever routes */
	char acct[HTTPUSER_MAX];      /* the name the throttle counts this login under */
	struct route_result rr;       /* its scalars and first bytes set by req_new() */
};

/* spoa_conn.c */
void spoa_conn_init(struct spoa *sp);
void spoa_conn_accept(struct spoa *sp, int fd, const char *peer);
void spoa_conn_flush_pending(struct spoa *sp);
int spoa_conn_send(struct spoa_conn *c, const uint8_t *frame, size_t len);
int spoa_conn_answer(struct spoa_conn *c, struct spoa_req *r, const uint8_t *ack, size_t len);
void spoa_conn_drain(struct spoa_conn *c);
void spoa_conn_close(struct spoa_conn *c);

/* spoa_msg.c */
/* Handle NOTIFY <f> on <c>: 0 = handled, -1 = <c> is gone, 1 = invalid. */
int spoa_msg_notify(struct spoa_conn *c, const struct spop_frame *f);
void spoa_msg_req_cancel(struct spoa_req *r);

/* spoa_metrics.c */
int spoa_metrics_start(struct spoa *sp, const char *addr);
void spoa_metrics_stop(struct spoa *sp);

/* spoa_authsrv.c */
int spoa_authsrv_start(struct spoa *sp, const char *addr);
void spoa_authsrv_stop(struct spoa *sp);

/* Return the configuration of the current generation of <sp>. */
static inline const struct gh_config *
spoa_cfg(const struct spoa *sp)
{
	return sp->gens.cur->cfg;
}

/* Add 1 to daemon counter <k> of <sp>. */
static inline void
spoa_count(struct spoa *sp, enum spoa_counter k)
{
	atomic_fetch_add_explicit(&sp->c[k], 1, memory_order_relaxed);
}

#endif
