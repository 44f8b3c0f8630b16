/*
 * Kerberos logins (SASL GSSAPI) of a session: each step of the mechanism
 * runs as a job on the job queue's own lane, threads no lookup uses (the
 * Kerberos library reads the keytab and writes its replay cache, both may
 * block), the challenges go back to
 * the client through the protocol, and once the client is authenticated
 * its principal is mapped to an account and the login continues exactly
 * like a password login (throttle, route), then logs in to the mailbox
 * server as the configured master user on the user's behalf (SASL PLAIN,
 * authzid = the account). The master secret is read from its file at each
 * such login (rotation needs no reload), never logged, wiped after use,
 * and never sent to a mailbox server without TLS unless the operator
 * allowed it for loopback servers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <netinet/in.h>

#include "gssapi.h"
#include "kerberos.h"
#include "mp.h"
#include "name.h"
#include "secret.h"

/* One step of the mechanism, run on a worker. */
struct krb_job {
	struct session *s;
	kerberos_done_fn done;
	struct gssapi *g;                       /* the conversation, owned while the job runs */
	const struct cfg_mailproxy *mc;         /* the session's generation outlives its jobs */
	const char *domain;                     /* [ldap] default_domain */
	unsigned char in[GSSAPI_TOKEN_MAX];
	size_t inlen;
	unsigned char out[GSSAPI_OUT_MAX];
	size_t outlen;
	enum gssapi_rc rc;
	char why[320];                          /* failure reason, no secret */
	char principal[GSSAPI_NAME_MAX + 1];
	char name[SASL_NAME_MAX + 1];           /* the account name mapped from the principal */
	char secret[SASL_PASS_MAX + 1];         /* the master secret, read on the worker */
	size_t secretlen;
};

static void kerberos_free(struct login *lg);
static enum phase kerberos_refuse(struct session *s);

/* Tell whether Kerberos logins are configured for the sessions of <s>'s generation. */
int
kerberos_enabled(const struct session *s)
{
	return s->gen->cfg->mailproxy.gssapi_keytab[0] != '\0';
}

/*
 * Check the authorization identity <authzid> the client of a GSSAPI login
 * asked for: none, its <principal>, or its own mapped <name> in any form
 * (both completed with <domain> as a login name is). Logging in as someone
 * else would need a rule of who may; there is none.
 */
static int
authzid_ok(const char *authzid, const char *name, const char *principal, const char *domain)
{
	char a[ROUTE_NAME_MAX], n[ROUTE_NAME_MAX];

	if (authzid[0] == '\0' || strcmp(authzid, principal) == 0 ||
	    strcasecmp(authzid, name) == 0)
		return 1;
	return name_normalise(a, sizeof(a), authzid, domain) > 0 &&
	       name_normalise(n, sizeof(n), name, domain) > 0 && strcmp(a, n) == 0;
}

/* Worker: one mechanism step; once authenticated, map the name and read the secret. */
static enum jobq_next
krb_work(struct agent_worker *w, void *arg)
{
	struct krb_job *kj = arg;
	const char *why = NULL;
	ssize_t n;

	/* file and replay cache I/O may hang: on threads of its own, where
	 * a stuck keytab holds neither the lookups nor the cache answers */
	if (w->cache_only)
		return JOBQ_OWN;
	kj->rc = gssapi_step(kj->g, kj->in, kj->inlen, kj->out, sizeof(kj->out), &kj->outlen);
	explicit_bzero(kj->in, kj->inlen);
	if (kj->rc == GSSAPI_FAIL || kj->rc == GSSAPI_TEMPFAIL)
		snprintf(kj->why, sizeof(kj->why), "%s", gssapi_error(kj->g));
	if (kj->rc != GSSAPI_DONE)
		return JOBQ_DONE;
	snprintf(kj->principal, sizeof(kj->principal), "%s", gssapi_principal(kj->g));
	if (gssapi_parse_principal(kj->principal, kj->mc->gssapi_realm, &kj->mc->gssapi_realms,
	                           kj->name, sizeof(kj->name), &why) < 0) {
		kj->rc = GSSAPI_FAIL;
		snprintf(kj->why, sizeof(kj->why), "principal %s: %s", kj->principal, why);
		return JOBQ_DONE;
	}
	if (!authzid_ok(gssapi_authzid(kj->g), kj->name, kj->principal, kj->domain)) {
		kj->rc = GSSAPI_FAIL;
		snprintf(kj->why, sizeof(kj->why), "principal %s may not log in as another user",
		         kj->principal);
		return JOBQ_DONE;
	}
	n = secret_read(kj->mc->master_password_file, kj->secret, sizeof(kj->secret), kj->why,
	                sizeof(kj->why));
	if (n < 0) {
		kj->rc = GSSAPI_TEMPFAIL;
		return JOBQ_DONE;
	}
	kj->secretlen = (size_t)n;
	return JOBQ_DONE;
}

