/*
 * The login path: throttle verdict and route lookup, decided on the event
 * loop when no counter is needed and the route is in the in-process cache,
 * else on a worker thread; and the bookkeeping of each outcome (counters,
 * audit, throttle records, the client's answer). Each step reports how it
 * ended; what follows (connect, relay, back to pre-auth) is the session's.
 * Credentials live in struct login and are wiped when it is freed; they
 * never reach a log line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mp.h"
#include "metrics.h"
#include "name.h"
#include "route.h"

/* The lookup job: inputs copied from the session, outputs read by done. */
struct lookup_job {
	struct session *s;
	login_done_fn done;          /* told when a worker finished the job */
	char ip[64];
	char key[SASL_NAME_MAX + 1];
	char tuser[ROUTE_NAME_MAX];      /* the authcid, normalised, when it is not the key */
	char pass[SASL_PASS_MAX + 1];    /* for an auth_http source that asks for it, else "" */
	enum gh_proto proto;
	struct route_result route;
	struct throttle_result thr;
	int throttled;
	int ip_done;                 /* the per-IP phase is decided (loop or worker) */
	int route_done;              /* the route is final (in-process cache or worker) */
};

static const char *lookup_throttle_name(const struct lookup_job *lk);

/* A fire-and-forget job recording the outcome of a login with the throttle. */
struct record_job {
	struct gen *gen;                 /* held: the job may outlive its session */
	char ip[64];
	char user[ROUTE_NAME_MAX];
	int ok;
};

/* Tell whether <s> may send credentials now (TLS, or cleartext allowed). */
int
login_allowed(const struct session *s)
{
	return s->cl.tls || s->gen->cfg->mailproxy.cleartext_login;
}

/* Wipe and free the login state of <s>; cancels a pending lookup. */
void
login_free(struct session *s)
{
	if (s->login == NULL)
		return;
	if (s->login->job != NULL)
		jobq_cancel(s->login->job);
	if (s->login->mech_free != NULL)
		s->login->mech_free(s->login);
	explicit_bzero(s->login, sizeof(*s->login));
	free(s->login);
	s->login = NULL;
}

/* Return the name the client logs in as (authzid when given). */
static const char *
login_user(const struct login *lg)
{
	return lg->cred.authzid[0] ? lg->cred.authzid : lg->cred.authcid;
}

/*
 * Worker thread: throttle and route for <arg>. Each step runs once: a
 * route that needs LDAP sends the job to the slow lane (JOBQ_SLOW), where
 * it starts again after the steps already done (counters are never
 * incremented twice).
 */
static enum jobq_next
lookup_work(struct agent_worker *w, void *arg)
{
	struct lookup_job *lk = arg;

	/* a throttled address is refused before anything is looked up */
	if (!lk->ip_done) {
		lk->throttled = throttle_check_ip(w, lk->ip, &lk->thr) == 1;
		lk->ip_done = 1;
	}
	if (lk->throttled)
		return JOBQ_DONE;
	if (!lk->route_done) {
		struct route_client cl = { lk->ip, lk->pass[0] ? lk->pass : NULL, 1 };

		if (route_lookup_client(w, ROUTE_BY_NAME, lk->key, lk->proto, &cl, &lk->route) < 0 &&
		    lk->route.status == ROUTE_DEFER)
			return JOBQ_SLOW;
		lk->route_done = 1;
	}
	/* the user counter is keyed on the canonical account, so aliases do
	 * not multiply the budget; a name that is no account is counted under
	 * itself, exactly like an account (no existence oracle) */
	lk->throttled = throttle_check_user(w, lk->ip, lookup_throttle_name(lk), &lk->thr) == 1;
	return JOBQ_DONE;
}

/* Wipe and free lookup job <lk> (it may hold a password). */
static void
lookup_free(struct lookup_job *lk)
{
	explicit_bzero(lk->pass, sizeof(lk->pass));
	free(lk);
}

static void
lookup_release(void *arg)
{
	lookup_free(arg);
}

