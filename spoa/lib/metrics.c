/*
 * Metrics rendering in the Prometheus text exposition format (version
 * 0.0.4). The library's counters are grouped into labelled families
 * (gatehouse_lookups_total{outcome="ldap"}, ...); latency histograms have
 * fixed buckets from 50 microseconds to 5 seconds and are rendered in
 * seconds. Counting itself is lock-free (relaxed atomics).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "metrics.h"

/* Upper bounds of the histogram buckets, in microseconds and as rendered. */
static const struct {
	uint64_t us;
	const char *le;
} hist_bounds[METRICS_HIST_BUCKETS] = {
	{ 50, "0.00005" }, { 100, "0.0001" }, { 250, "0.00025" }, { 500, "0.0005" },
	{ 1000, "0.001" }, { 2500, "0.0025" }, { 5000, "0.005" }, { 10000, "0.01" },
	{ 25000, "0.025" }, { 50000, "0.05" }, { 100000, "0.1" }, { 500000, "0.5" },
	{ 1000000, "1" }, { 5000000, "5" },
};

/* A labelled family of library counters. */
struct family {
	const char *name;     /* without the "gatehouse_" prefix */
	const char *help;
	const char *type;
	const char *label;    /* NULL: a single unlabelled sample */
	struct {
		enum metric m;
		const char *value;
	} member[8];
	int n;
};

static const struct family families[] = {
	{ "lookups_total", "Route lookups by outcome.", "counter", "outcome", {
		{ M_LOOKUP_LOCAL, "local" }, { M_LOOKUP_MEMCACHED, "memcached" },
		{ M_LOOKUP_LDAP, "ldap" }, { M_LOOKUP_HTTP, "http" },
		{ M_LOOKUP_UNKNOWN, "unknown" },
		{ M_LOOKUP_REFUSED, "refused" }, { M_LOOKUP_TEMPFAIL, "tempfail" },
		{ M_LOOKUP_ERROR, "error" } }, 8 },
	{ "throttle_verdicts_total", "Login throttle verdicts.", "counter", "verdict", {
		{ M_THROTTLE_ALLOW, "allow" }, { M_THROTTLE_REJECT_IP, "reject_ip" },
		{ M_THROTTLE_REJECT_USER, "reject_user" },
		{ M_THROTTLE_REJECT_IP_FAIL, "reject_ip_fail" },
		{ M_THROTTLE_REJECT_USER_FAIL, "reject_user_fail" },
		{ M_THROTTLE_WHITELISTED, "whitelisted" },
		{ M_THROTTLE_FAIL_OPEN, "fail_open" } }, 7 },
	{ "queue_submitted_total", "Jobs accepted by the lookup queue.", "counter", NULL,
		{ { M_QUEUE_SUBMITTED, NULL } }, 1 },
	{ "queue_busy_total", "Jobs refused because the lookup queue was full.", "counter",
		NULL, { { M_QUEUE_BUSY, NULL } }, 1 },
	{ "queue_cancelled_total", "Jobs cancelled by their requester.", "counter", NULL,
		{ { M_QUEUE_CANCELLED, NULL } }, 1 },
	{ "dependency_errors_total", "Failed operations on a dependency.", "counter",
		"dependency", { { M_DEP_LDAP_ERROR, "ldap" }, { M_DEP_HTTP_ERROR, "http" },
		{ M_DEP_MEMCACHED_ERROR, "memcached" } }, 3 },
	{ "memcached_outages_total", "Times memcached went from reachable to unreachable.",
		"counter", NULL, { { M_MEMCACHED_OUTAGES, NULL } }, 1 },
	{ "vhost_checks_total", "Host header checks by outcome.", "counter", "outcome", {
		{ M_VHOST_ALLOWED, "allowed" }, { M_VHOST_REFUSED, "refused" },
		{ M_VHOST_TEMPFAIL, "tempfail" } }, 3 },
};

/*
 * Append printf-style text to <buf> at <*pos>, at most <len> bytes in all.
 * Returns 0, or -1 when it does not fit (then <*pos> is undefined; the
 * public functions restore the caller's offset).
 */
__attribute__((format(printf, 4, 5)))
static int
append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos >= len)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len - *pos)
		return -1;
	*pos += (size_t)n;
	return 0;
}

