/*
 * Pooled buffers: fixed-size chunks lent by a free-list pool. A connection
 * borrows a buffer only while it holds data, so idle connections hold
 * none; the pool keeps a bounded number of spare chunks for reuse.
 */
#include <stdlib.h>
#include <string.h>

#include "mbuf.h"

/* Move the bytes of <b> to its start. */
static void
mbuf_compact(struct mbuf *b)
{
	if (b->r > 0) {
		memmove(b->d, b->d + b->r, b->w - b->r);
		b->w -= b->r;
		b->r = 0;
	}
}

/* Set up pool <p> of <size>-byte buffers keeping at most <max> spares. Returns 0 or -1. */
int
mbuf_pool_init(struct mbuf_pool *p, uint32_t size, unsigned max)
{
	memset(p, 0, sizeof(*p));
	p->size = size;
	p->max = max;
	p->free = calloc(max ? max : 1, sizeof(*p->free));
	return p->free != NULL ? 0 : -1;
}

/* Free the spare buffers of <p> and its list. */
void
mbuf_pool_free(struct mbuf_pool *p)
{
	while (p->nfree > 0)
		free(p->free[--p->nfree]);
	free(p->free);
	p->free = NULL;
}

/* Borrow an empty buffer from <p>. Returns NULL when out of memory. */
struct mbuf *
mbuf_get(struct mbuf_pool *p)
{
	struct mbuf *b;

	if (p->nfree > 0)
		b = p->free[--p->nfree];
	else if ((b = malloc(sizeof(*b) + p->size)) == NULL)
		return NULL;
	b->r = b->w = 0;
	b->cap = p->size;
	p->in_use++;
	return b;
}

/* Give buffer <*b> (may be NULL) back to <p> and clear the pointer. */
void
mbuf_put(struct mbuf_pool *p, struct mbuf **b)
{
	if (*b == NULL)
		return;
	p->in_use--;
	/* a grown buffer is not the pool's size: it goes */
	if ((*b)->cap == p->size && p->nfree < p->max)
		p->free[p->nfree++] = *b;
	else
		free(*b);
	*b = NULL;
}

/* Erase every byte of <*b> and give it back to <p>. */
void
mbuf_put_wipe(struct mbuf_pool *p, struct mbuf **b)
{
	if (*b == NULL)
		return;
	explicit_bzero((*b)->d, (*b)->cap);
	mbuf_put(p, b);
}

/* Erase the bytes of <b> (may be NULL) already consumed, keeping the rest. */
void
mbuf_wipe_consumed(struct mbuf *b)
{
	if (b != NULL && b->r > 0) {
		mbuf_compact(b);
		explicit_bzero(b->d + b->w, b->cap - b->w);
	}
}

/* Return the number of bytes held in <b> (NULL: 0). */
size_t
mbuf_len(const struct mbuf *b)
{
	return b != NULL ? b->w - b->r : 0;
}

/* Return the room left at the end of <b> after compaction (NULL: 0). */
size_t
mbuf_room(const struct mbuf *b)
{
	return b != NULL ? b->cap - (b->w - b->r) : 0;
}

/* Make room for <len> more bytes in <*b>, growing up to <max>. Returns 0 or -1. */
int
mbuf_reserve(struct mbuf_pool *p, struct mbuf **b, size_t len, size_t max)
{
	struct mbuf *nb;
	size_t used, cap;

	if (*b == NULL && (*b = mbuf_get(p)) == NULL)
		return -1;
	if ((size_t)((*b)->cap - (*b)->w) >= len)
		return 0;
	used = mbuf_len(*b);
	if (used + len > max || used + len > UINT32_MAX)
		return -1;
	if ((*b)->cap - used >= len) {
		mbuf_compact(*b);
		return 0;
	}
	for (cap = (*b)->cap ? (*b)->cap : 1; cap < used + len; cap *= 2)
		;
	if (cap > max)
		cap = max;
	if ((nb = malloc(sizeof(*nb) + cap)) == NULL)
		return -1;
	memcpy(nb->d, (*b)->d + (*b)->r, used);
	nb->r = 0;
	nb->w = (uint32_t)used;
	nb->cap = (uint32_t)cap;
	/* the old one goes back (to the free list when it is a chunk) */
	mbuf_put(p, b);
	p->in_use++;
	*b = nb;
	return 0;
}

/* Drop <n> bytes from the front of <b>; reset offsets when it empties. */
void
mbuf_consume(struct mbuf *b, size_t n)
{
	b->r += (uint32_t)n;
	if (b->r >= b->w)
		b->r = b->w = 0;
}

/*
 * Append <len> bytes of <data> to <*b>, borrowing a buffer from <p> when
 * <*b> is NULL and compacting when needed. Returns 0, or -1 when it does
 * not fit (nothing appended).
 */
int
mbuf_append(struct mbuf_pool *p, struct mbuf **b, const void *data, size_t len)
{
	if (*b == NULL && (*b = mbuf_get(p)) == NULL)
		return -1;
	if (len > mbuf_room(*b))
		return -1;
	if ((*b)->w + len > (*b)->cap)
		mbuf_compact(*b);
	memcpy((*b)->d + (*b)->w, data, len);
	(*b)->w += (uint32_t)len;
	return 0;
}
