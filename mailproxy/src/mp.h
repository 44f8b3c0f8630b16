/*
 * gatehouse-mailproxy internals: the daemon context, sessions, buffers and
 * the functions each file of the daemon offers the others. One event loop
 * runs everything; blocking lookups go through the library's job queue.
 */
#ifndef GH_MP_H
#define GH_MP_H

#include <stddef.h>
#include <stdint.h>
#include <ev.h>
#include <openssl/ssl.h>
#include <bsd/sys/queue.h>

#include "agent.h"
#include "cfg-t.h"
#include "certs.h"
#include "gen.h"
#include "imapcmd-t.h"
#include "kerberos.h"
#include "jobq.h"
#include "listen.h"
#include "log.h"
#include "log_limit.h"
#include "mbuf.h"
#include "metrics-t.h"
#include "mhttp.h"
#include "pop3cmd.h"
#include "route-t.h"
#include "sasl.h"
#include "throttle.h"

struct session;
struct mp;

/* The mail protocols a listener speaks. */
enum mp_proto { MP_IMAP = 0, MP_POP3 };

/* One listening socket of a mail service. */
struct listener {
	struct mp *mp;
	struct listen_sock ls;  /* the socket and its accept loop */
	enum mp_proto proto;
	int implicit_tls;       /* imaps / pop3s */
	int local_exact;        /* bound to one address: sessions' local address is <local> */
	struct sockaddr_storage local;
	char name[16];          /* "imap", "imaps", ... */
	SLIST_ENTRY(listener) next;
};

/* Daemon counters, rendered next to the library's. */
enum mp_counter {
	MPC_ACCEPTED = 0,
	MPC_REFUSED_MAXCONN,
	MPC_LOGIN_OK,
	MPC_LOGIN_FAIL,
	MPC_LOGIN_TEMPFAIL,
	MPC_LOGIN_THROTTLED,
	MPC_TLS_HANDSHAKE_FAIL,
	MPC_STARTTLS,
	MPC_BAD_COMMANDS,
	MPC_UPSTREAM_CONNECT_FAIL,
	MPC_BYTES_C2U,
	MPC_BYTES_U2C,
	MPC__COUNT
};

/* The process: configuration, loop, library handles, sessions. */
struct mp {
	struct gen_ctl gens;             /* configuration generations; sessions hold theirs */
	const struct gh_config *cur_cfg; /* the current generation's (read it with mp_cfg()) */
	const char *cfg_path;
	struct logger log;
	struct log_limit log_limit;      /* rate limit of client-caused warnings */
	ev_timer log_flush_w;            /* reports suppressed counts */
	struct ev_loop *loop;
	struct certs *certs;             /* current store (ref held), may be NULL */
	SSL_CTX *up_ctx;                 /* client side towards mailbox servers */
	struct mbuf_pool pool;
	SLIST_HEAD(, listener) listeners;
	LIST_HEAD(, session) sessions;
	LIST_HEAD(, session) again;      /* stopped at RUN_MAX: run again at the next turn */
	ev_prepare again_w;              /* ... just before the loop polls */
	unsigned nsessions, nhandshakes;
	int stopping;
	ev_signal sig_term, sig_int, sig_hup;
	ev_timer grace;                  /* SIGTERM deadline */
	ev_io inotify_io;                /* certs directory watch */
	ev_timer certs_debounce;
	int inotify_fd;
	int audit_fd;                    /* -1: audit lines go to the main log */
	uint64_t next_id;
	uint64_t counters[MPC__COUNT];
	struct metrics_hist login_latency;
	struct mhttp *metrics;          /* metrics endpoint, NULL = off */
};

/*
 * One end of a session, the client or the mailbox server: its socket, its
 * TLS state, its watcher (io.data is the owner) and what is known of its
 * readiness. The buffers it fills and flushes belong to the owner.
 */
struct side {
	int fd;
	SSL *ssl;
	ev_io io;
	int events;                      /* armed events */
	int hs_want;                     /* events the TLS handshake waits for */
	unsigned rd_ww:1;                /* SSL_read wants write */
	unsigned wr_wr:1;                /* SSL_write wants read */
	unsigned eof:1;                  /* no more input from this end */
	unsigned shut:1;                 /* our output towards it is shut down */
	unsigned hs:1;                   /* TLS handshake in progress */
	unsigned tls:1;                  /* TLS established */
	unsigned rd_ready:1;             /* may have input: not drained since the last event */
	unsigned wr_ready:1;             /* may take output: not found full since the last event */
};

#define OUT_HIGH 16384   /* stop parsing client commands above this much output */
#define MBUF_MIN 32768   /* smallest buffer: 2 x OUT_HIGH, more than a server line */

/* The watcher callback of a side. */
typedef void (*side_cb)(struct ev_loop *loop, ev_io *w, int revents);

