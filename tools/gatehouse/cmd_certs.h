/*
 * gatehouse certs: the entry cmd_certs.c (list, check, selfsigned, install)
 * hands sync and watch (HAProxy's runtime API) to.
 */
#ifndef GH_CMD_CERTS_H
#define GH_CMD_CERTS_H

#include <stddef.h>

#include "cli.h"

/*
 * Run "certs sync" (<watch> 0) or "certs watch" (<watch> 1) for <c> with
 * the arguments after the action word, <argv>[0] being the action.
 * Returns an exit status.
 */
int cmd_certs_sync_run(struct cli *c, int argc, char **argv, int watch);

#endif
