/*
 * The agent's auth_http endpoint: an nginx mail proxy configured with
 * `auth_http http://<[spoa] auth_http>/auth` asks here, for each login,
 * where the mailbox is and whether the login is throttled. The HTTP side
 * is the library's responder (request mode); the lookup and the throttle
 * run on the job queue exactly as a mail proxy login does: the client's
 * IP counters first (a throttled address is refused before anything is
 * looked up), then the route, then the account's counters. An answer that
 * needs neither a counter nor more than the in-process cache is given on
 * the loop. The password nginx sends (Auth-Pass) is never copied out of
 * the request buffer, which is wiped when the request ends.
 *
 * nginx does not tell us whether the mailbox server accepted the
 * password, so no login outcome is recorded: the failed-login counters
 * are left alone, also for unknown names (recording those alone would
 * tell unknown names from real ones by the throttle's behaviour).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authsrv.h"
#include "route.h"
#include "spoa.h"

#define AH_CONN_DEADLINE 15.0    /* seconds a connection may take in all */
#define AH_MAX_CLIENTS   4096    /* nginx opens one connection per login */

/* One auth_http request being answered. */
struct ah_req {
	struct spoa *sp;
	struct gen *gen;                /* held until freed */
	struct mhttp_client *c;         /* NULL once the client is gone */
	struct jobq_job *job;
	ev_timer deadline;
	ev_tstamp start;
	struct authsrv_req rq;
	enum gh_proto proto;
	/* written by the worker (or the loop's fast path) */
	struct route_result rr;
	struct throttle_result tr;
	int throttled;
	int ip_done;
	int route_done;
};

/* Free <r> and drop its hold on its generation. */
static void
ah_free(struct ah_req *r)
{
	gen_put(r->gen);
	free(r);
}

static void
ah_release(void *arg)
{
	ah_free(arg);
}

/* Return the name the account counters of <r> are kept under. */
static const char *
ah_throttle_name(const struct ah_req *r)
{
	return route_throttle_name(&r->rr);
}

/*
 * Worker thread: throttle and route for <arg>, each step once: a route
 * needing LDAP goes to the slow lane, where the job starts again after
 * the finished steps (counters are never incremented twice).
 */
static enum jobq_next
ah_work(struct agent_worker *w, void *arg)
{
	struct ah_req *r = arg;

	if (!r->ip_done) {
		r->throttled = throttle_check_ip(w, r->rq.ip, &r->tr) == 1;
		r->ip_done = 1;
	}
	if (r->throttled)
		return JOBQ_DONE;
	if (!r->route_done) {
		if (route_lookup(w, ROUTE_BY_NAME, r->rq.user, r->proto, &r->rr) < 0 &&
		    r->rr.status == ROUTE_DEFER)
			return JOBQ_SLOW;
		r->route_done = 1;
	}
	r->throttled = throttle_check_user(w, r->rq.ip, ah_throttle_name(r), &r->tr) == 1;
	return JOBQ_DONE;
}

/* Count answer kind <k> of <sp>. */
static void
ah_count(struct spoa *sp, enum authsrv_kind k)
{
	switch (k) {
	case AUTHSRV_OK: spoa_count(sp, SC_AUTH_OK); break;
	case AUTHSRV_INVALID: spoa_count(sp, SC_AUTH_INVALID); break;
	case AUTHSRV_THROTTLED: spoa_count(sp, SC_AUTH_THROTTLED); break;
	case AUTHSRV_TEMPFAIL: spoa_count(sp, SC_AUTH_TEMPFAIL); break;
	case AUTHSRV_UNSUPPORTED: spoa_count(sp, SC_AUTH_UNSUPPORTED); break;
	}
}

