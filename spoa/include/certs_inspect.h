/*
 * Certificate file inspection for operators' tools: what the daemons do
 * with one file of a certificate directory (served or skipped and why,
 * under which names), with the store's own rules, plus what an operator
 * wants to see (subject, issuer, dates, fingerprint, chain warnings).
 */
#ifndef GH_CERTS_INSPECT_H
#define GH_CERTS_INSPECT_H

#include <stddef.h>

#include "certs.h"

/* A list of strings owned by a struct certs_info. */
struct certs_strs {
	char **v;
	size_t n;
};

/* What certs_inspect() found in one file. Free with certs_inspect_free(). */
struct certs_info {
	int ok;                        /* 1: certs_load() serves this file */
	char error[256];               /* why not, when !ok */
	int is_default;                /* with a store: it is the store's default */
	struct certs_strs names;       /* index keys served by this file (certs_names()) */
	struct certs_strs shadowed;    /* with a store: keys an earlier file serves instead */
	struct certs_strs shadowed_by; /* the file serving each of shadowed */
	struct certs_strs ip_sans;     /* IP address SANs: never matched (no SNI for them) */
	struct certs_strs warnings;    /* served, but: chain order, expired chain cert, ... */
	char subject[256], issuer[256];         /* leaf, RFC 2253 */
	char not_before[32], not_after[32];     /* leaf, "YYYY-MM-DDTHH:MM:SSZ" */
	char serial[96];               /* leaf, upper-case hex */
	char sha1[64];                 /* leaf fingerprint, upper-case hex */
};

/*
 * Inspect certificate file <path> into <ci>: the verdict and reason of
 * certs_file_ctx(), the names of certs_names(), and the leaf's details
 * (also for a refused file, when its first certificate parses). With
 * <store> (the store built from the file's directory, or NULL), the names
 * an earlier file serves are moved to <shadowed>, <is_default> is set, and
 * IP SANs of a file that is not the default are warned about. Returns 0,
 * or -1 when out of memory (<ci> is then empty, not ok, with that reason,
 * and may be freed).
 */
int certs_inspect(const char *path, const struct certs *store, struct certs_info *ci);

/* Free what <ci> holds (and leave it empty). */
void certs_inspect_free(struct certs_info *ci);

#endif
