/*
 * Unit tests for the buffer pool: reuse of spare chunks and their bound,
 * appending with compaction, growth past the chunk size up to a bound,
 * and wiping.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mbuf.h"

static void
test_get_put_reuses_spares(void **state)
{
	struct mbuf_pool p;
	struct mbuf *a, *b, *c, *first;

	(void)state;
	assert_int_equal(mbuf_pool_init(&p, 64, 2), 0);
	a = mbuf_get(&p);
	assert_non_null(a);
	assert_int_equal(a->cap, 64);
	assert_int_equal(mbuf_len(a), 0);
	assert_int_equal(p.in_use, 1);
	first = a;
	mbuf_put(&p, &a);
	assert_null(a);
	assert_int_equal(p.in_use, 0);
	assert_int_equal(p.nfree, 1);
	/* the spare comes back */
	a = mbuf_get(&p);
	assert_ptr_equal(a, first);
	assert_int_equal(p.nfree, 0);
	/* at most <max> spares are kept */
	b = mbuf_get(&p);
	c = mbuf_get(&p);
	assert_int_equal(p.in_use, 3);
	mbuf_put(&p, &a);
	mbuf_put(&p, &b);
	mbuf_put(&p, &c);
	assert_int_equal(p.nfree, 2);
	assert_int_equal(p.in_use, 0);
	/* NULL is a no-op */
	mbuf_put(&p, &c);
	assert_int_equal(p.in_use, 0);
	assert_int_equal(mbuf_len(NULL), 0);
	assert_int_equal(mbuf_room(NULL), 0);
	mbuf_pool_free(&p);
}

static void
test_append_compacts_and_bounds(void **state)
{
	struct mbuf_pool p;
	struct mbuf *b = NULL;
	char big[65];

	(void)state;
	memset(big, 'x', sizeof(big));
	assert_int_equal(mbuf_pool_init(&p, 16, 4), 0);
	/* borrowed on demand */
	assert_int_equal(mbuf_append(&p, &b, "0123456789", 10), 0);
	assert_non_null(b);
	assert_int_equal(mbuf_len(b), 10);
	mbuf_consume(b, 8);
	assert_int_equal(mbuf_len(b), 2);
	assert_int_equal(mbuf_room(b), 14);
	/* does not fit at the tail: compacted first */
	assert_int_equal(mbuf_append(&p, &b, "abcdefghijkl", 12), 0);
	assert_int_equal(b->r, 0);
	assert_memory_equal(b->d, "89abcdefghijkl", 14);
	/* never grows: too much is refused, nothing appended */
	assert_int_equal(mbuf_append(&p, &b, "ABC", 3), -1);
	assert_int_equal(mbuf_len(b), 14);
	assert_int_equal(mbuf_append(&p, &b, big, sizeof(big)), -1);
	/* consuming everything resets the offsets */
	mbuf_consume(b, 14);
	assert_int_equal(b->r, 0);
	assert_int_equal(b->w, 0);
	mbuf_put(&p, &b);
	mbuf_pool_free(&p);
}

static void
test_reserve_grows_up_to_max(void **state)
{
	struct mbuf_pool p;
	struct mbuf *b = NULL, *chunk;
	char data[200];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(data); i++)
		data[i] = (char)i;
	assert_int_equal(mbuf_pool_init(&p, 64, 4), 0);
	/* within the chunk: the pool's buffer */
	assert_int_equal(mbuf_reserve(&p, &b, 40, 256), 0);
	chunk = b;
	assert_int_equal(b->cap, 64);
	memcpy(b->d + b->w, data, 40);
	b->w += 40;
	mbuf_consume(b, 30);
	/* fits after compaction: same buffer */
	assert_int_equal(mbuf_reserve(&p, &b, 50, 256), 0);
	assert_ptr_equal(b, chunk);
	assert_true(mbuf_tail_room(b) >= 50);
	assert_memory_equal(b->d + b->r, data + 30, 10);
	/* past the chunk: a larger buffer with the same bytes; the chunk is a spare again */
	assert_int_equal(mbuf_reserve(&p, &b, 100, 256), 0);
	assert_true(b->cap >= 110 && b->cap <= 256);
	assert_true(mbuf_tail_room(b) >= 100);
	assert_memory_equal(b->d + b->r, data + 30, 10);
	assert_int_equal(p.nfree, 1);
	assert_int_equal(p.in_use, 1);
	memcpy(b->d + b->w, data, 100);
	b->w += 100;
	/* beyond <max>: refused, unchanged */
	chunk = b;
	assert_int_equal(mbuf_reserve(&p, &b, 147, 256), -1);
	assert_ptr_equal(b, chunk);
	assert_int_equal(mbuf_len(b), 110);
	/* up to <max> exactly */
	assert_int_equal(mbuf_reserve(&p, &b, 146, 256), 0);
	assert_int_equal(b->cap, 256);
	assert_memory_equal(b->d + b->r + 10, data, 100);
	/* a grown buffer is freed, not kept as a spare */
	mbuf_put(&p, &b);
	assert_int_equal(p.nfree, 1);
	assert_int_equal(p.in_use, 0);
	mbuf_pool_free(&p);
}

static void
test_wipe(void **state)
{
	struct mbuf_pool p;
	struct mbuf *b = NULL, *again;
	static const char zero[32];

	(void)state;
	assert_int_equal(mbuf_pool_init(&p, 32, 1), 0);
	assert_int_equal(mbuf_append(&p, &b, "a LOGIN u secret\r\nb NOOP\r\n", 26), 0);
	mbuf_consume(b, 18);
	/* the consumed login is erased, the rest moves to the front */
	mbuf_wipe_consumed(b);
	assert_int_equal(b->r, 0);
	assert_int_equal(mbuf_len(b), 8);
	assert_memory_equal(b->d, "b NOOP\r\n", 8);
	assert_memory_equal(b->d + 8, zero, 24);
	mbuf_wipe_consumed(NULL);
	/* given back wiped: the spare holds no byte of it */
	mbuf_put_wipe(&p, &b);
	assert_null(b);
	again = mbuf_get(&p);
	assert_memory_equal(again->d, zero, 32);
	mbuf_put(&p, &again);
	mbuf_pool_free(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_put_reuses_spares),
		cmocka_unit_test(test_append_compacts_and_bounds),
		cmocka_unit_test(test_reserve_grows_up_to_max),
		cmocka_unit_test(test_wipe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
