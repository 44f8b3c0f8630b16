/*
 * gatehouse-spoa: the SPOE agent HAProxy asks, for every HTTP request,
 * which mailbox server holds the user, and, for logins, whether the client
 * is throttled. Options: -c FILE (configuration), -t (check it and exit),
 * -f (foreground, log to stderr). SIGTERM/SIGINT drain, SIGHUP reloads.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cfg.h"
#include "parse.h"
#include "spoa.h"

#define DEFAULT_CONF "/etc/gatehouse/gatehouse.conf"

static void
usage(void)
{
	fprintf(stderr, "usage: gatehouse-spoa [-t] [-f] [-c FILE]\n"
	        "  -c FILE  configuration (default " DEFAULT_CONF ")\n"
	        "  -t       check the configuration and exit\n"
	        "  -f       stay in the foreground and log to stderr\n");
}

/* A connection from HAProxy on listener <l>: refused over max_connections. */
static void
accept_cb(struct listen_sock *l, int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct spoa *sp = l->data;
	char peer[SPOA_IP_MAX];

	(void)salen;
	if (sp->nconns >= spoa_cfg(sp)->spoa.max_connections) {
		spoa_count(sp, SC_CONN_REFUSED);
		log_limited(&sp->log, LOG_WARNING, "max-connections",
		            "spoa: max_connections (%u) reached, refusing",
		            spoa_cfg(sp)->spoa.max_connections);
		close(fd);
		return;
	}
	parse_addr_str(sa, 1, peer, sizeof(peer));
	spoa_conn_accept(sp, fd, peer);
}

/* Open every [spoa] listen address with SO_REUSEPORT. Returns 0 or -1. */
static int
listen_all(struct spoa *sp)
{
	const struct cfg_list *l = &spoa_cfg(sp)->spoa.listen;
	char err[512];
	int i;

	for (i = 0; i < l->n; i++) {
		if (listen_open(&sp->lis[sp->nlisten], sp->loop, l->item[i], NULL,
		                "the SPOP listener", accept_cb, sp, &sp->log, err, sizeof(err)) < 0) {
			log_err(&sp->log, "spoa: listen: %s", err);
			return -1;
		}
		sp->nlisten++;
		log_notice(&sp->log, "spoa: listening on %s", l->item[i]);
	}
	return 0;
}

/* Close every SPOP listener of <sp>. */
static void
listen_close_all(struct spoa *sp)
{
	int i;

	for (i = 0; i < sp->nlisten; i++)
		listen_close(&sp->lis[i]);
	sp->nlisten = 0;
}

static void
drain_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct spoa *sp = w->data;

	(void)revents;
	log_warnx(&sp->log, "spoa: drain timeout, closing %u connection(s)", sp->nconns);
	ev_break(loop, EVBREAK_ALL);
}

static void
sigterm_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct spoa *sp = w->data;
	struct spoa_conn *c, *tmp;

	(void)revents;
	if (sp->draining)
		return;
	log_notice(&sp->log, "spoa: signal %d, draining %u connection(s)", w->signum, sp->nconns);
	sp->draining = 1;
	listen_close_all(sp);
	ev_signal_stop(loop, &sp->sighup_w);
	/* In-flight requests are answered; then each connection gets an
	 * AGENT-DISCONNECT. Bounded by deadline + 2 s. */
	ev_timer_init(&sp->drain_w, drain_timeout_cb,
	              spoa_cfg(sp)->spoa.deadline_ms / 1000.0 + 2.0, 0.);
	sp->drain_w.data = sp;
	ev_timer_start(loop, &sp->drain_w);
	TAILQ_FOREACH_SAFE(c, &sp->conns, link, tmp)
		spoa_conn_drain(c);
	if (sp->nconns == 0)
		ev_break(loop, EVBREAK_ALL);
}

