/*
 * SPOE message handlers. A NOTIFY may carry three messages:
 *   route        ip host path query token auth [proto]  -> ip port server by user status [vhost]
 *                                                          [keep]
 *   login        the route arguments + [user]            -> both of the above +
 *                                                          throttled reason retry
 *   login-result ip [user] [account] status             -> result
 * Answers from the in-process cache are sent at once; everything else runs
 * on the job queue, so one slow LDAP answer never delays other frames. A
 * request still unanswered at the agent's deadline gets status=timeout.
 * Every ACK carries at least one action (status). keep=1 tells HAProxy it
 * may keep the route in its route table: only for a route read from
 * memcached or LDAP (one from the in-process cache may be up to local_ttl
 * behind a purge, and a table must not make that window longer), or for a
 * request that names no user (status none), with a Host that was decided
 * (not let through because LDAP could not tell).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg.h"
#include "metrics.h"
#include "route.h"
#include "spoa.h"
#include "vhost.h"
#include "spop.h"

#define ACK_BUF 2048

/* Allocate a request: the fields above <ip> zeroed, each string empty. */
static struct spoa_req *
req_new(void)
{
	struct spoa_req *r = malloc(sizeof(*r));

	if (r == NULL)
		return NULL;
	memset(r, 0, offsetof(struct spoa_req, ip));
	r->ip[0] = r->host[0] = r->user[0] = '\0';
	r->login_user[0] = r->basic_user[0] = r->acct[0] = '\0';
	route_result_reset(&r->rr);
	return r;
}

/* Free <r> and drop its hold on its configuration generation. */
static void
req_free(struct spoa_req *r)
{
	gen_put(r->gen);
	free(r);
}

/* The job queue's release callback: the request was cancelled. */
static void
req_release(void *arg)
{
	struct spoa_req *r = arg;

	req_free(r);
}

/* Copy string value <v> into <dst> (<len> bytes); other types give "". */
static void
copy_str(char *dst, size_t len, const struct spop_data *v)
{
	size_t n;

	dst[0] = '\0';
	if (v->type != SPOP_DATA_STR && v->type != SPOP_DATA_BIN)
		return;
	n = v->v.str.len < len - 1 ? v->v.str.len : len - 1;
	memcpy(dst, v->v.str.ptr, n);
	dst[n] = '\0';
}

/* Write IPv4 address <a> as dotted text into <dst> (16 bytes or more):
 * what inet_ntop() gives, without its sprintf (once per request). */
static void
ipv4_text(char *dst, const uint8_t a[4])
{
	char *p = dst;
	int i;

	for (i = 0; i < 4; i++) {
		unsigned b = a[i];

		if (b >= 100)
			*p++ = (char)('0' + b / 100);
		if (b >= 10)
			*p++ = (char)('0' + b / 10 % 10);
		*p++ = (char)('0' + b % 10);
		*p++ = i < 3 ? '.' : '\0';
	}
}

/* Write IP value <v> (typed or textual) as text into <dst>. */
static void
copy_ip(char *dst, size_t len, const struct spop_data *v)
{
	dst[0] = '\0';
	if (v->type == SPOP_DATA_IPV4 && len >= INET_ADDRSTRLEN)
		ipv4_text(dst, v->v.ipv4);
	else if (v->type == SPOP_DATA_IPV4)
		inet_ntop(AF_INET, v->v.ipv4, dst, (socklen_t)len);
	else if (v->type == SPOP_DATA_IPV6)
		inet_ntop(AF_INET6, v->v.ipv6, dst, (socklen_t)len);
	else
		copy_str(dst, len, v);
}

