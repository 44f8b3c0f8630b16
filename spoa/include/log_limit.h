/*
 * Rate limiting of log lines that a remote peer can cause at will (bad
 * frames, bad commands, failed TLS handshakes, refused connections), in
 * the manner of the kernel's printk_ratelimit: each kind of message may be
 * written <burst> times per <interval>; the rest of that window is
 * counted, not written, and one line "<N> similar messages suppressed"
 * reports the count when the window is over. That line is written by the
 * next message of the kind after the window, or by log_limit_flush(),
 * which each daemon calls from a periodic timer (and at exit), so a count
 * is never lost when the flood stops.
 *
 * A kind is a short constant string naming the call site's message
 * ("spop-error", "tls-handshake"); every message of one kind shares one
 * budget whatever the peer. Operational messages (startup, configuration,
 * outage transitions) are never routed through the limiter.
 *
 * A limiter is owned by whoever owns the logger and attached to it
 * (lg->limit); calls are thread-safe (one small mutex-protected table)
 * and a logger without a limiter writes everything.
 */
#ifndef GH_LOG_LIMIT_H
#define GH_LOG_LIMIT_H

#include <pthread.h>
#include <stdint.h>

#include "log.h"

#define LOG_LIMIT_KINDS 48   /* distinct kinds; more share one "other" slot */
#define LOG_LIMIT_BURST_DEFAULT 10
#define LOG_LIMIT_INTERVAL_DEFAULT_MS 10000

/* A clock in milliseconds (monotonic); <arg> is the caller's. */
typedef uint64_t (*log_limit_clock)(void *arg);

/* One kind's current window. */
struct log_limit_slot {
	const char *kind;        /* not owned: a constant string */
	int open;                /* a window is running */
	uint64_t start_ms;       /* when it started */
	unsigned printed;        /* lines written in this window */
	unsigned long suppressed;/* lines counted, not written, in this window */
	int level;               /* most severe level among the suppressed */
};

/* The limiter: settings and one slot per kind. */
struct log_limit {
	pthread_mutex_t mu;
	unsigned burst;          /* lines per kind per interval; 0 = no limit */
	uint32_t interval_ms;    /* window length; 0 = no limit */
	log_limit_clock clock;   /* never NULL after init */
	void *clock_arg;
	unsigned nslots;
	struct log_limit_slot slot[LOG_LIMIT_KINDS];
};

/*
 * Initialise <ll>: at most <burst> lines of a kind per <interval_ms>
 * (either 0 = no limit), windows timed by <clock> with <arg> (NULL = the
 * monotonic clock). Returns 0, or -1 when the mutex cannot be created.
 */
int log_limit_init(struct log_limit *ll, unsigned burst, uint32_t interval_ms,
                   log_limit_clock clock, void *arg)
	__attribute__((warn_unused_result));

/* Change the settings of <ll> to <burst> per <interval_ms> (a reload). */
void log_limit_set(struct log_limit *ll, unsigned burst, uint32_t interval_ms);

/* Release what <ll> holds; call log_limit_flush() first to report counts. */
void log_limit_free(struct log_limit *ll);

/*
 * Tell whether a message of <kind> at <level> may be written through <lg>
 * now: 1 = write it, 0 = dropped (below the log level) or suppressed
 * (counted). The summary of <kind>'s finished window, if any, is written
 * first. Always 1 when <lg> has no limiter.
 */
int log_limit_allow(const struct logger *lg, int level, const char *kind);

/*
 * Write the summary of every kind of <lg>'s limiter whose window is over
 * (all of them when <all>, as at exit) and close those windows.
 */
void log_limit_flush(const struct logger *lg, int all);

#endif
