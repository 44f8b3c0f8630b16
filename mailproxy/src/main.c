/*
 * gatehouse-mailproxy: options, configuration, startup, signals and
 * shutdown. -c FILE selects the configuration, -t checks it (and the
 * certificates) and exits, -f stays in the foreground (the default; kept
 * for service managers that pass it).
 *
 * SIGTERM/SIGINT: stop accepting, say BYE to sessions before login, let
 * logged-in sessions finish up to shutdown_grace, then close the rest.
 * SIGHUP: build a new configuration generation from the file (every
 * section: [server], [throttle], [ldap], [memcached], [log], [mailproxy])
 * and make it current; sessions finish on the generation they started
 * with. Keys only a restart changes keep their running value (logged).
 * Also reloads the certificates and reopens the audit file.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "mp.h"

#define DEFAULT_CONF "/etc/gatehouse/gatehouse.conf"

static void
usage(void)
{
	fprintf(stderr, "usage: gatehouse-mailproxy [-c FILE] [-t] [-f]\n"
	        "  -c FILE  configuration (default " DEFAULT_CONF ")\n"
	        "  -t       check the configuration and the certificates, then exit\n"
	        "  -f       run in the foreground (always the case)\n");
}

static void
grace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct mp *mp = w->data;

	(void)revents;
	log_notice(&mp->log, "shutdown grace period over: closing %u session(s)", mp->nsessions);
	session_shutdown_all(mp, 1);
	ev_break(loop, EVBREAK_ALL);
}

static void
term_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct mp *mp = w->data;

	(void)revents;
	if (mp->stopping) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	mp->stopping = 1;
	log_notice(&mp->log, "shutting down: %u session(s) open", mp->nsessions);
	listener_stop_all(mp);
	mp_metrics_stop(mp);
	session_shutdown_all(mp, 0);
	if (mp->nsessions == 0) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	ev_timer_init(&mp->grace, grace_cb, mp_cfg(mp)->mailproxy.shutdown_grace_ms / 1000.0, 0.);
	mp->grace.data = mp;
	ev_timer_start(loop, &mp->grace);
}

/* Report the counts of rate-limited messages whose window is over. */
static void
log_flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct mp *mp = w->data;

	(void)loop;
	(void)revents;
	log_limit_flush(&mp->log, 0);
}

#define MP_CFG_NEED (CFG_NEED_MAILPROXY | CFG_NEED_LDAP | CFG_NEED_SERVERS)

/*
 * Keep, in the new configuration <nc>, the running value of every key of
 * <mp> that only a restart changes (logged when it changed): listeners,
 * the watched certificate directory, the mailbox server TLS context, the
 * buffer pool, the metrics endpoint and where the log goes.
 */
static void
reload_keep(struct mp *mp, struct gh_config *nc)
{
	const struct gh_config *rc = mp_cfg(mp);
	const struct cfg_mailproxy *r = &rc->mailproxy;
	struct cfg_mailproxy *n = &nc->mailproxy;
	struct gen_ctl *gc = &mp->gens;

	gen_keep(gc, "mailproxy", "imap", &r->imap, &n->imap, sizeof(n->imap));
	gen_keep(gc, "mailproxy", "imaps", &r->imaps, &n->imaps, sizeof(n->imaps));
	gen_keep(gc, "mailproxy", "pop3", &r->pop3, &n->pop3, sizeof(n->pop3));
	gen_keep(gc, "mailproxy", "pop3s", &r->pop3s, &n->pop3s, sizeof(n->pop3s));
	gen_keep_str(gc, "mailproxy", "certs", r->certs, n->certs, sizeof(n->certs));
	gen_keep(gc, "mailproxy", "upstream_verify", &r->upstream_verify, &n->upstream_verify,
	         sizeof(n->upstream_verify));
	gen_keep_str(gc, "mailproxy", "upstream_ca", r->upstream_ca, n->upstream_ca,
	             sizeof(n->upstream_ca));
	gen_keep(gc, "mailproxy", "buffer_size", &r->buffer_size, &n->buffer_size,
	         sizeof(n->buffer_size));
	gen_keep_str(gc, "mailproxy", "metrics", r->metrics, n->metrics, sizeof(n->metrics));
	gen_keep_str(gc, "log", "target", rc->log.target, nc->log.target, sizeof(nc->log.target));
	gen_keep_str(gc, "log", "facility", rc->log.facility, nc->log.facility,
	             sizeof(nc->log.facility));
}

