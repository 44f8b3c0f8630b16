/*
 * One memcached handle (libmemcached, binary protocol, ketama consistent
 * hashing over every configured server). Owned by one thread. A server
 * that fails is skipped for [memcached] retry seconds, so lookups never pay
 * a connect timeout per request while it is down; its keys move to the
 * others (auto eject).
 * Keys passed here are already encoded (see keys.h): at most 250 bytes, no
 * spaces or control characters.
 */
#ifndef GH_MC_H
#define GH_MC_H

#include <stddef.h>
#include <stdint.h>

#include "cfg-t.h"
#include "log.h"

struct mc;

/* Result of an operation. */
enum mc_rc {
	MC_OK = 0,
	MC_MISS = 1,       /* no such key */
	MC_ERR = -1,       /* server(s) unavailable or protocol error */
};

/*
 * Create a handle for the servers of <cfg> (NULL when there are none),
 * logging through <lg>. Returns the handle or NULL (logged) on error; no
 * connection is made until first use.
 */
struct mc *mc_new(const struct cfg_memcached *cfg, const struct logger *lg);

/* Close and free <mc> (NULL is fine). */
void mc_free(struct mc *mc);

/*
 * Get <key> into <val> (<vlen> bytes, NUL-terminated). Returns MC_OK,
 * MC_MISS, or MC_ERR (also when the value does not fit).
 */
enum mc_rc mc_get(struct mc *mc, const char *key, char *val, size_t vlen);

/* Set <key> to <val> for <ttl_s> seconds. Returns MC_OK or MC_ERR. */
enum mc_rc mc_set(struct mc *mc, const char *key, const char *val, uint32_t ttl_s);

/* Delete <key>. Returns MC_OK, MC_MISS or MC_ERR. */
enum mc_rc mc_delete(struct mc *mc, const char *key);

/*
 * Atomically add <delta> to the counter <key>, creating it with value
 * <delta> and lifetime <ttl_s> when absent (one round trip, no race), and
 * store the new value in <value>. Returns MC_OK or MC_ERR.
 */
enum mc_rc mc_incr(struct mc *mc, const char *key, uint64_t delta, uint32_t ttl_s,
                   uint64_t *value);

/* Tell whether the last operation on <mc> failed for server reasons. */
int mc_failed(const struct mc *mc);

#endif
