/*
 * Bounded in-process cache. The key space is split into stripes, each with
 * its own mutex, hash table and entry array, so that worker threads and
 * event loops rarely contend. Every entry lives in a preallocated slot;
 * slots are chained in their hash bucket and in an insertion-order list
 * whose head is the eviction victim when the stripe is full. Indexes rather
 * than pointers keep the slots compact.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lcache.h"

#define LCACHE_STRIPES 16          /* power of two */
#define NIL UINT32_MAX

/* One cached value. */
struct lc_entry {
	uint64_t hash;
	uint64_t expires_ms;
	uint32_t hnext;                /* next in bucket chain, or free list */
	uint32_t prev, next;           /* insertion order (oldest = head) */
	char key[LCACHE_KEY_MAX];
	char val[LCACHE_VAL_MAX];
};

/* A stripe: independent table with its own lock. */
struct lc_stripe {
	pthread_mutex_t lock;
	uint32_t *bucket;              /* nbuckets heads */
	uint32_t mask;                 /* nbuckets - 1 */
	struct lc_entry *e;            /* cap slots */
	uint32_t cap, used;
	uint32_t head, tail;           /* oldest, newest */
	uint32_t free;                 /* free slot list through hnext */
	uint32_t fresh;                /* slots [fresh, cap) never used yet */
};

/* The cache. */
struct lcache {
	unsigned capacity;
	struct lc_stripe s[LCACHE_STRIPES];
};

