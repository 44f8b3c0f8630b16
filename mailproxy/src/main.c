/*
 * gatehouse-mailproxy: options, configuration, startup, signals and
 * shutdown. -c FILE selects the configuration, -t checks it (and the
 * certificates) and exits, -f stays in the foreground (the default; kept
 * for service managers that pass it).
 *
 * SIGTERM/SIGINT: stop accepting, say BYE to sessions before login, let
 * logged-in sessions finish up to shutdown_grace, then close the rest.
 * SIGHUP: reload the [mailproxy] settings that can change at run time,
 * the certificates and the audit file.
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
	ev_timer_init(&mp->grace, grace_cb, mp->cfg->mailproxy.shutdown_grace_ms / 1000.0, 0.);
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

/* Log that [mailproxy] <key> changed (<changed>) but keeps its value until a restart. */
static void
reload_warn(struct mp *mp, const char *key, int changed)
{
	if (changed)
		log_warnx(&mp->log, "reload: [mailproxy] %s changed: it takes effect at the next "
		          "restart; the running value is kept", key);
}

static void
hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct mp *mp = w->data;
	struct gh_config *nc = cfg_new();
	struct cfg_mailproxy keep;
	char err[512];

	(void)loop;
	(void)revents;
	log_notice(&mp->log, "SIGHUP: reloading %s and the certificates", mp->cfg_path);
	if (nc == NULL || cfg_load(nc, mp->cfg_path, CFG_NEED_MAILPROXY, err, sizeof(err)) < 0) {
		log_err(&mp->log, "reload: %s; keeping the running configuration",
		        nc ? err : "out of memory");
		free(nc);
		tls_reload_certs(mp);
		return;
	}
	/* worker threads read the other sections concurrently: only the
	 * loop-owned [mailproxy] settings change; listeners, the mailbox
	 * server TLS context and the watched certs directory need a restart */
	keep = mp->cfg->mailproxy;
	reload_warn(mp, "upstream_tls", keep.upstream_tls != nc->mailproxy.upstream_tls);
	reload_warn(mp, "upstream_verify", keep.upstream_verify != nc->mailproxy.upstream_verify);
	reload_warn(mp, "upstream_ca", strcmp(keep.upstream_ca, nc->mailproxy.upstream_ca) != 0);
	reload_warn(mp, "certs", strcmp(keep.certs, nc->mailproxy.certs) != 0);
	mp->cfg->mailproxy = nc->mailproxy;
	mp->cfg->mailproxy.upstream_tls = keep.upstream_tls;
	mp->cfg->mailproxy.upstream_verify = keep.upstream_verify;
	memcpy(mp->cfg->mailproxy.upstream_ca, keep.upstream_ca, sizeof(keep.upstream_ca));
	memcpy(mp->cfg->mailproxy.certs, keep.certs, sizeof(keep.certs));
	mp->cfg->mailproxy.imap = keep.imap;
	mp->cfg->mailproxy.imaps = keep.imaps;
	mp->cfg->mailproxy.pop3 = keep.pop3;
	mp->cfg->mailproxy.pop3s = keep.pop3s;
	mp->cfg->mailproxy.threads = keep.threads;
	mp->cfg->mailproxy.queue_size = keep.queue_size;
	mp->cfg->mailproxy.buffer_size = keep.buffer_size;
	memcpy(mp->cfg->mailproxy.metrics, keep.metrics, sizeof(keep.metrics));
	/* the rate limit is the one [log] setting a reload changes */
	log_limit_set(&mp->log_limit, nc->log.rate_limit, nc->log.rate_limit_interval_ms);
	free(nc);
	tls_reload_certs(mp);
	audit_open(mp);
}