/* Log answer <a> to <r>: what operators need, never the password. */
static void
ah_log(struct ah_req *r, const struct authsrv_answer *a, const char *why)
{
	struct spoa *sp = r->sp;
	const char *peer = r->c ? mhttp_peer(r->c) : "-";
	const char *proto = authsrv_proto_name(r->rq.proto);

	switch (a->kind) {
	case AUTHSRV_OK:
		log_info(&sp->log, "auth_http: %s: %s login of %s from %s (attempt %u): "
		         "server %s %s:%u (%s)", peer, proto, r->rq.user, r->rq.ip,
		         (unsigned)r->rq.attempt, r->rr.server, a->server, (unsigned)a->port,
		         route_source_name(r->rr.source));
		break;
	case AUTHSRV_INVALID:
		log_limited(&sp->log, r->rr.status == ROUTE_UNKNOWN ? LOG_INFO : LOG_WARNING,
		            "authhttp-invalid", "auth_http: %s: %s login of %s from %s refused "
		            "as an invalid login: route %s%s%s", peer, proto, r->rq.user, r->rq.ip,
		            r->rq.user[0] ? route_status_name(r->rr.status) : "(no user)",
		            r->rr.account[0] ? " account=" : "", r->rr.account);
		break;
	case AUTHSRV_THROTTLED:
		log_limited(&sp->log, LOG_NOTICE, "authhttp-throttled",
		            "auth_http: %s: %s login of %s from %s throttled (%s, %llu/%llu)",
		            peer, proto, r->rq.user, r->rq.ip, throttle_verdict_name(r->tr.verdict),
		            (unsigned long long)r->tr.count, (unsigned long long)r->tr.limit);
		break;
	case AUTHSRV_TEMPFAIL:
		log_limited(&sp->log, LOG_WARNING, "authhttp-tempfail",
		            "auth_http: %s: %s login of %s from %s: temporary failure (%s)",
		            peer, proto, r->rq.user, r->rq.ip,
		            why ? why : route_status_name(r->rr.status));
		break;
	case AUTHSRV_UNSUPPORTED:
		log_limited(&sp->log, LOG_NOTICE, "authhttp-unsupported",
		            "auth_http: %s: %s login of %s from %s (method %s) refused: "
		            "only IMAP and POP3 with a password are served", peer, proto,
		            r->rq.user, r->rq.ip, r->rq.method_name);
		break;
	}
}

/* Send answer <a> to <r>'s client, count and log it. */
static void
ah_send(struct ah_req *r, const struct authsrv_answer *a, const char *why)
{
	char buf[AUTHSRV_ANSWER_MAX];
	int n;

	ah_count(r->sp, a->kind);
	ah_log(r, a, why);
	n = authsrv_answer(a, buf, sizeof(buf));
	if (n < 0)
		n = authsrv_answer_bad(buf, sizeof(buf));   /* cannot happen: sizes are fixed */
	(void)mhttp_reply(r->c, buf, (size_t)n);
	r->c = NULL;
}

/* Decide and send the answer of <r> from what its lookup found. */
static void
ah_answer(struct ah_req *r)
{
	struct authsrv_answer a;
	char ip[AUTHSRV_IP_MAX];

	authsrv_decide(&r->rq, r->route_done ? &r->rr : NULL, &r->tr, r->throttled, &a, ip,
	                sizeof(ip));
	ah_send(r, &a, NULL);
}

/* Loop thread: the job of <arg> is done. */
static void
ah_done(void *arg)
{
	struct ah_req *r = arg;

	r->job = NULL;
	ev_timer_stop(r->sp->loop, &r->deadline);
	if (r->c != NULL)
		ah_answer(r);
	ah_free(r);
}

/* The lookup of <r> is late: a temporary failure, the job cancelled. */
static void
ah_deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct ah_req *r = t->data;
	struct authsrv_answer a;
	struct jobq_job *job = r->job;

	(void)loop;
	(void)revents;
	spoa_count(r->sp, SC_DEADLINE);
	memset(&a, 0, sizeof(a));
	a.kind = AUTHSRV_TEMPFAIL;
	a.proto = r->rq.proto;
	if (r->c != NULL)
		ah_send(r, &a, "over the deadline");
	r->job = NULL;
	jobq_cancel(job);       /* release() frees r */
}

/* The client of <arg> is gone before its answer. */
static void
ah_drop(void *arg)
{
	struct ah_req *r = arg;

	r->c = NULL;
	ev_timer_stop(r->sp->loop, &r->deadline);
	if (r->job != NULL) {
		struct jobq_job *job = r->job;

		r->job = NULL;
		jobq_cancel(job);
	} else {
		ah_free(r);
	}
}

/*
 * Decide <r> on the loop when nothing blocking is needed. Returns 1 when
 * decided, 0 when a worker must finish it.
 */
