/*
 * The server side of the SASL GSSAPI mechanism (RFC 4752) over MIT
 * Kerberos: accept the client's Kerberos ticket for the proxy's service
 * principal from a keytab, then the security layer negotiation (only "no
 * security layer" is offered, as Dovecot and Zimbra do; a client that
 * insists on one is refused).
 *
 * The steps may block (keytab and replay cache files), so they run on a
 * worker thread; one conversation is used by one thread at a time. No
 * global state: the keytab is named per conversation (gss_acquire_cred_from),
 * so a rotated keytab is read at the next login.
 *
 * Use:
 *   g = gssapi_new(keytab, hostname, "imap");
 *   loop: rc = gssapi_step(g, token, len, out, sizeof(out), &outlen);
 *     GSSAPI_CONTINUE -> send <out> as the next challenge (may be empty)
 *     GSSAPI_DONE     -> gssapi_principal(g), gssapi_authzid(g)
 *     GSSAPI_FAIL     -> authentication failed (gssapi_error(g) says why)
 *     GSSAPI_TEMPFAIL -> the proxy cannot authenticate now (keytab, files)
 *   gssapi_free(g);
 */
#ifndef GH_GSSAPI_H
#define GH_GSSAPI_H

#include <stddef.h>

#include "cfg-t.h"

#define GSSAPI_TOKEN_MAX 12288      /* octets of a client token (tickets with a large PAC) */
#define GSSAPI_OUT_MAX   4096       /* octets of a challenge */
#define GSSAPI_NAME_MAX  256        /* principal or authzid octets */

/* How a step ended. */
enum gssapi_rc {
	GSSAPI_CONTINUE = 0,
	GSSAPI_DONE,
	GSSAPI_FAIL,
	GSSAPI_TEMPFAIL,
};

/* What the security layer message of a client says (gssapi_parse_layer). */
enum gssapi_layer_rc {
	GSSAPI_LAYER_OK = 0,
	GSSAPI_LAYER_SHORT = -1,     /* fewer than 4 octets */
	GSSAPI_LAYER_WANTED = -2,    /* asks for integrity or privacy, or an unknown layer */
	GSSAPI_LAYER_AUTHZID = -3,   /* authzid too long or holds NUL, CR or LF */
};

struct gssapi;

/*
 * Start a conversation accepting tickets for <service>/<hostname> from
 * <keytab> (<hostname> "" accepts every <service> principal in the keytab).
 * Returns it, or NULL when out of memory.
 */
struct gssapi *gssapi_new(const char *keytab, const char *hostname, const char *service);

/*
 * Take the client's response <in> (<inlen> octets, decoded) and write the
 * next challenge into <out> (<outmax> octets; its length in <outlen>).
 * Blocking: call it on a worker thread. Returns an enum gssapi_rc.
 */
enum gssapi_rc gssapi_step(struct gssapi *g, const unsigned char *in, size_t inlen,
                           unsigned char *out, size_t outmax, size_t *outlen);

/* Return the authenticated principal ("alice@REALM"), "" before GSSAPI_DONE. */
const char *gssapi_principal(const struct gssapi *g);

/* Return the authorization identity the client asked for ("" = none). */
const char *gssapi_authzid(const struct gssapi *g);

/* Return why the last step failed (no secret in it), "" when it did not. */
const char *gssapi_error(const struct gssapi *g);

/* End conversation <g> (NULL: nothing) and free it. */
void gssapi_free(struct gssapi *g);

/*
 * Parse the client's unwrapped security layer message <msg> of <len>
 * octets (RFC 4752 3.1: layer octet, 3 octets of maximum size, authzid):
 * only "no security layer" (1) is accepted; the authzid goes to <authzid>
 * (<max> octets, NUL-terminated). Returns an enum gssapi_layer_rc.
 */
int gssapi_parse_layer(const unsigned char *msg, size_t len, char *authzid, size_t max);

/*
 * Map Kerberos principal <principal> to the name an account is looked up
 * by: "user@<realm>" gives "user"; "user@R" gives "user@D" when <realms>
 * holds an "R=D" entry; anything else (another realm,
 * an instance "user/admin", escapes, an empty name) is refused. Writes
 * the name to <out> (<outlen> octets). Returns 0, or -1 with the reason in
 * <why>. (gssapi_parse.c: pure functions, fuzzed.)
 */
int gssapi_parse_principal(const char *principal, const char *realm,
                           const struct cfg_list *realms, char *out, size_t outlen,
                           const char **why);

#endif
