/*
 * A bounded in-process cache: short string keys to short string values,
 * each with its own lifetime. Thread-safe (striped mutexes), fixed
 * capacity allocated once, O(1) average get/put/delete, and no allocation
 * after lcache_new(). When full, the oldest entry of the stripe is evicted;
 * expired entries are dropped when met.
 */
#ifndef GH_LCACHE_H
#define GH_LCACHE_H

#include <stddef.h>
#include <stdint.h>

#define LCACHE_KEY_MAX 272   /* longest key, bytes incl. NUL */
#define LCACHE_VAL_MAX 336   /* longest value, bytes incl. NUL */

struct lcache;

/*
 * Create a cache holding at most about <capacity> entries (rounded up to a
 * multiple of the stripe count; at least one per stripe). Returns the cache,
 * or NULL when <capacity> is 0 or memory is short. Free with lcache_free().
 */
struct lcache *lcache_new(unsigned capacity);

/* Free <c> and every entry (NULL is fine). No other thread may use it. */
void lcache_free(struct lcache *c);

/* Return the current monotonic time in milliseconds (the cache's clock). */
uint64_t lcache_now_ms(void);

/*
 * Copy the value of <key> into <val> (<vlen> bytes) when present and not
 * expired at <now_ms>. Returns 1 on a hit, 0 on a miss (also when <val> is
 * too small). Never allocates.
 */
int lcache_get_at(struct lcache *c, const char *key, char *val, size_t vlen, uint64_t now_ms);

/* Do lcache_get_at() with the current time. */
int lcache_get(struct lcache *c, const char *key, char *val, size_t vlen);

/*
 * Store <val> under <key> for <ttl_ms> milliseconds from <now_ms>,
 * replacing any previous value. Returns 0, or -1 when <key> or <val> is
 * too long or <ttl_ms> is 0 (nothing stored).
 */
int lcache_put_at(struct lcache *c, const char *key, const char *val, uint32_t ttl_ms,
                  uint64_t now_ms);

/* Do lcache_put_at() with the current time. */
int lcache_put(struct lcache *c, const char *key, const char *val, uint32_t ttl_ms);

/* Remove <key>. Returns 1 when it was present, 0 otherwise. */
int lcache_del(struct lcache *c, const char *key);

/* Return the number of entries held, expired ones included. */
unsigned lcache_count(struct lcache *c);

/* Return the maximum number of entries <c> holds. */
unsigned lcache_capacity(const struct lcache *c);

#endif
