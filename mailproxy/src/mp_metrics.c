/*
 * The Prometheus endpoint of the mail proxy: the library counters, the
 * daemon's own counters and gauges and the login latency histogram,
 * served by the library's non-blocking responder (mhttp).
 */
#include "metrics.h"
#include "mhttp.h"
#include "mp.h"

static const struct { const char *name, *help; } counter_names[MPC__COUNT] = {
	[MPC_ACCEPTED] = { "gatehouse_mail_connections_total", "Client connections accepted" },
	[MPC_REFUSED_MAXCONN] = { "gatehouse_mail_refused_total", "Connections refused at max_connections" },
	[MPC_LOGIN_OK] = { "gatehouse_mail_login_ok_total", "Successful logins" },
	[MPC_LOGIN_FAIL] = { "gatehouse_mail_login_fail_total", "Failed logins" },
	[MPC_LOGIN_TEMPFAIL] = { "gatehouse_mail_login_tempfail_total", "Logins failed temporarily" },
	[MPC_LOGIN_THROTTLED] = { "gatehouse_mail_login_throttled_total", "Logins refused by the throttle" },
	[MPC_TLS_HANDSHAKE_FAIL] = { "gatehouse_mail_tls_handshake_fail_total", "Failed client TLS handshakes" },
	[MPC_STARTTLS] = { "gatehouse_mail_starttls_total", "STARTTLS/STLS upgrades" },
	[MPC_BAD_COMMANDS] = { "gatehouse_mail_bad_commands_total", "Bad pre-auth commands" },
	[MPC_UPSTREAM_CONNECT_FAIL] = { "gatehouse_mail_upstream_connect_fail_total", "Failed connects to mailbox servers" },
	[MPC_BYTES_C2U] = { "gatehouse_mail_bytes_client_to_server_total", "Relayed bytes, client to mailbox server" },
	[MPC_BYTES_U2C] = { "gatehouse_mail_bytes_server_to_client_total", "Relayed bytes, mailbox server to client" },
};

/* Render every metric of the mail proxy <arg> into <buf> from <*off>. */
static int
mp_metrics_render(void *arg, char *buf, size_t len, size_t *off)
{
	struct mp *mp = arg;
	int i;

	if (metrics_render(&mp->gens.cur->ag.metrics, buf, len, off) < 0)
		return -1;
	for (i = 0; i < MPC__COUNT; i++)
		if (metrics_render_one(counter_names[i].name, counter_names[i].help, "counter",
		                       mp->counters[i], buf, len, off) < 0)
			return -1;
	if (metrics_render_one("gatehouse_mail_sessions", "Open client sessions", "gauge",
	                       mp->nsessions, buf, len, off) < 0 ||
	    metrics_render_one("gatehouse_mail_handshakes", "TLS handshakes in progress", "gauge",
	                       mp->nhandshakes, buf, len, off) < 0 ||
	    metrics_render_one("gatehouse_mail_buffers", "Relay buffers in use", "gauge",
	                       mp->pool.in_use, buf, len, off) < 0 ||
	    metrics_hist_render(&mp->login_latency, "gatehouse_mail_login_seconds",
	                        "Login latency (lookup, connect, login)", buf, len, off) < 0)
		return -1;
	return 0;
}

/* Open the metrics endpoint of <mp> when configured. Returns 0 or -1 (logged). */
int
mp_metrics_start(struct mp *mp)
{
	mp->metrics = NULL;
	if (mp_cfg(mp)->mailproxy.metrics[0] == '\0')
		return 0;
	mp->metrics = mhttp_start(mp->loop, mp_cfg(mp)->mailproxy.metrics, mp_metrics_render, mp,
	                          5., 0, &mp->log);
	return mp->metrics != NULL ? 0 : -1;
}

/* Close the metrics endpoint of <mp>. */
void
mp_metrics_stop(struct mp *mp)
{
	mhttp_stop(mp->metrics);
	mp->metrics = NULL;
}
