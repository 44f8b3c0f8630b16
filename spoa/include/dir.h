/*
 * The account directory: one LDAP connection, used by one thread at a
 * time. Finds the single entry for a login name or an account id and
 * reads its canonical name, mailbox host and id. Reconnects and rebinds
 * by itself after the server went away.
 */
#ifndef GH_DIR_H
#define GH_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "cfg-t.h"
#include "log.h"

#define DIR_VAL_MAX 256   /* longest attribute value kept, bytes incl. NUL */

struct dir;

/* What to search by. */
enum dir_by {
	DIR_BY_NAME = 0,      /* [ldap] account_filter */
	DIR_BY_ID,            /* [ldap] id_filter */
	DIR_BY_VHOST,         /* [ldap] vhost_filter: does any entry exist? */
};

/* Outcome of dir_lookup(). */
enum dir_rc {
	DIR_OK = 0,           /* exactly one entry; out is filled */
	DIR_UNKNOWN,          /* no entry */
	DIR_TEMPFAIL,         /* no server reachable (after one reconnect), busy, timed out */
	DIR_ERROR,            /* bad filter or base, refused by the server */
	DIR_UNUSABLE,         /* several entries match, or the one found is malformed */
};

/* The attributes read from an account entry. Empty string = absent. */
struct dir_entry {
	char name[DIR_VAL_MAX];   /* [ldap] name_attr, lower-cased */
	char host[DIR_VAL_MAX];   /* [ldap] host_attr */
	char id[DIR_VAL_MAX];     /* [ldap] id_attr */
};

/*
 * Initialise libldap's global state. Call once, before any thread uses
 * dir_new() (libldap initialises its globals on first use, unsafely when
 * threads race). Returns 0 or -1.
 */
int dir_lib_init(void);

/*
 * Create a directory handle for <cfg> logging through <lg>. Both must
 * outlive the handle. No connection is made until the first lookup.
 * Returns NULL when out of memory.
 */
struct dir *dir_new(const struct cfg_ldap *cfg, const struct logger *lg);

/* Close the connection of <d> and free it (NULL is fine). */
void dir_free(struct dir *d);

/*
 * Find the entry whose name (alias) or id is <key> (already normalised)
 * and fill <out>; for DIR_BY_VHOST, only tell whether any entry names the
 * virtual host <key> (DIR_OK) or none does (DIR_UNKNOWN), <out> left empty. Connects and binds when needed; when the server went
 * away, reconnects and rebinds once before giving up. Every call tries
 * the servers: failing fast during an outage is the caller's business
 * (agent_ldap_admit()). SIGPIPE is blocked in the calling thread for the
 * duration. Returns a dir_rc.
 */
enum dir_rc dir_lookup(struct dir *d, enum dir_by by, const char *key, struct dir_entry *out);

/* Receives one alias value <alias> (a C string, as stored) with its <arg>. */
typedef void (*dir_alias_fn)(const char *alias, void *arg);

/*
 * Do what dir_lookup() does by name for <key>, and when the entry is found
 * (DIR_OK) also call <fn> with <arg> for every value of its [ldap]
 * name_attr and alias_attrs attributes, before returning. Values holding control
 * characters or longer than DIR_VAL_MAX - 1 bytes (never a login name) are
 * skipped. Blocking, like dir_lookup().
 */
enum dir_rc dir_lookup_aliases(struct dir *d, const char *key, struct dir_entry *out,
                               dir_alias_fn fn, void *arg);

/*
 * Probe LDAP server <uri> as a lookup connects to it: the same options
 * (LDAPv3, network and operation timeouts, restart, no referrals) and the
 * same simple bind as <cfg>'s bind_dn (anonymous when empty), each step
 * bounded by <timeout_ms> (0 or more than [ldap] timeout: that timeout),
 * then unbind. Blocking; SIGPIPE blocked in the calling thread meanwhile.
 * Returns 0, or -1 with the reason in <err> (<errlen> bytes).
 */
int dir_probe(const struct cfg_ldap *cfg, const char *uri, uint32_t timeout_ms, char *err,
              size_t errlen);

/* Return a description of the last failure of <d> (never NULL). */
const char *dir_last_error(const struct dir *d);

/* Return a short name for <rc> ("ok", "unknown", "tempfail", "error"). */
const char *dir_rc_name(enum dir_rc rc);

#endif