/* Undo a partial append: keep <buf> terminated at the caller's <off>. */
static int
truncated(char *buf, size_t len, size_t off)
{
	if (off < len)
		buf[off] = '\0';
	return -1;
}

/*
 * Record one observation of <usec> microseconds in <h>.
 */
void
metrics_hist_observe(struct metrics_hist *h, uint64_t usec)
{
	int i;

	for (i = 0; i < METRICS_HIST_BUCKETS; i++)
		if (usec <= hist_bounds[i].us)
			break;
	/* buckets are stored non-cumulative; rendering sums them up */
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, usec, memory_order_relaxed);
}

/*
 * Append the library counters of <ms> and the queue depth gauge to <buf>
 * at <*off> (<len> bytes in all). Returns 0, or -1 when <buf> is too small
 * and <*off> is left unchanged.
 */
int
metrics_render(const struct metrics *ms, char *buf, size_t len, size_t *off)
{
	size_t pos = *off, f;
	int i;
	int64_t depth;

	for (f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
		const struct family *fa = &families[f];

		if (append(buf, len, &pos, "# HELP gatehouse_%s %s\n# TYPE gatehouse_%s %s\n",
		           fa->name, fa->help, fa->name, fa->type) < 0)
			return truncated(buf, len, *off);
		for (i = 0; i < fa->n; i++) {
			uint64_t v = metrics_get(ms, fa->member[i].m);
			int rc;

			if (fa->label != NULL)
				rc = append(buf, len, &pos, "gatehouse_%s{%s=\"%s\"} %llu\n", fa->name,
				            fa->label, fa->member[i].value, (unsigned long long)v);
			else
				rc = append(buf, len, &pos, "gatehouse_%s %llu\n", fa->name,
				            (unsigned long long)v);
			if (rc < 0)
				return truncated(buf, len, *off);
		}
	}
	depth = atomic_load_explicit(&ms->queue_depth, memory_order_relaxed);
	if (append(buf, len, &pos, "# HELP gatehouse_queue_depth Jobs queued or running.\n"
	           "# TYPE gatehouse_queue_depth gauge\ngatehouse_queue_depth %lld\n",
	           (long long)depth) < 0)
		return truncated(buf, len, *off);
	*off = pos;
	return 0;
}

/*
 * Append histogram <h> as <name> with <help> to <buf> at <*off>, in
 * seconds. Returns 0, or -1 when <buf> is too small (<*off> unchanged).
 */
int
metrics_hist_render(const struct metrics_hist *h, const char *name, const char *help,
                    char *buf, size_t len, size_t *off)
{
	size_t pos = *off;
	uint64_t cum = 0, sum;
	int i;

	if (append(buf, len, &pos, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name) < 0)
		return truncated(buf, len, *off);
	for (i = 0; i < METRICS_HIST_BUCKETS; i++) {
		cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
		if (append(buf, len, &pos, "%s_bucket{le=\"%s\"} %llu\n", name, hist_bounds[i].le,
		           (unsigned long long)cum) < 0)
			return truncated(buf, len, *off);
	}
	cum += atomic_load_explicit(&h->bucket[METRICS_HIST_BUCKETS], memory_order_relaxed);
	sum = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
	/* +Inf and _count are the same number; use the cumulative sum so a
	 * concurrent observe can never make +Inf smaller than a bucket */
	if (append(buf, len, &pos, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %llu.%06llu\n"
	           "%s_count %llu\n", name, (unsigned long long)cum, name,
	           (unsigned long long)(sum / 1000000), (unsigned long long)(sum % 1000000),
	           name, (unsigned long long)cum) < 0)
		return truncated(buf, len, *off);
	*off = pos;
	return 0;
}

/*
 * Append one sample <name> <value> with HELP <help> and TYPE <type> to
 * <buf> at <*off>. Returns 0, or -1 when <buf> is too small.
 */
int
metrics_render_one(const char *name, const char *help, const char *type, uint64_t value,
                   char *buf, size_t len, size_t *off)
{
	size_t pos = *off;

	if (append(buf, len, &pos, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name,
	           type, name, (unsigned long long)value) < 0)
		return truncated(buf, len, *off);
	*off = pos;
	return 0;
}
