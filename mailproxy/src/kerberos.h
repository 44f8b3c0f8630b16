/*
 * Kerberos logins (SASL GSSAPI) of mail sessions: the mechanism's steps on
 * worker threads, the mapping of the principal to an account, the master
 * login on the user's behalf, and the checks of their settings.
 */
#ifndef GH_KERBEROS_H
#define GH_KERBEROS_H

#include <stddef.h>

struct session;
struct gh_config;
struct gen;
enum phase;

/* Called when a GSSAPI step ended; <job> goes to kerberos_end(). */
typedef void (*kerberos_done_fn)(struct session *s, void *job);

int kerberos_enabled(const struct session *s);
enum phase kerberos_start(struct session *s, const char *ir, size_t irlen);
enum phase kerberos_step(struct session *s, const char *b64, size_t len);
enum phase kerberos_run(struct session *s, kerberos_done_fn done, const char **why);
size_t kerberos_sasl_max(const struct session *s);
enum phase kerberos_end(struct session *s, void *job, const char **why);
int kerberos_upstream_ok(const struct session *s);
int kerberos_check(const struct gh_config *cfg, char *err, size_t errlen);
int kerberos_threads_start(struct gen *g, char *err, size_t errlen);

#endif
