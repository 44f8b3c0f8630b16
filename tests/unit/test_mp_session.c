/*
 * Unit tests of the mail proxy's session state machine, driven through its
 * real code: a client on a socketpair, a fake mailbox server on a loopback
 * listener played by the test, routes planted in the library's in-process
 * cache (the lookup is decided on the loop, exactly as in production, with
 * no LDAP or memcached), certificates made on the fly. Each test walks
 * states and their timeouts and checks what the client and the server see:
 * commands, STARTTLS with pipelined data, implicit TLS, lookup verdicts,
 * connect retries and timeouts, mailbox server answers, a mailbox server
 * or a client closing mid-login, the relay with back-pressure and the
 * fairness cap of one loop turn.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cfg.h"
#include "lcache.h"
#include "mp.h"
#include "parse.h"

#define DEADLINE 5.0          /* seconds any awaited condition may take */
#define PEER_BUF 65536

/* The test's end of a connection: the client, or the mailbox server. */
struct peer {
	int fd;
	SSL *ssl;
	int eof;
	size_t len;                  /* bytes in buf (kept NUL-terminated) */
	uint64_t total;              /* bytes received since the start */
	char buf[PEER_BUF + 1];
};

/* One proxy process in miniature, one session and its two peers. */
struct fx {
	struct gh_config *cfg;       /* owned by <gen> once it is made */
	struct gen *gen;
	struct mp mp;
	struct listener li;
	struct session *s;
	struct peer cl;              /* the client */
	struct peer up;              /* the mailbox server, once accepted */
	int lfd;                     /* the mailbox server's listening socket */
	uint16_t lport;
	ev_timer tick;               /* bounds every loop turn */
	SSL_CTX *cctx, *sctx;        /* the test's TLS client and server */
	char dir[64];                /* certificates */
	double t0;                   /* when the session was made */
};

/* Seconds on the monotonic clock. */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

/* Run one turn of the loop (at most about 10 ms when nothing happens). */
static void
turn(struct fx *f)
{
	ev_run(f->mp.loop, EVRUN_ONCE);
}

/* Tell whether the session is still open. */
static int
alive(const struct fx *f)
{
	return f->mp.nsessions > 0;
}

/* Write a self-signed certificate and key for mail.example.com into f->dir. */
static void
make_certs(struct fx *f)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n;
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	char path[128];
	FILE *fp;

	assert_non_null(k);
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"mail.example.com",
	                           -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, "DNS:mail.example.com");
	assert_non_null(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	snprintf(path, sizeof(path), "%s/mail.pem", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	PEM_write_X509(fp, x);
	PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL);
	fclose(fp);
	/* the test's own TLS server (a mailbox server with TLS) uses the same pair */
	f->sctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(f->sctx);
	assert_int_equal(SSL_CTX_use_certificate(f->sctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(f->sctx, k), 1);
	f->cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(f->cctx);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* Open the fake mailbox server's listening socket on 127.0.0.1 with <backlog>. */
static int
listen_loopback(uint16_t *port, int backlog)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, backlog), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* Point server mbox1 of the configuration at 127.0.0.1:<port> for every mail protocol. */
static void
set_server(struct fx *f, uint16_t port)
{
	struct cfg_server *sv = &f->cfg->servers[0];

	memset(sv, 0, sizeof(*sv));
	snprintf(sv->name, sizeof(sv->name), "mbox1");
	snprintf(sv->address, sizeof(sv->address), "127.0.0.1");
	assert_int_equal(parse_addr("127.0.0.1", 1, &sv->addr, &sv->addrlen), 0);
	sv->port[PROTO_IMAP] = sv->port[PROTO_IMAPS] = port;
	sv->port[PROTO_POP3] = sv->port[PROTO_POP3S] = port;
	f->cfg->nservers = 1;
}

/* Plant route <val> for login name <name> in the in-process cache. */
static void
plant(struct fx *f, const char *name, const char *val)
{
	char key[256];

	snprintf(key, sizeof(key), "n:%s", name);
	assert_int_equal(lcache_put(f->mp.gens.cur->ag.lcache, key, val, 60000), 0);
}

/* Set up the process, the fake server and a session on a listener of <proto>, <tls>. */
static int
setup_fx(void **state, enum mp_proto proto, int tls, uint32_t login_timeout_ms)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct mp *mp;
	struct cfg_mailproxy *mc;
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(40000) };
	char err[256];
	int sv[2];

	assert_non_null(f);
	mp = &f->mp;
	f->cfg = cfg_new();
	assert_non_null(f->cfg);
	snprintf(f->cfg->ldap.default_domain, sizeof(f->cfg->ldap.default_domain), "example.com");
	mc = &f->cfg->mailproxy;
	mc->cleartext_login = 1;
	mc->send_id = 0;
	mc->send_xoip = 0;
	mc->connect_timeout_ms = 300;
	mc->upstream_timeout_ms = 300;
	mc->login_timeout_ms = login_timeout_ms;
	mc->failure_delay_ms = 0;
	mc->handshake_timeout_ms = 300;
	mc->imap_idle_timeout_ms = 400;
	mc->pop3_idle_timeout_ms = 400;
	mc->upstream_retries = 2;
	mc->max_bad_commands = 3;
	mc->upstream_verify = 0;              /* the test's server certificate is self-signed */
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_mp_session.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	make_certs(f);
	snprintf(mc->certs, sizeof(mc->certs), "%s", f->dir);
	f->lfd = listen_loopback(&f->lport, 16);
	set_server(f, f->lport);

	mp->cur_cfg = f->cfg;
	LIST_INIT(&mp->sessions);
	session_sched_init(mp);
	SLIST_INIT(&mp->listeners);
	mp->audit_fd = -1;
	assert_int_equal(log_init(&mp->log, "test_mp_session", "stderr",
	                          getenv("TEST_MP_DEBUG") ? "debug" : "err", NULL), 0);
	assert_int_equal(log_limit_init(&mp->log_limit, 0, 0, NULL, NULL), 0);
	mp->log.limit = &mp->log_limit;
	mp->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(mp->loop);
	assert_int_equal(tls_init(mp, err, sizeof(err)), 0);
	assert_true(tls_available(mp));
	assert_int_equal(mbuf_pool_init(&mp->pool, mc->buffer_size, 64), 0);
	/* the generation owns the configuration from here on */
	gen_ctl_init(&mp->gens, mp->loop, &mp->log);
	f->gen = gen_new(&mp->gens, f->cfg, 1, 16, err, sizeof(err));
	assert_non_null(f->gen);
	gen_install(&mp->gens, f->gen);
	assert_non_null(f->gen->ag.lcache);
	ev_timer_init(&f->tick, tick_cb, 0.01, 0.01);
	ev_timer_start(mp->loop, &f->tick);

	f->li.mp = mp;
	f->li.ls.fd = -1;
	f->li.proto = proto;
	f->li.implicit_tls = tls;
	snprintf(f->li.name, sizeof(f->li.name), "%s%s", proto == MP_IMAP ? "imap" : "pop3",
	         tls ? "s" : "");
	f->up.fd = -1;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	f->cl.fd = sv[1];
	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ev_now_update(mp->loop);                /* timers count from now, not from the loop's birth */
	f->t0 = now();
	f->s = session_new(&f->li, sv[0], (struct sockaddr *)&peer, sizeof(peer));
	assert_non_null(f->s);
	*state = f;
	return 0;
}

