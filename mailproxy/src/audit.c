/*
 * The audit trail: one line per login attempt with time, client address
 * and port, protocol, TLS, user, mailbox server, result and latency.
 * Written to its own file when configured, else to the main log. Never
 * holds a password; the user name is escaped so it cannot forge lines.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mp.h"

/* Open the audit file of <mp> (append). Returns 0, or -1 (logged). */
int
audit_open(struct mp *mp)
{
	const char *path = mp_cfg(mp)->mailproxy.audit_log;
	int fd;

	if (path[0] == '\0') {
		if (mp->audit_fd >= 0)
			close(mp->audit_fd);
		mp->audit_fd = -1;
		return 0;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		log_warn(&mp->log, "audit_log %s", path);
		return -1;
	}
	if (mp->audit_fd >= 0)
		close(mp->audit_fd);
	mp->audit_fd = fd;
	return 0;
}

/* Copy <in> into <out> (<len> bytes) with anything but safe ASCII as \xNN. */
static void
escape(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in != '\0' && o + 5 < len; in++) {
		unsigned char c = (unsigned char)*in;

		if (c > 0x20 && c < 0x7f && c != '\\' && c != '"') {
			out[o++] = (char)c;
		} else {
			snprintf(out + o, len - o, "\\x%02x", c);
			o += 4;
		}
	}
	out[o] = '\0';
}

/* Write the audit line for the login attempt of <s> as <user> with <result>. */
void
audit_login(struct session *s, const char *user, const char *result)
{
	struct mp *mp = s->mp;
	char u[4 * 64 + 8], line[1024], ts[40];
	double ms = s->login ? (ev_now(mp->loop) - s->login->start) * 1000.0 : 0.0;
	struct timespec now;
	struct tm tm;
	int n;

	escape(user ? user : "", u, sizeof(u));
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	n = snprintf(line, sizeof(line),
	             "login time=%s session=%llu client=%s port=%u proto=%s tls=%s user=\"%s\" "
	             "server=%s result=%s latency_ms=%.1f\n",
	             ts, (unsigned long long)s->id, s->ip, s->port,
	             s->proto == MP_IMAP ? "imap" : "pop3", s->cl.tls ? "yes" : "no", u,
	             s->server[0] ? s->server : "-", result, ms < 0 ? 0.0 : ms);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	if (mp->audit_fd >= 0) {
		if (write(mp->audit_fd, line, (size_t)n) < 0)
			log_limited_errno(&mp->log, LOG_WARNING, "audit-write", "audit_log write");
	} else {
		line[n - 1] = '\0';
		log_info(&mp->log, "%s", line);
	}
}
