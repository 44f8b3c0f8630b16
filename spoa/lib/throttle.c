/*
 * Login throttling with counters kept in memcached, so that every gatehouse
 * node shares them.
 *
 * Each limit is a fixed window: the first attempt creates the counter with
 * a lifetime of the limit's *_ttl seconds, later attempts only increment it
 * (an increment never extends the lifetime), and the counter vanishes when
 * the window ends. A window therefore starts at the first attempt after the
 * previous one ended; up to twice the limit can pass around a window
 * boundary, as with any fixed window.
 *
 * Exactness: every attempt is one atomic create-or-increment in memcached
 * (mc_incr), which hands each of K concurrent attempts a distinct value;
 * an attempt is admitted iff its value is <= the limit, so exactly the
 * first L of them pass. Rejected attempts are counted too: a client that
 * keeps trying while rejected stays rejected until the window ends.
 *
 * Order of checks: whitelist, attempts per IP, failures per IP, then (when
 * the account is known) attempts per account and failures per account. The
 * first one that rejects decides; counters after it are not touched. The
 * failure counters are only read here: throttle_record_failure() increments
 * them and throttle_record_success() clears the IP's.
 *
 * memcached unavailable: the attempt is allowed (THROTTLE_FAIL_OPEN). The
 * outage is logged when it starts and when it ends, not per request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "keys.h"
#include "log.h"
#include "mc.h"
#include "metrics.h"
#include "name.h"
#include "throttle.h"

/* What a key passed to throttle_show()/throttle_clear() names. */
struct subject {
	int is_ip;
	char text[KEYS_MAX];      /* IP group or normalised account name */
};

/*
 * Build the key of <kind> for <text> into <key>. Returns 0 or -1.
 */
static int
make_key(char *key, const char *kind, const char *text)
{
	return keys_make(key, KEYS_MAX, kind, text);
}

/*
 * Read counter <kind>/<text> into <val> (0 when absent). Returns 0, or -1
 * when memcached failed.
 */
static int
read_counter(struct agent_worker *w, const char *kind, const char *text, uint64_t *val)
{
	char key[KEYS_MAX], buf[32];
	enum mc_rc rc;

	*val = 0;
	if (make_key(key, kind, text) < 0)
		return -1;
	rc = mc_get(w->mc, key, buf, sizeof(buf));
	if (rc == MC_ERR) {
		agent_mc_trouble(w->ag);
		return -1;
	}
	agent_mc_fine(w->ag);
	/* a counter holds a decimal number; anything else counts as absent */
	if (rc == MC_OK) {
		char *end;
		unsigned long long v = strtoull(buf, &end, 10);

		while (*end == ' ' || *end == '\r' || *end == '\n')
			end++;
		if (end != buf && *end == '\0')
			*val = v;
	}
	return 0;
}

/*
 * Add one to counter <kind>/<text> (created with lifetime <ttl_s>) and
 * store the new value in <val>. Returns 0, or -1 when memcached failed.
 */
static int
bump_counter(struct agent_worker *w, const char *kind, const char *text, uint32_t ttl_s,
             uint64_t *val)
{
	char key[KEYS_MAX];

	if (make_key(key, kind, text) < 0)
		return -1;
	/* a TTL of 0 would mean "never expires": a window must end */
	if (mc_incr(w->mc, key, 1, ttl_s ? ttl_s : 1, val) != MC_OK) {
		agent_mc_trouble(w->ag);
		return -1;
	}
	agent_mc_fine(w->ag);
	return 0;
}

/*
 * Delete counter <kind>/<text>. Returns 0, or -1 when memcached failed.
 */
static int
drop_counter(struct agent_worker *w, const char *kind, const char *text)
{
	char key[KEYS_MAX];

	if (make_key(key, kind, text) < 0)
		return -1;
	if (mc_delete(w->mc, key) == MC_ERR) {
		agent_mc_trouble(w->ag);
		return -1;
	}
	agent_mc_fine(w->ag);
	return 0;
}