/* Set the route variables of <r> into ACK writer <w>; <override> is the status. */
static void
ack_route(struct spop_writer *w, const struct spoa_req *r, const char *override)
{
	const char *status;

	if (override != NULL)
		status = override;
	else if (r->bad)
		status = "bad";
	else if (r->user[0] == '\0')
		status = "none";
	else
		status = route_status_name(r->rr.status);
	if (override == NULL && r->user[0] != '\0' && r->rr.status == ROUTE_OK) {
		struct spop_data ip;

		if (r->rr.addr.ss_family == AF_INET) {
			const struct sockaddr_in *sin = (const struct sockaddr_in *)&r->rr.addr;

			ip.type = SPOP_DATA_IPV4;
			memcpy(ip.v.ipv4, &sin->sin_addr, 4);
		} else {
			const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&r->rr.addr;

			ip.type = SPOP_DATA_IPV6;
			memcpy(ip.v.ipv6, &sin6->sin6_addr, 16);
		}
		spop_ack_set_var(w, SPOP_SCOPE_TXN, "ip", &ip);
		spop_ack_set_int(w, SPOP_SCOPE_TXN, "port", r->rr.port);
		spop_ack_set_str(w, SPOP_SCOPE_TXN, "server", r->rr.server, strlen(r->rr.server));
		spop_ack_set_str(w, SPOP_SCOPE_TXN, "user", r->rr.account, strlen(r->rr.account));
		if (r->rr.source != ROUTE_SRC_LOCAL && r->vhost != -2 && !r->vhost_soft)
			spop_ack_set_bool(w, SPOP_SCOPE_TXN, "keep", 1);
	} else if (override == NULL && !r->bad && r->user[0] == '\0' && r->vhost != -2 &&
	           !r->vhost_soft) {
		/* no user in the request: the same inputs never name one */
		spop_ack_set_bool(w, SPOP_SCOPE_TXN, "keep", 1);
	}
	if (r->by != HTTPUSER_NONE) {
		const char *by = httpuser_by_name(r->by);

		spop_ack_set_str(w, SPOP_SCOPE_TXN, "by", by, strlen(by));
	}
	if (r->vhost >= 0)
		spop_ack_set_bool(w, SPOP_SCOPE_TXN, "vhost", r->vhost);
	spop_ack_set_str(w, SPOP_SCOPE_TXN, "status", status, strlen(status));
}

/* Set the throttle variables of <r> into <w>. */
static void
ack_login(struct spop_writer *w, const struct spoa_req *r, const char *override)
{
	const char *reason = override ? override : throttle_verdict_name(r->tr.verdict);

	/* On timeout or overload the login is let through (fail open). */
	spop_ack_set_bool(w, SPOP_SCOPE_TXN, "throttled", override ? 0 : r->throttled);
	spop_ack_set_str(w, SPOP_SCOPE_TXN, "reason", reason, strlen(reason));
	/* what the login-result message gives back, so both count one name */
	if (override == NULL && r->acct[0])
		spop_ack_set_str(w, SPOP_SCOPE_TXN, "acct", r->acct, strlen(r->acct));
	if (override == NULL && r->throttled)
		spop_ack_set_int(w, SPOP_SCOPE_TXN, "retry", r->tr.retry_after ? r->tr.retry_after : 1);
}

/*
 * Build the ACK for <r> into <buf> and send it on <c>: <rov> replaces the
 * route's answer ("timeout", "tempfail", "busy") and <override> the
 * login and login-result answers, when set. Returns -1 when <c> is gone.
 */
