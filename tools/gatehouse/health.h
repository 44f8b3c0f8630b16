/*
 * Health probes for the gatehouse command: TCP connects (many in parallel),
 * memcached "version", an HTTP GET of a metrics endpoint. (The LDAP probe is
 * the library's dir_probe(), which connects as lookups do.)
 * Every probe is bounded by a timeout in milliseconds.
 */
#ifndef GH_HEALTH_H
#define GH_HEALTH_H

#include <stddef.h>
#include <sys/socket.h>

/* One TCP probe: fill addr/len; health_tcp_many() fills the rest. */
struct health_probe {
	struct sockaddr_storage addr;
	socklen_t len;
	int ok;                 /* 1 connected */
	long ms;                /* time to connect (or until the failure) */
	char err[128];          /* reason when !ok */
};

/*
 * Connect to every one of the <n> probes <p> at once (non-blocking, poll)
 * and wait at most <timeout_ms> for all. Fills ok/ms/err of each.
 */
void health_tcp_many(struct health_probe *p, int n, int timeout_ms);

/*
 * Connect to <sa>/<len> within <timeout_ms>. Returns a connected blocking
 * socket with send/receive timeouts of <timeout_ms> (caller closes), or -1
 * with the reason in <err>.
 */
int health_connect(const struct sockaddr *sa, socklen_t len, int timeout_ms, char *err,
                   size_t errlen);

/*
 * Ask memcached <hostport> ("host:port", "[v6]:port" or "host", port 11211
 * by default, names resolved, as the daemons read [memcached] servers) for
 * its version within <timeout_ms>. Returns 0 with the version in <ver>, or
 * -1 with the reason in <err>.
 */
int health_memcached(const char *hostport, int timeout_ms, char *ver, size_t verlen,
                     char *err, size_t errlen);

/*
 * GET http://<hostport><path> within <timeout_ms>; the body goes to <buf>
 * (<len> bytes, NUL-terminated, truncated). Returns the HTTP status, or -1
 * with the reason in <err>.
 */
int health_http_get(const char *hostport, const char *path, int timeout_ms, char *buf,
                    size_t len, char *err, size_t errlen);

/* Milliseconds of CLOCK_MONOTONIC. */
long health_now_ms(void);

#endif
