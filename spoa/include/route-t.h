/*
 * Route lookup types: where a user's mailbox lives, and how we found out.
 */
#ifndef GH_ROUTE_T_H
#define GH_ROUTE_T_H

#include <stdint.h>
#include <sys/socket.h>

#include "cfg-t.h"

#define ROUTE_NAME_MAX 256   /* canonical account name, bytes incl. NUL */

/* What the key of a lookup is. */
enum route_kind {
	ROUTE_BY_NAME = 0,   /* login name or alias */
	ROUTE_BY_ID,         /* account id (entryUUID, zimbraId) */
};

/* Outcome of a lookup. */
enum route_status {
	ROUTE_OK = 0,        /* server, address and port are set */
	ROUTE_UNKNOWN,       /* no such account */
	ROUTE_REFUSED,       /* the account's host is not a configured server, or
	                        the server does not serve the protocol */
	ROUTE_TEMPFAIL,      /* LDAP unreachable and nothing cached */
	ROUTE_ERROR,         /* bad input, a directory error, internal error */
	ROUTE_BUSY,          /* the job queue was full (set by callers of jobq) */
	ROUTE_UNUSABLE,      /* entries exist but none can be used: several
	                        match the name, or the one found is malformed */
	ROUTE_DEFER,         /* only the caches were allowed (cache_only worker)
	                        and the answer needs LDAP: ask again on a worker
	                        that may call it; not counted */
};

/* Where the answer came from. */
enum route_source {
	ROUTE_SRC_NONE = 0,
	ROUTE_SRC_LOCAL,     /* in-process cache */
	ROUTE_SRC_MEMCACHED,
	ROUTE_SRC_LDAP,
	ROUTE_SRC_HTTP,      /* the auth_http service ([lookup] source = http) */
};

/*
 * What a login tells about itself, for a source that asks for it (the
 * auth_http service: Client-IP, Auth-Pass, Auth-Login-Attempt). Not owned.
 */
struct route_client {
	const char *ip;         /* client address; NULL when unknown */
	const char *password;   /* NULL when none; sent only as [lookup] allows, never logged */
	uint32_t attempt;       /* login attempt in the session, from 1; 0 = 1 */
};

/* The answer of route_lookup(). */
struct route_result {
	enum route_status status;
	enum route_source source;
	char account[ROUTE_NAME_MAX];       /* canonical name (lower case) */
	char name[ROUTE_NAME_MAX];          /* the name looked up, normalised ("" for
	                                       ids and names no account can have) */
	char server[CFG_NAME_MAX];          /* [server NAME] */
	struct sockaddr_storage addr;       /* address with the protocol's port */
	socklen_t addrlen;
	uint16_t port;
};

#endif
