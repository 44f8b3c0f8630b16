/*
 * TLS for both sides. Towards clients: contexts come from the certificate
 * store (one per certificate file), the SNI callback switches to the
 * matching one, ALPN must name the listener's protocol when it is offered,
 * session resumption is off so no session crosses names. Towards mailbox
 * servers: one client context with verification. The store is rebuilt on
 * SIGHUP and when the certificate directory changes (inotify, debounced);
 * handshakes in progress keep the store they started with.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/inotify.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "cfg.h"
#include "mp.h"

#define DEBOUNCE_S 0.2

/* Tell whether STARTTLS / implicit TLS can be offered. */
int
tls_available(const struct mp *mp)
{
	return mp->certs != NULL && certs_count(mp->certs) > 0;
}

static int
sni_cb(SSL *ssl, int *al, void *arg)
{
	struct session *s = SSL_get_app_data(ssl);
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	SSL_CTX *ctx;

	(void)al;
	(void)arg;
	if (s == NULL || s->hs_certs == NULL || name == NULL)
		return SSL_TLSEXT_ERR_OK;
	ctx = certs_find(s->hs_certs, name);
	if (ctx != NULL && ctx != SSL_get_SSL_CTX(ssl))
		SSL_set_SSL_CTX(ssl, ctx);
	return SSL_TLSEXT_ERR_OK;
}

static int
alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
        const unsigned char *in, unsigned int inlen, void *arg)
{
	struct session *s = SSL_get_app_data(ssl);
	int rc;

	(void)arg;
	if (s == NULL)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	rc = certs_alpn_select(in, inlen, s->proto == MP_IMAP ? "imap" : "pop3", out, outlen);
	if (rc != SSL_TLSEXT_ERR_OK)
		session_log_limited(s, LOG_INFO, "tls-alpn",
		                    "TLS: client offered ALPN without %s: refused",
		                    s->proto == MP_IMAP ? "imap" : "pop3");
	return rc;
}

/* Settings every server context of the store gets. */
static void
server_ctx_setup(SSL_CTX *ctx, void *arg)
{
	(void)arg;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
	                    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                 SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
}

/* Build a store from the configured directory. Returns it or NULL (logged). */
static struct certs *
load_store(struct mp *mp)
{
	struct certs_opts o = { .log = &mp->log, .setup = server_ctx_setup };
	char err[512];
	struct certs *c;

	if (mp_cfg(mp)->mailproxy.certs[0] == '\0')
		return NULL;
	c = certs_load(mp_cfg(mp)->mailproxy.certs, &o, err, sizeof(err));
	if (c == NULL)
		log_warnx(&mp->log, "certs: %s", err);
	else
		log_info(&mp->log, "certs: %zu certificate(s) loaded from %s", certs_count(c),
		         mp_cfg(mp)->mailproxy.certs);
	return c;
}

/*
 * Set up TLS for <mp>: the certificate store and the upstream context.
 * Returns 0, or -1 with <err> set.
 */
