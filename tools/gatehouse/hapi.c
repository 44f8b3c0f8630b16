/*
 * HAProxy's runtime API: a small client for the admin socket (one command
 * per connection, the answer read until HAProxy closes), and the route
 * table commands purge and status use.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "hapi.h"
#include "parse.h"

#define HAPI_ANSWER_MAX 4096   /* answers of the table commands (headers only) */
#define HAPI_HELD_MAX 65536    /* "show table" of the routes a clear left (~600) */
#define HAPI_KEY_LEN 64        /* a route key: SHA-256 in hex */

/*
 * Send <cmd> and <payload> to admin socket <sock>, answer into <ans>.
 * Returns 0, or -1 with the reason in <ans>.
 */
int
hapi_cmd(const char *sock, const char *cmd, const char *payload, char *ans, size_t len)
{
	struct sockaddr_storage ss;
	struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
	struct timeval tv = { HAPI_TIMEOUT_MS / 1000, (HAPI_TIMEOUT_MS % 1000) * 1000 };
	socklen_t sslen = sizeof(*sun);
	size_t off = 0;
	int fd;

	ans[0] = '\0';
	memset(&ss, 0, sizeof(ss));
	if (sock[0] != '/') {
		/* another node's HAProxy: "ipv4@ip:port", "ipv6@[ip]:port" or "ip:port" */
		const char *at = strchr(sock, '@');

		if (parse_addr(at != NULL ? at + 1 : sock, 0, &ss, &sslen) < 0) {
			snprintf(ans, len, "'%s' is neither a socket path nor ip:port", sock);
			return -1;
		}
	} else {
		sun->sun_family = AF_UNIX;
		if (strlen(sock) >= sizeof(sun->sun_path)) {
			snprintf(ans, len, "socket path too long");
			return -1;
		}
		memcpy(sun->sun_path, sock, strlen(sock) + 1);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sslen) < 0) {
		snprintf(ans, len, "cannot connect to %s: %s", sock, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (write(fd, cmd, strlen(cmd)) < 0 ||
	    write(fd, payload ? " <<\n" : "\n", payload ? 4 : 1) < 0 ||
	    (payload != NULL && (write(fd, payload, strlen(payload)) < 0 ||
	                         write(fd, "\n", 1) < 0))) {
		snprintf(ans, len, "write to %s: %s", sock, strerror(errno));
		close(fd);
		return -1;
	}
	while (off + 1 < len) {
		ssize_t n = read(fd, ans + off, len - 1 - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(ans, len, "no answer from %s: %s", sock, strerror(errno));
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		off += (size_t)n;
	}
	ans[off] = '\0';
	close(fd);
	return 0;
}

/* Copy the first line of answer <ans> into <why> as the reason. */
static void
first_line(const char *ans, char *why, size_t wlen)
{
	size_t n = strcspn(ans, "\r\n");

	if (n == 0)
		snprintf(why, wlen, "empty answer");
	else
		snprintf(why, wlen, "%.*s", (int)(n < 200 ? n : 200), ans);
}

/* Run table command <cmd> on <sock>: a success is an empty answer. */
static int
table_cmd(const char *sock, const char *cmd, char *why, size_t wlen)
{
	char ans[HAPI_ANSWER_MAX];

	if (hapi_cmd(sock, cmd, NULL, ans, sizeof(ans)) < 0) {
		snprintf(why, wlen, "%s", ans);
		return -1;
	}
	if (ans[strspn(ans, "\r\n ")] != '\0') {
		first_line(ans, why, wlen);
		return -1;
	}
	return 0;
}

/*
 * Set to 0 ("absent" for haproxy.cfg) the routes of <sock> that <filter>
 * ("data.gpt0 eq N", "data.gpt0 gt 0") selects after a clear: "clear
 * table" never deletes an entry a request in flight holds (the one that
 * learned it, until that request ends), "set table" changes it. A table
 * keyed in binary (an older haproxy.cfg) cannot be set: left as it is.
 * Returns 0 or -1 with <why>.
 */
static int
routes_zero_held(const char *sock, const char *filter, char *why, size_t wlen)
{
	char cmd[160], *ans, *p;
	int rc = 0;

	ans = malloc(HAPI_HELD_MAX);
	if (ans == NULL) {
		snprintf(why, wlen, "out of memory");
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "show table gh_routes %s", filter);
	if (hapi_cmd(sock, cmd, NULL, ans, HAPI_HELD_MAX) < 0) {
		snprintf(why, wlen, "%s", ans);
		free(ans);
		return -1;
	}
	if (strncmp(ans, "# table: gh_routes", 18) != 0) {
		first_line(ans, why, wlen);
		free(ans);
		return -1;
	}
	p = strchr(ans, '\n');
	if (p == NULL || strstr(ans, ", type: string,") == NULL ||
	    strstr(ans, ", type: string,") > p) {
		free(ans);
		return 0;
	}
	/* a line the buffer cut has no whole key: the second clear sees it */
	while (rc == 0 && (p = strstr(p, " key=")) != NULL) {
		size_t k;

		p += 5;
		k = strspn(p, "0123456789ABCDEFabcdef");
		if (k == HAPI_KEY_LEN && p[k] == ' ') {
			snprintf(cmd, sizeof(cmd), "set table gh_routes key %.*s data.gpt0 0",
			         (int)k, p);
			rc = table_cmd(sock, cmd, why, wlen);
		}
		p += k;
	}
	free(ans);
	return rc;
}

/*
 * Clear the routes of server indexes <idx>[<n>] (all when <n> is 0) on
 * <sock>, those requests in flight hold included. Returns 0 or -1 with <why>.
 */
int
hapi_routes_clear(const char *sock, const int *idx, int n, char *why, size_t wlen)
{
	char cmd[96];
	int i;

	if (n == 0) {
		if (table_cmd(sock, "clear table gh_routes", why, wlen) < 0)
			return -1;
		return routes_zero_held(sock, "data.gpt0 gt 0", why, wlen);
	}
	for (i = 0; i < n; i++) {
		snprintf(cmd, sizeof(cmd), "clear table gh_routes data.gpt0 eq %d", idx[i]);
		if (table_cmd(sock, cmd, why, wlen) < 0)
			return -1;
		snprintf(cmd, sizeof(cmd), "data.gpt0 eq %d", idx[i]);
		if (routes_zero_held(sock, cmd, why, wlen) < 0)
			return -1;
	}
	return 0;
}

/* Read "<name>:<number>" after <key> in <s> into <v>; -1 when absent. */
static long
header_num(const char *s, const char *key)
{
	const char *p = strstr(s, key);

	return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* Read the http_req_cnt of integer key <key> in "show table" answer <s>. */
static long
stats_count(const char *s, int key)
{
	char k[32];
	const char *p, *c;

	snprintf(k, sizeof(k), " key=%d ", key);
	p = strstr(s, k);
	if (p == NULL)
		return 0;
	c = strstr(p, "http_req_cnt=");
	if (c == NULL || memchr(p, '\n', (size_t)(c - p)) != NULL)
		return 0;
	return strtol(c + 13, NULL, 10);
}

/* Read the route table's fill and counters on <sock> into <t>. */
int
hapi_routes_stats(const char *sock, struct hapi_table *t, char *why, size_t wlen)
{
	char ans[HAPI_ANSWER_MAX];

	/* the header line only: no entry is listed for a key that is absent */
	if (hapi_cmd(sock, "show table gh_routes data.gpt0 lt 0", NULL, ans, sizeof(ans)) < 0) {
		snprintf(why, wlen, "%s", ans);
		return -1;
	}
	if (strncmp(ans, "# table: gh_routes", 18) != 0) {
		first_line(ans, why, wlen);
		return -1;
	}
	t->size = header_num(ans, "size:");
	t->used = header_num(ans, "used:");
	if (hapi_cmd(sock, "show table gh_route_stats", NULL, ans, sizeof(ans)) < 0) {
		snprintf(why, wlen, "%s", ans);
		return -1;
	}
	t->hits = stats_count(ans, 1);
	t->misses = stats_count(ans, 2);
	return 0;
}

/* Return the 1-based index of server <name> of <cfg> in routes.map, or 0. */
int
hapi_server_index(const struct gh_config *cfg, const char *name)
{
	int i, n = 0;

	for (i = 0; i < cfg->nservers; i++) {
		/* servers with an http port sorting before <name>, as the
		 * generated files list them */
		if (cfg->servers[i].port[PROTO_HTTP] != 0 && strcmp(cfg->servers[i].name, name) < 0)
			n++;
	}
	for (i = 0; i < cfg->nservers; i++)
		if (cfg->servers[i].port[PROTO_HTTP] != 0 && strcmp(cfg->servers[i].name, name) == 0)
			return n + 1;
	return 0;
}