static int
ah_local(struct ah_req *r)
{
	struct agent *ag = &r->gen->ag;
	int rc;

	if ((rc = throttle_local_ip(ag, r->rq.ip, &r->tr)) < 0)
		return 0;
	r->ip_done = 1;
	if (rc == 1) {
		r->throttled = 1;
		return 1;
	}
	if (!route_cached(ag, ROUTE_BY_NAME, r->rq.user, r->proto, &r->rr))
		return 0;
	r->route_done = 1;
	if ((rc = throttle_local_user(ag, r->rq.ip, ah_throttle_name(r), &r->tr)) < 0)
		return 0;
	r->throttled = rc == 1;
	return 1;
}

/* The responder's request callback: one request head from nginx. */
static void
ah_request(void *arg, struct mhttp_client *c, char *head, size_t len)
{
	struct spoa *sp = arg;
	struct ah_req *r;
	const char *why;
	char buf[AUTHSRV_ANSWER_MAX];
	uint32_t ms;
	int n;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		(void)mhttp_reply(c, "", 0);
		return;
	}
	if (authsrv_parse(head, len, &r->rq, &why) < 0) {
		spoa_count(sp, SC_AUTH_BAD);
		log_limited(&sp->log, LOG_WARNING, "authhttp-bad",
		            "auth_http: %s: bad request (%s): answering 400", mhttp_peer(c), why);
		free(r);
		n = authsrv_answer_bad(buf, sizeof(buf));
		(void)mhttp_reply(c, buf, (size_t)n);
		return;
	}
	r->sp = sp;
	r->c = c;
	r->gen = gen_get(&sp->gens);
	r->start = ev_now(sp->loop);
	r->proto = r->rq.proto == AUTHSRV_P_POP3 ? PROTO_POP3 : PROTO_IMAP;
	/* nothing to look up: unsupported, or no user name */
	if (r->rq.user[0] == '\0' || r->rq.method != AUTHSRV_M_PLAIN ||
	    (r->rq.proto != AUTHSRV_P_IMAP && r->rq.proto != AUTHSRV_P_POP3) || ah_local(r)) {
		ah_answer(r);
		ah_free(r);
		return;
	}
	r->job = jobq_submit(r->gen->port, ah_work, ah_done, ah_release, r);
	if (r->job == NULL) {
		struct authsrv_answer a;

		spoa_count(sp, SC_BUSY);
		memset(&a, 0, sizeof(a));
		a.kind = AUTHSRV_TEMPFAIL;
		a.proto = r->rq.proto;
		ah_send(r, &a, "job queue full");
		ah_free(r);
		return;
	}
	mhttp_on_drop(c, ah_drop, r);
	/* a directory that does not answer is given up on after its timeout:
	 * answer a little after that, well within the connection's deadline */
	ms = r->gen->cfg->ldap.timeout_ms + 1000;
	if (ms > (uint32_t)((AH_CONN_DEADLINE - 1.0) * 1000))
		ms = (uint32_t)((AH_CONN_DEADLINE - 1.0) * 1000);
	ev_timer_init(&r->deadline, ah_deadline_cb, ms / 1000.0, 0.);
	r->deadline.data = r;
	ev_timer_start(sp->loop, &r->deadline);
}

/*
 * Serve auth_http for <sp> on "<ip>:<port>" <addr> (empty: off). Returns
 * 0, or -1 (logged) when the address is bad or cannot be bound.
 */
int
spoa_authsrv_start(struct spoa *sp, const char *addr)
{
	sp->authhttp = NULL;
	if (addr == NULL || addr[0] == '\0')
		return 0;
	sp->authhttp = mhttp_start_req(sp->loop, addr, ah_request, sp, AH_CONN_DEADLINE,
	                               AUTHSRV_HEAD_MAX, AH_MAX_CLIENTS, "auth_http", &sp->log);
	if (sp->authhttp == NULL)
		return -1;
	log_notice(&sp->log, "spoa: auth_http on %s", addr);
	return 0;
}

/* Stop serving auth_http for <sp>; requests in flight are dropped. */
void
spoa_authsrv_stop(struct spoa *sp)
{
	mhttp_stop(sp->authhttp);
	sp->authhttp = NULL;
}