/*
 * Tell whether <ip> is in the [throttle] whitelist of <ag> (parsed once
 * by agent_init()).
 */
static int
whitelisted(const struct agent *ag, const struct cidr *ip)
{
	return cidr_list_match(&ag->whitelist, ip);
}

/* Fill <out> with a rejection; returns 1 (rejected). */
static int
reject(struct agent *ag, struct throttle_result *out, enum throttle_verdict v, enum metric m,
       uint64_t count, uint64_t limit, uint32_t window, const char *message)
{
	out->verdict = v;
	out->count = count;
	out->limit = limit;
	out->retry_after = window;
	out->message = (message != NULL && message[0] != '\0') ? message : NULL;
	metrics_inc(&ag->metrics, m);
	return 1;
}

/* Fill <out> with a fail-open verdict; returns 0 (allowed). */
static int
fail_open(struct agent *ag, struct throttle_result *out)
{
	out->verdict = THROTTLE_FAIL_OPEN;
	metrics_inc(&ag->metrics, M_THROTTLE_FAIL_OPEN);
	return 0;
}

/* What both phases of a check share: the parsed client and the account. */
struct check_ctx {
	char group[CIDR_STR_MAX];
	char account[NAME_MAX_LEN + 1];
	int whitelisted;
};

/*
 * Parse <ip> (and <user> when not NULL) into <cc>. Returns 0, or 1 with
 * <out> set to a rejection when either is unusable.
 */
static int
check_begin(struct agent *ag, const char *ip, const char *user, struct check_ctx *cc,
            struct throttle_result *out)
{
	const struct cfg_throttle *t = &ag->cfg->throttle;
	struct cidr addr;

	memset(out, 0, sizeof(*out));
	out->verdict = THROTTLE_ALLOW;
	/* an address we cannot parse is a caller bug or forged input: refuse
	 * rather than let it bypass the IP counters */
	if (ip == NULL || cidr_parse_addr(ip, &addr) < 0 ||
	    cidr_group(ip, t->ipv6_prefix, cc->group, sizeof(cc->group)) < 0) {
		log_limited(ag->log, LOG_WARNING, "throttle-bad-input",
		            "throttle: bad client address '%.64s'", ip ? ip : "(null)");
		return reject(ag, out, THROTTLE_REJECT_IP, M_THROTTLE_REJECT_IP, 0, t->ip_max,
		              t->ip_ttl_s, t->ip_reject_message);
	}
	cc->whitelisted = whitelisted(ag, &addr);
	if (user != NULL && name_normalise(cc->account, sizeof(cc->account), user,
	                                   ag->cfg->ldap.default_domain) < 0) {
		log_limited(ag->log, LOG_WARNING, "throttle-bad-input",
		            "throttle: bad account name from %s", cc->group);
		return reject(ag, out, THROTTLE_REJECT_USER, M_THROTTLE_REJECT_USER, 0,
		              t->user_max, t->user_ttl_s, t->user_reject_message);
	}
	return 0;
}

/* Count and check the IP's counters. Returns 0 allowed, 1 rejected. */
static int
check_ip(struct agent_worker *w, const struct check_ctx *cc, struct throttle_result *out)
{
	struct agent *ag = w->ag;
	const struct cfg_throttle *t = &ag->cfg->throttle;
	uint64_t v;

	if (t->ip_max > 0) {
		if (bump_counter(w, KEYS_THR_IP, cc->group, t->ip_ttl_s, &v) < 0)
			return fail_open(ag, out);
		if (v > t->ip_max)
			return reject(ag, out, THROTTLE_REJECT_IP, M_THROTTLE_REJECT_IP, v,
			              t->ip_max, t->ip_ttl_s, t->ip_reject_message);
		out->count = v;
		out->limit = t->ip_max;
	}
	if (t->ip_fail_max > 0) {
		if (read_counter(w, KEYS_FAIL_IP, cc->group, &v) < 0)
			return fail_open(ag, out);
		if (v >= t->ip_fail_max)
			return reject(ag, out, THROTTLE_REJECT_IP_FAIL, M_THROTTLE_REJECT_IP_FAIL, v,
			              t->ip_fail_max, t->ip_fail_ttl_s, t->ip_reject_message);
	}
	return 0;
}

