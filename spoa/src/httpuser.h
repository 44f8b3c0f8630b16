/*
 * Finding the user behind an HTTP request, as Zimbra's proxy does: from the
 * URL (/home/<user>/, /service/home/<user>/, /dav/<user>/,
 * /principals/users/<user>/), the ActiveSync "User=" query parameter, the
 * ZM_AUTH_TOKEN cookie (its account id) or HTTP Basic credentials (the user
 * name only; the password is wiped and never returned). Pure and bounded:
 * no allocation, no I/O, inputs are (pointer, length) and need no NUL.
 */
#ifndef GH_HTTPUSER_H
#define GH_HTTPUSER_H

#include <stddef.h>

#define HTTPUSER_MAX        256    /* longest user or id returned, NUL included */
#define HTTPUSER_TOKEN_MAX  4096   /* longest ZM_AUTH_TOKEN accepted */
#define HTTPUSER_AUTH_MAX   1024   /* longest Authorization header accepted */
#define HTTPUSER_FORM_MAX   2048   /* longest decoded form user name considered */

/* How the user was found. */
enum httpuser_by {
	HTTPUSER_NONE = 0,
	HTTPUSER_URL,       /* a login name, from the path or the query */
	HTTPUSER_COOKIE,    /* an account id, from ZM_AUTH_TOKEN */
	HTTPUSER_BASIC,     /* a login name, from Basic credentials */
	HTTPUSER_BAD,       /* Basic credentials that no client may send: 400 */
};

/* The parts of a request the lookup uses; any may be NULL/0. */
struct httpuser_req {
	const char *path;   size_t path_len;    /* raw, percent-encoded, no query */
	const char *query;  size_t query_len;   /* without the '?' */
	const char *token;  size_t token_len;   /* ZM_AUTH_TOKEN cookie value */
	const char *auth;   size_t auth_len;    /* Authorization header value */
};

/*
 * Take the user from path <p> (<len> bytes): the segment after one of the
 * known prefixes, percent-decoded, a leading '~' removed. Writes it NUL
 * terminated to <out> (<outlen> bytes). Returns 1 when found, 0 when the
 * path names no user, -1 when the segment is malformed or too long.
 */
int httpuser_from_path(const char *p, size_t len, char *out, size_t outlen);

/*
 * Take the value of query parameter "User" (name case-insensitive) from
 * <q> (<len> bytes), percent-decoded ('+' is a space). Returns 1, 0 or -1
 * as httpuser_from_path().
 */
int httpuser_from_query(const char *q, size_t len, char *out, size_t outlen);

/*
 * Take the account id from ZM_AUTH_TOKEN value <t> (<len> bytes):
 * "<key version>_<hmac hex>_<data hex>", data being "name=len:value;"
 * fields. The token is not verified (we hold no key): the id is only used
 * as a routing key and must look like a UUID. Returns 1, 0 or -1.
 */
int httpuser_from_token(const char *t, size_t len, char *out, size_t outlen);

/*
 * Take the user name from Authorization header <a> (<len> bytes) when it
 * holds Basic credentials, without the spaces around it. The decoded
 * password is wiped before returning. Returns 1, 0 (no Basic credentials)
 * or -2 (a bad request: not base64, too long, no colon, a name no account
 * can have: empty, a control character such as CR or LF, a space or slash
 * inside). Credentials are never taken as "no user": the server would
 * still check them, so they must be counted under their name or refused.
 */
int httpuser_from_basic(const char *a, size_t len, char *out, size_t outlen);

/*
 * Decode the login name of a web form, field value <v> (<len> bytes) as
 * application/x-www-form-urlencoded sends it ("user%40example.org", '+' a
 * space), without the spaces around it, into <out> (<outlen> bytes).
 * Returns 1, 0 when empty, -2 when malformed (a bad escape, a control
 * character such as CR or LF, a space or slash inside, too long): a bad
 * request.
 */
int httpuser_from_form(const char *v, size_t len, char *out, size_t outlen);

/* Tell whether path <p> (<len> bytes) is an ActiveSync request. */
int httpuser_is_activesync(const char *p, size_t len);

/*
 * Find the user of request <r>, in order: URL path, ActiveSync "User="
 * (ActiveSync paths only), token, Basic. Writes the user or id to <out>.
 * Returns how it was found, HTTPUSER_NONE when no source names one (a
 * malformed source is skipped, as if absent).
 */
enum httpuser_by httpuser_find(const struct httpuser_req *r, char *out, size_t outlen);

/* Return "url", "cookie", "basic" or "none" for <by>. */
const char *httpuser_by_name(enum httpuser_by by);

#endif