static int
req_answer(struct spoa_conn *c, struct spoa_req *r, const char *rov, const char *override)
{
	struct spoa *sp = c->sp;
	struct spop_writer w;
	uint8_t buf[ACK_BUF];
	int n;

	spop_ack_begin(&w, buf, sizeof(buf), c->max_frame, r->sid, r->fid);
	if (r->what & REQ_ROUTE)
		ack_route(&w, r, rov);
	if (r->what & REQ_LOGIN)
		ack_login(&w, r, override);
	if (!(r->what & REQ_ROUTE)) {
		/* login-result runs in the response: its own variable, so that
		 * the route status the access log shows stays the request's */
		const char *st = override ? override : "ok";

		spop_ack_set_str(&w, SPOP_SCOPE_TXN, "result", st, strlen(st));
	}
	n = spop_ack_end(&w);
	if (n < 0) {
		/* no action fitted the frame: cannot happen with the sizes HELLO
		 * accepts; never stay silent, never leave <r> on the list */
		log_err(&sp->log, "%s: cannot encode an ACK (max-frame-size %u): closing",
		        c->peer, (unsigned)c->max_frame);
		TAILQ_REMOVE(&c->reqs, r, link);
		c->inflight--;
		spoa_conn_close(c);
		return -1;
	}
	if (r->what & REQ_ROUTE) {
		if (rov == NULL && r->user[0] && r->rr.status == ROUTE_OK)
			spoa_count(sp, SC_ROUTE_OK);
		else if (rov == NULL && r->user[0] == '\0')
			spoa_count(sp, SC_ROUTE_NONE);
		else
			spoa_count(sp, SC_ROUTE_FAIL);
	}
	if ((r->what & REQ_LOGIN) && override == NULL && r->throttled)
		spoa_count(sp, SC_LOGIN_REJECT);
	metrics_hist_observe(&sp->ack_latency,
	                     (uint64_t)((ev_now(sp->loop) - r->start) * 1e6 + 0.5));
	if (log_enabled(&sp->log, LOG_DEBUG))
		log_debug(&sp->log, "%s sid=%llu fid=%llu user=%s by=%s route=%s server=%s%s",
		          c->peer, (unsigned long long)r->sid, (unsigned long long)r->fid,
		          r->user, httpuser_by_name(r->by),
		          rov ? rov : route_status_name(r->rr.status),
		          rov ? "" : r->rr.server,
		          (r->what & REQ_LOGIN) && !override && r->throttled ? " throttled" : "");
	return spoa_conn_answer(c, r, buf, (size_t)n);
}

/*
 * Worker thread: find the name login <r> is throttled under into r->acct:
 * the canonical account of the user the mailbox server will check (Basic
 * credentials first, then the form's user name), else of the name the
 * request is routed on; a name that is no account is counted under itself,
 * exactly like an account, so the throttle tells nobody which names exist.
 * An account id (cookie) that is not known counts against the IP only.
 * Returns JOBQ_SLOW (r->acct untouched) when the form's user name needs
 * LDAP and <aw> may not call it, else JOBQ_DONE.
 */
static enum jobq_next
req_login_subject(struct agent_worker *aw, struct spoa_req *r)
{
	struct route_result lr;
	const char *name = NULL;

	if (r->basic_user[0] && r->by == HTTPUSER_BASIC) {
		name = route_throttle_name(&r->rr);   /* routed on the Basic user */
	} else if (r->basic_user[0] || r->login_user[0]) {
		const char *u = r->basic_user[0] ? r->basic_user : r->login_user;

		if (route_lookup(aw, ROUTE_BY_NAME, u, r->proto, &lr) < 0 &&
		    lr.status == ROUTE_DEFER)
			return JOBQ_SLOW;
		name = route_throttle_name(&lr);
	} else if ((r->what & REQ_ROUTE) && r->user[0] && r->by != HTTPUSER_COOKIE) {
		name = route_throttle_name(&r->rr);
	} else if ((r->what & REQ_ROUTE) && r->rr.status == ROUTE_OK) {
		name = r->rr.account;
	}
	if (name != NULL)
		snprintf(r->acct, sizeof(r->acct), "%s", name);
	return JOBQ_DONE;
}

/*
 * Worker thread: the blocking part of request <arg>. Each step is done
 * once: on the fast lane a step that needs LDAP sends the job to the slow
 * lane (JOBQ_SLOW), where it starts again after the finished steps.
 */
static enum jobq_next
req_work(struct agent_worker *aw, void *arg)
{
	struct spoa_req *r = arg;
	enum route_kind kind = r->by == HTTPUSER_COOKIE ? ROUTE_BY_ID : ROUTE_BY_NAME;
	const char *acct = NULL;

	if ((r->what & REQ_ROUTE) && r->user[0] && !r->route_done) {
		if (route_lookup(aw, kind, r->user, r->proto, &r->rr) < 0 &&
		    r->rr.status == ROUTE_DEFER)
			return JOBQ_SLOW;
		r->route_done = 1;   /* after rr: the deadline may answer it now */
	}
	/* a Host LDAP cannot vouch for now is allowed (counted as tempfail) */
	if (r->vhost == -2 && !r->vhost_done) {
		enum vhost_rc vr = vhost_check(aw, r->host);

		if (vr == VHOST_UNDECIDED)
			return JOBQ_SLOW;
		r->vhost_job = vr != VHOST_REFUSED;
		r->vhost_soft_job = vr == VHOST_TEMPFAIL;
		r->vhost_done = 1;
	}
	if (r->what & (REQ_LOGIN | REQ_LOGIN_RESULT)) {
		/* login-result brings back the name its login counted */
		if (r->acct[0] == '\0' && req_login_subject(aw, r) == JOBQ_SLOW)
			return JOBQ_SLOW;
		acct = r->acct[0] ? r->acct : NULL;
	}
	if ((r->what & REQ_LOGIN) && r->bad)
		r->throttled = 0;      /* refused with 400 by HAProxy, nothing counted */
	else if (r->what & REQ_LOGIN)
		r->throttled = throttle_check(aw, r->ip, acct, &r->tr) == 1;
	if (r->what & REQ_LOGIN_RESULT) {
		if (r->http_status == 401 || r->http_status == 403)
			throttle_record_failure(aw, r->ip, acct);
		else if (r->http_status >= 200 && r->http_status < 400)
			throttle_record_success(aw, r->ip, acct);
	}
	return JOBQ_DONE;
}