/* Count and check the account's counters. Returns 0 allowed, 1 rejected. */
static int
check_user(struct agent_worker *w, const struct check_ctx *cc, struct throttle_result *out)
{
	struct agent *ag = w->ag;
	const struct cfg_throttle *t = &ag->cfg->throttle;
	uint64_t v;

	if (t->user_max > 0) {
		if (bump_counter(w, KEYS_THR_USER, cc->account, t->user_ttl_s, &v) < 0)
			return fail_open(ag, out);
		if (v > t->user_max)
			return reject(ag, out, THROTTLE_REJECT_USER, M_THROTTLE_REJECT_USER, v,
			              t->user_max, t->user_ttl_s, t->user_reject_message);
		out->count = v;
		out->limit = t->user_max;
	}
	if (t->user_fail_max > 0) {
		if (read_counter(w, KEYS_FAIL_USER, cc->account, &v) < 0)
			return fail_open(ag, out);
		if (v >= t->user_fail_max)
			return reject(ag, out, THROTTLE_REJECT_USER_FAIL,
			              M_THROTTLE_REJECT_USER_FAIL, v, t->user_fail_max,
			              t->user_fail_ttl_s, t->user_reject_message);
	}
	return 0;
}

/*
 * Decide what can be decided of a check without memcached: bad input,
 * the whitelist, nothing limited. Returns 0 allowed, 1 rejected, or -1
 * when the counters must be asked (<cc> is then filled). An allowed
 * verdict is counted only by the concluding phase (<do_user>), so that a
 * login checked in two phases counts once.
 */
static int
check_local(struct agent *ag, const char *ip, const char *user, int do_ip, int do_user,
            struct check_ctx *cc, struct throttle_result *out)
{
	const struct cfg_throttle *t = &ag->cfg->throttle;
	int need_ip, need_user;

	if (!do_user)
		user = NULL;
	if (check_begin(ag, ip, user, cc, out))
		return 1;
	if (cc->whitelisted) {
		out->verdict = THROTTLE_WHITELISTED;
		if (do_user)
			metrics_inc(&ag->metrics, M_THROTTLE_WHITELISTED);
		return 0;
	}
	need_ip = do_ip && (t->ip_max > 0 || t->ip_fail_max > 0);
	need_user = user != NULL && (t->user_max > 0 || t->user_fail_max > 0);
	if (!need_ip && !need_user) {
		/* nothing limited: no need to ask memcached */
		if (do_user)
			metrics_inc(&ag->metrics, M_THROTTLE_ALLOW);
		return 0;
	}
	return -1;
}

/*
 * Run the phases <do_ip> and <do_user> of a check for <ip> and <user>.
 * Returns 0 allowed, 1 rejected; <out> says why.
 */
static int
check(struct agent_worker *w, const char *ip, const char *user, int do_ip, int do_user,
      struct throttle_result *out)
{
	struct agent *ag = w->ag;
	const struct cfg_throttle *t = &ag->cfg->throttle;
	struct check_ctx cc;
	int r;

	if ((r = check_local(ag, ip, user, do_ip, do_user, &cc, out)) >= 0)
		return r;
	if (w->mc == NULL)
		return fail_open(ag, out);
	if (do_ip && (t->ip_max > 0 || t->ip_fail_max > 0) && check_ip(w, &cc, out))
		return 1;
	if (out->verdict == THROTTLE_FAIL_OPEN)
		return 0;
	if (do_user && user != NULL && (t->user_max > 0 || t->user_fail_max > 0) &&
	    check_user(w, &cc, out))
		return 1;
	if (out->verdict == THROTTLE_FAIL_OPEN)
		return 0;
	if (do_user)
		metrics_inc(&ag->metrics, M_THROTTLE_ALLOW);
	return 0;
}

