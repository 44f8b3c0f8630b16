/*
 * The nginx mail auth_http protocol, server side: a pure codec for the
 * agent's auth_http endpoint. The request parser reads one request head
 * (what nginx's ngx_mail_auth_http_module sends: Auth-Method, Auth-User,
 * Auth-Pass, Auth-Protocol, Auth-Login-Attempt, Client-IP, ...) and keeps
 * only what a route and a throttle verdict need: it never copies the
 * password (Auth-Pass) nor the SMTP envelope. The answer builder writes
 * the response nginx reads: Auth-Status, Auth-Server, Auth-Port,
 * Auth-Wait, Auth-Error-Code. No I/O, no allocation, no globals; every
 * write stays inside the caller's buffer.
 */
#ifndef GH_AUTHSRV_H
#define GH_AUTHSRV_H

#include <stddef.h>
#include <stdint.h>

#include "route-t.h"
#include "throttle.h"

#define AUTHSRV_HEAD_MAX    16384  /* largest request head (Auth-SSL-Cert fits) */
#define AUTHSRV_HEADERS_MAX 64     /* most header lines in a head */
#define AUTHSRV_USER_MAX    320    /* Auth-User after %-decoding, bytes incl. NUL */
#define AUTHSRV_IP_MAX      64
#define AUTHSRV_ANSWER_MAX  1024   /* room an answer needs */
#define AUTHSRV_MAX_ATTEMPTS 10    /* Auth-Login-Attempt from which nginx closes */
#define AUTHSRV_WAIT        3      /* Auth-Wait of every refused login, seconds */

/* The mail protocol of a request (Auth-Protocol). */
enum authsrv_proto {
	AUTHSRV_P_OTHER = 0,
	AUTHSRV_P_IMAP,
	AUTHSRV_P_POP3,
	AUTHSRV_P_SMTP,
};

/* How the client authenticated (Auth-Method). */
enum authsrv_method {
	AUTHSRV_M_OTHER = 0,   /* apop, cram-md5, external, none, unknown */
	AUTHSRV_M_PLAIN,       /* plain or login: the cleartext password */
};

/* What a request asks, as far as the agent needs it. */
struct authsrv_req {
	enum authsrv_proto proto;
	enum authsrv_method method;
	char method_name[16];             /* Auth-Method as sent (for the log), cut */
	char user[AUTHSRV_USER_MAX];     /* Auth-User, %-decoded */
	char ip[AUTHSRV_IP_MAX];         /* Client-IP */
	uint32_t attempt;                 /* Auth-Login-Attempt, 1 when absent */
};

/* The kinds of answer. */
enum authsrv_kind {
	AUTHSRV_OK = 0,        /* Auth-Server and Auth-Port */
	AUTHSRV_INVALID,       /* "Invalid login or password": unknown user, refused route */
	AUTHSRV_THROTTLED,     /* the throttle's message */
	AUTHSRV_TEMPFAIL,      /* directory down, queue full, late: nginx closes */
	AUTHSRV_UNSUPPORTED,   /* SMTP, or a method needing more than a password */
};

/* An answer to build. */
struct authsrv_answer {
	enum authsrv_kind kind;
	const char *server;     /* AUTHSRV_OK: IP address text */
	uint16_t port;          /* AUTHSRV_OK */
	const char *message;    /* AUTHSRV_THROTTLED: the reject message (NULL: a default) */
	enum authsrv_proto proto;
	uint32_t wait;          /* Auth-Wait seconds; 0: none (nginx closes the session) */
};

/*
 * Parse request head <head> (<len> bytes, through its blank line) into
 * <out>. Returns 0, or -1 with a short static reason in <*why> for a head
 * that is malformed, not a GET, over AUTHSRV_HEADERS_MAX lines, or
 * without Auth-User, Auth-Protocol or a valid Client-IP.
 */
int authsrv_parse(const char *head, size_t len, struct authsrv_req *out, const char **why);

/*
 * Decide the answer to <rq> from its route lookup <rr> (NULL when it was
 * not looked up) and throttle verdict <tr> (<throttled> 1 when refused).
 * Unknown, refused and unusable routes all give AUTHSRV_INVALID, so the
 * answer never tells which names exist. Fills <out> (pointing into <rr>,
 * <tr> and <ipbuf>, <iplen> bytes, which must outlive it).
 */
void authsrv_decide(const struct authsrv_req *rq, const struct route_result *rr,
                     const struct throttle_result *tr, int throttled,
                     struct authsrv_answer *out, char *ipbuf, size_t iplen);

/*
 * Write the HTTP answer <a> into <buf> (<len> bytes). Header values are
 * cleaned of control characters. Returns its length, or -1 when it does
 * not fit.
 */
int authsrv_answer(const struct authsrv_answer *a, char *buf, size_t len);

/* Write the 400 answer to a bad request into <buf>. Returns its length or -1. */
int authsrv_answer_bad(char *buf, size_t len);

/* Return a short name for <k> ("ok", "invalid", ...). */
const char *authsrv_kind_name(enum authsrv_kind k);

/* Return the name of <p> ("imap", "pop3", "smtp", "other"). */
const char *authsrv_proto_name(enum authsrv_proto p);

#endif
