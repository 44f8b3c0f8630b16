/*
 * Logging to stderr or syslog with levels. A logger is a small value owned
 * by whoever created it (a daemon's main, the CLI, a test) and passed to the
 * library through its context; the library has no logger of its own.
 * Never pass a password to any of these functions.
 */
#ifndef GH_LOG_H
#define GH_LOG_H

#include <syslog.h>

struct log_limit;

/* Where and how much to log. Levels are syslog's LOG_ERR .. LOG_DEBUG. */
struct logger {
	int level;        /* messages above this level are dropped */
	int use_syslog;   /* 1 = syslog(3), 0 = stderr */
	char ident[32];   /* program name shown on stderr lines */
	struct log_limit *limit; /* rate limiter of log_limited(); NULL = none (not owned) */
};

/*
 * Set up <lg> for program <ident>, logging to <target> ("stderr" or
 * "syslog") at <level> ("err", "warning", "notice", "info", "debug") with
 * syslog <facility> ("mail", "daemon", "local0".."local7"). NULL arguments
 * keep the defaults (stderr, info, mail). Returns 0, or -1 on a bad name.
 */
int log_init(struct logger *lg, const char *ident, const char *target,
             const char *level, const char *facility);

/* Log <fmt> at <level> through <lg> (NULL = stderr, info). */
void log_msg(const struct logger *lg, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Log <fmt> at <level> followed by ": " and strerror(errno). */
void log_errno(const struct logger *lg, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Log <fmt> at <level> unless messages of <kind> (a constant string naming
 * the message, such as "spop-error") are over the rate limit of <lg>
 * (lg->limit, see log_limit_allow()). For what a remote peer can cause at
 * will; never for operational messages.
 */
void log_limited(const struct logger *lg, int level, const char *kind, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Like log_limited() with ": " and strerror(errno) appended. */
void log_limited_errno(const struct logger *lg, int level, const char *kind,
                       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * Change the level of <lg> to <level> ("err" .. "debug"), safely while
 * other threads log through it. Returns 0, or -1 on an unknown name.
 */
int log_set_level(struct logger *lg, const char *level);

/* Tell whether a message at <level> would be written by <lg>. */
int log_enabled(const struct logger *lg, int level);

#define log_err(lg, ...)    log_msg((lg), LOG_ERR, __VA_ARGS__)
#define log_warnx(lg, ...)  log_msg((lg), LOG_WARNING, __VA_ARGS__)
#define log_warn(lg, ...)   log_errno((lg), LOG_WARNING, __VA_ARGS__)
#define log_notice(lg, ...) log_msg((lg), LOG_NOTICE, __VA_ARGS__)
#define log_info(lg, ...)   log_msg((lg), LOG_INFO, __VA_ARGS__)
#define log_debug(lg, fmt, ...) \
	log_msg((lg), LOG_DEBUG, "%s: " fmt, __func__, ##__VA_ARGS__)

#endif