/*
 * Count one login attempt from <ip> for <user> (NULL: IP only) and decide.
 * Returns 0 allowed, 1 rejected; <out> says why.
 */
int
throttle_check(struct agent_worker *w, const char *ip, const char *user,
               struct throttle_result *out)
{
	return check(w, ip, user, 1, 1, out);
}

/*
 * Count and check only the per-IP counters of an attempt from <ip>: the
 * first step, before anything is looked up. Returns 0 allowed, 1 rejected.
 */
int
throttle_check_ip(struct agent_worker *w, const char *ip, struct throttle_result *out)
{
	return check(w, ip, NULL, 1, 0, out);
}

/*
 * Count and check only the per-account counters of an attempt from <ip>
 * (for the whitelist) for <user>, once the account is known, and conclude
 * the check (count its verdict). <user> NULL (no such account) only
 * concludes. Returns 0 allowed, 1 rejected.
 */
int
throttle_check_user(struct agent_worker *w, const char *ip, const char *user,
                    struct throttle_result *out)
{
	return check(w, ip, user, 0, 1, out);
}

/*
 * Decide the per-IP phase for <ip> without blocking, when no counter is
 * needed (nothing limited, whitelisted, unusable address): safe on an
 * event loop. Returns 0 allowed or 1 rejected (<out> filled, counted as
 * throttle_check_ip() would), or -1 when throttle_check_ip() must decide.
 */
int
throttle_local_ip(struct agent *ag, const char *ip, struct throttle_result *out)
{
	struct check_ctx cc;

	return check_local(ag, ip, NULL, 1, 0, &cc, out);
}

/*
 * Decide the per-account phase for <user> from <ip> without blocking, as
 * throttle_local_ip() does. Returns 0, 1, or -1 when throttle_check_user()
 * must decide.
 */
int
throttle_local_user(struct agent *ag, const char *ip, const char *user,
                    struct throttle_result *out)
{
	struct check_ctx cc;

	return check_local(ag, ip, user, 0, 1, &cc, out);
}

/*
 * Tell whether recording a login outcome (<ok>: success, else failure)
 * would change any counter under the configuration of <ag>. Returns 1 or 0.
 */
int
throttle_records(const struct agent *ag, int ok)
{
	const struct cfg_throttle *t = &ag->cfg->throttle;

	return ok ? t->ip_fail_max > 0 : (t->ip_fail_max > 0 || t->user_fail_max > 0);
}

/*
 * Record a failed login from <ip> for <user> (either may be NULL). Only
 * counters with a limit are kept. Returns 0, or -1 when memcached failed.
 */
int
throttle_record_failure(struct agent_worker *w, const char *ip, const char *user)
{
	struct agent *ag = w->ag;
	const struct cfg_throttle *t = &ag->cfg->throttle;
	char group[CIDR_STR_MAX], account[NAME_MAX_LEN + 1];
	uint64_t v;
	int rc = 0;

	if (w->mc == NULL)
		return (t->ip_fail_max || t->user_fail_max) ? -1 : 0;
	if (ip != NULL && t->ip_fail_max > 0 &&
	    cidr_group(ip, t->ipv6_prefix, group, sizeof(group)) == 0 &&
	    bump_counter(w, KEYS_FAIL_IP, group, t->ip_fail_ttl_s, &v) < 0)
		rc = -1;
	if (user != NULL && t->user_fail_max > 0 &&
	    name_normalise(account, sizeof(account), user, ag->cfg->ldap.default_domain) >= 0 &&
	    bump_counter(w, KEYS_FAIL_USER, account, t->user_fail_ttl_s, &v) < 0)
		rc = -1;
	return rc;
}