/*
 * Return the name the per-account counters of login <lk> are kept under:
 * the authentication identity when the client gave another authorization
 * identity (the mailbox server checks the authcid's password), else the
 * account found (canonical) or the name looked up, unknown or not.
 */
static const char *
lookup_throttle_name(const struct lookup_job *lk)
{
	return lk->tuser[0] ? lk->tuser : route_throttle_name(&lk->route);
}

static void
record_release(void *arg)
{
	struct record_job *rj = arg;

	gen_put(rj->gen);
	free(rj);
}

static enum jobq_next
record_work(struct agent_worker *w, void *arg)
{
	struct record_job *rj = arg;

	if (rj->ok)
		throttle_record_success(w, rj->ip, rj->user[0] ? rj->user : NULL);
	else
		throttle_record_failure(w, rj->ip, rj->user[0] ? rj->user : NULL);
	return JOBQ_DONE;
}

/* Record the outcome <ok> of the login of <s> for account <user>, in the background. */
static void
login_record(struct session *s, const char *user, int ok)
{
	struct record_job *rj;

	if (!throttle_records(&s->gen->ag, ok))
		return;
	if ((rj = calloc(1, sizeof(*rj))) == NULL)
		return;
	snprintf(rj->ip, sizeof(rj->ip), "%s", s->ip);
	snprintf(rj->user, sizeof(rj->user), "%s", user ? user : "");
	rj->ok = ok;
	rj->gen = gen_ref(s->gen);
	if (jobq_submit(s->gen->port, record_work, record_release, record_release, rj) == NULL)
		record_release(rj);
}

/* Record a failed login of <s> for <user> (NULL: the address only), in the background. */
void
login_record_failure(struct session *s, const char *user)
{
	login_record(s, user, 0);
}

/* Observe the latency of the login of <s>. */
static void
login_observe(struct session *s)
{
	ev_tstamp d = ev_now(s->mp->loop) - s->login->start;

	metrics_hist_observe(&s->mp->login_latency, d > 0 ? (uint64_t)(d * 1e6) : 0);
}

/*
 * Return how long to wait before answering a refused login of <s>, so that
 * it cannot be told from a wrong password by its timing. Dovecot (2.3)
 * answers a failed login once its whole-second clock has moved on by
 * auth_failure_delay, at its next check, every 500 ms: between delay - 1 s
 * and delay + 0.5 s after the attempt. A fixed delay would stand out after
 * a few tries; this gives the same spread. 0 when failure_delay is 0.
 */
uint32_t
login_fail_delay(const struct session *s)
{
	uint32_t delay = s->gen->cfg->mailproxy.failure_delay_ms;
	ev_tstamp now = ev_now(s->mp->loop);
	double ms;

	if (delay == 0)
		return 0;
	/* now > 0: the cast truncates to the whole second (no libm) */
	ms = (double)delay - (now - (double)(long long)now) * 1000.0 +
	     (double)arc4random_uniform(500);
	return ms < 1.0 ? 1 : (uint32_t)ms;
}

/*
 * Act on the verdict and route in <lk> for session <s>. Returns PH_OK
 * (routed: connect), PH_FAIL (throttled, answered), PH_FAIL_LATER (refused
 * as a wrong password is, answer due after the failure delay) or
 * PH_TEMPFAIL (<why>).
 */
