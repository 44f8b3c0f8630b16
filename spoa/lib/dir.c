/*
 * LDAP account directory. Synchronous libldap calls bounded by
 * LDAP_OPT_NETWORK_TIMEOUT (connect) and LDAP_OPT_TIMEOUT plus a search
 * time limit (operations); every value put in a filter is escaped. A
 * connection is rebuilt after the server went away (libldap never
 * reconnects an established session by itself). Failing fast during an
 * outage is the caller's (the agent's LDAP breaker), for every handle at
 * once: a hold-off per handle would keep failing on a handle after
 * another one found the server back.
 */
#include <errno.h>
#include <ldap.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dir.h"
#include "filter.h"

/* One LDAP connection and its state. */
struct dir {
	const struct cfg_ldap *cfg;
	const struct logger *log;
	LDAP *ld;                     /* NULL when not connected */
	char err[256];
};

/* Keep a description of the last failure (truncated when long). */
static void __attribute__((format(printf, 2, 3)))
dir_set_err(struct dir *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
}

/* Block SIGPIPE in this thread, saving the old mask in <old>. */
static void
dir_sigpipe_block(sigset_t *old)
{
	sigset_t block;

	sigemptyset(&block);
	sigaddset(&block, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &block, old);
}

/* Discard a SIGPIPE raised while blocked, then restore mask <old>. */
static void
dir_sigpipe_restore(const sigset_t *old)
{
	struct timespec zero = { 0, 0 };
	sigset_t block;
	int i;

	sigemptyset(&block);
	sigaddset(&block, SIGPIPE);
	if (!sigismember(old, SIGPIPE))
		for (i = 0; i < 4 && sigtimedwait(&block, NULL, &zero) > 0; i++)
			;
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/*
 * Initialise libldap's globals while single-threaded. Returns 0 or -1.
 */
int
dir_lib_init(void)
{
	int v = 0;

	return ldap_get_option(NULL, LDAP_OPT_PROTOCOL_VERSION, &v) == LDAP_OPT_SUCCESS ? 0 : -1;
}

/*
 * Create a handle for <cfg> logging through <lg>. Returns it, or NULL.
 */
struct dir *
dir_new(const struct cfg_ldap *cfg, const struct logger *lg)
{
	struct dir *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->cfg = cfg;
	d->log = lg;
	dir_set_err(d, "no error");
	return d;
}

/* Drop the connection of <d>, if any. */
static void
dir_close(struct dir *d)
{
	if (d->ld != NULL) {
		ldap_unbind_ext_s(d->ld, NULL, NULL);
		d->ld = NULL;
	}
}

/* Close and free <d>. */
void
dir_free(struct dir *d)
{
	sigset_t old;

	if (d == NULL)
		return;
	/* unbinding writes to a socket that may be dead */
	dir_sigpipe_block(&old);
	dir_close(d);
	dir_sigpipe_restore(&old);
	free(d);
}

/* Tell whether <rc> means the connection is unusable. */
static int
dir_conn_lost(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT;
}

/* Tell whether <rc> is a transient server-side condition. */
static int
dir_transient(int rc)
{
	return rc == LDAP_BUSY || rc == LDAP_UNAVAILABLE || rc == LDAP_TIMELIMIT_EXCEEDED ||
	       rc == LDAP_ADMINLIMIT_EXCEEDED || rc == LDAP_OTHER || rc == LDAP_UNWILLING_TO_PERFORM;
}

/*
 * Open and bind a connection to <uri>, each step bounded by <timeout_ms>.
 * Returns LDAP_SUCCESS with d->ld set, or an LDAP error code (d->ld is
 * then NULL, the reason in d->err).
 */
static int
dir_connect_one(struct dir *d, const char *uri, uint32_t timeout_ms)
{
	const struct cfg_ldap *c = d->cfg;
	struct timeval tv;
	struct berval cred;
	int rc, v;

	rc = ldap_initialize(&d->ld, uri);
	if (rc != LDAP_SUCCESS) {
		dir_set_err(d, "ldap_initialize(%s): %s", uri, ldap_err2string(rc));
		d->ld = NULL;
		return rc;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000;
	v = LDAP_VERSION3;
	if (ldap_set_option(d->ld, LDAP_OPT_PROTOCOL_VERSION, &v) != LDAP_OPT_SUCCESS ||
	    ldap_set_option(d->ld, LDAP_OPT_NETWORK_TIMEOUT, &tv) != LDAP_OPT_SUCCESS ||
	    ldap_set_option(d->ld, LDAP_OPT_TIMEOUT, &tv) != LDAP_OPT_SUCCESS ||
	    ldap_set_option(d->ld, LDAP_OPT_RESTART, LDAP_OPT_ON) != LDAP_OPT_SUCCESS ||
	    ldap_set_option(d->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS) {
		dir_set_err(d, "cannot set LDAP options");
		dir_close(d);
		return LDAP_LOCAL_ERROR;
	}
	/* a simple bind (anonymous without bind_dn) also opens the connection */
	cred.bv_val = c->bind_dn[0] ? (char *)(uintptr_t)c->bind_password : (char *)(uintptr_t)"";
	cred.bv_len = strlen(cred.bv_val);
	rc = ldap_sasl_bind_s(d->ld, c->bind_dn[0] ? c->bind_dn : "", LDAP_SASL_SIMPLE, &cred,
	                      NULL, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		dir_set_err(d, "bind to %s as '%s': %s", uri,
		            c->bind_dn[0] ? c->bind_dn : "(anonymous)", ldap_err2string(rc));
		dir_close(d);
		return rc;
	}
	return LDAP_SUCCESS;
}

/*
 * Connect and bind, trying the URIs in order. Each URI gets its own
 * handle: libldap's own list only moves on when connect() fails, not when
 * a server accepts and then never answers (the bind times out instead).
 * Returns LDAP_SUCCESS or the error of the last attempt.
 */
static int
dir_connect(struct dir *d)
{
	const struct cfg_ldap *c = d->cfg;
	int i, rc = LDAP_SERVER_DOWN;

	dir_close(d);
	for (i = 0; i < c->uri.n; i++) {
		rc = dir_connect_one(d, c->uri.item[i], c->timeout_ms);
		if (rc == LDAP_SUCCESS)
			return rc;
		/* a refused bind is the same everywhere: do not hammer every server */
		if (rc == LDAP_INVALID_CREDENTIALS || rc == LDAP_INAPPROPRIATE_AUTH)
			break;
		log_debug(d->log, "%s", d->err);
	}
	return rc;
}

/*
 * Connect and bind to <uri> with <cfg> as a lookup would; see dir.h.
 */
int
dir_probe(const struct cfg_ldap *cfg, const char *uri, uint32_t timeout_ms, char *err,
          size_t errlen)
{
	struct dir d = { .cfg = cfg };
	sigset_t old;
	int rc;

	if (timeout_ms == 0 || timeout_ms > cfg->timeout_ms)
		timeout_ms = cfg->timeout_ms;
	dir_sigpipe_block(&old);
	rc = dir_connect_one(&d, uri, timeout_ms);
	dir_close(&d);
	dir_sigpipe_restore(&old);
	snprintf(err, errlen, "%s", rc == LDAP_SUCCESS ? "" : d.err);
	return rc == LDAP_SUCCESS ? 0 : -1;
}

/* Copy the first value of <attr> of <e> into <out> (<len> bytes); "" when absent. */
static int
dir_get_attr(LDAP *ld, LDAPMessage *e, const char *attr, char *out, size_t len, int lower)
{
	struct berval **vals = ldap_get_values_len(ld, e, attr);
	size_t i, n;

	out[0] = '\0';
	if (vals == NULL || vals[0] == NULL) {
		ldap_value_free_len(vals);
		return 0;
	}
	n = vals[0]->bv_len;
	if (n >= len) {
		ldap_value_free_len(vals);
		return -1;
	}
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)vals[0]->bv_val[i];

		if (ch < 0x20 || ch == 0x7f) {   /* would corrupt cache values and logs */
			ldap_value_free_len(vals);
			out[0] = '\0';
			return -1;
		}
		out[i] = (char)((lower && ch >= 'A' && ch <= 'Z') ? ch + ('a' - 'A') : ch);
	}
	out[n] = '\0';
	ldap_value_free_len(vals);
	return 0;
}

/* Where dir_search() hands the alias values of the entry it found. */
struct dir_alias_cb {
	dir_alias_fn fn;
	void *arg;
};

/*
 * Call <cb> with every usable value of the name attribute (it may hold
 * more than the canonical name) and of the alias attributes of <e>.
 */
static void
dir_each_alias(struct dir *d, LDAPMessage *e, const struct dir_alias_cb *cb)
{
	const struct cfg_ldap *c = d->cfg;
	char v[DIR_VAL_MAX];
	int i;

	for (i = -1; i < c->alias_attrs.n; i++) {
		const char *attr = i < 0 ? c->name_attr : c->alias_attrs.item[i];
		struct berval **vals = ldap_get_values_len(d->ld, e, attr);
		size_t j, k;

		for (j = 0; vals != NULL && vals[j] != NULL; j++) {
			size_t n = vals[j]->bv_len;

			/* too long to be a name, or binary: no cache key can exist for it */
			if (n == 0 || n >= sizeof(v))
				continue;
			for (k = 0; k < n; k++) {
				unsigned char ch = (unsigned char)vals[j]->bv_val[k];

				if (ch < 0x20 || ch == 0x7f)
					break;
				v[k] = (char)ch;
			}
			if (k < n)
				continue;
			v[n] = '\0';
			cb->fn(v, cb->arg);
		}
		ldap_value_free_len(vals);
	}
}

/*
 * Run the search once. Returns an LDAP code, or DIR_* via <drc> for
 * results; <cb> (or NULL) gets the aliases of the entry found.
 */
static int
dir_search(struct dir *d, enum dir_by by, const char *filter, const char *key,
           enum dir_rc *drc, struct dir_entry *out, const struct dir_alias_cb *cb)
{
	const struct cfg_ldap *c = d->cfg;
	char *attrs[4 + CFG_MAX_LISTS];
	LDAPMessage *res = NULL, *e;
	struct timeval tv;
	int rc, n, i, na;

	if (by == DIR_BY_VHOST) {
		/* existence only: no attributes ("1.1"), one entry is enough */
		attrs[0] = (char *)(uintptr_t)LDAP_NO_ATTRS;
		attrs[1] = NULL;
	} else {
		attrs[0] = (char *)(uintptr_t)c->name_attr;
		attrs[1] = (char *)(uintptr_t)c->host_attr;
		attrs[2] = (char *)(uintptr_t)c->id_attr;
		na = 3;
		for (i = 0; cb != NULL && i < c->alias_attrs.n && i < CFG_MAX_LISTS; i++)
			attrs[na++] = (char *)(uintptr_t)c->alias_attrs.item[i];
		attrs[na] = NULL;
	}
	tv.tv_sec = c->timeout_ms / 1000;
	tv.tv_usec = (suseconds_t)(c->timeout_ms % 1000) * 1000;
	if (tv.tv_sec == 0 && tv.tv_usec == 0)
		tv.tv_usec = 1000;
	rc = ldap_search_ext_s(d->ld, c->base, LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL, NULL,
	                       &tv, by == DIR_BY_VHOST ? 1 : 2, &res);
	if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
		ldap_msgfree(res);
		dir_set_err(d, "search %s in %s: %s", filter, c->base,
		         ldap_err2string(rc));
		return rc;
	}
	n = ldap_count_entries(d->ld, res);
	if (by == DIR_BY_VHOST) {
		*drc = (rc == LDAP_SIZELIMIT_EXCEEDED || n >= 1) ? DIR_OK : DIR_UNKNOWN;
	} else if (rc == LDAP_SIZELIMIT_EXCEEDED || n >= 2) {
		log_limited(d->log, LOG_ERR, "ldap-bad-entry",
		            "ldap: several entries match '%s' (%s): refusing to choose", key, filter);
		dir_set_err(d, "several entries for '%s'", key);
		*drc = DIR_UNUSABLE;
	} else if (n <= 0) {
		*drc = DIR_UNKNOWN;
	} else {
		e = ldap_first_entry(d->ld, res);
		if (dir_get_attr(d->ld, e, c->name_attr, out->name, sizeof(out->name), 1) < 0 ||
		    dir_get_attr(d->ld, e, c->host_attr, out->host, sizeof(out->host), 0) < 0 ||
		    dir_get_attr(d->ld, e, c->id_attr, out->id, sizeof(out->id), 0) < 0) {
			char *dn = ldap_get_dn(d->ld, e);

			log_limited(d->log, LOG_ERR, "ldap-bad-entry",
			            "ldap: entry %s for '%s' has an over-long or binary %s/%s/%s value",
			            dn ? dn : "?", key, c->name_attr, c->host_attr, c->id_attr);
			ldap_memfree(dn);
			dir_set_err(d, "bad entry for '%s'", key);
			*drc = DIR_UNUSABLE;
		} else {
			*drc = DIR_OK;
			if (cb != NULL)
				dir_each_alias(d, e, cb);
		}
	}
	ldap_msgfree(res);
	return LDAP_SUCCESS;
}

