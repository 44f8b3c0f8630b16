/*
 * HAProxy's runtime API on its admin socket, for the gatehouse commands:
 * one command per connection, and the route table (gh_routes) and its
 * hit/miss counters (gh_route_stats) that haproxy.cfg declares.
 */
#ifndef GH_HAPI_H
#define GH_HAPI_H

#include <stddef.h>

#include "cfg-t.h"

#define HAPI_TIMEOUT_MS 5000   /* one runtime API command */

/* What "show table" says of the route table and its counters. */
struct hapi_table {
	long size, used;           /* gh_routes; -1 when not declared */
	long hits, misses;         /* gh_route_stats keys 1 and 2 */
};

/*
 * Send <cmd> (one line, no newline) and <payload> (NULL: none) to the
 * HAProxy admin socket <sock>; read the answer into <ans> (<len> bytes)
 * until HAProxy closes. Returns 0, or -1 with the reason in <ans>.
 */
int hapi_cmd(const char *sock, const char *cmd, const char *payload, char *ans, size_t len);

/*
 * Drop the routes to the servers of index <idx>[<n>] (1-based, as the
 * generated routes.map numbers them) from the route table of <sock>, or
 * every route when <n> is 0; a route a request in flight holds (HAProxy
 * never deletes it) is set to 0, "absent". Returns 0, or -1 with the
 * reason in <why>.
 */
int hapi_routes_clear(const char *sock, const int *idx, int n, char *why, size_t wlen);

/*
 * Read the route table's fill and counters on <sock> into <t>. Returns 0,
 * or -1 with the reason in <why>.
 */
int hapi_routes_stats(const char *sock, struct hapi_table *t, char *why, size_t wlen);

/*
 * Return the index (1-based) routes.map gives server <name> of <cfg>: its
 * place by name among the servers with an http port; 0 when it has none.
 */
int hapi_server_index(const struct gh_config *cfg, const char *name);

#endif