static enum phase
lookup_apply(struct session *s, struct lookup_job *lk, const char **why)
{
	const struct proto_ops *ops = session_ops(s);

	if (lk->throttled) {
		mp_count(s->mp, MPC_LOGIN_THROTTLED, 1);
		session_log_limited(s, LOG_NOTICE, "login-throttled", "login of %s throttled (%s, %llu/%llu)",
		                    lk->key, throttle_verdict_name(lk->thr.verdict),
		                    (unsigned long long)lk->thr.count,
		                    (unsigned long long)lk->thr.limit);
		ops->reject(s, lk->thr.message && lk->thr.message[0] ? lk->thr.message
		                                                      : "Too many login attempts, try again later.");
		audit_login(s, lk->key, "throttled");
		return PH_FAIL;
	}
	if (lk->route.status == ROUTE_OK) {
		s->login->route = lk->route;
		/* a Kerberos user is logged in by the master user under the
		 * account's canonical name, which the mailbox server knows */
		if (s->login->mech == LOGIN_GSSAPI && lk->route.account[0] != '\0' &&
		    strlen(lk->route.account) <= SASL_NAME_MAX) {
			s->login->cred.authzid_len = strlen(lk->route.account);
			memcpy(s->login->cred.authzid, lk->route.account, s->login->cred.authzid_len + 1);
		}
		snprintf(s->account, sizeof(s->account), "%s", lk->route.account);
		snprintf(s->server, sizeof(s->server), "%s", lk->route.server);
		return PH_OK;
	}
	if (lk->route.status == ROUTE_UNKNOWN || lk->route.status == ROUTE_REFUSED ||
	    lk->route.status == ROUTE_UNUSABLE) {
		/* No account, an account whose server is not ours, an ambiguous
		 * name: to the client all look like a wrong password (answer,
		 * delay, failure counted under the same name), so nobody can
		 * tell which names exist; the log and the audit say which. */
		if (lk->route.status != ROUTE_UNKNOWN)
			session_log_limited(s, LOG_WARNING, "login-refused",
			                    "login of %s refused: route %s%s%s", lk->key,
			                    route_status_name(lk->route.status),
			                    lk->route.account[0] ? " account=" : "", lk->route.account);
		s->login->route.status = lk->route.status;
		login_record(s, lookup_throttle_name(lk), 0);
		/* decided: the password is not needed while the answer waits */
		explicit_bzero(s->login->cred.password, sizeof(s->login->cred.password));
		s->login->cred.password_len = 0;
		return PH_FAIL_LATER;
	}
	session_log_limited(s, LOG_WARNING, "lookup-failed", "route lookup for %s: %s", lk->key,
	                    route_status_name(lk->route.status));
	/* the lookup itself failed (directory down, queue full) */
	*why = "lookup failed";
	return PH_TEMPFAIL;
}

/* A worker finished lookup job <arg>: tell its session. */
static void
lookup_done(void *arg)
{
	struct lookup_job *lk = arg;

	lk->s->login->job = NULL;
	lk->done(lk->s, lk);
}

/*
 * Act on the finished lookup <job> of <s> (handed to the login_done_fn)
 * and free it. Returns what lookup_apply() says, with <why>.
 */
enum phase
login_lookup_end(struct session *s, void *job, const char **why)
{
	enum phase rc = lookup_apply(s, job, why);

	lookup_free(job);
	return rc;
}

/*
 * Decide <lk> on the loop when nothing blocking is needed: the throttle
 * needs no counter and the route is in the in-process cache. Returns 1
 * when decided, 0 when a worker must finish it (lk->ip_done tells whether
 * the per-IP phase is already settled).
 */
static int
lookup_local(struct session *s, struct lookup_job *lk)
{
	struct agent *ag = &s->gen->ag;
	int r;

	if ((r = throttle_local_ip(ag, lk->ip, &lk->thr)) < 0)
		return 0;
	lk->ip_done = 1;
	if (r == 1) {
		lk->throttled = 1;
		return 1;
	}
	if (!route_cached(ag, ROUTE_BY_NAME, lk->key, lk->proto, &lk->route))
		return 0;
	lk->route_done = 1;
	if ((r = throttle_local_user(ag, lk->ip, lookup_throttle_name(lk), &lk->thr)) < 0)
		return 0;
	lk->throttled = r == 1;
	return 1;
}

/*
 * Start the login of <s> with the credentials in s->login: decide on the
 * loop when possible, else submit the lookup job, whose end is told to
 * <done>. Returns PH_MORE while the job runs, else the verdict as
 * login_lookup_end() does (a full queue is PH_TEMPFAIL, <why> "busy").
 */
