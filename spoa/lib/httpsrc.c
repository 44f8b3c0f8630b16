/*
 * auth_http route source over libcurl. One easy handle per worker thread
 * (libcurl handles are not shared between threads), reused so that its
 * connections to the service stay open. Every transfer is bounded by
 * [lookup] timeout; no signals are used (CURLOPT_NOSIGNAL: threads), no
 * proxy from the environment, no redirect is followed, only http and https.
 * The password is copied only into the request headers, which are wiped
 * before they are freed.
 */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpsrc.h"

#define HTTPSRC_HDR_MAX   4096        /* "Auth-Pass: " and a long password, escaped */
#define HTTPSRC_BODY_MAX  65536       /* a longer (ignored) body fails the answer */

/* One handle and the answer being read. */
struct httpsrc {
	const struct cfg_lookup *cfg;
	const struct logger *log;
	CURL *curl;                       /* NULL until the first lookup */
	struct authhttp_answer ans;       /* filled by the header callback */
	size_t body;                      /* body bytes seen (discarded) */
	char curlerr[CURL_ERROR_SIZE];
	char err[320];
};

/* Keep a description of the last failure (truncated when long). */
static void __attribute__((format(printf, 2, 3)))
httpsrc_set_err(struct httpsrc *h, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(h->err, sizeof(h->err), fmt, ap);
	va_end(ap);
}

/* Set up libcurl's globals (once per process, before any thread uses it). */
int
httpsrc_lib_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

/* Release libcurl's globals. */
void
httpsrc_lib_free(void)
{
	curl_global_cleanup();
}

/* Create a handle for <cfg> logging through <lg>. */
struct httpsrc *
httpsrc_new(const struct cfg_lookup *cfg, const struct logger *lg)
{
	struct httpsrc *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	h->cfg = cfg;
	h->log = lg;
	httpsrc_set_err(h, "no error");
	return h;
}

/* Close and free <h>. */
void
httpsrc_free(struct httpsrc *h)
{
	if (h == NULL)
		return;
	if (h->curl != NULL)
		curl_easy_cleanup(h->curl);
	free(h);
}

/* libcurl: one header line of the answer. */
static size_t
httpsrc_on_header(char *buf, size_t size, size_t n, void *arg)
{
	struct httpsrc *h = arg;

	(void)authhttp_answer_line(&h->ans, buf, size * n);
	return size * n;
}

/* libcurl: body bytes, ignored (the protocol answers in headers), bounded. */
static size_t
httpsrc_on_body(char *buf, size_t size, size_t n, void *arg)
{
	struct httpsrc *h = arg;

	(void)buf;
	h->body += size * n;
	return h->body > HTTPSRC_BODY_MAX ? 0 : size * n;
}

/* Create the easy handle of <h> with the options every request shares. */
static int
httpsrc_open(struct httpsrc *h)
{
	const struct cfg_lookup *c = h->cfg;
	CURL *e = curl_easy_init();
	long t = (long)c->timeout_ms;

	if (e == NULL)
		return -1;
	if (t == 0)
		t = 1;
	if (curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, t) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, t) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_USERAGENT, "gatehouse") != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, httpsrc_on_header) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_HEADERDATA, h) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, httpsrc_on_body) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_WRITEDATA, h) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->curlerr) != CURLE_OK ||
	    (c->ca_file[0] != '\0' && curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file) != CURLE_OK)) {
		curl_easy_cleanup(e);
		return -1;
	}
	h->curl = e;
	return 0;
}