/* Wipe and free <kj> (it may hold the master secret) and the conversation it owns. */
static void
krb_job_free(struct krb_job *kj)
{
	gssapi_free(kj->g);
	explicit_bzero(kj, sizeof(*kj));
	free(kj);
}

static void
krb_release(void *arg)
{
	krb_job_free(arg);
}

/* A worker finished step <arg>: the conversation goes back to the login, the session hears. */
static void
krb_done(void *arg)
{
	struct krb_job *kj = arg;
	struct login *lg = kj->s->login;

	lg->job = NULL;
	lg->gss = kj->g;
	kj->g = NULL;
	kj->done(kj->s, kj);
}

/*
 * Start the GSSAPI login of <s> (its login state made by the protocol)
 * with the client's initial response <ir>/<irlen> (NULL, or "=" for an
 * empty one: "+ " asks for the first token). Returns PH_MORE (the client
 * answers; or closed when out of memory), or what kerberos_step() says.
 */
enum phase
kerberos_start(struct session *s, const char *ir, size_t irlen)
{
	const struct cfg_mailproxy *mc = &s->gen->cfg->mailproxy;

	s->login->mech = LOGIN_GSSAPI;
	s->login->mech_free = kerberos_free;
	s->login->gss = gssapi_new(mc->gssapi_keytab, mc->gssapi_hostname,
	                           s->proto == MP_IMAP ? "imap" : "pop");
	if (s->login->gss == NULL) {
		session_close(s, "out of memory");
		return PH_MORE;
	}
	if (ir == NULL || (irlen == 1 && ir[0] == '=')) {
		session_send(s, "+ \r\n", 4);
		if (!s->dead)
			session_ops(s)->sasl_expect(s);
		return PH_MORE;
	}
	return kerberos_step(s, ir, irlen);
}

/*
 * Take the client's base64 response <b64>/<len> for the GSSAPI login of
 * <s>: decoded, it waits in the login for kerberos_run(). Returns PH_SASL,
 * PH_FAIL_LATER for a response that is no base64 or too long (answered as
 * a failed login), or PH_TEMPFAIL when out of memory.
 */
enum phase
kerberos_step(struct session *s, const char *b64, size_t len)
{
	struct krb_job *kj;
	ssize_t n;

	kj = calloc(1, sizeof(*kj));
	if (kj == NULL)
		return PH_TEMPFAIL;
	n = sasl_b64_decode(b64, len, kj->in, sizeof(kj->in));
	if (n < 0) {
		session_log_limited(s, LOG_INFO, "gssapi-token", "GSSAPI: response %s (%zu octets)",
		                    len > (sizeof(kj->in) + 2) / 3 * 4 ? "too long" : "not base64",
		                    len);
		free(kj);
		return kerberos_refuse(s);
	}
	kj->inlen = (size_t)n;
	kj->s = s;
	kj->mc = &s->gen->cfg->mailproxy;
	kj->domain = s->gen->cfg->ldap.default_domain;
	s->login->pending = kj;
	return PH_SASL;
}

/*
 * Run the step waiting in the GSSAPI login of <s> on a worker; its end
 * goes to <done>. Returns PH_MORE while it runs, PH_TEMPFAIL when the
 * queue is full (<why>).
 */
enum phase
kerberos_run(struct session *s, kerberos_done_fn done, const char **why)
{
	struct login *lg = s->login;
	struct krb_job *kj = lg->pending;

	lg->pending = NULL;
	if (kj == NULL) {
		*why = "no GSSAPI response waiting";
		return PH_TEMPFAIL;
	}
	kj->done = done;
	kj->g = lg->gss;
	lg->gss = NULL;
	lg->job = jobq_submit(s->gen->port, krb_work, krb_done, krb_release, kj);
	if (lg->job == NULL) {
		lg->gss = kj->g;
		kj->g = NULL;
		krb_job_free(kj);
		session_log_limited(s, LOG_WARNING, "job-queue-full", "job queue full");
		*why = "busy";
		return PH_TEMPFAIL;
	}
	return PH_MORE;
}