/*
 * SIGHUP: a new generation from the file, or, when it does not load, the
 * running one keeps serving. The certificates are reloaded either way.
 */
static void
hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct mp *mp = w->data;
	struct gh_config *nc = cfg_new();
	struct gen *g;
	char err[1024];

	(void)loop;
	(void)revents;
	log_notice(&mp->log, "SIGHUP: reloading %s and the certificates", mp->cfg_path);
	if (nc == NULL || cfg_load(nc, mp->cfg_path, MP_CFG_NEED, err, sizeof(err)) < 0 ||
	    kerberos_check(nc, err, sizeof(err)) < 0) {
		log_err(&mp->log, "reload failed, keeping the running configuration: %s",
		        nc != NULL ? err : "out of memory");
		free(nc);
		tls_reload_certs(mp);
		return;
	}
	reload_keep(mp, nc);
	g = gen_new(&mp->gens, nc, nc->mailproxy.threads, nc->mailproxy.queue_size, err,
	            sizeof(err));
	if (g != NULL && kerberos_threads_start(g, err, sizeof(err)) < 0) {
		gen_put(g);
		g = NULL;
	}
	if (g == NULL) {
		log_err(&mp->log, "reload failed, keeping the running configuration: %s",
		        err);
		tls_reload_certs(mp);
		return;
	}
	gen_install(&mp->gens, g);
	mp->cur_cfg = g->cfg;
	(void)log_set_level(&mp->log, g->cfg->log.level);
	log_limit_set(&mp->log_limit, g->cfg->log.rate_limit, g->cfg->log.rate_limit_interval_ms);
	log_notice(&mp->log, "configuration reloaded from %s: new sessions use it, %u open "
	           "session(s) finish on theirs", mp->cfg_path, mp->nsessions);
	tls_reload_certs(mp);
	audit_open(mp);
}