/* Loop thread: request <arg> is done. */
static void
req_done(void *arg)
{
	struct spoa_req *r = arg;
	struct spoa *sp = r->sp;

	r->job = NULL;
	ev_timer_stop(sp->loop, &r->deadline);
	/* the deadline path may read vhost while the worker runs: the worker
	 * writes vhost_job, and only the loop copies it */
	if (r->vhost == -2) {
		r->vhost = r->vhost_job;
		r->vhost_soft = r->vhost_soft_job;
	}
	if (r->conn != NULL)
		req_answer(r->conn, r, NULL, NULL);
	req_free(r);
}

static void
req_deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct spoa_req *r = t->data;
	struct spoa *sp = r->sp;
	struct jobq_job *job = r->job;
	const char *rov = "timeout";

	(void)loop;
	(void)revents;
	/* A route already found is answered (what is late is the Host check
	 * or the throttle, which fail open). One still waiting for LDAP is a
	 * temporary failure: sending the user to the IP-hash pool would be
	 * sending them to the wrong server. */
	if (r->route_done)
		rov = NULL;
	else if (jobq_job_slow(job))
		rov = "tempfail";
	spoa_count(sp, SC_DEADLINE);
	log_limited(&sp->log, LOG_INFO, "spoa-deadline",
	            "spoa: %s: lookup for '%s' over the deadline, answering %s",
	            r->conn ? r->conn->peer : "-", r->user,
	            rov ? rov : route_status_name(r->rr.status));
	r->job = NULL;
	if (r->conn != NULL)
		req_answer(r->conn, r, rov, "timeout");   /* unlinks r from its connection */
	r->conn = NULL;
	jobq_cancel(job);                         /* release() frees r */
}

/*
 * Cancel request <r> whose connection is gone: stop its deadline and
 * cancel its job (the release callback frees it), or free it now.
 */
void
spoa_msg_req_cancel(struct spoa_req *r)
{
	ev_timer_stop(r->sp->loop, &r->deadline);
	if (r->job != NULL) {
		struct jobq_job *job = r->job;

		r->job = NULL;
		jobq_cancel(job);
	} else {
		req_free(r);
	}
}

/* The arguments the messages carry (spoe-gatehouse.conf). */
enum arg_id {
	ARG_OTHER, ARG_IP, ARG_HOST, ARG_PATH, ARG_QUERY, ARG_TOKEN, ARG_AUTH, ARG_PROTO,
	ARG_USER, ARG_QUSER, ARG_ACCOUNT, ARG_STATUS
};

/* Tell which argument <name> is: one comparison per argument, not a chain. */
static enum arg_id
arg_id(struct spop_str name)
{
	static const struct {
		const char *s;
		size_t len;
		enum arg_id id;
	} args[] = {
		{ "ip", 2, ARG_IP }, { "host", 4, ARG_HOST }, { "path", 4, ARG_PATH },
		{ "query", 5, ARG_QUERY }, { "token", 5, ARG_TOKEN }, { "auth", 4, ARG_AUTH },
		{ "proto", 5, ARG_PROTO }, { "user", 4, ARG_USER }, { "quser", 5, ARG_QUSER },
		{ "account", 7, ARG_ACCOUNT }, { "status", 6, ARG_STATUS },
	};
	size_t i;

	for (i = 0; i < sizeof(args) / sizeof(args[0]); i++)
		if (name.len == args[i].len && name.ptr[0] == (uint8_t)args[i].s[0] &&
		    memcmp(name.ptr, args[i].s, args[i].len) == 0)
			return args[i].id;
	return ARG_OTHER;
}