/* Report the counts of rate-limited messages whose window is over. */
static void
log_flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct spoa *sp = w->data;

	(void)loop;
	(void)revents;
	log_limit_flush(&sp->log, 0);
}

/*
 * Keep, in the new configuration <nc>, the running value of every key of
 * <sp> that only a restart changes (logged when it changed).
 */
static void
reload_keep(struct spoa *sp, struct gh_config *nc)
{
	const struct gh_config *rc = spoa_cfg(sp);
	struct gen_ctl *gc = &sp->gens;

	gen_keep(gc, "spoa", "listen", &rc->spoa.listen, &nc->spoa.listen, sizeof(nc->spoa.listen));
	gen_keep_str(gc, "spoa", "metrics", rc->spoa.metrics, nc->spoa.metrics,
	             sizeof(nc->spoa.metrics));
	gen_keep_str(gc, "spoa", "auth_http", rc->spoa.auth_http, nc->spoa.auth_http,
	             sizeof(nc->spoa.auth_http));
	gen_keep_str(gc, "log", "target", rc->log.target, nc->log.target, sizeof(nc->log.target));
	gen_keep_str(gc, "log", "facility", rc->log.facility, nc->log.facility,
	             sizeof(nc->log.facility));
}

/*
 * SIGHUP: build a generation from the file and make it current; requests
 * in flight finish on theirs. A file that does not load changes nothing.
 */
static void
sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct spoa *sp = w->data;
	struct gh_config *nc = cfg_new();
	struct gen *g;
	char err[1024];

	(void)loop;
	(void)revents;
	if (nc == NULL ||
	    cfg_load(nc, sp->conf_path, CFG_NEED_SPOA | CFG_NEED_SERVERS, err, sizeof(err)) < 0) {
		log_err(&sp->log, "spoa: reload failed, keeping the running configuration: %s",
		        nc != NULL ? err : "out of memory");
		free(nc);
		return;
	}
	reload_keep(sp, nc);
	g = gen_new(&sp->gens, nc, nc->spoa.threads, nc->spoa.queue_size, err, sizeof(err));
	if (g == NULL) {
		log_err(&sp->log, "spoa: reload failed, keeping the running configuration: %s",
		        err);
		return;
	}
	gen_install(&sp->gens, g);
	(void)log_set_level(&sp->log, g->cfg->log.level);
	log_limit_set(&sp->log_limit, g->cfg->log.rate_limit, g->cfg->log.rate_limit_interval_ms);
	log_notice(&sp->log, "spoa: configuration reloaded from %s", sp->conf_path);
}

