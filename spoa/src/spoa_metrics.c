/*
 * The Prometheus endpoint of the agent: the library counters and the
 * agent's own, served by the library's non-blocking responder (mhttp).
 */
#include <stdlib.h>

#include "metrics.h"
#include "mhttp.h"
#include "spoa.h"

/* Names and help texts of the daemon counters. */
static const struct {
	const char *name, *help, *type;
} sc_desc[SC__COUNT] = {
	[SC_CONN_ACCEPTED] = { "gatehouse_spoa_connections_total", "SPOP connections accepted", "counter" },
	[SC_CONN_REFUSED] = { "gatehouse_spoa_connections_refused_total", "SPOP connections refused (limit)", "counter" },
	[SC_FRAMES_IN] = { "gatehouse_spoa_frames_in_total", "SPOP frames received", "counter" },
	[SC_FRAMES_OUT] = { "gatehouse_spoa_frames_out_total", "SPOP frames sent", "counter" },
	[SC_HELLO] = { "gatehouse_spoa_hello_total", "HAPROXY-HELLO handshakes", "counter" },
	[SC_HEALTHCHECK] = { "gatehouse_spoa_healthchecks_total", "health-check HELLOs", "counter" },
	[SC_NOTIFY] = { "gatehouse_spoa_notify_total", "NOTIFY frames", "counter" },
	[SC_ACK] = { "gatehouse_spoa_ack_total", "ACK frames sent", "counter" },
	[SC_DISCONNECT_IN] = { "gatehouse_spoa_disconnect_in_total", "HAPROXY-DISCONNECT frames", "counter" },
	[SC_PROTO_ERROR] = { "gatehouse_spoa_protocol_errors_total", "connections closed on a protocol error", "counter" },
	[SC_DEADLINE] = { "gatehouse_spoa_deadline_total", "requests answered with status=timeout", "counter" },
	[SC_BUSY] = { "gatehouse_spoa_busy_total", "requests answered busy (queue full)", "counter" },
	[SC_ROUTE_OK] = { "gatehouse_spoa_route_ok_total", "route answers with a server", "counter" },
	[SC_ROUTE_NONE] = { "gatehouse_spoa_route_none_total", "requests naming no user", "counter" },
	[SC_ROUTE_FAIL] = { "gatehouse_spoa_route_fail_total", "route answers without a server", "counter" },
	[SC_LOGIN_REJECT] = { "gatehouse_spoa_login_throttled_total", "logins refused by throttling", "counter" },
	[SC_AUTH_OK] = { "gatehouse_spoa_auth_http_ok_total", "auth_http answers with a server", "counter" },
	[SC_AUTH_INVALID] = { "gatehouse_spoa_auth_http_invalid_total", "auth_http answers: invalid login (unknown or refused route)", "counter" },
	[SC_AUTH_THROTTLED] = { "gatehouse_spoa_auth_http_throttled_total", "auth_http answers: throttled", "counter" },
	[SC_AUTH_TEMPFAIL] = { "gatehouse_spoa_auth_http_tempfail_total", "auth_http answers: temporary failure", "counter" },
	[SC_AUTH_UNSUPPORTED] = { "gatehouse_spoa_auth_http_unsupported_total", "auth_http answers: protocol or method not served", "counter" },
	[SC_AUTH_BAD] = { "gatehouse_spoa_auth_http_bad_total", "auth_http bad requests (400)", "counter" },
};

/* Render every metric of the agent <arg> into <buf> from <*off>. */
static int
spoa_metrics_render(void *arg, char *buf, size_t len, size_t *off)
{
	struct spoa *sp = arg;
	int i;

	if (metrics_render(&sp->gens.cur->ag.metrics, buf, len, off) < 0)
		return -1;
	for (i = 0; i < SC__COUNT; i++) {
		if (metrics_render_one(sc_desc[i].name, sc_desc[i].help, sc_desc[i].type,
		                       atomic_load(&sp->c[i]), buf, len, off) < 0)
			return -1;
	}
	if (metrics_render_one("gatehouse_spoa_connections", "SPOP connections open", "gauge",
	                       sp->nconns, buf, len, off) < 0 ||
	    metrics_hist_render(&sp->ack_latency, "gatehouse_spoa_ack_latency_seconds",
	                        "time from NOTIFY to ACK", buf, len, off) < 0)
		return -1;
	return 0;
}

/*
 * Serve metrics of <sp> on "<ip>:<port>" <addr> (empty: off). Returns 0,
 * or -1 (logged) when the address is bad or cannot be bound.
 */
int
spoa_metrics_start(struct spoa *sp, const char *addr)
{
	sp->metrics = NULL;
	if (addr == NULL || addr[0] == '\0')
		return 0;
	/* SO_REUSEPORT: a new agent may start before the old one stops */
	sp->metrics = mhttp_start(sp->loop, addr, spoa_metrics_render, sp, 5., 1, &sp->log);
	return sp->metrics != NULL ? 0 : -1;
}

/* Stop serving metrics for <sp>. */
void
spoa_metrics_stop(struct spoa *sp)
{
	mhttp_stop(sp->metrics);
	sp->metrics = NULL;
}