int
tls_init(struct mp *mp, char *err, size_t errlen)
{
	const struct cfg_mailproxy *mc = &mp_cfg(mp)->mailproxy;

	mp->inotify_fd = -1;
	mp->certs = load_store(mp);
	mp->up_ctx = SSL_CTX_new(TLS_client_method());
	if (mp->up_ctx == NULL) {
		snprintf(err, errlen, "cannot create the upstream TLS context");
		return -1;
	}
	SSL_CTX_set_min_proto_version(mp->up_ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(mp->up_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(mp->up_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	if (mc->upstream_verify) {
		SSL_CTX_set_verify(mp->up_ctx, SSL_VERIFY_PEER, NULL);
		if (mc->upstream_ca[0] != '\0') {
			if (SSL_CTX_load_verify_locations(mp->up_ctx, mc->upstream_ca, NULL) != 1) {
				snprintf(err, errlen, "upstream_ca %s: cannot load", mc->upstream_ca);
				return -1;
			}
		} else {
			SSL_CTX_set_default_verify_paths(mp->up_ctx);
		}
	}
	return 0;
}

/* Free the TLS state of <mp>. */
void
tls_free(struct mp *mp)
{
	if (mp->inotify_fd >= 0) {
		ev_io_stop(mp->loop, &mp->inotify_io);
		close(mp->inotify_fd);
		mp->inotify_fd = -1;
	}
	ev_timer_stop(mp->loop, &mp->certs_debounce);
	certs_unref(mp->certs);
	mp->certs = NULL;
	SSL_CTX_free(mp->up_ctx);
	mp->up_ctx = NULL;
}

/*
 * Give the client side of <s> a server TLS object, its handshake to come.
 * Returns 0, or -1 when no certificate is loaded or too many handshakes run.
 */
int
tls_server_start(struct session *s)
{
	struct mp *mp = s->mp;
	SSL *ssl;

	if (!tls_available(mp)) {
		session_log_limited(s, LOG_WARNING, "tls-no-certificate",
		                    "TLS requested but no certificate is loaded");
		return -1;
	}
	if (mp->nhandshakes >= s->gen->cfg->mailproxy.max_handshakes) {
		session_log_limited(s, LOG_WARNING, "tls-busy", "too many TLS handshakes in progress");
		return -1;
	}
	ssl = SSL_new(certs_default(mp->certs));
	if (ssl == NULL || SSL_set_fd(ssl, s->cl.fd) != 1) {
		SSL_free(ssl);
		return -1;
	}
	SSL_set_accept_state(ssl);
	SSL_set_app_data(ssl, s);
	side_tls(&s->cl, ssl, 1);
	s->hs_certs = certs_ref(mp->certs);
	mp->nhandshakes++;
	return 0;
}

/* Give the mailbox server side of <s> a client TLS object, its handshake to come. Returns 0 or -1. */
int
tls_client_start(struct session *s)
{
	struct mp *mp = s->mp;
	const struct cfg_server *srv = cfg_server_find(s->gen->cfg, s->login->route.server);
	const char *name = srv && srv->tls_name[0] ? srv->tls_name : s->login->route.server;
	unsigned char tmp[16];
	SSL *ssl;

	ssl = SSL_new(mp->up_ctx);
	if (ssl == NULL || SSL_set_fd(ssl, s->up.fd) != 1) {
		SSL_free(ssl);
		return -1;
	}
	SSL_set_connect_state(ssl);
	if (inet_pton(AF_INET, name, tmp) == 1 || inet_pton(AF_INET6, name, tmp) == 1) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
	} else {
		SSL_set_tlsext_host_name(ssl, name);
		SSL_set1_host(ssl, name);
	}
	side_tls(&s->up, ssl, 0);
	return 0;
}

/* Rebuild the certificate store of <mp> and swap it in. */
void
tls_reload_certs(struct mp *mp)
{
	struct certs *c = load_store(mp);

	if (c == NULL)
		return;          /* keep serving the old store */
	certs_unref(mp->certs);
	mp->certs = c;
}

static void
debounce_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct mp *mp = w->data;

	(void)loop;
	(void)revents;
	ev_timer_stop(mp->loop, w);
	tls_reload_certs(mp);
}

static void
inotify_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct mp *mp = w->data;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int seen = 0, i;

	(void)loop;
	(void)revents;
	for (i = 0; i < 64; i++) {
		ssize_t n = read(mp->inotify_fd, buf, sizeof(buf));

		if (n <= 0)
			break;
		seen = 1;
	}
	if (seen) {
		/* a copy arrives as several events: reload once, shortly after the last */
		mp->certs_debounce.repeat = DEBOUNCE_S;
		ev_timer_again(mp->loop, &mp->certs_debounce);
	}
}

/* Watch the certificate directory of <mp> for changes. Returns 0 or -1 (logged). */
int
tls_watch_start(struct mp *mp)
{
	const char *dir = mp_cfg(mp)->mailproxy.certs;

	ev_init(&mp->certs_debounce, debounce_cb);
	mp->certs_debounce.data = mp;
	if (dir[0] == '\0')
		return 0;
	mp->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (mp->inotify_fd < 0) {
		log_warn(&mp->log, "inotify");
		return -1;
	}
	if (inotify_add_watch(mp->inotify_fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE |
	                      IN_MOVED_FROM) < 0) {
		log_warn(&mp->log, "inotify: cannot watch %s", dir);
		close(mp->inotify_fd);
		mp->inotify_fd = -1;
		return -1;
	}
	ev_io_init(&mp->inotify_io, inotify_cb, mp->inotify_fd, EV_READ);
	mp->inotify_io.data = mp;
	ev_io_start(mp->loop, &mp->inotify_io);
	return 0;
}
