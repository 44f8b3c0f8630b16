/*
 * Login throttling with counters in memcached, shared by every gatehouse
 * node. Attempts are counted per client IP (IPv6 per configured prefix) and
 * per account; failures are counted separately and a success resets the
 * IP's failure count. memcached down: fail open, logged once per outage.
 */
#ifndef GH_THROTTLE_H
#define GH_THROTTLE_H

#include <stdint.h>

#include "agent.h"

/* The verdict of throttle_check(). */
enum throttle_verdict {
	THROTTLE_ALLOW = 0,
	THROTTLE_WHITELISTED,       /* client in [throttle] whitelist: not counted */
	THROTTLE_FAIL_OPEN,         /* memcached unavailable: allowed, not counted */
	THROTTLE_REJECT_IP,         /* too many attempts from this IP */
	THROTTLE_REJECT_USER,       /* too many attempts for this account */
	THROTTLE_REJECT_IP_FAIL,    /* too many failed logins from this IP */
	THROTTLE_REJECT_USER_FAIL,  /* too many failed logins for this account */
};

/* Details of a verdict. */
struct throttle_result {
	enum throttle_verdict verdict;
	uint64_t count;             /* the counter that decided, after this attempt */
	uint64_t limit;             /* its limit (0 = unlimited) */
	uint32_t retry_after;       /* seconds until the window ends (upper bound) */
	const char *message;        /* reject message from the config, or NULL */
};

/* What throttle_show() reports for one key. */
struct throttle_state {
	uint64_t attempts, failures; /* current counters (0 when absent) */
	uint64_t max, fail_max;      /* configured limits */
	int found;                   /* 1 when any counter exists */
};

/*
 * Count one login attempt from client <ip> (textual IPv4/IPv6) for account
 * <user> (canonical name; NULL when not yet known, then only the IP is
 * counted and checked) and decide. Exact under concurrency: K parallel
 * attempts against a limit L admit exactly L. Blocking: call on a worker
 * thread. Always fills <out>; returns 0 when allowed, 1 when rejected.
 */
int throttle_check(struct agent_worker *w, const char *ip, const char *user,
                   struct throttle_result *out);

/*
 * The two halves of throttle_check(), for callers that must refuse a
 * throttled address before doing anything else (looking the user up):
 * throttle_check_ip() counts and checks the IP's counters only;
 * throttle_check_user() counts and checks the account's counters only (<ip>
 * is needed for the whitelist) and concludes: an allowed verdict is counted
 * in the metrics by this phase only, so call it, with <user> NULL when the
 * account is unknown, after an allowed IP phase. Blocking. Each fills
 * <out> and returns 0 when allowed, 1 when rejected.
 */
int throttle_check_ip(struct agent_worker *w, const char *ip, struct throttle_result *out);
int throttle_check_user(struct agent_worker *w, const char *ip, const char *user,
                        struct throttle_result *out);

/*
 * The same two phases decided without blocking, when no counter is needed
 * (nothing limited, the address whitelisted, unusable input): safe on an
 * event loop. Each returns 0 allowed or 1 rejected with <out> filled, or
 * -1 when the blocking throttle_check_ip() / throttle_check_user() must
 * decide (nothing was counted).
 */
int throttle_local_ip(struct agent *ag, const char *ip, struct throttle_result *out);
int throttle_local_user(struct agent *ag, const char *ip, const char *user,
                        struct throttle_result *out);

/*
 * Tell whether recording a login outcome (<ok>: success, else failure)
 * would change a counter under <ag>'s limits, so callers can skip the job.
 */
int throttle_records(const struct agent *ag, int ok);

/*
 * Record a failed login from <ip> for <user> (either may be NULL).
 * Blocking. Returns 0, or -1 when memcached is unavailable.
 */
int throttle_record_failure(struct agent_worker *w, const char *ip, const char *user);

/*
 * Record a successful login from <ip>: resets the IP's failure counter.
 * Blocking. Returns 0, or -1 when memcached is unavailable.
 */
int throttle_record_success(struct agent_worker *w, const char *ip, const char *user);

/*
 * Read the counters for <key>, an IP address or an account name. Returns
 * 0 and fills <out>, or -1 when memcached is unavailable.
 */
int throttle_show(struct agent_worker *w, const char *key, struct throttle_state *out);

/*
 * Delete the counters for <key> (IP or account name). Returns 0 or -1.
 */
int throttle_clear(struct agent_worker *w, const char *key);

/* Return a short name for <v> ("allow", "reject-ip", ...). */
const char *throttle_verdict_name(enum throttle_verdict v);

#endif
