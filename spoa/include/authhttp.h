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
#ifndef GH_AUTHHTTP_H
#define GH_AUTHHTTP_H

#include <stddef.h>
#include <stdint.h>

#include "route-t.h"
#include "throttle.h"

#define AUTHHTTP_HEAD_MAX    16384  /* largest request head (Auth-SSL-Cert fits) */
#define AUTHHTTP_HEADERS_MAX 64     /* most header lines in a head */
#define AUTHHTTP_USER_MAX    320    /* Auth-User after %-decoding, bytes incl. NUL */
#define AUTHHTTP_IP_MAX      64
#define AUTHHTTP_ANSWER_MAX  1024   /* room an answer needs */
#define AUTHHTTP_MAX_ATTEMPTS 10    /* Auth-Login-Attempt from which nginx closes */
#define AUTHHTTP_WAIT        3      /* Auth-Wait of every refused login, seconds */

/* The mail protocol of a request (Auth-Protocol). */
enum authhttp_proto {
	AUTHHTTP_P_OTHER = 0,
	AUTHHTTP_P_IMAP,
	AUTHHTTP_P_POP3,
	AUTHHTTP_P_SMTP,
};

/* How the client authenticated (Auth-Method). */
enum authhttp_method {
	AUTHHTTP_M_OTHER = 0,   /* apop, cram-md5, external, none, unknown */
	AUTHHTTP_M_PLAIN,       /* plain or login: the cleartext password */
};

/* What a request asks, as far as the agent needs it. */
struct authhttp_req {
	enum authhttp_proto proto;
	enum authhttp_method method;
	char method_name[16];             /* Auth-Method as sent (for the log), cut */
	char user[AUTHHTTP_USER_MAX];     /* Auth-User, %-decoded */
	char ip[AUTHHTTP_IP_MAX];         /* Client-IP */
	uint32_t attempt;                 /* Auth-Login-Attempt, 1 when absent */
};

/* The kinds of answer. */
enum authhttp_kind {
	AUTHHTTP_OK = 0,        /* Auth-Server and Auth-Port */
	AUTHHTTP_INVALID,       /* "Invalid login or password": unknown user, refused route */
	AUTHHTTP_THROTTLED,     /* the throttle's message */
	AUTHHTTP_TEMPFAIL,      /* directory down, queue full, late: nginx closes */
	AUTHHTTP_UNSUPPORTED,   /* SMTP, or a method needing more than a password */
};

/* An answer to build. */
struct authhttp_answer {
	enum authhttp_kind kind;
	const char *server;     /* AUTHHTTP_OK: IP address text */
	uint16_t port;          /* AUTHHTTP_OK */
	const char *message;    /* AUTHHTTP_THROTTLED: the reject message (NULL: a default) */
	enum authhttp_proto proto;
	uint32_t wait;          /* Auth-Wait seconds; 0: none (nginx closes the session) */
};

/*
 * Parse request head <head> (<len> bytes, through its blank line) into
 * <out>. Returns 0, or -1 with a short static reason in <*why> for a head
 * that is malformed, not a GET, over AUTHHTTP_HEADERS_MAX lines, or
 * without Auth-User, Auth-Protocol or a valid Client-IP.
 */
int authhttp_parse(const char *head, size_t len, struct authhttp_req *out, const char **why);

/*
 * Decide the answer to <rq> from its route lookup <rr> (NULL when it was
 * not looked up) and throttle verdict <tr> (<throttled> 1 when refused).
 * Unknown, refused and unusable routes all give AUTHHTTP_INVALID, so the
 * answer never tells which names exist. Fills <out> (pointing into <rr>,
 * <tr> and <ipbuf>, <iplen> bytes, which must outlive it).
 */
void authhttp_decide(const struct authhttp_req *rq, const struct route_result *rr,
                     const struct throttle_result *tr, int throttled,
                     struct authhttp_answer *out, char *ipbuf, size_t iplen);

/*
 * Write the HTTP answer <a> into <buf> (<len> bytes). Header values are
 * cleaned of control characters. Returns its length, or -1 when it does
 * not fit.
 */
int authhttp_answer(const struct authhttp_answer *a, char *buf, size_t len);

/* Write the 400 answer to a bad request into <buf>. Returns its length or -1. */
int authhttp_answer_bad(char *buf, size_t len);

/* Return a short name for <k> ("ok", "invalid", ...). */
const char *authhttp_kind_name(enum authhttp_kind k);

/* Return the name of <p> ("imap", "pop3", "smtp", "other"). */
const char *authhttp_proto_name(enum authhttp_proto p);

#endif