int
main(int argc, char **argv)
{
	struct mp *mp;
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
	if (mp == NULL || (mp->cfg = cfg_new()) == NULL) {
		fprintf(stderr, "gatehouse-mailproxy: out of memory\n");
		return 1;
	}
	mp->cfg_path = path;
	mp->audit_fd = -1;
	mp->metrics = NULL;
	mp->inotify_fd = -1;
	LIST_INIT(&mp->sessions);
	SLIST_INIT(&mp->listeners);
	if (cfg_load(mp->cfg, path, CFG_NEED_MAILPROXY | CFG_NEED_LDAP | CFG_NEED_SERVERS,
	             err, sizeof(err)) < 0) {
		fprintf(stderr, "gatehouse-mailproxy: %s\n", err);
		return 1;
	}
	if (log_init(&mp->log, "gatehouse-mailproxy", check ? "stderr" : mp->cfg->log.target,
	             mp->cfg->log.level, mp->cfg->log.facility) < 0) {
		fprintf(stderr, "gatehouse-mailproxy: bad [log] settings\n");
		return 1;
	}
	if (log_limit_init(&mp->log_limit, mp->cfg->log.rate_limit,
	                   mp->cfg->log.rate_limit_interval_ms, NULL, NULL) < 0) {
		fprintf(stderr, "gatehouse-mailproxy: cannot set up the log rate limit\n");
		return 1;
	}
	mp->log.limit = &mp->log_limit;
	mp->loop = ev_default_loop(EVFLAG_AUTO);
	if (tls_init(mp, err, sizeof(err)) < 0) {
		log_err(&mp->log, "%s", err);
		return 1;
	}
	if (check) {
		printf("%s: configuration OK%s\n", path,
		       tls_available(mp) ? "" : " (no usable certificate: no TLS)");
		tls_free(mp);
		return 0;
	}
	if ((mp->cfg->mailproxy.imaps.n || mp->cfg->mailproxy.pop3s.n) && !tls_available(mp))
		log_warnx(&mp->log, "imaps/pop3s listeners configured but no certificate loaded");
	if (mbuf_pool_init(&mp->pool, mp->cfg->mailproxy.buffer_size, 1024) < 0 ||
	    agent_init(&mp->ag, mp->cfg, &mp->log) < 0) {
		log_err(&mp->log, "cannot initialise");
		return 1;
	}
	mp->jq = jobq_start(&mp->ag, mp->cfg->mailproxy.threads ? mp->cfg->mailproxy.threads : 1,
	                    mp->cfg->mailproxy.queue_size ? mp->cfg->mailproxy.queue_size : 1);
	if (mp->jq == NULL || (mp->port = jobq_port_new(mp->jq, mp->loop)) == NULL) {
		log_err(&mp->log, "cannot start the job queue");
		goto out;
	}
	if (listener_open_all(mp, err, sizeof(err)) < 0) {
		log_err(&mp->log, "%s", err);
		goto out;
	}
	if (audit_open(mp) < 0 || mp_metrics_start(mp) < 0)
		goto out;
	tls_watch_start(mp);
	ev_signal_init(&mp->sig_term, term_cb, SIGTERM);
	ev_signal_init(&mp->sig_int, term_cb, SIGINT);
	ev_signal_init(&mp->sig_hup, hup_cb, SIGHUP);
	mp->sig_term.data = mp->sig_int.data = mp->sig_hup.data = mp;
	ev_signal_start(mp->loop, &mp->sig_term);
	ev_signal_start(mp->loop, &mp->sig_int);
	ev_signal_start(mp->loop, &mp->sig_hup);
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
	if (mp->jq != NULL)
		jobq_stop(mp->jq);
	if (mp->port != NULL)
		jobq_port_free(mp->port);
	listener_close_all(mp);
	mp_metrics_stop(mp);
	tls_free(mp);
	agent_free(&mp->ag);
	mbuf_pool_free(&mp->pool);
	if (mp->audit_fd >= 0)
		close(mp->audit_fd);
	ev_loop_destroy(mp->loop);
	/* the worker threads are gone: nothing else logs through the limiter */
	log_limit_flush(&mp->log, 1);
	mp->log.limit = NULL;
	log_limit_free(&mp->log_limit);
	free(mp->cfg);
	free(mp);
	return rc;
}