enum phase
login_start(struct session *s, login_done_fn done, const char **why)
{
	struct mp *mp = s->mp;
	struct lookup_job *lk;
	int tls = s->gen->cfg->mailproxy.upstream_tls;

	s->login->start = ev_now(mp->loop);
	lk = calloc(1, sizeof(*lk));
	if (lk == NULL) {
		*why = "out of memory";
		return PH_TEMPFAIL;
	}
	lk->s = s;
	lk->done = done;
	snprintf(lk->ip, sizeof(lk->ip), "%s", s->ip);
	snprintf(lk->key, sizeof(lk->key), "%s", login_user(s->login));
	/* SASL with another authorization identity: the password checked is
	 * the authcid's, so its budget is the one spent (not for Kerberos:
	 * the authcid is the master user, the ticket was the user's) */
	if (s->login->mech != LOGIN_GSSAPI && s->login->cred.authzid[0] &&
	    strcasecmp(s->login->cred.authzid, s->login->cred.authcid) != 0 &&
	    name_normalise(lk->tuser, sizeof(lk->tuser), s->login->cred.authcid,
	                   s->gen->cfg->ldap.default_domain) < 0)
		lk->tuser[0] = '\0';
	snprintf(s->login->tuser, sizeof(s->login->tuser), "%s", lk->tuser);
	lk->proto = s->proto == MP_IMAP ? (tls ? PROTO_IMAPS : PROTO_IMAP)
	                                : (tls ? PROTO_POP3S : PROTO_POP3);
	if (lookup_local(s, lk))
		return login_lookup_end(s, lk, why);
	/* an auth_http service that authenticates gets the password (the
	 * library sends it only where [lookup] allows) */
	if (s->gen->cfg->lookup.source == LOOKUP_HTTP && s->gen->cfg->lookup.send_password &&
	    s->login->mech != LOGIN_GSSAPI &&       /* never the master secret */
	    s->login->cred.password_len < sizeof(lk->pass))
		memcpy(lk->pass, s->login->cred.password, s->login->cred.password_len + 1);
	s->login->job = jobq_submit(s->gen->port, lookup_work, lookup_done, lookup_release, lk);
	if (s->login->job == NULL) {
		lookup_free(lk);
		session_log_limited(s, LOG_WARNING, "job-queue-full", "job queue full");
		*why = "busy";
		return PH_TEMPFAIL;
	}
	return PH_MORE;
}

/* Answer the login of unknown user by <s> as a wrong password is answered. */
void
login_unknown_answer(struct session *s)
{
	mp_count(s->mp, MPC_LOGIN_FAIL, 1);
	login_observe(s);
	session_ops(s)->login_failed(s);
	audit_login(s, login_user(s->login), s->login->refusal != NULL
	            ? s->login->refusal : route_status_name(s->login->route.status));
}

/* Record that the mailbox server accepted the login of <s> (answer queued): count, log, forget the credentials. */
void
login_succeeded(struct session *s)
{
	mp_count(s->mp, MPC_LOGIN_OK, 1);
	login_observe(s);
	session_log(s, LOG_INFO, "logged in on %s", s->server);
	audit_login(s, login_user(s->login), "ok");
	login_record(s, s->account, 1);
	login_free(s);
}

/* Record that the mailbox server refused the login of <s> (answer queued): count, audit, throttle. */
void
login_failed(struct session *s)
{
	mp_count(s->mp, MPC_LOGIN_FAIL, 1);
	login_observe(s);
	audit_login(s, login_user(s->login), "fail");
	login_record(s, s->login->tuser[0] ? s->login->tuser : s->account, 0);
	s->account[0] = '\0';
	s->server[0] = '\0';
}

/* Fail the login of <s> for now (<why>): answer the client about <what>, log and audit it. */
void
login_tempfail(struct session *s, const char *why, enum tempfail_what what)
{
	if (s->dead)
		return;
	mp_count(s->mp, MPC_LOGIN_TEMPFAIL, 1);
	session_log_limited(s, LOG_WARNING, "login-tempfail", "login failed temporarily: %s%s%s",
	                    why, s->server[0] ? " server=" : "", s->server);
	session_ops(s)->tempfail(s, what);
	if (s->login != NULL) {
		login_observe(s);
		audit_login(s, login_user(s->login), "tempfail");
	}
	s->account[0] = '\0';
	s->server[0] = '\0';
}