/* Session states; what each means (timeout, waits, expiry) is the session's state table. */
enum sstate {
	SS_HANDSHAKE = 0,   /* client TLS handshake (implicit TLS or STARTTLS) */
	SS_CMD,             /* pre-auth commands */
	SS_STARTTLS_FLUSH,  /* STARTTLS answered; waiting for it to be written */
	SS_SASL,            /* a GSSAPI step runs on a worker */
	SS_LOOKUP,          /* throttle + route job running */
	SS_FAIL_DELAY,      /* a refused login waits failure_delay before its answer */
	SS_UP_CONNECT,      /* TCP connect to the mailbox server */
	SS_UP_RETRY,        /* waiting before another connect attempt */
	SS_UP_TLS,          /* TLS handshake with the mailbox server */
	SS_UP_LOGIN,        /* greeting, ID/XOIP, login replay */
	SS_RELAY,           /* logged in: bytes both ways */
	SS_CLOSING,         /* flushing a last answer, then close */
	SS__COUNT           /* the number of states (and "none yet", before the first) */
};

/*
 * What a phase of a session (commands, lookup, connect, mailbox server
 * login) ends with. Phases never change the state: the session reads this
 * and decides what comes next.
 */
enum phase {
	PH_MORE = 0,        /* not finished: wait for more input or events */
	PH_OK,              /* succeeded: on to the next phase */
	PH_FAIL,            /* failed for good, the client has its answer */
	PH_FAIL_LATER,      /* refused: the answer is due after the failure delay */
	PH_TEMPFAIL,        /* cannot complete for now: temporary failure */
	PH_LOGIN,           /* commands: credentials are in s->login, start the login */
	PH_STARTTLS,        /* commands: STARTTLS answered, handshake once it is written */
	PH_CLOSE,           /* commands: last words queued, flush them and close */
	PH_SASL,            /* commands: a GSSAPI response waits in s->login, run its step */
};

/* How the client logs in. */
enum login_mech { LOGIN_USERPASS = 0, LOGIN_SASL_PLAIN, LOGIN_GSSAPI };

/* A login in progress: credentials (wiped when done) and upstream steps. */
struct login {
	enum login_mech mech;
	char tag[IMAPCMD_TAG_MAX + 1];
	struct sasl_plain cred;          /* authzid/authcid/password */
	struct route_result route;
	char tuser[ROUTE_NAME_MAX];      /* throttled under this authcid ("" = the account) */
	struct jobq_job *job;
	struct gssapi *gss;              /* GSSAPI conversation (NULL while a step runs) */
	void *pending;                   /* GSSAPI: the client's decoded response, until it runs */
	void (*mech_free)(struct login *lg);   /* frees the mechanism's state (set by it) */
	const char *refusal;             /* audit result of a refusal (NULL: the route's status) */
	ev_tstamp start;
	unsigned attempts;               /* upstream connect attempts */
	int step;                        /* protocol-specific upstream step */
	int literalplus, sasl_ir, xclient;
	char cmd[2 * SASL_PASS_MAX + 2 * SASL_NAME_MAX + 128];
	size_t cmdlen;
	size_t seg[4];                   /* segment ends inside cmd */
	int nseg, sent_seg;
};

/* A client connection and, after routing, its mailbox server connection. */
struct session {
	struct mp *mp;
	struct gen *gen;                 /* the configuration it started with (held) */
	struct listener *li;
	uint64_t id;
	enum mp_proto proto;
	enum sstate state;               /* written by session_goto() only */
	struct side cl, up;
	struct mbuf *c2u;                /* client input: unparsed, or to relay */
	struct mbuf *u2c;                /* output to the client */
	struct mbuf *uin;                /* login phase: mailbox server input */
	struct mbuf *uout;               /* login phase: output to the mailbox server */
	ev_timer timer;                  /* the one activity timer */
	struct certs *hs_certs;          /* store ref held during a handshake */
	union {
		struct imapcmd *imap;
		struct pop3cmd *pop3;
		void *p;
	} parser;
	struct login *login;
	char user[SASL_NAME_MAX + 1];    /* POP3 USER, kept until PASS */
	struct sockaddr_storage peer, local;
	char ip[64];                     /* client address text */
	uint16_t port;
	char account[ROUTE_NAME_MAX];    /* logged-in account, for logs */
	char server[CFG_NAME_MAX];
	unsigned bad;                    /* bad commands so far */
	unsigned starttls_done:1;
	unsigned dead:1;
	unsigned relay_c2u_done:1;       /* client EOF relayed as shutdown */
	unsigned relay_u2c_done:1;
	int depth;                       /* callback nesting, for safe free */
	LIST_ENTRY(session) next;
	LIST_ENTRY(session) again_link;  /* on mp->again while <again> */
	int again;
};

/* What a temporary login failure is told to the client about. */
enum tempfail_what {
	TEMPFAIL_MAILBOX = 0,   /* the mailbox server: down, slow, or odd answers */
	TEMPFAIL_LOOKUP,        /* finding the account: directory down, queue full, timeout */
	TEMPFAIL_AUTH,          /* Kerberos: keytab or master secret unreadable, step timeout */
};

