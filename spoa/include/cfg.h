/*
 * gatehouse.conf: loading, checking and looking things up in the parsed
 * configuration. One keyword table describes every key, its type and its
 * default; both daemons and the CLI use it.
 */
#ifndef GH_CFG_H
#define GH_CFG_H

#include <stddef.h>
#include "cfg-t.h"

/* What a caller needs from the file; cfg_load() checks these are present. */
#define CFG_NEED_LDAP       0x01   /* a route source: [ldap] uri and base, or
                                      [lookup] urls with source = http */
#define CFG_NEED_SERVERS    0x02   /* at least one [server] */
#define CFG_NEED_MAILPROXY  0x04   /* at least one mail listener */
#define CFG_NEED_SPOA       0x08   /* a [spoa] listen address */

/*
 * Allocate a configuration holding every default. Returns NULL when out of
 * memory. The struct is large: always keep it on the heap. Free with free().
 */
struct gh_config *cfg_new(void);

/*
 * Load <path> into <cfg> (which must come from cfg_new()), then check that
 * the parts named by <need> (CFG_NEED_* bits) are present. On error returns
 * -1 and writes "file:line: key: reason" into <err> (<errlen> bytes).
 * An unknown section or key, a bad value, a duplicate key or a missing
 * required key are all errors. Returns 0 on success.
 */
int cfg_load(struct gh_config *cfg, const char *path, unsigned need,
             char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Find the mailbox server called <name> (case-insensitive) in <cfg>.
 * Returns a pointer into <cfg>, or NULL when there is no such server.
 */
const struct cfg_server *cfg_server_find(const struct gh_config *cfg, const char *name);

/*
 * Find the mailbox server whose address equals that of <sa> (the port is
 * ignored). Returns a pointer into <cfg>, or NULL.
 */
const struct cfg_server *cfg_server_by_addr(const struct gh_config *cfg,
                                            const struct sockaddr *sa);

/* Return the name of protocol <p> ("imap", "https", ...). */
const char *cfg_proto_name(enum gh_proto p);

/* Parse a protocol name <s> into <p>. Returns 0, or -1 when unknown. */
int cfg_proto_parse(const char *s, enum gh_proto *p);

/*
 * Name key number <i> the loader knows: <section> ("server" for [server
 * NAME]), <name> and <def> (its default, or NULL). Returns 0, or -1 past
 * the last key.
 */
int cfg_key(size_t i, const char **section, const char **name, const char **def);

#endif
