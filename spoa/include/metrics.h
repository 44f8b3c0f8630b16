/*
 * Metrics: counting, latency histograms and Prometheus text rendering.
 */
#ifndef GH_METRICS_H
#define GH_METRICS_H

#include <stddef.h>
#include "metrics-t.h"

/* Add 1 to counter <m> of <ms> (thread-safe, relaxed). */
static inline void
metrics_inc(struct metrics *ms, enum metric m)
{
	atomic_fetch_add_explicit(&ms->c[m], 1, memory_order_relaxed);
}

/* Return the value of counter <m> of <ms>. */
static inline uint64_t
metrics_get(const struct metrics *ms, enum metric m)
{
	return atomic_load_explicit(&ms->c[m], memory_order_relaxed);
}

/* Record one observation of <usec> microseconds in <h>. */
void metrics_hist_observe(struct metrics_hist *h, uint64_t usec);

/*
 * Append the library counters of <ms> in Prometheus text format (metric
 * names prefixed "gatehouse_") to <buf> at offset <*off>, at most <len>
 * bytes in all. Returns 0, or -1 when <buf> is too small (<*off> is then
 * unchanged).
 */
int metrics_render(const struct metrics *ms, char *buf, size_t len, size_t *off);

/*
 * Append histogram <h> named <name> with help text <help> (seconds, as
 * Prometheus expects) to <buf> at <*off>. Returns 0 or -1 as above.
 */
int metrics_hist_render(const struct metrics_hist *h, const char *name, const char *help,
                        char *buf, size_t len, size_t *off);

/*
 * Append one counter line "<name> <value>" with HELP/TYPE to <buf> at <*off>
 * (for daemons' own counters). <type> is "counter" or "gauge". Returns 0/-1.
 */
int metrics_render_one(const char *name, const char *help, const char *type,
                       uint64_t value, char *buf, size_t len, size_t *off);

#endif
