/*
 * Pooled I/O buffers for both daemons. A buffer is a linear run of bytes
 * borrowed from a free-list pool of fixed-size chunks only while it holds
 * data, so an idle connection holds none; the pool keeps a bounded number
 * of spare chunks for reuse. A buffer may grow past the chunk size
 * (mbuf_reserve()); such a one is freed, not kept, when given back.
 * A pool belongs to one thread (an event loop): no locking.
 */
#ifndef GH_MBUF_H
#define GH_MBUF_H

#include <stddef.h>
#include <stdint.h>

/* A linear byte buffer borrowed from a pool: data lives in d[r..w). */
struct mbuf {
	uint32_t r, w, cap;
	char d[];
};

/* Free list of buffers of one size. */
struct mbuf_pool {
	struct mbuf **free;
	unsigned nfree, max;
	uint32_t size;          /* capacity of a pooled buffer */
	uint64_t in_use;        /* buffers currently lent out */
};

/* Set up pool <p> of <size>-byte buffers keeping at most <max> spares. Returns 0 or -1. */
int mbuf_pool_init(struct mbuf_pool *p, uint32_t size, unsigned max)
	__attribute__((warn_unused_result));

/* Free the spare buffers of <p> and its list (lent ones must be back). */
void mbuf_pool_free(struct mbuf_pool *p);

/* Borrow an empty buffer from <p>. Returns NULL when out of memory. */
struct mbuf *mbuf_get(struct mbuf_pool *p);

/* Give buffer <*b> (may be NULL) back to <p> and clear the pointer. */
void mbuf_put(struct mbuf_pool *p, struct mbuf **b);

/*
 * Erase every byte of <*b> (it held credentials) and give it back to <p>
 * like mbuf_put(). Not for hot paths.
 */
void mbuf_put_wipe(struct mbuf_pool *p, struct mbuf **b);

/* Erase the bytes of <b> (may be NULL) already consumed, keeping the rest. */
void mbuf_wipe_consumed(struct mbuf *b);

/*
 * Append <len> bytes of <data> to <*b>, borrowing a buffer from <p> when
 * <*b> is NULL and compacting when needed; never grows past the chunk
 * size. Returns 0, or -1 when it does not fit (nothing appended).
 */
int mbuf_append(struct mbuf_pool *p, struct mbuf **b, const void *data, size_t len);

/*
 * Make room for <len> more bytes at the end of <*b>: borrow a buffer from
 * <p> when <*b> is NULL, compact, and when that is not enough move the
 * bytes to a larger buffer (doubling, capacity at most <max>). Returns 0,
 * after which mbuf_tail_room(*b) >= len, or -1 when the data would exceed
 * <max> or memory is short (<*b> unchanged).
 */
int mbuf_reserve(struct mbuf_pool *p, struct mbuf **b, size_t len, size_t max);

/* Return the number of bytes held in <b> (NULL: 0). */
size_t mbuf_len(const struct mbuf *b);

/* Return the room left in <b> after compaction (NULL: 0). */
size_t mbuf_room(const struct mbuf *b);

/* Return the room after the last byte of <b>, without compaction. */
static inline size_t
mbuf_tail_room(const struct mbuf *b)
{
	return b->cap - b->w;
}

/* Drop <n> bytes from the front of <b>; reset offsets when it empties. */
void mbuf_consume(struct mbuf *b, size_t n);

#endif