/* Pre-auth protocol handlers. */
struct proto_ops {
	void (*greet)(struct session *s);
	/* parse client input: PH_MORE, PH_LOGIN, PH_STARTTLS or PH_CLOSE */
	enum phase (*input)(struct session *s);
	/* a mailbox server line during login: PH_MORE, PH_OK, PH_FAIL or PH_TEMPFAIL (<why>) */
	enum phase (*up_line)(struct session *s, const char *line, size_t len, const char **why);
	void (*tempfail)(struct session *s, enum tempfail_what what);
	void (*reject)(struct session *s, const char *msg);   /* throttled */
	void (*login_failed)(struct session *s);               /* unknown user */
	void (*bye)(struct session *s, const char *why);
	/* GSSAPI: a challenge was queued, the next line is a SASL response */
	void (*sasl_expect)(struct session *s);
};

/* Called when a login's lookup job ended; <job> goes to login_lookup_end(). */
typedef void (*login_done_fn)(struct session *s, void *job);

/* Return the current configuration of <mp> (a session reads its own: s->gen->cfg). */
static inline const struct gh_config *
mp_cfg(const struct mp *mp)
{
	return mp->cur_cfg;
}

/* session.c */
void session_sched_init(struct mp *mp);
struct session *session_new(struct listener *li, int fd, const struct sockaddr *sa,
                            socklen_t salen);
void session_close(struct session *s, const char *why);
void session_enter(struct session *s);
int session_leave(struct session *s);
void session_run(struct session *s);
const struct sockaddr_storage *session_local(struct session *s);
void session_send(struct session *s, const char *data, size_t len);
void session_printf(struct session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int session_bad_command(struct session *s);
void session_shutdown_all(struct mp *mp, int force);

/* session_log.c */
void session_log(const struct session *s, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void session_log_limited(const struct session *s, int level, const char *kind,
                         const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* side.c */
void side_init(struct side *sd, int fd, side_cb cb, void *owner);
int side_connect(struct side *sd, const struct sockaddr *sa, socklen_t salen);
int side_connect_error(const struct side *sd);
void side_note(struct side *sd, int revents);
ssize_t side_read(struct side *sd, void *buf, size_t len);
ssize_t side_write(struct side *sd, const void *buf, size_t len);
int side_fill(struct side *sd, struct mbuf_pool *pool, struct mbuf **bp);
int side_flush(struct side *sd, struct mbuf_pool *pool, struct mbuf **bp, int wipe);
void side_arm(struct side *sd, struct ev_loop *loop, int ev);
void side_tls(struct side *sd, SSL *ssl, int server);
int side_handshake(struct side *sd, char *err, size_t errlen);
void side_shutdown(struct side *sd);
void side_release(struct side *sd, struct ev_loop *loop);

/* imap.c / pop3.c */
extern const struct proto_ops imap_ops;
extern const struct proto_ops pop3_ops;
int imap_capabilities(const struct session *s, char *buf, size_t len);

/* Return the protocol handlers of <s>. */
static inline const struct proto_ops *
session_ops(const struct session *s)
{
	return s->proto == MP_IMAP ? &imap_ops : &pop3_ops;
}

/* login.c */
enum phase login_start(struct session *s, login_done_fn done, const char **why);
enum phase login_lookup_end(struct session *s, void *job, const char **why);
uint32_t login_fail_delay(const struct session *s);
void login_free(struct session *s);
void login_succeeded(struct session *s);
void login_failed(struct session *s);
void login_tempfail(struct session *s, const char *why, enum tempfail_what what);
void login_unknown_answer(struct session *s);
int login_allowed(const struct session *s);
void login_record_failure(struct session *s, const char *user);

/* upstream.c */
enum phase upstream_connect(struct session *s, const char **why);
enum phase upstream_connect_done(struct session *s);
int upstream_send(struct session *s, const char *data, size_t len);
int upstream_send_seg(struct session *s);
enum phase upstream_handshake(struct session *s, const char **why);
enum phase upstream_pump(struct session *s, int *progress, const char **why);
void upstream_close(struct session *s);

/* relay.c */
int relay_start(struct session *s);
int relay_pump(struct session *s, const char **why);

/* tls.c */
int tls_init(struct mp *mp, char *err, size_t errlen);
void tls_free(struct mp *mp);
int tls_available(const struct mp *mp);
int tls_server_start(struct session *s);
int tls_client_start(struct session *s);
void tls_reload_certs(struct mp *mp);
int tls_watch_start(struct mp *mp);

/* audit.c */
int audit_open(struct mp *mp);
void audit_login(struct session *s, const char *user, const char *result);

/* mp_metrics.c */
int mp_metrics_start(struct mp *mp);
void mp_metrics_stop(struct mp *mp);
static inline void
mp_count(struct mp *mp, enum mp_counter c, uint64_t n)
{
	mp->counters[c] += n;
}

/* listener.c */
int listener_open_all(struct mp *mp, char *err, size_t errlen);
void listener_stop_all(struct mp *mp);
void listener_close_all(struct mp *mp);

#endif