/*
 * Record a successful login from <ip> (for <user>, unused: a success from
 * one address does not excuse failures for the account from others).
 * Clears the IP's failure counter. Returns 0, or -1 when memcached failed.
 */
int
throttle_record_success(struct agent_worker *w, const char *ip, const char *user)
{
	const struct cfg_throttle *t = &w->ag->cfg->throttle;
	char group[CIDR_STR_MAX];

	(void)user;
	if (ip == NULL || t->ip_fail_max == 0)
		return 0;
	if (w->mc == NULL)
		return -1;
	if (cidr_group(ip, t->ipv6_prefix, group, sizeof(group)) < 0)
		return 0;
	return drop_counter(w, KEYS_FAIL_IP, group);
}

/*
 * Work out whether <key> is an IP address (grouped as the counters are) or
 * an account name (normalised). Returns 0, or -1 when it is neither.
 */
static int
subject_parse(const struct agent *ag, const char *key, struct subject *s)
{
	struct cidr c;

	memset(s, 0, sizeof(*s));
	if (cidr_parse_addr(key, &c) == 0) {
		s->is_ip = 1;
		return cidr_group(key, ag->cfg->throttle.ipv6_prefix, s->text, sizeof(s->text));
	}
	/* an IPv6 group as shown by the CLI ("2001:db8::/64") */
	if (strchr(key, '/') != NULL && cidr_parse(key, &c) == 0) {
		s->is_ip = 1;
		return cidr_format(&c, s->text, sizeof(s->text));
	}
	return name_normalise(s->text, sizeof(s->text), key, ag->cfg->ldap.default_domain) < 0
	       ? -1 : 0;
}

/*
 * Read the counters for <key> (IP or account name) into <out>. Returns 0,
 * or -1 when <key> is neither or memcached failed.
 */
int
throttle_show(struct agent_worker *w, const char *key, struct throttle_state *out)
{
	const struct cfg_throttle *t = &w->ag->cfg->throttle;
	struct subject s;

	memset(out, 0, sizeof(*out));
	if (key == NULL || subject_parse(w->ag, key, &s) < 0 || w->mc == NULL)
		return -1;
	out->max = s.is_ip ? t->ip_max : t->user_max;
	out->fail_max = s.is_ip ? t->ip_fail_max : t->user_fail_max;
	if (read_counter(w, s.is_ip ? KEYS_THR_IP : KEYS_THR_USER, s.text, &out->attempts) < 0 ||
	    read_counter(w, s.is_ip ? KEYS_FAIL_IP : KEYS_FAIL_USER, s.text, &out->failures) < 0)
		return -1;
	out->found = out->attempts > 0 || out->failures > 0;
	return 0;
}

/*
 * Delete the counters for <key> (IP or account name). Returns 0, or -1
 * when <key> is neither or memcached failed.
 */
int
throttle_clear(struct agent_worker *w, const char *key)
{
	struct subject s;

	if (key == NULL || subject_parse(w->ag, key, &s) < 0 || w->mc == NULL)
		return -1;
	if (drop_counter(w, s.is_ip ? KEYS_THR_IP : KEYS_THR_USER, s.text) < 0 ||
	    drop_counter(w, s.is_ip ? KEYS_FAIL_IP : KEYS_FAIL_USER, s.text) < 0)
		return -1;
	return 0;
}

/* Return a short name for <v>. */
const char *
throttle_verdict_name(enum throttle_verdict v)
{
	switch (v) {
	case THROTTLE_ALLOW: return "allow";
	case THROTTLE_WHITELISTED: return "whitelisted";
	case THROTTLE_FAIL_OPEN: return "fail-open";
	case THROTTLE_REJECT_IP: return "reject-ip";
	case THROTTLE_REJECT_USER: return "reject-user";
	case THROTTLE_REJECT_IP_FAIL: return "reject-ip-fail";
	case THROTTLE_REJECT_USER_FAIL: return "reject-user-fail";
	}
	return "?";
}
