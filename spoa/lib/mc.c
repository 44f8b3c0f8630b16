/*
 * memcached handle: libmemcached with the binary protocol (needed for the
 * atomic increment-with-initial) and ketama consistent hashing. A server
 * that refuses or times out is marked failed after one error and ejected
 * from the continuum, so its keys move to the survivors and later calls
 * do not pay a connect timeout; it is tried again after the retry time.
 * Long-lived handles (one per thread) are what make this work: the failure
 * state lives in the handle.
 */
#include <libmemcached/memcached.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mc.h"
#include "parse.h"

/*
 * Attempts per operation: a connection failure marks the server dead, the
 * next attempt sees it dead and ejects it, the last reaches a survivor.
 * Each failed attempt is immediate (refused, or a server already marked).
 */
#define MC_TRIES 3

/*
 * A server that accepted a connection but did not answer in time. Such a
 * server is never marked failed by libmemcached (only failed connects
 * are), so every request for its keys would wait a full poll timeout; we
 * skip it ourselves for [memcached] retry seconds instead.
 */
struct mc_stall {
	char host[CFG_STR_MAX];
	in_port_t port;
	uint64_t until_ms;          /* monotonic; 0 = not skipped now */
	int probing;                /* skip time over: next answer ends the episode */
};

/* A handle with the state of its last operation. */
struct mc {
	memcached_st *m;
	const struct logger *log;
	uint32_t retry_ms;
	int failed;                 /* last operation failed for server reasons */
	struct mc_stall stall[CFG_MAX_LISTS];
};

static uint64_t
mc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Tell whether the server holding <key> stalled recently; when it did,
 * the operation fails at once.
 */
static int
mc_stalled(struct mc *mc, const char *key)
{
	const memcached_instance_st *inst;
	memcached_return_t rc;
	const char *name;
	uint64_t now = 0;
	int i;

	for (i = 0; i < CFG_MAX_LISTS; i++)
		if (mc->stall[i].until_ms != 0)
			break;
	if (i == CFG_MAX_LISTS)
		return 0;          /* the usual case: nothing skipped, no extra hashing */
	inst = memcached_server_by_key(mc->m, key, strlen(key), &rc);
	if (inst == NULL || (name = memcached_server_name(inst)) == NULL)
		return 0;
	for (i = 0; i < CFG_MAX_LISTS; i++) {
		struct mc_stall *st = &mc->stall[i];

		if (st->until_ms == 0 || st->port != memcached_server_port(inst) ||
		    strcmp(st->host, name) != 0)
			continue;
		if (now == 0)
			now = mc_now_ms();
		if (now < st->until_ms)
			return 1;
		st->until_ms = 0;  /* time to try it again */
		st->probing = 1;
	}
	return 0;
}

/* Find the stall slot of the server holding <key>; -1 when none. */
static int
mc_stall_find(struct mc *mc, const char *key, const memcached_instance_st **instp)
{
	const memcached_instance_st *inst;
	memcached_return_t rc;
	const char *name;
	int i;

	*instp = NULL;
	inst = memcached_server_by_key(mc->m, key, strlen(key), &rc);
	if (inst == NULL || (name = memcached_server_name(inst)) == NULL)
		return -1;
	*instp = inst;
	for (i = 0; i < CFG_MAX_LISTS; i++)
		if ((mc->stall[i].until_ms != 0 || mc->stall[i].probing) &&
		    mc->stall[i].port == memcached_server_port(inst) &&
		    strcmp(mc->stall[i].host, name) == 0)
			return i;
	return -1;
}

/* Remember that the server holding <key> timed out: skip it for a while. */
static void
mc_stall_note(struct mc *mc, const char *key)
{
	const memcached_instance_st *inst;
	uint32_t ms = mc->retry_ms ? mc->retry_ms : 1000;
	const char *name;
	int i, slot = mc_stall_find(mc, key, &inst);

	if (inst == NULL)
		return;
	if (slot >= 0) {
		/* still stalled after the pause: skip again, quietly */
		mc->stall[slot].until_ms = mc_now_ms() + ms;
		mc->stall[slot].probing = 0;
		return;
	}
	name = memcached_server_name(inst);
	for (i = 0; i < CFG_MAX_LISTS && slot < 0; i++)
		if (mc->stall[i].until_ms == 0 && !mc->stall[i].probing)
			slot = i;
	if (slot < 0 || strlen(name) >= sizeof(mc->stall[slot].host))
		return;
	memcpy(mc->stall[slot].host, name, strlen(name) + 1);
	mc->stall[slot].port = memcached_server_port(inst);
	mc->stall[slot].until_ms = mc_now_ms() + ms;
	mc->stall[slot].probing = 0;
	log_warnx(mc->log, "memcached %s:%u does not answer in time: skipping it, retrying "
	          "every %u ms", name, (unsigned)mc->stall[slot].port, ms);
}

