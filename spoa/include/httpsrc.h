/*
 * The auth_http route source: one libcurl easy handle, used by one thread
 * at a time (a worker's), asking the [lookup] urls in order with the
 * auth_http protocol. Blocking: never call it on an event loop. Failing fast
 * during an outage is the caller's business (agent_http_admit()).
 */
#ifndef GH_HTTPSRC_H
#define GH_HTTPSRC_H

#include <stdint.h>

#include "authhttp.h"
#include "cfg-t.h"
#include "log.h"

struct httpsrc;

/* Outcome of httpsrc_lookup(). */
enum httpsrc_rc {
	HTTPSRC_ROUTE = 0,    /* Auth-Status OK: out->server, out->port (out->user) */
	HTTPSRC_REFUSED,      /* another Auth-Status: out->status, out->wait_s */
	HTTPSRC_TEMPFAIL,     /* no URL gave a usable answer (down, timed out, HTTP error, malformed) */
	HTTPSRC_ERROR,        /* a value that cannot be sent; out of memory */
};

/* One question to the service. */
struct httpsrc_ask {
	const char *key;        /* normalised login name, or account id when <by_id> */
	int by_id;              /* ask with Auth-Method zimbraId (Zimbra's lookup by account id) */
	enum gh_proto proto;    /* Auth-Protocol */
	const char *client_ip;  /* Client-IP; NULL = not sent */
	const char *password;   /* Auth-Pass when [lookup] allows it for the URL; NULL = none */
	uint32_t attempt;       /* Auth-Login-Attempt; 0 is sent as 1 */
};

/*
 * Initialise libcurl's process-wide state (curl_global_init): call once per
 * process at startup, before any thread creates a handle. Returns 0 or -1.
 */
int httpsrc_lib_init(void);

/* Release what httpsrc_lib_init() set up, once every handle is freed. */
void httpsrc_lib_free(void);

/*
 * Create a handle for <cfg> logging through <lg>; both must outlive it. No
 * connection is made before the first lookup; connections are kept open
 * between lookups. Returns NULL when out of memory.
 */
struct httpsrc *httpsrc_new(const struct cfg_lookup *cfg, const struct logger *lg);

/* Close the connections of <h> and free it (NULL is fine). */
void httpsrc_free(struct httpsrc *h);

/*
 * Ask the service about <ask>, trying [lookup] urls in order until one
 * gives a usable answer (each bounded by [lookup] timeout), and fill <out>
 * with that answer. The password goes only where authhttp_may_send_password()
 * allows, and never into a log line. Returns an httpsrc_rc.
 */
enum httpsrc_rc httpsrc_lookup(struct httpsrc *h, const struct httpsrc_ask *ask,
                               struct authhttp_answer *out);

/* Return a description of the last failure of <h> (never NULL). */
const char *httpsrc_last_error(const struct httpsrc *h);

#endif
