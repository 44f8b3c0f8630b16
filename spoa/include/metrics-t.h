/*
 * Metrics types: lock-free counters shared by all threads of a process, and
 * fixed-bucket latency histograms. Rendered in Prometheus text format.
 */
#ifndef GH_METRICS_T_H
#define GH_METRICS_T_H

#include <stdatomic.h>
#include <stdint.h>

/* Library counters. Daemons keep their own on top (with their own names). */
enum metric {
	M_LOOKUP_LOCAL = 0,      /* route answered by the in-process cache */
	M_LOOKUP_MEMCACHED,      /* answered by memcached */
	M_LOOKUP_LDAP,           /* answered by LDAP */
	M_LOOKUP_HTTP,           /* answered by the auth_http service */
	M_LOOKUP_UNKNOWN,        /* no such account (negative entry or LDAP) */
	M_LOOKUP_REFUSED,        /* host attribute names no configured server */
	M_LOOKUP_TEMPFAIL,       /* LDAP unreachable and not cached */
	M_LOOKUP_ERROR,          /* bad input, several entries, ... */
	M_THROTTLE_ALLOW,
	M_THROTTLE_REJECT_IP,
	M_THROTTLE_REJECT_USER,
	M_THROTTLE_REJECT_IP_FAIL,
	M_THROTTLE_REJECT_USER_FAIL,
	M_THROTTLE_WHITELISTED,
	M_THROTTLE_FAIL_OPEN,    /* memcached unavailable: allowed without counting */
	M_QUEUE_SUBMITTED,
	M_QUEUE_BUSY,            /* refused because the queue was full */
	M_QUEUE_CANCELLED,
	M_DEP_LDAP_ERROR,        /* LDAP connect/bind/search failures */
	M_DEP_HTTP_ERROR,        /* auth_http service: no URL gave a usable answer */
	M_DEP_MEMCACHED_ERROR,   /* memcached operation failures */
	M_MEMCACHED_OUTAGES,     /* times memcached went from up to down */
	M_VHOST_ALLOWED,         /* Host checks: allowed (config, cache or LDAP) */
	M_VHOST_REFUSED,         /* Host checks: not an allowed virtual host */
	M_VHOST_TEMPFAIL,        /* Host checks: LDAP unreachable and not cached (allowed) */
	M__COUNT
};

#define METRICS_HIST_BUCKETS 14

/* A latency histogram; bucket bounds are fixed (see metrics.c). */
struct metrics_hist {
	_Atomic uint64_t bucket[METRICS_HIST_BUCKETS + 1]; /* last = +Inf */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_us;
};

/* A process's library counters plus the queue depth gauge. */
struct metrics {
	_Atomic uint64_t c[M__COUNT];
	_Atomic int64_t queue_depth;
};

#endif
