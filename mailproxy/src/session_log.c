/*
 * Log lines of a session: every line names the session, the client and
 * the listener, and the account once known, so one grep follows one
 * connection. What a client can cause at will goes through the rate limit.
 */
#include <stdarg.h>
#include <stdio.h>

#include "mp.h"

/* Log <fmt> with <ap> for session <s> at <level>, prefixed with its id and client. */
static void
session_vlog(const struct session *s, int level, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_msg(&s->mp->log, level, "session %llu %s:%u %s%s%s: %s",
	        (unsigned long long)s->id, s->ip, s->port, s->li->name,
	        s->account[0] ? " user=" : "", s->account, msg);
}

/* Log <fmt> for session <s> at <level>, prefixed with its id and client. */
void
session_log(const struct session *s, int level, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(&s->mp->log, level))
		return;
	va_start(ap, fmt);
	session_vlog(s, level, fmt, ap);
	va_end(ap);
}

/*
 * Log <fmt> for session <s> at <level> like session_log(), unless messages
 * of <kind> are over their rate limit: for what a client causes at will.
 */
void
session_log_limited(const struct session *s, int level, const char *kind, const char *fmt, ...)
{
	va_list ap;

	if (!log_limit_allow(&s->mp->log, level, kind))
		return;
	va_start(ap, fmt);
	session_vlog(s, level, fmt, ap);
	va_end(ap);
}