/* Hash C string <k> (FNV-1a, then mixed); store its length in <len>. */
static uint64_t
lc_hash(const char *k, size_t *len)
{
	uint64_t h = 1469598103934665603ULL;
	const unsigned char *p = (const unsigned char *)k;

	while (*p) {
		h ^= *p++;
		h *= 1099511628211ULL;
	}
	*len = (size_t)((const char *)p - k);
	/* finalise (murmur3 fmix64): FNV's top bits, used for the stripe, are weak */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static struct lc_stripe *
lc_stripe_of(struct lcache *c, uint64_t h)
{
	return &c->s[(h >> 56) & (LCACHE_STRIPES - 1)];
}

static uint32_t
lc_find(struct lc_stripe *s, uint64_t h, const char *key, uint32_t **link)
{
	uint32_t *l = &s->bucket[h & s->mask];
	uint32_t i;

	for (i = *l; i != NIL; l = &s->e[i].hnext, i = *l) {
		if (s->e[i].hash == h && strcmp(s->e[i].key, key) == 0) {
			if (link)
				*link = l;
			return i;
		}
	}
	return NIL;
}

/* Unlink slot <i> (whose bucket link is <link>) and put it on the free list. */
static void
lc_remove(struct lc_stripe *s, uint32_t i, uint32_t *link)
{
	struct lc_entry *e = &s->e[i];

	*link = e->hnext;
	if (e->prev != NIL)
		s->e[e->prev].next = e->next;
	else
		s->head = e->next;
	if (e->next != NIL)
		s->e[e->next].prev = e->prev;
	else
		s->tail = e->prev;
	e->hnext = s->free;
	s->free = i;
	s->used--;
}

/* Remove slot <i>, finding its bucket link first. */
static void
lc_remove_slot(struct lc_stripe *s, uint32_t i)
{
	uint32_t *l = &s->bucket[s->e[i].hash & s->mask];

	while (*l != i)
		l = &s->e[*l].hnext;
	lc_remove(s, i, l);
}

/*
 * Create a cache of about <capacity> entries. Returns it, or NULL.
 */
struct lcache *
lcache_new(unsigned capacity)
{
	struct lcache *c;
	uint32_t per, nb, i;

	if (capacity == 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	per = (capacity + LCACHE_STRIPES - 1) / LCACHE_STRIPES;
	for (nb = 1; nb < per * 2; nb <<= 1)
		;
	c->capacity = per * LCACHE_STRIPES;
	for (i = 0; i < LCACHE_STRIPES; i++) {
		struct lc_stripe *s = &c->s[i];

		if (pthread_mutex_init(&s->lock, NULL) != 0)
			goto fail;
		s->cap = per;
		s->mask = nb - 1;
		s->bucket = malloc(nb * sizeof(*s->bucket));
		s->e = calloc(per, sizeof(*s->e));
		if (s->bucket == NULL || s->e == NULL)
			goto fail;
		memset(s->bucket, 0xff, nb * sizeof(*s->bucket));
		/* slots are handed out in order: untouched memory stays unmapped */
		s->head = s->tail = s->free = NIL;
		s->fresh = 0;
	}
	return c;
fail:
	lcache_free(c);
	return NULL;
}

/* Free <c> (NULL is fine). */
void
lcache_free(struct lcache *c)
{
	unsigned i;

	if (c == NULL)
		return;
	for (i = 0; i < LCACHE_STRIPES; i++) {
		free(c->s[i].bucket);
		free(c->s[i].e);
		if (c->s[i].cap)
			pthread_mutex_destroy(&c->s[i].lock);
	}
	free(c);
}

/* Return monotonic milliseconds. */
uint64_t
lcache_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Copy the value of <key> into <val> (<vlen> bytes) if it is live at
 * <now_ms>. Returns 1 on a hit, 0 on a miss.
 */
int
lcache_get_at(struct lcache *c, const char *key, char *val, size_t vlen, uint64_t now_ms)
{
	struct lc_stripe *s;
	uint32_t i, *link;
	size_t klen, n;
	uint64_t h;
	int hit = 0;

	if (c == NULL || key == NULL || vlen == 0)
		return 0;
	h = lc_hash(key, &klen);
	if (klen >= LCACHE_KEY_MAX)
		return 0;
	s = lc_stripe_of(c, h);
	pthread_mutex_lock(&s->lock);
	i = lc_find(s, h, key, &link);
	if (i != NIL) {
		if (s->e[i].expires_ms <= now_ms) {
			lc_remove(s, i, link);
		} else {
			n = strlen(s->e[i].val);
			if (n < vlen) {
				memcpy(val, s->e[i].val, n + 1);
				hit = 1;
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
	return hit;
}

/* Do lcache_get_at() now. */
int
lcache_get(struct lcache *c, const char *key, char *val, size_t vlen)
{
	return lcache_get_at(c, key, val, vlen, lcache_now_ms());
}

/*
 * Store <val> under <key> for <ttl_ms> from <now_ms>. Returns 0, or -1
 * when too long or <ttl_ms> is 0.
 */
int
lcache_put_at(struct lcache *c, const char *key, const char *val, uint32_t ttl_ms,
              uint64_t now_ms)
{
	struct lc_stripe *s;
	struct lc_entry *e;
	uint32_t i, *link;
	size_t klen, vl;
	uint64_t h;
	int k;

	if (c == NULL || key == NULL || val == NULL || ttl_ms == 0)
		return -1;
	h = lc_hash(key, &klen);
	vl = strlen(val);
	if (klen >= LCACHE_KEY_MAX || vl >= LCACHE_VAL_MAX)
		return -1;
	s = lc_stripe_of(c, h);
	pthread_mutex_lock(&s->lock);
	i = lc_find(s, h, key, &link);
	if (i != NIL)
		lc_remove(s, i, link);
	/* drop a few expired entries from the old end while we are here */
	for (k = 0; k < 4 && s->head != NIL && s->e[s->head].expires_ms <= now_ms; k++)
		lc_remove_slot(s, s->head);
	if (s->free == NIL && s->fresh < s->cap) {
		i = s->fresh++;
	} else {
		if (s->free == NIL)
			lc_remove_slot(s, s->head);   /* full: evict the oldest */
		i = s->free;
		s->free = s->e[i].hnext;
	}
	e = &s->e[i];
	e->hash = h;
	e->expires_ms = now_ms + ttl_ms;
	memcpy(e->key, key, klen + 1);
	memcpy(e->val, val, vl + 1);
	e->hnext = s->bucket[h & s->mask];
	s->bucket[h & s->mask] = i;
	e->next = NIL;
	e->prev = s->tail;
	if (s->tail != NIL)
		s->e[s->tail].next = i;
	else
		s->head = i;
	s->tail = i;
	s->used++;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* Do lcache_put_at() now. */
int
lcache_put(struct lcache *c, const char *key, const char *val, uint32_t ttl_ms)
{
	return lcache_put_at(c, key, val, ttl_ms, lcache_now_ms());
}

/* Remove <key>. Returns 1 when it was there, 0 otherwise. */
int
lcache_del(struct lcache *c, const char *key)
{
	struct lc_stripe *s;
	uint32_t i, *link;
	size_t klen;
	uint64_t h;

	if (c == NULL || key == NULL)
		return 0;
	h = lc_hash(key, &klen);
	if (klen >= LCACHE_KEY_MAX)
		return 0;
	s = lc_stripe_of(c, h);
	pthread_mutex_lock(&s->lock);
	i = lc_find(s, h, key, &link);
	if (i != NIL)
		lc_remove(s, i, link);
	pthread_mutex_unlock(&s->lock);
	return i != NIL;
}

/* Return the number of entries held. */
unsigned
lcache_count(struct lcache *c)
{
	unsigned i, n = 0;

	if (c == NULL)
		return 0;
	for (i = 0; i < LCACHE_STRIPES; i++) {
		pthread_mutex_lock(&c->s[i].lock);
		n += c->s[i].used;
		pthread_mutex_unlock(&c->s[i].lock);
	}
	return n;
}

/* Return the capacity of <c>. */
unsigned
lcache_capacity(const struct lcache *c)
{
	return c ? c->capacity : 0;
}