static int
setup_imap(void **state)
{
	return setup_fx(state, MP_IMAP, 0, 400);
}

/* IMAP with a pre-auth timer long enough for a slow exchange. */
static int
setup_imap_slow(void **state)
{
	return setup_fx(state, MP_IMAP, 0, 4000);
}

static int
setup_imaps(void **state)
{
	return setup_fx(state, MP_IMAP, 1, 400);
}

static int
setup_pop3(void **state)
{
	return setup_fx(state, MP_POP3, 0, 400);
}

static void
peer_close(struct peer *p)
{
	if (p->ssl != NULL)
		SSL_free(p->ssl);
	p->ssl = NULL;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	struct mp *mp = &f->mp;
	char path[128];

	session_shutdown_all(mp, 1);
	assert_int_equal(mp->nsessions, 0);
	assert_int_equal(mp->nhandshakes, 0);
	gen_ctl_stop(&mp->gens);               /* frees the configuration too */
	peer_close(&f->cl);
	peer_close(&f->up);
	if (f->lfd >= 0)
		close(f->lfd);
	ev_timer_stop(mp->loop, &f->tick);
	assert_int_equal(mp->pool.in_use, 0);   /* every buffer went back */
	tls_free(mp);
	mbuf_pool_free(&mp->pool);
	ev_loop_destroy(mp->loop);
	log_limit_free(&mp->log_limit);
	SSL_CTX_free(f->cctx);
	SSL_CTX_free(f->sctx);
	snprintf(path, sizeof(path), "%s/mail.pem", f->dir);
	unlink(path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Read what <p> has received so far into its buffer. */
static void
peer_fill(struct peer *p)
{
	for (;;) {
		ssize_t n;

		if (p->len == PEER_BUF) {       /* keep the newest half */
			memmove(p->buf, p->buf + PEER_BUF / 2, PEER_BUF / 2);
			p->len = PEER_BUF / 2;
		}
		if (p->ssl != NULL) {
			int r = SSL_read(p->ssl, p->buf + p->len, (int)(PEER_BUF - p->len));

			if (r <= 0) {
				int e = SSL_get_error(p->ssl, r);

				if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL ||
				    e == SSL_ERROR_SSL)
					p->eof = 1;
				ERR_clear_error();
				break;
			}
			n = r;
		} else {
			n = read(p->fd, p->buf + p->len, PEER_BUF - p->len);
			if (n == 0)
				p->eof = 1;
			if (n <= 0)
				break;
		}
		p->len += (size_t)n;
		p->total += (uint64_t)n;
	}
	p->buf[p->len] = '\0';
}

/* Run the loop until <text> reached <p> (then consumed up to its end); fails after DEADLINE. */
static void
expect(struct fx *f, struct peer *p, const char *text)
{
	double end = now() + DEADLINE;
	char *at;

	for (;;) {
		peer_fill(p);
		if ((at = strstr(p->buf, text)) != NULL)
			break;
		if (now() > end)
			fail_msg("waited for \"%s\", have \"%s\"", text, p->buf);
		turn(f);
	}
	at += strlen(text);
	p->len -= (size_t)(at - p->buf);
	memmove(p->buf, at, p->len + 1);
}

/* Send <len> bytes of <data> from <p>, running the loop while the socket is full. */
static void
send_raw(struct fx *f, struct peer *p, const char *data, size_t len)
{
	double end = now() + DEADLINE;

	while (len > 0) {
		ssize_t n;

		if (p->ssl != NULL) {
			int r = SSL_write(p->ssl, data, (int)len);

			n = r > 0 ? r : -1;
		} else {
			n = write(p->fd, data, len);
		}
		if (n > 0) {
			data += n;
			len -= (size_t)n;
			continue;
		}
		assert_true(now() < end);
		turn(f);
	}
}

static void
send_str(struct fx *f, struct peer *p, const char *s)
{
	send_raw(f, p, s, strlen(s));
}

/* Run the loop until the session is in state <st>. */
static void
wait_state(struct fx *f, enum sstate st)
{
	double end = now() + DEADLINE;

	while (!alive(f) || f->s->state != st) {
		if (!alive(f))
			fail_msg("session closed while waiting for state %d", (int)st);
		if (now() > end)
			fail_msg("state %d, waited for %d", (int)f->s->state, (int)st);
		turn(f);
	}
}

/* Run the loop until the session is closed. */
static void
wait_closed(struct fx *f)
{
	double end = now() + DEADLINE;

	while (alive(f)) {
		if (now() > end)
			fail_msg("session still open in state %d", (int)f->s->state);
		turn(f);
	}
}

/* Run the loop until the mailbox server has a connection, and take it. */
static void
srv_accept(struct fx *f)
{
	double end = now() + DEADLINE;
	int fd;

	while ((fd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
		assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
		if (now() > end)
			fail_msg("no connection to the mailbox server");
		turn(f);
	}
	f->up.fd = fd;
}

/* Run a TLS handshake on <p> as a client (or as the server when <server>). */
static void
peer_tls(struct fx *f, struct peer *p, int server)
{
	double end = now() + DEADLINE;
	int r;

	p->ssl = SSL_new(server ? f->sctx : f->cctx);
	assert_non_null(p->ssl);
	SSL_set_fd(p->ssl, p->fd);
	if (server)
		SSL_set_accept_state(p->ssl);
	else
		SSL_set_connect_state(p->ssl);
	while ((r = SSL_do_handshake(p->ssl)) != 1) {
		int e = SSL_get_error(p->ssl, r);

		assert_true(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE);
		if (now() > end)
			fail_msg("TLS handshake did not finish");
		turn(f);
	}
}

/* Log in as alice through the fake mailbox server (IMAP): ends in SS_RELAY. */
static void
imap_login(struct fx *f)
{
	plant(f, "alice@example.com", "alice@example.com mbox1");
	expect(f, &f->cl, "* OK [CAPABILITY ");
	send_str(f, &f->cl, "a LOGIN alice secret\r\n");
	srv_accept(f);
	wait_state(f, SS_UP_LOGIN);
	send_str(f, &f->up, "* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR] ready\r\n");
	expect(f, &f->up, "gh2 LOGIN \"alice\" \"secret\"\r\n");
	send_str(f, &f->up, "gh2 OK [CAPABILITY IMAP4rev1] Logged in\r\n* 1 EXISTS\r\n");
	expect(f, &f->cl, "a OK [CAPABILITY IMAP4rev1] Logged in\r\n");
	expect(f, &f->cl, "* 1 EXISTS\r\n");   /* what followed the answer is relayed */
	wait_state(f, SS_RELAY);
}

/* Commands are answered locally; LOGOUT says goodbye, flushes and closes. */
static void
test_cmd_logout(void **state)
{
	struct fx *f = *state;

	expect(f, &f->cl, "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE "
	       "LITERAL+ STARTTLS AUTH=PLAIN] ");
	assert_int_equal(f->s->state, SS_CMD);
	send_str(f, &f->cl, "a NOOP\r\nb CAPABILITY\r\n");
	expect(f, &f->cl, "a OK NOOP completed.\r\n");
	expect(f, &f->cl, "b OK Pre-login capabilities listed");
	send_str(f, &f->cl, "c LOGOUT\r\nd NOOP\r\n");
	expect(f, &f->cl, "* BYE Logging out\r\nc OK Logout completed.\r\n");
	wait_closed(f);
	peer_fill(&f->cl);
	assert_null(strstr(f->cl.buf, "d OK"));   /* nothing after LOGOUT is answered */
	assert_true(f->cl.eof);
}

/* The command state's timer (login_timeout) says goodbye and closes. */
static void
test_cmd_timeout(void **state)
{
	struct fx *f = *state;

	expect(f, &f->cl, "* OK ");
	expect(f, &f->cl, "* BYE Disconnected for inactivity.\r\n");
	assert_true(now() - f->t0 >= 0.39);
	wait_closed(f);
}

/* Too many bad commands: goodbye and close. */
static void
test_bad_commands(void **state)
{
	struct fx *f = *state;

	expect(f, &f->cl, "* OK ");
	send_str(f, &f->cl, "a FOO\r\nb BAR\r\n");
	expect(f, &f->cl, "b BAD ");
	assert_int_equal(f->s->state, SS_CMD);
	send_str(f, &f->cl, "c BAZ\r\nd NOOP\r\n");
	expect(f, &f->cl, "* BYE Too many invalid commands.\r\n");
	wait_closed(f);
	assert_int_equal(f->mp.counters[MPC_BAD_COMMANDS], 3);
	assert_null(strstr(f->cl.buf, "d OK"));
}

/*
 * STARTTLS with a command pipelined behind it in the same packet: the
 * plaintext is dropped before the handshake, never answered, and the
 * session speaks TLS afterwards.
 */
static void
test_starttls_drops_pipelined(void **state)
{
	struct fx *f = *state;

	expect(f, &f->cl, "* OK ");
	send_str(f, &f->cl, "a STARTTLS\r\nb LOGIN alice secret\r\n");
	expect(f, &f->cl, "a OK Begin TLS negotiation now.\r\n");
	wait_state(f, SS_HANDSHAKE);
	assert_null(f->s->c2u);                 /* the pipelined LOGIN is gone */
	assert_null(f->s->login);
	assert_int_equal(f->cl.len, 0);
	peer_tls(f, &f->cl, 0);
	wait_state(f, SS_CMD);
	assert_true(f->s->cl.tls);
	assert_int_equal(f->mp.nhandshakes, 0);
	send_str(f, &f->cl, "c CAPABILITY\r\n");
	expect(f, &f->cl, "* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE "
	       "LITERAL+ AUTH=PLAIN\r\n");       /* no STARTTLS any more */
	expect(f, &f->cl, "c OK ");
	assert_null(strstr(f->cl.buf, "b "));
	assert_int_equal(f->mp.counters[MPC_STARTTLS], 1);
	assert_int_equal(f->mp.counters[MPC_LOGIN_OK] + f->mp.counters[MPC_LOGIN_FAIL], 0);
}

/*
 * Pre-auth back-pressure: a client that sends commands without reading the
 * answers is not read any more once OUT_HIGH bytes of answers wait; when
 * it reads, every command gets its answer.
 */
static void
test_cmd_output_backpressure(void **state)
{
	struct fx *f = *state;
	static char cmds[2000 * 8 + 1];
	int tiny = 1, i;
	uint64_t base;
	double t0;

	setsockopt(f->s->cl.fd, SOL_SOCKET, SO_SNDBUF, &tiny, sizeof(tiny));
	expect(f, &f->cl, "* OK ");
	for (i = 0; i < 2000; i++)
		memcpy(cmds + i * 8, "a NOOP\r\n", 8);
	send_raw(f, &f->cl, cmds, 2000 * 8);
	for (i = 0; i < 20 && mbuf_len(f->s->u2c) < OUT_HIGH; i++)
		turn(f);
	assert_int_equal(f->s->state, SS_CMD);
	assert_true(mbuf_len(f->s->u2c) >= OUT_HIGH);
	assert_true(mbuf_len(f->s->c2u) > 0);   /* unparsed: the client waits */
	assert_false(f->s->cl.events & EV_READ);
	assert_true(f->s->cl.events & EV_WRITE);
	/* the client reads: 2000 answers of 22 bytes arrive (bounded by DEADLINE) */
	base = f->cl.total;
	t0 = now();
	while (f->cl.total - base < 2000 * 22) {
		assert_true(now() < t0 + DEADLINE);
		f->cl.len = 0;
		peer_fill(&f->cl);
		turn(f);
	}
	assert_int_equal(f->cl.total - base, 2000 * 22);
	assert_int_equal(f->s->state, SS_CMD);
	assert_null(f->s->c2u);
}

/*
 * STARTTLS answered to a client that does not read: the answer cannot be
 * written, the command timer (still running from the commands) says
 * goodbye, and the closing state's own timer closes.
 */
static void
test_starttls_flush_and_closing_timeout(void **state)
{
	struct fx *f = *state;
	static char cmds[600 * 8 + 16];
	int tiny = 1, i;

	setsockopt(f->s->cl.fd, SOL_SOCKET, SO_SNDBUF, &tiny, sizeof(tiny));
	expect(f, &f->cl, "* OK ");
	for (i = 0; i < 600; i++)               /* about 13 kB of answers: below OUT_HIGH */
		memcpy(cmds + i * 8, "a NOOP\r\n", 8);
	memcpy(cmds + 600 * 8, "b STARTTLS\r\n", 12);
	send_raw(f, &f->cl, cmds, 600 * 8 + 12);
	wait_state(f, SS_STARTTLS_FLUSH);
	assert_true(mbuf_len(f->s->u2c) > 0);
	assert_true(f->s->timer.repeat > 0.39 && f->s->timer.repeat < 0.41);
	wait_state(f, SS_CLOSING);
	assert_true(now() - f->t0 >= 0.39);
	assert_true(f->s->timer.repeat > 4.9 && f->s->timer.repeat < 5.1);
	wait_closed(f);
	assert_true(now() - f->t0 >= 5.3);
	assert_int_equal(f->mp.nhandshakes, 0);  /* TLS never started */
}

/* Implicit TLS: the handshake state's timer closes a silent client. */
static void
test_handshake_timeout(void **state)
{
	struct fx *f = *state;

	assert_int_equal(f->s->state, SS_HANDSHAKE);
	assert_int_equal(f->mp.nhandshakes, 1);
	wait_closed(f);
	assert_true(now() - f->t0 >= 0.29);
	assert_int_equal(f->mp.nhandshakes, 0);
	assert_int_equal(f->mp.counters[MPC_TLS_HANDSHAKE_FAIL], 0);
	peer_fill(&f->cl);
	assert_int_equal(f->cl.total, 0);       /* no greeting before TLS */
}

/* Implicit TLS: greeting after the handshake, a handshake failure is counted. */
static void
test_handshake_fail(void **state)
{
	struct fx *f = *state;

	send_str(f, &f->cl, "a NOOP\r\n");      /* no ClientHello */
	wait_closed(f);
	assert_int_equal(f->mp.counters[MPC_TLS_HANDSHAKE_FAIL], 1);
	assert_int_equal(f->mp.nhandshakes, 0);
}

/*
 * Implicit TLS: a client that closes before sending anything (a readiness
 * probe) is no failed handshake: the session closes, nothing is counted.
 */
static void
test_handshake_probe_close(void **state)
{
	struct fx *f = *state;

	assert_int_equal(f->s->state, SS_HANDSHAKE);
	peer_close(&f->cl);
	wait_closed(f);
	assert_true(now() - f->t0 < 0.25);      /* closed at once, not by the timer */
	assert_int_equal(f->mp.counters[MPC_TLS_HANDSHAKE_FAIL], 0);
	assert_int_equal(f->mp.nhandshakes, 0);
}

/* A login accepted by the mailbox server: relay both ways, then the idle timer closes. */
static void
test_login_relay_idle(void **state)
{
	struct fx *f = *state;

	imap_login(f);
	assert_null(f->s->login);               /* credentials gone */
	assert_null(f->s->parser.p);
	assert_null(f->s->uout);
	assert_int_equal(f->mp.counters[MPC_LOGIN_OK], 1);
	assert_string_equal(f->s->account, "alice@example.com");
	send_str(f, &f->cl, "b SELECT INBOX\r\n");
	expect(f, &f->up, "b SELECT INBOX\r\n");
	send_str(f, &f->up, "b OK [READ-WRITE] Select completed.\r\n");
	expect(f, &f->cl, "b OK [READ-WRITE] Select completed.\r\n");
	/* the relay's timer is the idle timeout: activity re-arms it */
	assert_true(f->s->timer.repeat > 0.39 && f->s->timer.repeat < 0.41);
	wait_closed(f);
	peer_fill(&f->up);
	assert_true(f->up.eof);
}

/* The client closes its end after login: passed on as a half-close, then the server ends it. */
static void
test_relay_client_eof(void **state)
{
	struct fx *f = *state;

	imap_login(f);
	send_str(f, &f->cl, "b LOGOUT\r\n");
	shutdown(f->cl.fd, SHUT_WR);
	expect(f, &f->up, "b LOGOUT\r\n");
	while (!f->up.eof) {                    /* bounded by the session's idle timer */
		assert_true(alive(f));
		turn(f);
		peer_fill(&f->up);
	}
	assert_true(f->s->up.shut);
	send_str(f, &f->up, "* BYE bye\r\nb OK Logout completed.\r\n");
	close(f->up.fd);
	f->up.fd = -1;
	expect(f, &f->cl, "b OK Logout completed.\r\n");
	wait_closed(f);
}

/*
 * Back-pressure: a client that does not read stops the reads from the
 * mailbox server once the client's buffer is full; reading again lets
 * everything through.
 */
static void
test_relay_backpressure(void **state)
{
	struct fx *f = *state;
	static char chunk[16384];
	uint64_t sent = 0, before;
	int small = 4096, i;

	imap_login(f);
	setsockopt(f->s->cl.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	memset(chunk, 'x', sizeof(chunk));
	before = f->cl.total;
	/* bounded: at most 64 MB, or until the proxy stops reading */
	for (i = 0; i < 4096; i++) {
		ssize_t n = write(f->up.fd, chunk, sizeof(chunk));

		if (n > 0)
			sent += (uint64_t)n;
		turn(f);
		if (mbuf_room(f->s->u2c) == 0 && !(f->s->up.events & EV_READ))
			break;
	}
	assert_true(i < 4096);
	assert_int_equal(mbuf_room(f->s->u2c), 0);
	assert_false(f->s->up.events & EV_READ);   /* the server is not read */
	assert_true(f->s->cl.events & EV_WRITE);
	/* the client reads: everything arrives */
	while (f->cl.total - before < sent) {
		peer_fill(&f->cl);
		turn(f);
		assert_true(alive(f));
	}
	assert_int_equal(f->cl.total - before, sent);
	assert_true(f->s->up.events & EV_READ);
}

/*
 * Fairness: one call moves at most 64 steps of a session that always has
 * work (a TLS client's small records); the rest moves at the next loop
 * turn. Not through an event fed at once: libev runs the newest pending
 * event first, so the session would run again before every event already
 * waiting and the cap would be void. It is booked (mp->again) and fed
 * just before the loop polls again.
 */
static void
test_fairness_cap(void **state)
{
	struct fx *f = *state;
	char rec[10];
	int i;

	peer_tls(f, &f->cl, 0);
	imap_login(f);
	memset(rec, 'y', sizeof(rec));
	for (i = 0; i < 200; i++)              /* one record each */
		assert_int_equal(SSL_write(f->cl.ssl, rec, sizeof(rec)), (int)sizeof(rec));
	f->up.total = 0;
	f->up.len = 0;
	f->s->cl.rd_ready = 1;                  /* as the read event would */
	session_run(f->s);
	peer_fill(&f->up);
	assert_int_equal(f->up.total, 64 * sizeof(rec));
	assert_false(ev_is_pending(&f->s->cl.io));   /* not ahead of others */
	assert_true(f->s->again);                     /* but booked */
	assert_ptr_equal(LIST_FIRST(&f->mp.again), f->s);
	assert_true(ev_is_active(&f->mp.again_w));
	while (f->up.total < 200 * sizeof(rec)) {
		turn(f);
		peer_fill(&f->up);
		assert_true(alive(f));
	}
	assert_int_equal(f->up.total, 200 * sizeof(rec));
	assert_false(f->s->again);
}

/* A session closed while booked for its next turn leaves the list at once. */
static void
test_fairness_close_while_booked(void **state)
{
	struct fx *f = *state;
	char rec[10];
	int i;

	peer_tls(f, &f->cl, 0);
	imap_login(f);
	memset(rec, 'z', sizeof(rec));
	for (i = 0; i < 100; i++)
		assert_int_equal(SSL_write(f->cl.ssl, rec, sizeof(rec)), (int)sizeof(rec));
	f->s->cl.rd_ready = 1;
	session_run(f->s);
	assert_true(f->s->again);
	session_close(f->s, "test");
	f->s = NULL;
	assert_null(LIST_FIRST(&f->mp.again));
	turn(f);                                /* the prepare watcher finds nothing */
	assert_false(alive(f));
}

/* The mailbox server refuses the password: its answer goes to the client, back to commands. */
static void
test_login_refused_by_server(void **state)
{
	struct fx *f = *state;

	plant(f, "alice@example.com", "alice@example.com mbox1");
	expect(f, &f->cl, "* OK ");
	send_str(f, &f->cl, "a LOGIN alice wrong\r\n");
	srv_accept(f);
	send_str(f, &f->up, "* OK ready\r\n");
	expect(f, &f->up, "gh2 LOGIN \"alice\" \"wrong\"\r\n");
	send_str(f, &f->up, "gh2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
	expect(f, &f->cl, "a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
	wait_state(f, SS_CMD);
	assert_int_equal(f->s->up.fd, -1);
	assert_null(f->s->login);
	assert_int_equal(f->s->account[0], '\0');
	assert_int_equal(f->mp.counters[MPC_LOGIN_FAIL], 1);
	assert_int_equal(f->mp.counters[MPC_LOGIN_TEMPFAIL], 0);
	/* the pre-auth timer runs again */
	assert_true(f->s->timer.repeat > 0.39 && f->s->timer.repeat < 0.41);
	send_str(f, &f->cl, "b NOOP\r\n");
	expect(f, &f->cl, "b OK NOOP completed.\r\n");
}

/* The mailbox server closes mid-login: temporary failure, back to commands. */
static void
test_server_closes_mid_login(void **state)
{
	struct fx *f = *state;

	plant(f, "alice@example.com", "alice@example.com mbox1");
	expect(f, &f->cl, "* OK ");
	send_str(f, &f->cl, "a LOGIN alice secret\r\n");
	srv_accept(f);
	send_str(f, &f->up, "* OK ready\r\n");
	expect(f, &f->up, "gh2 LOGIN \"alice\" \"secret\"\r\n");
	close(f->up.fd);
	f->up.fd = -1;
	expect(f, &f->cl, "a NO [UNAVAILABLE] Mailbox server temporarily unavailable, try again later.\r\n");
	wait_state(f, SS_CMD);
	assert_int_equal(f->s->up.fd, -1);
	assert_null(f->s->login);
	assert_int_equal(f->mp.counters[MPC_LOGIN_TEMPFAIL], 1);
	send_str(f, &f->cl, "b LOGOUT\r\n");
	wait_closed(f);
}

/* The client closes mid-login: the login ends, then the session closes without a crash. */
static void
test_client_closes_mid_login(void **state)
{
	struct fx *f = *state;

	plant(f, "alice@example.com", "alice@example.com mbox1");
	expect(f, &f->cl, "* OK ");
	send_str(f, &f->cl, "a LOGIN alice secret\r\n");
	srv_accept(f);
	send_str(f, &f->up, "* OK ready\r\n");
	expect(f, &f->up, "gh2 LOGIN \"alice\" \"secret\"\r\n");
	close(f->cl.fd);
	f->cl.fd = -1;
	send_str(f, &f->up, "gh2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
	wait_closed(f);
	peer_fill(&f->up);
	assert_true(f->up.eof);                 /* the mailbox server connection is closed too */
}

/* A mailbox server that never greets: the login state's timer gives a temporary failure. */
static void
test_upstream_timeout(void **state)
{
	struct fx *f = *state;

	plant(f, "alice@example.com", "alice@example.com mbox1");
	expect(f, &f->cl, "* OK ");
	send_str(f, &f->cl, "a LOGIN alice secret\r\n");
	srv_accept(f);
	wait_state(f, SS_UP_LOGIN);
	expect(f, &f->cl, "a NO [UNAVAILABLE] Mailbox server temporarily unavailable");
	assert_int_equal(f->s->state, SS_CMD);
	assert_int_equal(f->mp.counters[MPC_LOGIN_TEMPFAIL], 1);
}

/* An unexpected greeting (PREAUTH) is never relayed: temporary failure. */
static void
test_upstream_bad_greeting(void **state)
{
	struct fx *f = *state;

	plant(f, "alice@example.com", "alice@example.com mbox1");
	expect(f, &f->cl, "* OK ");
	send_str(f, &f->cl, "a LOGIN alice secret\r\n");
	srv_accept(f);
	send_str(f, &f->up, "* PREAUTH welcome\r\n");
	expect(f, &f->cl, "a NO [UNAVAILABLE] Mailbox server");
	wait_state(f, SS_CMD);
	peer_fill(&f->up);
	assert_null(strstr(f->up.buf, "LOGIN"));   /* the password never went out */
}

/* Connect refused: a pause, another attempt, then a temporary failure. */
static void
test_connect_retry(void **state)
{
	struct fx *f = *state;

	close(f->lfd);                          /* nothing listens on the port any more */
	f->lfd = -1;
	plant(f, "alice@example.com", "alice@example.com mbox1");
	expect(f, &f->cl, "* OK ");
	send_str(f, &f->cl, "a LOGIN alice secret\r\n");
	wait_state(f, SS_UP_RETRY);
	assert_int_equal(f->s->up.fd, -1);
	assert_true(f->s->timer.repeat > 0.49 && f->s->timer.repeat < 0.51);
	expect(f, &f->cl, "a NO [UNAVAILABLE] Mailbox server temporarily unavailable");
	assert_int_equal(f->s->state, SS_CMD);
	assert_int_equal(f->mp.counters[MPC_UPSTREAM_CONNECT_FAIL], 2);
}

/* A connect that never completes (a full accept queue): the connect timer, a retry, a failure. */
static void
test_connect_timeout(void **state)
{
	struct fx *f = *state;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int fill[4], i;

	close(f->lfd);
	f->lfd = listen_loopback(&f->lport, 0);
	set_server(f, f->lport);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(f->lport);
	for (i = 0; i < 4; i++) {               /* fill the accept queue */
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		assert_true(fill[i] >= 0);
		(void)connect(fill[i], (struct sockaddr *)&sin, sizeof(sin));
	}
	f->cfg->mailproxy.upstream_retries = 1;
	plant(f, "alice@example.com", "alice@example.com mbox1");
	expect(f, &f->cl, "* OK ");
	send_str(f, &f->cl, "a LOGIN alice secret\r\n");
	wait_state(f, SS_UP_CONNECT);
	assert_true(f->s->timer.repeat > 0.29 && f->s->timer.repeat < 0.31);
	expect(f, &f->cl, "a NO [UNAVAILABLE] Mailbox server temporarily unavailable");
	assert_int_equal(f->s->state, SS_CMD);
	assert_int_equal(f->mp.counters[MPC_UPSTREAM_CONNECT_FAIL], 1);
	for (i = 0; i < 4; i++)
		close(fill[i]);
}

/* An unknown name is answered as a wrong password, after the failure delay. */
static void
test_unknown_fail_delay(void **state)
{
	struct fx *f = *state;
	double t0;

	plant(f, "bob@example.com", "-");
	f->cfg->mailproxy.failure_delay_ms = 1200;
	expect(f, &f->cl, "* OK ");
	t0 = now();
	send_str(f, &f->cl, "a LOGIN bob secret\r\n");
	wait_state(f, SS_FAIL_DELAY);
	assert_non_null(f->s->login);
	assert_int_equal(f->s->login->cred.password_len, 0);   /* not kept while waiting */
	peer_fill(&f->cl);
	assert_null(strstr(f->cl.buf, "a NO"));
	expect(f, &f->cl, "a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
	assert_true(now() - t0 >= 0.19);        /* delay - 1 s at the least, plus jitter */
	assert_int_equal(f->s->state, SS_CMD);
	assert_null(f->s->login);
	/* without a delay, at once */
	f->cfg->mailproxy.failure_delay_ms = 0;
	send_str(f, &f->cl, "b LOGIN bob secret\r\n");
	expect(f, &f->cl, "b NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
	assert_int_equal(f->mp.counters[MPC_LOGIN_FAIL], 2);
}

/* A name not in the cache goes to a worker; without a directory that is a temporary failure. */
static void
test_lookup_job_tempfail(void **state)
{
	struct fx *f = *state;

	expect(f, &f->cl, "* OK ");
	send_str(f, &f->cl, "a LOGIN carol secret\r\n");
	expect(f, &f->cl, "a NO [UNAVAILABLE] Account lookup temporarily unavailable");
	wait_state(f, SS_CMD);
	assert_null(f->s->login);
	assert_int_equal(f->mp.counters[MPC_LOGIN_TEMPFAIL], 1);
}

/* A lookup that does not come back (a directory that never answers): the lookup timer. */
static void
test_lookup_timeout(void **state)
{
	struct fx *f = *state;
	uint16_t port;
	int silent = listen_loopback(&port, 16);

	f->cfg->ldap.uri.n = 1;
	snprintf(f->cfg->ldap.uri.item[0], sizeof(f->cfg->ldap.uri.item[0]),
	         "ldap://127.0.0.1:%u", port);
	f->cfg->ldap.timeout_ms = 1500;
	expect(f, &f->cl, "* OK ");
	send_str(f, &f->cl, "a LOGIN carol secret\r\n");
	wait_state(f, SS_LOOKUP);
	assert_non_null(f->s->login->job);
	expect(f, &f->cl, "a NO [UNAVAILABLE] Account lookup temporarily unavailable");
	assert_int_equal(f->s->state, SS_CMD);
	assert_null(f->s->login);               /* the job was cancelled with it */
	close(silent);
}

/* POP3: USER/PASS replayed to the mailbox server, then the relay. */
static void
test_pop3_login(void **state)
{
	struct fx *f = *state;

	plant(f, "alice@example.com", "alice@example.com mbox1");
	expect(f, &f->cl, "+OK ");
	send_str(f, &f->cl, "USER alice\r\nPASS secret\r\n");
	expect(f, &f->cl, "+OK\r\n");
	srv_accept(f);
	send_str(f, &f->up, "+OK Dovecot ready.\r\n");
	expect(f, &f->up, "USER alice\r\n");
	send_str(f, &f->up, "+OK\r\n");
	expect(f, &f->up, "PASS secret\r\n");
	send_str(f, &f->up, "+OK Logged in.\r\n");
	expect(f, &f->cl, "+OK Logged in.\r\n");
	wait_state(f, SS_RELAY);
	send_str(f, &f->cl, "STAT\r\n");
	expect(f, &f->up, "STAT\r\n");
}

/* POP3 STLS with a command pipelined behind it: dropped, then TLS. */
static void
test_pop3_stls(void **state)
{
	struct fx *f = *state;

	expect(f, &f->cl, "+OK ");
	send_str(f, &f->cl, "STLS\r\nUSER mallory\r\n");
	expect(f, &f->cl, "+OK Begin TLS negotiation now.\r\n");
	wait_state(f, SS_HANDSHAKE);
	assert_int_equal(f->s->user[0], '\0');
	peer_tls(f, &f->cl, 0);
	wait_state(f, SS_CMD);
	send_str(f, &f->cl, "NOOP\r\n");
	expect(f, &f->cl, "+OK\r\n");
	assert_int_equal(f->s->user[0], '\0');  /* the pipelined USER was never seen */
	assert_int_equal(f->cl.len, 0);
}

/* TLS towards the mailbox server: its handshake state, then the login. */
static void
test_upstream_tls(void **state)
{
	struct fx *f = *state;

	f->cfg->mailproxy.upstream_tls = 1;
	plant(f, "alice@example.com", "alice@example.com mbox1");
	expect(f, &f->cl, "* OK ");
	send_str(f, &f->cl, "a LOGIN alice secret\r\n");
	srv_accept(f);
	wait_state(f, SS_UP_TLS);
	peer_tls(f, &f->up, 1);
	wait_state(f, SS_UP_LOGIN);
	assert_true(f->s->up.tls);
	send_str(f, &f->up, "* OK ready\r\n");
	expect(f, &f->up, "gh2 LOGIN \"alice\" \"secret\"\r\n");
	send_str(f, &f->up, "gh2 OK Logged in\r\n");
	expect(f, &f->cl, "a OK Logged in\r\n");
	wait_state(f, SS_RELAY);
}

/* A mailbox server that does not speak TLS: temporary failure. */
static void
test_upstream_tls_fail(void **state)
{
	struct fx *f = *state;

	f->cfg->mailproxy.upstream_tls = 1;
	plant(f, "alice@example.com", "alice@example.com mbox1");
	expect(f, &f->cl, "* OK ");
	send_str(f, &f->cl, "a LOGIN alice secret\r\n");
	srv_accept(f);
	send_str(f, &f->up, "* OK plain text is not TLS\r\n");
	expect(f, &f->cl, "a NO [UNAVAILABLE] Mailbox server temporarily unavailable");
	wait_state(f, SS_CMD);
	assert_null(f->s->up.ssl);
}

/* Shutdown: a session before login gets a goodbye and closes once it is written. */
static void
test_shutdown_preauth(void **state)
{
	struct fx *f = *state;

	expect(f, &f->cl, "* OK ");
	session_shutdown_all(&f->mp, 0);
	expect(f, &f->cl, "* BYE Server shutting down.\r\n");
	wait_closed(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cmd_logout, setup_imap, teardown),
		cmocka_unit_test_setup_teardown(test_cmd_timeout, setup_imap, teardown),
		cmocka_unit_test_setup_teardown(test_bad_commands, setup_imap, teardown),
		cmocka_unit_test_setup_teardown(test_starttls_drops_pipelined, setup_imap, teardown),
		cmocka_unit_test_setup_teardown(test_cmd_output_backpressure, setup_imap_slow, teardown),
		cmocka_unit_test_setup_teardown(test_starttls_flush_and_closing_timeout, setup_imap,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_handshake_timeout, setup_imaps, teardown),
		cmocka_unit_test_setup_teardown(test_handshake_fail, setup_imaps, teardown),
		cmocka_unit_test_setup_teardown(test_handshake_probe_close, setup_imaps, teardown),
		cmocka_unit_test_setup_teardown(test_login_relay_idle, setup_imap, teardown),
		cmocka_unit_test_setup_teardown(test_relay_client_eof, setup_imap, teardown),
		cmocka_unit_test_setup_teardown(test_relay_backpressure, setup_imap, teardown),
		cmocka_unit_test_setup_teardown(test_fairness_cap, setup_imaps, teardown),
		cmocka_unit_test_setup_teardown(test_fairness_close_while_booked, setup_imaps, teardown),
		cmocka_unit_test_setup_teardown(test_login_refused_by_server, setup_imap, teardown),
		cmocka_unit_test_setup_teardown(test_server_closes_mid_login, setup_imap, teardown),
		cmocka_unit_test_setup_teardown(test_client_closes_mid_login, setup_imap, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_timeout, setup_imap, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_bad_greeting, setup_imap, teardown),
		cmocka_unit_test_setup_teardown(test_connect_retry, setup_imap, teardown),
		cmocka_unit_test_setup_teardown(test_connect_timeout, setup_imap, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_fail_delay, setup_imap, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_job_tempfail, setup_imap, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_timeout, setup_imap, teardown),
		cmocka_unit_test_setup_teardown(test_pop3_login, setup_pop3, teardown),
		cmocka_unit_test_setup_teardown(test_pop3_stls, setup_pop3, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_tls, setup_imap, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_tls_fail, setup_imap, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_preauth, setup_imap, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
