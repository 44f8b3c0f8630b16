/*
 * The auth_http protocol (nginx's ngx_mail_auth_http_module, answered by
 * Zimbra's route lookup servlet): a pure codec. Request headers are
 * formatted into the caller's buffer; the answer is read one header line
 * at a time into a struct authhttp_answer. No I/O, no allocation: the HTTP
 * client, the unit tests and the fuzzers share it.
 *
 * Request:  Auth-Method, Auth-User, Auth-Pass, Auth-Protocol,
 *           Auth-Login-Attempt, Client-IP (user and password escaped the
 *           way nginx escapes them: '%', space and control bytes as %XX).
 * Answer:   Auth-Status ("OK" or a refusal text), Auth-Server (an address,
 *           or a server name), Auth-Port, Auth-Wait (seconds), and Zimbra's
 *           Auth-User (the canonical name, %XX-escaped); Auth-Cache-Alias,
 *           Auth-Id, Auth-Pass and the body are ignored.
 */
#ifndef GH_AUTHHTTP_H
#define GH_AUTHHTTP_H

#include <stddef.h>
#include <stdint.h>

#include "cfg-t.h"

#define AUTHHTTP_VAL_MAX   256     /* a kept answer value, bytes incl. NUL */
#define AUTHHTTP_LINE_MAX  2048    /* a longer header line makes the answer bad */
#define AUTHHTTP_WAIT_MAX  86400   /* Auth-Wait is capped at a day */

/* The answer of the service, as read so far. */
struct authhttp_answer {
	int http_status;                 /* of the last status line; 0 before one */
	int have_status;                 /* Auth-Status seen */
	int status_ok;                   /* ... and it was "OK" */
	char status[AUTHHTTP_VAL_MAX];   /* Auth-Status text, control bytes as '?' (for logs) */
	char server[AUTHHTTP_VAL_MAX];   /* Auth-Server, "" when absent */
	int port;                        /* Auth-Port, 0 when absent */
	int wait_s;                      /* Auth-Wait, -1 when absent */
	char user[AUTHHTTP_VAL_MAX];     /* Auth-User, unescaped, "" when absent */
	char why[128];                   /* what was malformed ("" when nothing) */
};

/* What an answer means for a lookup. */
enum authhttp_verdict {
	AUTHHTTP_ROUTE = 0,   /* Auth-Status OK with a server and a port */
	AUTHHTTP_REFUSED,     /* another Auth-Status: the service refuses the login */
	AUTHHTTP_BAD,         /* not a usable answer (HTTP error, missing or malformed headers) */
};

/* Empty <a> before an answer is read. */
void authhttp_answer_init(struct authhttp_answer *a);

/*
 * Read header line <line> of <len> bytes (CRLF optional) into <a>. A status
 * line ("HTTP/1.1 200 OK") starts a new answer (interim answers and
 * redirects are forgotten); other lines are "Name: value", names matched
 * without case. A malformed value of a header that matters is noted in
 * a->why and makes the answer AUTHHTTP_BAD. Returns 0, or -1 when the line
 * was malformed.
 */
int authhttp_answer_line(struct authhttp_answer *a, const char *line, size_t len);

/* Tell what answer <a> means; see enum authhttp_verdict. */
enum authhttp_verdict authhttp_answer_verdict(const struct authhttp_answer *a);

/*
 * Escape <src> as nginx escapes Auth-User and Auth-Pass ('%', space, bytes
 * below 0x20 and from 0x7f as %XX) into <dst> of <len> bytes. Returns the
 * length written, or -1 when it does not fit.
 */
int authhttp_escape(char *dst, size_t len, const char *src);

/*
 * Undo %XX escapes of <src> (<n> bytes) into <dst> of <len> bytes. Returns
 * the length, or -1 when it does not fit, an escape is broken, or the
 * result holds a control byte or NUL.
 */
int authhttp_unescape(char *dst, size_t len, const char *src, size_t n);

/*
 * Return the Auth-Protocol value for <p>, in Zimbra's names (imap, imapssl,
 * pop3, pop3ssl, http, httpssl; nginx itself sends imap, pop3, smtp).
 */
const char *authhttp_proto_name(enum gh_proto p);

/*
 * Tell whether the user's password may go to <url> under <c>: only when
 * send_password is set, and only to an https URL unless allow_plain_http.
 */
int authhttp_may_send_password(const struct cfg_lookup *c, const char *url);

/*
 * Format header "<name>: <value>" into <dst> of <len> bytes, the value
 * escaped when <escape>; an empty value gives "<name>;" (curl's way of
 * sending a header with no value). Returns 0, or -1 when it does not fit
 * or <value> holds CR or LF.
 */
int authhttp_header(char *dst, size_t len, const char *name, const char *value, int escape);

#endif