/* After a success on <key>: end the stall episode of its server, if any. */
static void
mc_stall_clear(struct mc *mc, const char *key)
{
	const memcached_instance_st *inst;
	int i, slot;

	for (i = 0; i < CFG_MAX_LISTS; i++)
		if (mc->stall[i].probing)
			break;
	if (i == CFG_MAX_LISTS)
		return;
	slot = mc_stall_find(mc, key, &inst);
	if (slot < 0 || !mc->stall[slot].probing)
		return;
	log_notice(mc->log, "memcached %s:%u answers again", mc->stall[slot].host,
	           (unsigned)mc->stall[slot].port);
	mc->stall[slot].probing = 0;
	mc->stall[slot].until_ms = 0;
}

/*
 * Create a handle for the servers in <cfg>, logging through <lg>. Returns
 * NULL when there are no servers or on error (logged).
 */
struct mc *
mc_new(const struct cfg_memcached *cfg, const struct logger *lg)
{
	struct mc *mc;
	char host[CFG_STR_MAX];
	in_port_t port;
	int i;

	if (cfg->servers.n == 0)
		return NULL;
	mc = calloc(1, sizeof(*mc));
	if (mc == NULL) {
		log_err(lg, "memcached: out of memory");
		return NULL;
	}
	mc->log = lg;
	mc->retry_ms = cfg->retry_s * 1000;
	mc->m = memcached_create(NULL);
	if (mc->m == NULL) {
		log_err(lg, "memcached: cannot create a handle");
		free(mc);
		return NULL;
	}
	/* order matters little, but the distribution is set before servers */
	if (memcached_behavior_set(mc->m, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(mc->m, MEMCACHED_BEHAVIOR_DISTRIBUTION,
	                           MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(mc->m, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, cfg->timeout_ms) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(mc->m, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, cfg->timeout_ms) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(mc->m, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, cfg->retry_s) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(mc->m, MEMCACHED_BEHAVIOR_DEAD_TIMEOUT, cfg->retry_s) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(mc->m, MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT, 1) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(mc->m, MEMCACHED_BEHAVIOR_SERVER_TIMEOUT_LIMIT, 1) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(mc->m, MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS, 1) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(mc->m, MEMCACHED_BEHAVIOR_AUTO_EJECT_HOSTS, 1) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(mc->m, MEMCACHED_BEHAVIOR_NOREPLY, 0) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(mc->m, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1) != MEMCACHED_SUCCESS) {
		log_err(lg, "memcached: cannot set behaviours: %s", memcached_last_error_message(mc->m));
		mc_free(mc);
		return NULL;
	}
	for (i = 0; i < cfg->servers.n; i++) {
		if (parse_hostport(cfg->servers.item[i], 11211, host, sizeof(host), &port) < 0) {
			log_err(lg, "memcached: bad server '%s' (expected host:port)", cfg->servers.item[i]);
			mc_free(mc);
			return NULL;
		}
		if (memcached_server_add(mc->m, host, port) != MEMCACHED_SUCCESS) {
			log_err(lg, "memcached: cannot add server %s: %s", cfg->servers.item[i],
			        memcached_last_error_message(mc->m));
			mc_free(mc);
			return NULL;
		}
	}
	return mc;
}

/* Close and free <mc>. */
void
mc_free(struct mc *mc)
{
	if (mc == NULL)
		return;
	if (mc->m != NULL)
		memcached_free(mc->m);
	free(mc);
}

/*
 * Tell whether <rc> means the key's server could not be reached, so that
 * the server has just been ejected and one retry goes to a survivor (or
 * fails at once when none is left). Timeouts are not retried: they would
 * cost another full timeout.
 */
static int
mc_retryable(memcached_return_t rc)
{
	switch (rc) {
	case MEMCACHED_CONNECTION_FAILURE:
	case MEMCACHED_CONNECTION_SOCKET_CREATE_FAILURE:
	case MEMCACHED_SERVER_MARKED_DEAD:
	case MEMCACHED_SERVER_TEMPORARILY_DISABLED:
	case MEMCACHED_ERRNO:
	case MEMCACHED_WRITE_FAILURE:
	case MEMCACHED_READ_FAILURE:
	case MEMCACHED_UNKNOWN_READ_FAILURE:
		return 1;
	default:
		return 0;
	}
}

/* Record the outcome <rc> of an operation on <key>; returns <rc> mapped. */
static enum mc_rc
mc_result(struct mc *mc, memcached_return_t rc, const char *op, const char *key)
{
	if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_STORED || rc == MEMCACHED_DELETED) {
		mc->failed = 0;
		mc_stall_clear(mc, key);
		return MC_OK;
	}
	if (rc == MEMCACHED_NOTFOUND) {
		mc->failed = 0;
		mc_stall_clear(mc, key);
		return MC_MISS;
	}
	mc->failed = 1;
	if (rc == MEMCACHED_TIMEOUT)
		mc_stall_note(mc, key);
	log_debug(mc->log, "memcached %s %s: %s", op, key, memcached_strerror(mc->m, rc));
	return MC_ERR;
}

/*
 * Get <key> into <val> (<vlen> bytes, NUL-terminated). Returns MC_OK,
 * MC_MISS or MC_ERR (also when the value does not fit).
 */
enum mc_rc
mc_get(struct mc *mc, const char *key, char *val, size_t vlen)
{
	memcached_return_t rc;
	uint32_t flags = 0;
	size_t n = 0;
	char *v;
	int i;

	if (mc == NULL || vlen == 0)
		return MC_ERR;
	if (mc_stalled(mc, key))
		return mc->failed = 1, MC_ERR;
	for (i = 0; i < MC_TRIES; i++) {
		v = memcached_get(mc->m, key, strlen(key), &n, &flags, &rc);
		if (v != NULL || !mc_retryable(rc))
			break;
	}
	if (v == NULL) {
		val[0] = '\0';   /* an empty value comes back as NULL with success */
		return mc_result(mc, rc, "get", key);
	}
	if (n >= vlen) {
		free(v);
		mc->failed = 0;
		log_limited(mc->log, LOG_WARNING, "memcached-bad-value",
		            "memcached: value of %s too long (%zu bytes)", key, n);
		return MC_ERR;
	}
	memcpy(val, v, n);
	val[n] = '\0';
	free(v);
	return mc_result(mc, rc, "get", key);
}

/* Set <key> to <val> for <ttl_s> seconds. Returns MC_OK or MC_ERR. */
enum mc_rc
mc_set(struct mc *mc, const char *key, const char *val, uint32_t ttl_s)
{
	memcached_return_t rc;
	int i;

	if (mc == NULL)
		return MC_ERR;
	if (mc_stalled(mc, key))
		return mc->failed = 1, MC_ERR;
	for (i = 0; i < MC_TRIES; i++) {
		rc = memcached_set(mc->m, key, strlen(key), val, strlen(val), (time_t)ttl_s, 0);
		if (!mc_retryable(rc))
			break;
	}
	return mc_result(mc, rc, "set", key);
}

/* Delete <key>. Returns MC_OK, MC_MISS or MC_ERR. */
enum mc_rc
mc_delete(struct mc *mc, const char *key)
{
	memcached_return_t rc;
	int i;

	if (mc == NULL)
		return MC_ERR;
	if (mc_stalled(mc, key))
		return mc->failed = 1, MC_ERR;
	for (i = 0; i < MC_TRIES; i++) {
		rc = memcached_delete(mc->m, key, strlen(key), 0);
		if (!mc_retryable(rc))
			break;
	}
	return mc_result(mc, rc, "delete", key);
}

/*
 * Add <delta> to counter <key>, creating it as <delta> with lifetime
 * <ttl_s> when absent; store the new value in <value>. Returns MC_OK or
 * MC_ERR.
 */
enum mc_rc
mc_incr(struct mc *mc, const char *key, uint64_t delta, uint32_t ttl_s, uint64_t *value)
{
	memcached_return_t rc;
	uint64_t v = 0;
	enum mc_rc r;
	int i;

	if (mc == NULL)
		return MC_ERR;
	if (mc_stalled(mc, key))
		return mc->failed = 1, MC_ERR;
	for (i = 0; i < MC_TRIES; i++) {
		rc = memcached_increment_with_initial(mc->m, key, strlen(key), delta, delta,
		                                      (time_t)ttl_s, &v);
		if (!mc_retryable(rc))
			break;
	}
	r = mc_result(mc, rc, "incr", key);
	if (r == MC_MISS) {
		/* cannot happen with an initial value; treat as a failure */
		mc->failed = 1;
		r = MC_ERR;
	}
	if (r == MC_OK && value != NULL)
		*value = v;
	return r;
}

/* Tell whether the last operation on <mc> failed for server reasons. */
int
mc_failed(const struct mc *mc)
{
	return mc == NULL || mc->failed;
}
