/*
 * gatehouse certs: pieces shared by cmd_certs.c (list, check, selfsigned,
 * install) and cmd_certs_sync.c (sync, watch with HAProxy's runtime API).
 */
#ifndef GH_CMD_CERTS_H
#define GH_CMD_CERTS_H

#include <stddef.h>

#include "cli.h"

/*
 * Check certificate file <path> as "certs check" does: the library's check
 * (PEM parses, key matches, validity), then chain order (each certificate
 * signed by the next), expiry of every certificate, at least one name.
 * Returns 0, or -1 with the reason in <reason> (<len> bytes).
 */
int cmd_certs_check_file(const char *path, char *reason, size_t len);

/*
 * Run "certs sync" (<watch> 0) or "certs watch" (<watch> 1) for <c> with
 * the arguments after the action word, <argv>[0] being the action.
 * Returns an exit status.
 */
int cmd_certs_sync_run(struct cli *c, int argc, char **argv, int watch);

#endif