/* Do the lookup with SIGPIPE already blocked; <cb> as dir_search(). */
static enum dir_rc
dir_lookup_locked(struct dir *d, enum dir_by by, const char *key, struct dir_entry *out,
                  const struct dir_alias_cb *cb)
{
	char filter[FILTER_MAX];
	const char *tmpl = by == DIR_BY_ID ? d->cfg->id_filter
	                 : by == DIR_BY_VHOST ? d->cfg->vhost_filter : d->cfg->account_filter;
	enum dir_rc drc = DIR_ERROR;
	int rc, attempt;

	if (tmpl[0] == '\0') {
		dir_set_err(d, "no filter configured for this lookup");
		return DIR_ERROR;
	}
	if (filter_build(filter, sizeof(filter), tmpl, key, strlen(key)) < 0) {
		dir_set_err(d, "filter too long for '%s'", key);
		return DIR_ERROR;
	}
	for (attempt = 0; attempt < 2; attempt++) {
		if (d->ld == NULL) {
			rc = dir_connect(d);
			if (rc != LDAP_SUCCESS) {
				log_debug(d->log, "%s", d->err);
				return DIR_TEMPFAIL;
			}
			attempt++;       /* a fresh connection gets no second try */
		}
		rc = dir_search(d, by, filter, key, &drc, out, cb);
		if (rc == LDAP_SUCCESS)
			return drc;
		log_debug(d->log, "%s", d->err);
		if (dir_conn_lost(rc)) {
			dir_close(d);
			continue;
		}
		if (dir_transient(rc))
			return DIR_TEMPFAIL;
		log_limited(d->log, LOG_ERR, "ldap-error", "ldap: %s", d->err);
		return DIR_ERROR;
	}
	return DIR_TEMPFAIL;
}

