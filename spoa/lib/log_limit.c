/*
 * Log rate limiting: a fixed table of kinds, each with a window of
 * <interval> in which <burst> lines are written and the rest counted.
 * The table is guarded by one mutex held only for the bookkeeping; lines
 * and summaries are written after it is released.
 */
#include <string.h>
#include <time.h>

#include "log_limit.h"

/* A finished window to report. */
struct summary {
	const char *kind;
	unsigned long n;
	int level;
};

/* The default clock: CLOCK_MONOTONIC in milliseconds. */
static uint64_t
monotonic_ms(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Initialise <ll> with <burst> lines per <interval_ms>, timed by <clock>
 * (NULL = monotonic) with <arg>. Returns 0 or -1.
 */
int
log_limit_init(struct log_limit *ll, unsigned burst, uint32_t interval_ms,
               log_limit_clock clock, void *arg)
{
	memset(ll, 0, sizeof(*ll));
	if (pthread_mutex_init(&ll->mu, NULL) != 0)
		return -1;
	ll->burst = burst;
	ll->interval_ms = interval_ms;
	ll->clock = clock ? clock : monotonic_ms;
	ll->clock_arg = arg;
	return 0;
}

/* Set <ll> to <burst> lines per <interval_ms>. */
void
log_limit_set(struct log_limit *ll, unsigned burst, uint32_t interval_ms)
{
	pthread_mutex_lock(&ll->mu);
	ll->burst = burst;
	ll->interval_ms = interval_ms;
	pthread_mutex_unlock(&ll->mu);
}

/* Release the mutex of <ll>. */
void
log_limit_free(struct log_limit *ll)
{
	pthread_mutex_destroy(&ll->mu);
}

/* Return the slot of <kind> in <ll>, creating it; called locked. */
static struct log_limit_slot *
slot_get(struct log_limit *ll, const char *kind)
{
	struct log_limit_slot *sl;
	unsigned i;

	for (i = 0; i < ll->nslots; i++)
		if (ll->slot[i].kind == kind || strcmp(ll->slot[i].kind, kind) == 0)
			return &ll->slot[i];
	/* the last slot is shared by the kinds that found the table full */
	if (ll->nslots == LOG_LIMIT_KINDS - 1) {
		sl = &ll->slot[LOG_LIMIT_KINDS - 1];
		if (sl->kind == NULL)
			sl->kind = "other";
		return sl;
	}
	sl = &ll->slot[ll->nslots++];
	memset(sl, 0, sizeof(*sl));
	sl->kind = kind;
	return sl;
}

/* Close the window of <sl>, noting its count in <out>. Returns 1 when there is one to report. */
static int
slot_close(struct log_limit_slot *sl, struct summary *out)
{
	int report = sl->suppressed > 0;

	if (report) {
		out->kind = sl->kind;
		out->n = sl->suppressed;
		out->level = sl->level;
	}
	sl->open = 0;
	sl->printed = 0;
	sl->suppressed = 0;
	return report;
}

/* Write summary <sm> through <lg>; <burst> per <interval_ms> is the rule that applied. */
static void
summary_write(const struct logger *lg, const struct summary *sm, unsigned burst,
              uint32_t interval_ms)
{
	if (interval_ms % 1000 == 0)
		log_msg(lg, sm->level, "%s: %lu similar message%s suppressed (at most %u per %u s)",
		        sm->kind, sm->n, sm->n == 1 ? "" : "s", burst, interval_ms / 1000);
	else
		log_msg(lg, sm->level, "%s: %lu similar message%s suppressed (at most %u per %u ms)",
		        sm->kind, sm->n, sm->n == 1 ? "" : "s", burst, interval_ms);
}

/* Tell whether a <kind> message at <level> may be written through <lg> now. */
int
log_limit_allow(const struct logger *lg, int level, const char *kind)
{
	struct log_limit *ll;
	struct log_limit_slot *sl;
	struct summary sm;
	unsigned burst;
	uint32_t interval;
	uint64_t now;
	int ok, report = 0;

	if (!log_enabled(lg, level))
		return 0;   /* not counted either: it would not have been written */
	ll = lg != NULL ? lg->limit : NULL;
	if (ll == NULL)
		return 1;
	pthread_mutex_lock(&ll->mu);
	burst = ll->burst;
	interval = ll->interval_ms;
	if (burst == 0 || interval == 0) {
		pthread_mutex_unlock(&ll->mu);
		return 1;
	}
	now = ll->clock(ll->clock_arg);
	sl = slot_get(ll, kind);
	if (sl->open && now - sl->start_ms >= interval)
		report = slot_close(sl, &sm);
	if (!sl->open) {
		sl->open = 1;
		sl->start_ms = now;
		sl->level = LOG_DEBUG;
	}
	ok = sl->printed < burst;
	if (ok) {
		sl->printed++;
	} else {
		sl->suppressed++;
		if (level < sl->level)
			sl->level = level;
	}
	pthread_mutex_unlock(&ll->mu);
	/* the old window's count goes before the new window's first line */
	if (report)
		summary_write(lg, &sm, burst, interval);
	return ok;
}

/* Report and close the finished windows of <lg>'s limiter (every window when <all>). */
void
log_limit_flush(const struct logger *lg, int all)
{
	struct log_limit *ll = lg != NULL ? lg->limit : NULL;
	struct summary sm[LOG_LIMIT_KINDS];
	unsigned i, n = 0, burst;
	uint32_t interval;
	uint64_t now;

	if (ll == NULL)
		return;
	pthread_mutex_lock(&ll->mu);
	burst = ll->burst;
	interval = ll->interval_ms;
	now = ll->clock(ll->clock_arg);
	for (i = 0; i < LOG_LIMIT_KINDS; i++) {
		struct log_limit_slot *sl = &ll->slot[i];

		if (sl->kind == NULL || !sl->open)
			continue;
		if (all || now - sl->start_ms >= interval)
			n += (unsigned)slot_close(sl, &sm[n]);
	}
	pthread_mutex_unlock(&ll->mu);
	for (i = 0; i < n; i++)
		summary_write(lg, &sm[i], burst, interval);
}
