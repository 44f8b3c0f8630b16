/*
 * memcached key encoding, part of the interface between gatehouse nodes and
 * the CLI (DESIGN.md "Route lookup"): prefix "gh:", a kind, then the key
 * itself when it is at most 200 bytes of printable ASCII without spaces,
 * otherwise '#' and the hex SHA-256 of it.
 */
#ifndef GH_KEYS_H
#define GH_KEYS_H

#include <stddef.h>

#define KEYS_MAX 256   /* buffer size that holds any encoded key */

/* Kinds of key; the string is what follows "gh:". */
#define KEYS_NAME      "n:"    /* route by name or alias */
#define KEYS_ID        "i:"    /* route by account id */
#define KEYS_THR_IP    "ti:"   /* attempts per client ip (group) */
#define KEYS_THR_USER  "tu:"   /* attempts per account */
#define KEYS_FAIL_IP   "fi:"   /* failed logins per client ip (group) */
#define KEYS_FAIL_USER "fu:"   /* failed logins per account */
#define KEYS_VHOST     "v:"    /* allowed virtual host (from LDAP): "1" or "0" */

/*
 * Write "gh:<kind><key or #sha256>" into <out> (<outlen> >= KEYS_MAX).
 * <key> must already be normalised (lower case). Returns 0, or -1 when
 * <out> is too small.
 */
int keys_make(char *out, size_t outlen, const char *kind, const char *key);

#endif