/*
 * Find the entry for <key> by <by> and fill <out>. Returns DIR_OK,
 * DIR_UNKNOWN, DIR_TEMPFAIL or DIR_ERROR.
 */
enum dir_rc
dir_lookup(struct dir *d, enum dir_by by, const char *key, struct dir_entry *out)
{
	sigset_t old;
	enum dir_rc rc;

	memset(out, 0, sizeof(*out));
	if (d == NULL || key == NULL || d->cfg->uri.n == 0)
		return DIR_ERROR;
	/* liblber writes with write(2): a dead peer must not kill the process */
	dir_sigpipe_block(&old);
	rc = dir_lookup_locked(d, by, key, out, NULL);
	dir_sigpipe_restore(&old);
	return rc;
}

/*
 * Find the entry for name <key> and fill <out> as dir_lookup() does, and
 * hand every alias of it to <fn> with <arg>. Returns a dir_rc.
 */
enum dir_rc
dir_lookup_aliases(struct dir *d, const char *key, struct dir_entry *out, dir_alias_fn fn,
                   void *arg)
{
	struct dir_alias_cb cb = { fn, arg };
	sigset_t old;
	enum dir_rc rc;

	memset(out, 0, sizeof(*out));
	if (d == NULL || key == NULL || fn == NULL || d->cfg->uri.n == 0)
		return DIR_ERROR;
	dir_sigpipe_block(&old);
	rc = dir_lookup_locked(d, DIR_BY_NAME, key, out, &cb);
	dir_sigpipe_restore(&old);
	return rc;
}

/* Return the last failure of <d>. */
const char *
dir_last_error(const struct dir *d)
{
	return d ? d->err : "no directory";
}

/* Return a short name for <rc>. */
const char *
dir_rc_name(enum dir_rc rc)
{
	switch (rc) {
	case DIR_OK: return "ok";
	case DIR_UNKNOWN: return "unknown";
	case DIR_TEMPFAIL: return "tempfail";
	case DIR_ERROR: return "error";
	case DIR_UNUSABLE: return "unusable";
	}
	return "?";
}