/* Point <dst>/<dlen> at string value <v>; other types are ignored. */
static void
take_str(const char **dst, size_t *dlen, const struct spop_data *v)
{
	if (v->type != SPOP_DATA_STR && v->type != SPOP_DATA_BIN)
		return;
	*dst = (const char *)v->v.str.ptr;
	*dlen = v->v.str.len;
}

/*
 * Read the arguments of message <m> (of kind <what>) into <r>; the route
 * message's request parts go to <hr> (pointing into the frame) and its
 * protocol name to <proto>. Arguments of unexpected types are ignored.
 */
static void
read_args(struct spoa_req *r, struct spop_msg *m, unsigned what,
          struct httpuser_req *hr, char *proto, size_t protolen)
{
	struct spop_str name;
	struct spop_data v;
	char quser[HTTPUSER_MAX];

	quser[0] = '\0';
	while (spop_arg_next(m, &name, &v) == 1) {
		enum arg_id id = arg_id(name);

		switch (id) {
		case ARG_IP:
			copy_ip(r->ip, sizeof(r->ip), &v);
			break;
		case ARG_USER:
		case ARG_QUSER:
			/* the web form's field, as the browser encoded it, from
			 * the body (user) and the query string (quser): decoded
			 * here, once, for the login and login-result messages */
			if ((v.type == SPOP_DATA_STR || v.type == SPOP_DATA_BIN) &&
			    httpuser_from_form((const char *)v.v.str.ptr, v.v.str.len,
			                       id == ARG_USER ? r->login_user : quser,
			                       HTTPUSER_MAX) == -2)
				r->bad = 1;
			break;
		case ARG_HOST:
			if (what & REQ_ROUTE)
				copy_str(r->host, sizeof(r->host), &v);
			break;
		case ARG_PATH:
			if (what & REQ_ROUTE)
				take_str(&hr->path, &hr->path_len, &v);
			break;
		case ARG_QUERY:
			if (what & REQ_ROUTE)
				take_str(&hr->query, &hr->query_len, &v);
			break;
		case ARG_TOKEN:
			if (what & REQ_ROUTE)
				take_str(&hr->token, &hr->token_len, &v);
			break;
		case ARG_AUTH:
			if (what & REQ_ROUTE)
				take_str(&hr->auth, &hr->auth_len, &v);
			break;
		case ARG_PROTO:
			if ((what & REQ_ROUTE) && (v.type == SPOP_DATA_STR || v.type == SPOP_DATA_BIN))
				copy_str(proto, protolen, &v);
			break;
		case ARG_ACCOUNT:
			/* the name the login was counted under (txn.gh.acct) */
			if (!(what & REQ_ROUTE))
				copy_str(r->acct, sizeof(r->acct), &v);
			break;
		case ARG_STATUS:
			if (!(what & REQ_ROUTE) && v.type >= SPOP_DATA_INT32 &&
			    v.type <= SPOP_DATA_UINT64 && v.v.u < 1000)
				r->http_status = (int)v.v.u;
			break;
		case ARG_OTHER:
			break;
		}
	}
	/* A servlet reads the query string's username before the body's: a
	 * login naming two users is refused, never counted under the other. */
	if (quser[0] && r->login_user[0] && strcasecmp(quser, r->login_user) != 0)
		r->bad = 1;
	else if (quser[0])
		memcpy(r->login_user, quser, strlen(quser) + 1);
}

/*
 * Handle NOTIFY <f> received on <c>: answer from the cache at once or
 * queue the lookup. Returns 0, -1 when <c> is gone, 1 when <f> is invalid.
 */