/* Free the GSSAPI state of login <lg>: a step waiting to run, the conversation. */
static void
kerberos_free(struct login *lg)
{
	if (lg->pending != NULL)
		krb_job_free(lg->pending);
	lg->pending = NULL;
	gssapi_free(lg->gss);
	lg->gss = NULL;
}

/*
 * Return the SASL response line limit the IMAP parser of <s> needs (0:
 * its default): with Kerberos, long enough for a 12 KiB ticket (Active
 * Directory tickets carry a PAC that grows with the user's groups).
 */
size_t
kerberos_sasl_max(const struct session *s)
{
	return kerberos_enabled(s) ? (GSSAPI_TOKEN_MAX + 2) / 3 * 4 + 2 : 0;
}

/*
 * Refuse the GSSAPI login of <s>: the failure is recorded against the
 * client's address (a bad ticket names nobody) and answered as a wrong
 * password is, after the failure delay. Returns PH_FAIL_LATER.
 */
static enum phase
kerberos_refuse(struct session *s)
{
	struct login *lg = s->login;

	lg->refusal = "gssapi-refused";
	login_record_failure(s, NULL);
	gssapi_free(lg->gss);
	lg->gss = NULL;
	return PH_FAIL_LATER;
}

/*
 * Act on the finished step <job> of the GSSAPI login of <s>, and free it.
 * Returns PH_MORE (a challenge was sent, the client answers), PH_LOGIN (the
 * client is authenticated: s->login holds the master login on its
 * behalf), PH_FAIL_LATER (refused) or PH_TEMPFAIL (<why>).
 */
enum phase
kerberos_end(struct session *s, void *job, const char **why)
{
	struct krb_job *kj = job;
	struct login *lg = s->login;
	const struct cfg_mailproxy *mc = &s->gen->cfg->mailproxy;
	char b64[(GSSAPI_OUT_MAX + 2) / 3 * 4 + 1];
	enum phase rc = PH_MORE;
	ssize_t n;

	switch (kj->rc) {
	case GSSAPI_CONTINUE:
		n = sasl_b64_encode(kj->out, kj->outlen, b64, sizeof(b64));
		if (n < 0) {
			*why = "challenge too long";
			rc = PH_TEMPFAIL;
			break;
		}
		session_send(s, "+ ", 2);
		session_send(s, b64, (size_t)n);
		session_send(s, "\r\n", 2);
		if (!s->dead)
			session_ops(s)->sasl_expect(s);
		break;
	case GSSAPI_DONE:
		session_log(s, LOG_INFO, "GSSAPI: %s authenticated as %s", kj->principal, kj->name);
		gssapi_free(lg->gss);
		lg->gss = NULL;
		memset(&lg->cred, 0, sizeof(lg->cred));
		lg->cred.authzid_len = strlen(kj->name);
		memcpy(lg->cred.authzid, kj->name, lg->cred.authzid_len + 1);
		lg->cred.authcid_len = strlen(mc->master_user);
		if (lg->cred.authcid_len > SASL_NAME_MAX) {
			*why = "master_user too long";
			rc = PH_TEMPFAIL;
			break;
		}
		memcpy(lg->cred.authcid, mc->master_user, lg->cred.authcid_len + 1);
		memcpy(lg->cred.password, kj->secret, kj->secretlen + 1);
		lg->cred.password_len = kj->secretlen;
		rc = PH_LOGIN;
		break;
	case GSSAPI_FAIL:
		session_log_limited(s, LOG_NOTICE, "gssapi-refused", "GSSAPI login refused: %s",
		                    kj->why[0] ? kj->why : "authentication failed");
		/* a mapped user asking to be another is no password guess
		 * either: the address pays, never an account */
		rc = kerberos_refuse(s);
		break;
	default:
		session_log_limited(s, LOG_WARNING, "gssapi-tempfail", "GSSAPI login failed: %s",
		                    kj->why[0] ? kj->why : "Kerberos unavailable");
		*why = "Kerberos unavailable";
		rc = PH_TEMPFAIL;
		break;
	}
	explicit_bzero(b64, sizeof(b64));
	krb_job_free(kj);
	return rc;
}

