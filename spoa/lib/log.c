/*
 * Logging: one formatted line per call, written with a single write(2) on
 * stderr so that lines from several threads never interleave, or handed to
 * syslog(3).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "log_limit.h"

static const struct { const char *name; int value; } levels[] = {
	{ "err", LOG_ERR }, { "error", LOG_ERR }, { "warning", LOG_WARNING },
	{ "warn", LOG_WARNING }, { "notice", LOG_NOTICE }, { "info", LOG_INFO },
	{ "debug", LOG_DEBUG },
};

static const struct { const char *name; int value; } facilities[] = {
	{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
	{ "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

static const char *
level_name(int level)
{
	switch (level) {
	case LOG_EMERG: case LOG_ALERT: case LOG_CRIT: case LOG_ERR: return "error";
	case LOG_WARNING: return "warning";
	case LOG_NOTICE: return "notice";
	case LOG_INFO: return "info";
	default: return "debug";
	}
}

/*
 * Set up <lg> for <ident> with <target>, <level> and <facility> (NULL keeps
 * the default). Returns 0, or -1 on an unknown name.
 */
int
log_init(struct logger *lg, const char *ident, const char *target, const char *level,
         const char *facility)
{
	size_t i;
	int fac = LOG_MAIL, found;

	memset(lg, 0, sizeof(*lg));
	lg->level = LOG_INFO;
	snprintf(lg->ident, sizeof(lg->ident), "%s", ident ? ident : "gatehouse");
	if (level != NULL) {
		found = 0;
		for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
			if (strcasecmp(level, levels[i].name) == 0) {
				lg->level = levels[i].value;
				found = 1;
			}
		if (!found)
			return -1;
	}
	if (facility != NULL) {
		found = 0;
		for (i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
			if (strcasecmp(facility, facilities[i].name) == 0) {
				fac = facilities[i].value;
				found = 1;
			}
		if (!found)
			return -1;
	}
	if (target == NULL || strcmp(target, "stderr") == 0)
		return 0;
	if (strcmp(target, "syslog") != 0)
		return -1;
	lg->use_syslog = 1;
	openlog(lg->ident, LOG_PID | LOG_NDELAY, fac);
	return 0;
}

/* Tell whether <level> passes <lg>'s threshold. */
int
log_enabled(const struct logger *lg, int level)
{
	/* a reload may change the level while worker threads log */
	return level <= (lg ? __atomic_load_n(&lg->level, __ATOMIC_RELAXED) : LOG_INFO);
}

/* Change the level of <lg> to <level> (a name as for log_init()). Returns 0, or -1 when unknown. */
int
log_set_level(struct logger *lg, const char *level)
{
	size_t i;

	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcasecmp(level, levels[i].name) == 0) {
			__atomic_store_n(&lg->level, levels[i].value, __ATOMIC_RELAXED);
			return 0;
		}
	return -1;
}

/* Append formatted text at <*off> in <buf> (<cap> bytes), truncating. */
static void
append(char *buf, size_t cap, size_t *off, const char *fmt, va_list ap)
{
	int n;

	if (*off + 1 >= cap)
		return;
	n = vsnprintf(buf + *off, cap - *off, fmt, ap);
	if (n < 0)
		return;
	*off = ((size_t)n >= cap - *off) ? cap - 1 : *off + (size_t)n;
}

static void
appendf(char *buf, size_t cap, size_t *off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
appendf(char *buf, size_t cap, size_t *off, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	append(buf, cap, off, fmt, ap);
	va_end(ap);
}

static void
log_vwrite(const struct logger *lg, int level, const char *suffix, const char *fmt, va_list ap)
{
	char line[2048];
	size_t off = 0, cap = sizeof(line) - 1;	/* room for the newline */

	line[0] = '\0';
	if (lg == NULL || !lg->use_syslog) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		off = strftime(line, cap, "%Y-%m-%dT%H:%M:%S", &tm);
		appendf(line, cap, &off, ".%03ldZ %s[%d] %s: ", ts.tv_nsec / 1000000,
		        lg ? lg->ident : "gatehouse", (int)getpid(), level_name(level));
	}
	append(line, cap, &off, fmt, ap);
	if (suffix != NULL)
		appendf(line, cap, &off, ": %s", suffix);
	/* control characters from peers never reach the log raw */
	for (size_t i = 0; i < off; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	if (lg != NULL && lg->use_syslog) {
		syslog(level, "%s", line);
		return;
	}
	line[off++] = '\n';
	(void)!write(STDERR_FILENO, line, off);
}

/* Log <fmt> at <level> through <lg>. */
void
log_msg(const struct logger *lg, int level, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(lg, level))
		return;
	va_start(ap, fmt);
	log_vwrite(lg, level, NULL, fmt, ap);
	va_end(ap);
}

/* Log <fmt> at <level> with strerror(errno) appended. */
void
log_errno(const struct logger *lg, int level, const char *fmt, ...)
{
	char ebuf[128];
	const char *e;
	int saved = errno;
	va_list ap;

	if (!log_enabled(lg, level))
		return;
	e = strerror_r(saved, ebuf, sizeof(ebuf));
	va_start(ap, fmt);
	log_vwrite(lg, level, e, fmt, ap);
	va_end(ap);
	errno = saved;
}

/* Log <fmt> at <level> unless <kind> is over its rate limit. */
void
log_limited(const struct logger *lg, int level, const char *kind, const char *fmt, ...)
{
	va_list ap;

	if (!log_limit_allow(lg, level, kind))
		return;
	va_start(ap, fmt);
	log_vwrite(lg, level, NULL, fmt, ap);
	va_end(ap);
}

/* Log <fmt> and strerror(errno) at <level> unless <kind> is over its rate limit. */
void
log_limited_errno(const struct logger *lg, int level, const char *kind, const char *fmt, ...)
{
	char ebuf[128];
	const char *e;
	int saved = errno;
	va_list ap;

	/* a summary written first must not change the errno reported */
	if (!log_limit_allow(lg, level, kind)) {
		errno = saved;
		return;
	}
	e = strerror_r(saved, ebuf, sizeof(ebuf));
	va_start(ap, fmt);
	log_vwrite(lg, level, e, fmt, ap);
	va_end(ap);
	errno = saved;
}