/* Wipe the header values of <l> (a password may be among them), then free it. */
static void
httpsrc_headers_free(struct curl_slist *l)
{
	struct curl_slist *p;

	for (p = l; p != NULL; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

/* Append header <name>: <value> to <*l>. Returns 0 or -1. */
static int
httpsrc_header(struct curl_slist **l, const char *name, const char *value, int escape)
{
	char buf[HTTPSRC_HDR_MAX];
	struct curl_slist *n;
	int rc;

	rc = authhttp_header(buf, sizeof(buf), name, value, escape);
	if (rc == 0) {
		n = curl_slist_append(*l, buf);
		if (n == NULL)
			rc = -1;
		else
			*l = n;
	}
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

/* Build the request headers of <ask> for <url> into <*l>. Returns 0 or -1. */
static int
httpsrc_headers(struct httpsrc *h, const char *url, const struct httpsrc_ask *ask,
                struct curl_slist **l)
{
	char attempt[16];
	const char *pass = "";

	if (ask->password != NULL && authhttp_may_send_password(h->cfg, url))
		pass = ask->password;
	(void)snprintf(attempt, sizeof(attempt), "%u", ask->attempt ? ask->attempt : 1u);
	*l = NULL;
	if (httpsrc_header(l, "Auth-Method", ask->by_id ? "zimbraId" : "plain", 0) < 0 ||
	    httpsrc_header(l, "Auth-User", ask->key, 1) < 0 ||
	    httpsrc_header(l, "Auth-Pass", pass, 1) < 0 ||
	    httpsrc_header(l, "Auth-Protocol", authhttp_proto_name(ask->proto), 0) < 0 ||
	    httpsrc_header(l, "Auth-Login-Attempt", attempt, 0) < 0 ||
	    (ask->client_ip != NULL && ask->client_ip[0] != '\0' &&
	     httpsrc_header(l, "Client-IP", ask->client_ip, 1) < 0)) {
		httpsrc_headers_free(*l);
		*l = NULL;
		return -1;
	}
	return 0;
}

/*
 * Ask <url>. Returns the verdict of its answer, or -1 when there was no
 * usable answer (the reason in h->err).
 */
static int
httpsrc_ask_one(struct httpsrc *h, const char *url, const struct httpsrc_ask *ask)
{
	struct curl_slist *hdrs = NULL;
	enum authhttp_verdict v;
	CURLcode rc;

	if (httpsrc_headers(h, url, ask, &hdrs) < 0) {
		httpsrc_set_err(h, "cannot build the request for %s", url);
		return -2;
	}
	authhttp_answer_init(&h->ans);
	h->body = 0;
	h->curlerr[0] = '\0';
	if (curl_easy_setopt(h->curl, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L) != CURLE_OK) {
		(void)curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
		httpsrc_headers_free(hdrs);
		httpsrc_set_err(h, "cannot set the request for %s", url);
		return -2;
	}
	rc = curl_easy_perform(h->curl);
	(void)curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
	httpsrc_headers_free(hdrs);
	if (rc != CURLE_OK) {
		httpsrc_set_err(h, "auth_http %s: %s", url,
		                h->curlerr[0] ? h->curlerr : curl_easy_strerror(rc));
		return -1;
	}
	v = authhttp_answer_verdict(&h->ans);
	if (v == AUTHHTTP_BAD) {
		if (h->ans.http_status != 200)
			httpsrc_set_err(h, "auth_http %s: HTTP status %d", url, h->ans.http_status);
		else
			httpsrc_set_err(h, "auth_http %s: unusable answer (%s)", url,
			                h->ans.why[0] ? h->ans.why :
			                !h->ans.have_status ? "no Auth-Status" :
			                "Auth-Status OK without Auth-Server and Auth-Port");
		return -1;
	}
	return (int)v;
}

/* Ask the service about <ask>; see httpsrc.h. */
enum httpsrc_rc
httpsrc_lookup(struct httpsrc *h, const struct httpsrc_ask *ask, struct authhttp_answer *out)
{
	int i, v;

	authhttp_answer_init(out);
	if (h == NULL || ask == NULL || ask->key == NULL || h->cfg->urls.n == 0)
		return HTTPSRC_ERROR;
	if (h->curl == NULL && httpsrc_open(h) < 0) {
		httpsrc_set_err(h, "cannot create a libcurl handle");
		return HTTPSRC_ERROR;
	}
	for (i = 0; i < h->cfg->urls.n; i++) {
		v = httpsrc_ask_one(h, h->cfg->urls.item[i], ask);
		if (v == -2)
			return HTTPSRC_ERROR;
		if (v < 0) {
			log_debug(h->log, "%s", h->err);
			continue;
		}
		*out = h->ans;
		return v == AUTHHTTP_ROUTE ? HTTPSRC_ROUTE : HTTPSRC_REFUSED;
	}
	return HTTPSRC_TEMPFAIL;
}

/* Return the last failure of <h>. */
const char *
httpsrc_last_error(const struct httpsrc *h)
{
	return h ? h->err : "no auth_http handle";
}