int
spoa_msg_notify(struct spoa_conn *c, const struct spop_frame *f)
{
	struct spoa *sp = c->sp;
	struct gen *g;
	struct spoa_req *r;
	struct spop_iter it;
	struct spop_msg m;
	struct httpuser_req hr;
	char proto[16] = "";
	int rc;

	r = req_new();
	if (r == NULL)
		return 1;
	r->sp = sp;
	r->conn = c;
	r->gen = g = gen_get(&sp->gens);
	r->sid = f->stream_id;
	r->fid = f->frame_id;
	r->vhost = -1;
	r->proto = PROTO_HTTP;
	r->start = ev_now(sp->loop);
	memset(&hr, 0, sizeof(hr));
	spop_notify_begin(f, &it);
	while ((rc = spop_msg_next(&it, &m)) == 1) {
		unsigned what;

		if (spop_str_eq(m.name, "route"))
			what = REQ_ROUTE;
		else if (spop_str_eq(m.name, "login"))
			what = REQ_ROUTE | REQ_LOGIN;
		else if (spop_str_eq(m.name, "login-result"))
			what = REQ_LOGIN_RESULT;
		else
			continue;   /* unknown messages are not an error */
		r->what |= what;
		read_args(r, &m, what, &hr, proto, sizeof(proto));
	}
	if (rc < 0) {
		req_free(r);
		return 1;   /* invalid frame: the caller disconnects */
	}
	if ((r->what & REQ_ROUTE) && proto[0] && cfg_proto_parse(proto, &r->proto) < 0)
		r->proto = PROTO_HTTP;
	if (r->what & REQ_ROUTE) {
		r->by = httpuser_find(&hr, r->user, sizeof(r->user));
		/* Basic credentials are checked by the mailbox server whatever
		 * the request is routed on: the login counts under their user */
		if (r->by == HTTPUSER_BASIC)
			memcpy(r->basic_user, r->user, strlen(r->user) + 1);
		else if (httpuser_from_basic(hr.auth, hr.auth_len, r->basic_user,
		                             sizeof(r->basic_user)) == -2)
			r->bad = 1;
		/* ... and a request naming two users is refused */
		if (r->basic_user[0] && r->login_user[0] &&
		    strcasecmp(r->basic_user, r->login_user) != 0)
			r->bad = 1;
		if (r->by == HTTPUSER_BAD || r->bad) {
			/* a bad request gets 400 from HAProxy: nothing to look up */
			r->bad = 1;
			log_limited(&sp->log, LOG_WARNING, "bad-credentials",
			            "spoa: %s: malformed credentials in a request "
			            "(Basic or form user name): answering bad (400)", c->peer);
		}
		if (g->cfg->spoa.strict_hosts) {
			enum vhost_rc vr = vhost_cached(&g->ag, r->host);

			/* -2: a worker asks LDAP */
			r->vhost = vr == VHOST_UNDECIDED ? -2 : vr != VHOST_REFUSED;
		}
		if (r->user[0]) {
			enum route_kind kind = r->by == HTTPUSER_COOKIE ? ROUTE_BY_ID : ROUTE_BY_NAME;

			r->route_done = route_cached(&g->ag, kind, r->user, r->proto, &r->rr) == 1;
		} else {
			r->route_done = 1;
		}
	}
	/* Answer at once when nothing blocking is needed. */
	if (!(r->what & (REQ_LOGIN | REQ_LOGIN_RESULT)) &&
	    (!(r->what & REQ_ROUTE) || (r->route_done && r->vhost != -2))) {
		TAILQ_INSERT_TAIL(&c->reqs, r, link);
		c->inflight++;
		rc = req_answer(c, r, NULL, NULL);
		req_free(r);
		return rc < 0 ? -1 : 0;
	}
	TAILQ_INSERT_TAIL(&c->reqs, r, link);
	c->inflight++;
	r->job = jobq_submit(g->port, req_work, req_done, req_release, r);
	if (r->job == NULL) {
		spoa_count(sp, SC_BUSY);
		rc = req_answer(c, r, "busy", "busy");
		req_free(r);
		return rc < 0 ? -1 : 0;
	}
	ev_timer_init(&r->deadline, req_deadline_cb, g->cfg->spoa.deadline_ms / 1000.0, 0.);
	r->deadline.data = r;
	if (g->cfg->spoa.deadline_ms > 0)
		ev_timer_start(sp->loop, &r->deadline);
	return 0;
}