int
main(int argc, char **argv)
{
	struct mp *mp;
	struct gh_config *cfg;
	struct gen *g;
	const char *path = DEFAULT_CONF;
	char err[1024];
	int opt, check = 0, rc = 1;

	while ((opt = getopt(argc, argv, "c:tfh")) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 't': check = 1; break;
		case 'f': break;
		default: usage(); return opt == 'h' ? 0 : 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	mp = calloc(1, sizeof(*mp));
	if (mp == NULL || (cfg = cfg_new()) == NULL) {
		fprintf(stderr, "gatehouse-mailproxy: out of memory\n");
		return 1;
	}
	mp->cfg_path = path;
	mp->audit_fd = -1;
	mp->metrics = NULL;
	mp->inotify_fd = -1;
	LIST_INIT(&mp->sessions);
	session_sched_init(mp);
	SLIST_INIT(&mp->listeners);
	if (cfg_load(cfg, path, MP_CFG_NEED, err, sizeof(err)) < 0 ||
	    kerberos_check(cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "gatehouse-mailproxy: %s\n", err);
		free(cfg);
		free(mp);
		return 1;
	}
	mp->cur_cfg = cfg;
	if (log_init(&mp->log, "gatehouse-mailproxy", check ? "stderr" : cfg->log.target,
	             cfg->log.level, cfg->log.facility) < 0) {
		fprintf(stderr, "gatehouse-mailproxy: bad [log] settings\n");
		free(cfg);
		free(mp);
		return 1;
	}
	if (log_limit_init(&mp->log_limit, cfg->log.rate_limit,
	                   cfg->log.rate_limit_interval_ms, NULL, NULL) < 0) {
		fprintf(stderr, "gatehouse-mailproxy: cannot set up the log rate limit\n");
		return 1;
	}
	mp->log.limit = &mp->log_limit;
	mp->loop = ev_default_loop(EVFLAG_AUTO);
	gen_ctl_init(&mp->gens, mp->loop, &mp->log);
	if (tls_init(mp, err, sizeof(err)) < 0) {
		log_err(&mp->log, "%s", err);
		return 1;
	}
	if (check) {
		printf("%s: configuration OK%s\n", path,
		       tls_available(mp) ? "" : " (no usable certificate: no TLS)");
		tls_free(mp);
		log_limit_free(&mp->log_limit);
		free(cfg);
		free(mp);
		return 0;
	}
	if ((cfg->mailproxy.imaps.n || cfg->mailproxy.pop3s.n) && !tls_available(mp))
		log_warnx(&mp->log, "imaps/pop3s listeners configured but no certificate loaded");
	/* pre-login needs room for OUT_HIGH of answers and a whole server line */
	if (mbuf_pool_init(&mp->pool, cfg->mailproxy.buffer_size < MBUF_MIN ? MBUF_MIN
	                                                                 : cfg->mailproxy.buffer_size,
	                   1024) < 0) {
		log_err(&mp->log, "cannot initialise");
		return 1;
	}
	g = gen_new(&mp->gens, cfg, cfg->mailproxy.threads, cfg->mailproxy.queue_size, err,
	            sizeof(err));
	if (g != NULL && kerberos_threads_start(g, err, sizeof(err)) < 0) {
		gen_put(g);
		g = NULL;
	}
	if (g == NULL) {
		mp->cur_cfg = NULL;
		log_err(&mp->log, "%s", err);
		goto out;
	}
	gen_install(&mp->gens, g);
	/* before the listeners: whoever sees them may signal at once */
	ev_signal_init(&mp->sig_term, term_cb, SIGTERM);
	ev_signal_init(&mp->sig_int, term_cb, SIGINT);
	ev_signal_init(&mp->sig_hup, hup_cb, SIGHUP);
	mp->sig_term.data = mp->sig_int.data = mp->sig_hup.data = mp;
	ev_signal_start(mp->loop, &mp->sig_term);
	ev_signal_start(mp->loop, &mp->sig_int);
	ev_signal_start(mp->loop, &mp->sig_hup);
	if (listener_open_all(mp, err, sizeof(err)) < 0) {
		log_err(&mp->log, "%s", err);
		goto out;
	}
	if (audit_open(mp) < 0 || mp_metrics_start(mp) < 0)
		goto out;
	tls_watch_start(mp);
	/* suppressed counts are reported within a second of their window's end */
	ev_timer_init(&mp->log_flush_w, log_flush_cb, 1., 1.);
	mp->log_flush_w.data = mp;
	ev_timer_start(mp->loop, &mp->log_flush_w);
	log_notice(&mp->log, "gatehouse-mailproxy started");
	ev_run(mp->loop, 0);
	log_limit_flush(&mp->log, 1);
	log_notice(&mp->log, "gatehouse-mailproxy stopped");
	rc = 0;
out:
	session_shutdown_all(mp, 1);
	ev_timer_stop(mp->loop, &mp->grace);
	ev_timer_stop(mp->loop, &mp->log_flush_w);
	listener_close_all(mp);
	mp_metrics_stop(mp);
	tls_free(mp);
	/* every generation: queues stopped, jobs delivered, then freed */
	mp->cur_cfg = NULL;
	gen_ctl_stop(&mp->gens);
	mbuf_pool_free(&mp->pool);
	if (mp->audit_fd >= 0)
		close(mp->audit_fd);
	ev_loop_destroy(mp->loop);
	/* the worker threads are gone: nothing else logs through the limiter */
	log_limit_flush(&mp->log, 1);
	mp->log.limit = NULL;
	log_limit_free(&mp->log_limit);
	free(mp);
	return rc;
}