/* Tell whether <sa> is a loopback address (127.0.0.0/8, ::1). */
static int
is_loopback(const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return 0;
}

/*
 * Tell whether the master login of <s> may be sent to its routed mailbox
 * server: over TLS, or to a loopback address when the operator allowed it.
 */
int
kerberos_upstream_ok(const struct session *s)
{
	const struct cfg_mailproxy *mc = &s->gen->cfg->mailproxy;

	if (mc->upstream_tls)
		return 1;
	return mc->master_cleartext_loopback && is_loopback(&s->login->route.addr);
}

/*
 * Give the job queue of generation <g> the threads of the Kerberos steps
 * when its configuration has Kerberos logins. Returns 0, or -1 with the
 * reason in <err> (<errlen> octets).
 */
int
kerberos_threads_start(struct gen *g, char *err, size_t errlen)
{
	const struct cfg_mailproxy *mc = &g->cfg->mailproxy;

	if (mc->gssapi_keytab[0] == '\0')
		return 0;
	if (jobq_own_start(g->q, mc->gssapi_threads == 0 ? 1 : mc->gssapi_threads) < 0) {
		snprintf(err, errlen, "cannot start the Kerberos threads");
		return -1;
	}
	return 0;
}

/*
 * Check the Kerberos settings of [mailproxy] in <cfg> before they are
 * used: a keytab needs a realm, a master user and its secret file (both
 * readable now), and the master login needs TLS to the mailbox servers
 * unless every server is on loopback and master_cleartext_loopback allows
 * it. Returns 0, or -1 with the reason in <err> (<errlen> octets).
 */
int
kerberos_check(const struct gh_config *cfg, char *err, size_t errlen)
{
	const struct cfg_mailproxy *mc = &cfg->mailproxy;
	char secret[SASL_PASS_MAX + 1], why[320];
	int i;

	if (mc->gssapi_keytab[0] == '\0')
		return 0;
	if ((mc->gssapi_realm[0] == '\0' && mc->gssapi_realms.n == 0) ||
	    mc->master_user[0] == '\0' || mc->master_password_file[0] == '\0') {
		snprintf(err, errlen, "%s: [mailproxy] gssapi_keytab needs gssapi_realm (or "
		         "gssapi_realms), master_user and master_password_file", cfg->path);
		return -1;
	}
	if (strlen(mc->master_user) > SASL_NAME_MAX || strchr(mc->master_user, ' ') != NULL) {
		snprintf(err, errlen, "%s: [mailproxy] master_user unusable", cfg->path);
		return -1;
	}
	for (i = 0; i < mc->gssapi_realms.n; i++) {
		const char *e = mc->gssapi_realms.item[i];
		const char *eq = strchr(e, '=');

		if (eq == NULL || eq == e || eq[1] == '\0' || strchr(eq + 1, '=') != NULL ||
		    strchr(eq + 1, '@') != NULL) {
			snprintf(err, errlen, "%s: [mailproxy] gssapi_realms: \"%s\" is not REALM=domain",
			         cfg->path, e);
			return -1;
		}
	}
	if (access(mc->gssapi_keytab, R_OK) < 0) {
		snprintf(err, errlen, "%s: [mailproxy] gssapi_keytab %s: %s", cfg->path,
		         mc->gssapi_keytab, strerror(errno));
		return -1;
	}
	if (secret_read(mc->master_password_file, secret, sizeof(secret), why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: [mailproxy] master_password_file: %s", cfg->path, why);
		return -1;
	}
	explicit_bzero(secret, sizeof(secret));
	if (mc->upstream_tls)
		return 0;
	if (!mc->master_cleartext_loopback) {
		snprintf(err, errlen, "%s: [mailproxy] Kerberos logins send the master credential to "
		         "the mailbox servers: set upstream_tls = yes (or master_cleartext_loopback = "
		         "yes when every server is on loopback)", cfg->path);
		return -1;
	}
	for (i = 0; i < cfg->nservers; i++) {
		const struct cfg_server *sv = &cfg->servers[i];

		if (!is_loopback(&sv->addr)) {
			snprintf(err, errlen, "%s: [mailproxy] master_cleartext_loopback: server %s "
			         "(%s) is not on loopback; the master credential needs upstream_tls",
			         cfg->path, sv->name, sv->address);
			return -1;
		}
	}
	return 0;
}