int
main(int argc, char **argv)
{
	static struct spoa sp;
	struct gh_config *cfg;
	struct spoa_conn *c;
	struct gen *g;
	char err[1024];
	int opt, check = 0, rc = 0;

	sp.conf_path = DEFAULT_CONF;
	while ((opt = getopt(argc, argv, "c:tfh")) != -1) {
		switch (opt) {
		case 'c': sp.conf_path = optarg; break;
		case 't': check = 1; break;
		case 'f': sp.foreground = 1; break;
		default: usage(); return opt == 'h' ? 0 : 2;
		}
	}
	if (optind != argc) {
		usage();
		return 2;
	}
	cfg = cfg_new();
	if (cfg == NULL) {
		fprintf(stderr, "gatehouse-spoa: out of memory\n");
		return 1;
	}
	if (cfg_load(cfg, sp.conf_path, CFG_NEED_SPOA | CFG_NEED_SERVERS, err, sizeof(err)) < 0) {
		fprintf(stderr, "gatehouse-spoa: %s\n", err);
		free(cfg);
		return 1;
	}
	if (check) {
		printf("gatehouse-spoa: configuration %s is valid\n", sp.conf_path);
		free(cfg);
		return 0;
	}
	if (log_init(&sp.log, "gatehouse-spoa", sp.foreground ? "stderr" : cfg->log.target,
	             cfg->log.level, cfg->log.facility) < 0) {
		fprintf(stderr, "gatehouse-spoa: bad [log] settings\n");
		free(cfg);
		return 1;
	}
	if (log_limit_init(&sp.log_limit, cfg->log.rate_limit, cfg->log.rate_limit_interval_ms,
	                   NULL, NULL) < 0) {
		fprintf(stderr, "gatehouse-spoa: cannot set up the log rate limit\n");
		free(cfg);
		return 1;
	}
	sp.log.limit = &sp.log_limit;
	signal(SIGPIPE, SIG_IGN);
	sp.loop = ev_default_loop(EVFLAG_AUTO);
	sp.metrics = NULL;
	sp.authhttp = NULL;
	TAILQ_INIT(&sp.conns);
	spoa_conn_init(&sp);
	/* a pooled buffer holds a whole frame of the size offered at start */
	if (mbuf_pool_init(&sp.pool, cfg->spoa.max_frame_size + SPOP_LEN_SIZE < SPOA_BUF_MIN
	                                 ? SPOA_BUF_MIN : cfg->spoa.max_frame_size + SPOP_LEN_SIZE,
	                   SPOA_BUF_SPARE) < 0) {
		log_err(&sp.log, "spoa: out of memory");
		free(cfg);
		return 1;
	}
	gen_ctl_init(&sp.gens, sp.loop, &sp.log);
	g = gen_new(&sp.gens, cfg, cfg->spoa.threads, cfg->spoa.queue_size, err, sizeof(err));
	if (g == NULL) {
		log_err(&sp.log, "spoa: %s", err);
		return 1;
	}
	gen_install(&sp.gens, g);
	/* before the listeners: whoever sees them may signal at once */
	ev_signal_init(&sp.sigterm_w, sigterm_cb, SIGTERM);
	ev_signal_init(&sp.sigint_w, sigterm_cb, SIGINT);
	ev_signal_init(&sp.sighup_w, sighup_cb, SIGHUP);
	sp.sigterm_w.data = sp.sigint_w.data = sp.sighup_w.data = &sp;
	ev_signal_start(sp.loop, &sp.sigterm_w);
	ev_signal_start(sp.loop, &sp.sigint_w);
	ev_signal_start(sp.loop, &sp.sighup_w);
	if (listen_all(&sp) < 0) {
		rc = 1;
		goto out;
	}
	if (spoa_metrics_start(&sp, spoa_cfg(&sp)->spoa.metrics) < 0 ||
	    spoa_authsrv_start(&sp, spoa_cfg(&sp)->spoa.auth_http) < 0) {
		rc = 1;
		goto out;
	}
	/* suppressed counts are reported within a second of their window's end */
	ev_timer_init(&sp.log_flush_w, log_flush_cb, 1., 1.);
	sp.log_flush_w.data = &sp;
	ev_timer_start(sp.loop, &sp.log_flush_w);
	log_notice(&sp.log, "spoa: started (pid %d)", (int)getpid());
	ev_run(sp.loop, 0);
	log_limit_flush(&sp.log, 1);
	log_notice(&sp.log, "spoa: stopping");
out:
	sp.stopped = 1;
	ev_timer_stop(sp.loop, &sp.drain_w);
	ev_timer_stop(sp.loop, &sp.log_flush_w);
	spoa_conn_flush_pending(&sp);   /* what the last iteration queued */
	while ((c = TAILQ_FIRST(&sp.conns)) != NULL)
		spoa_conn_close(c);
	listen_close_all(&sp);
	spoa_metrics_stop(&sp);
	spoa_authsrv_stop(&sp);
	gen_ctl_stop(&sp.gens);
	mbuf_pool_free(&sp.pool);
	ev_loop_destroy(sp.loop);
	/* what was suppressed while shutting down; the limiter itself lives
	 * as long as the process, as a generation still referenced does */
	log_limit_flush(&sp.log, 1);
	return rc;
}
