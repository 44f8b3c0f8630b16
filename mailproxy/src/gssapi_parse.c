/*
 * The pure parts of the GSSAPI mechanism, apart from the Kerberos library
 * so they can be fuzzed: the client's security layer message (RFC 4752
 * 3.1) and the mapping of an authenticated principal to an account name.
 */
#include <string.h>

#include "gssapi.h"

#define LAYER_NONE 0x01     /* RFC 4752: no security layer */

/*
 * Parse the unwrapped security layer message <msg>/<len>: layer octet,
 * 3 octets of maximum message size (ignored without a layer), authzid.
 * Returns an enum gssapi_layer_rc; <authzid> holds the authzid on success.
 */
int
gssapi_parse_layer(const unsigned char *msg, size_t len, char *authzid, size_t max)
{
	size_t n;

	if (max > 0)
		authzid[0] = '\0';
	if (len < 4)
		return GSSAPI_LAYER_SHORT;
	/* exactly "none": integrity or privacy would need every later byte
	 * wrapped, which a proxy that relays to the mailbox server cannot do */
	if (msg[0] != LAYER_NONE)
		return GSSAPI_LAYER_WANTED;
	n = len - 4;
	if (n >= max || n > GSSAPI_NAME_MAX || memchr(msg + 4, '\0', n) != NULL ||
	    memchr(msg + 4, '\r', n) != NULL || memchr(msg + 4, '\n', n) != NULL)
		return GSSAPI_LAYER_AUTHZID;
	memcpy(authzid, msg + 4, n);
	authzid[n] = '\0';
	return GSSAPI_LAYER_OK;
}

/* Tell whether octet <c> may appear in the name part of a principal we map. */
static int
name_octet_ok(unsigned char c)
{
	return c > 0x20 && c != 0x7f && c != '/' && c != '\\' && c != '@' && c != '"';
}

/*
 * Find, in the "R=D" entries of <realms>, the mail domain of realm <r>
 * (<rlen> octets). Returns it (length in <dlen>) or NULL.
 */
static const char *
realm_domain(const struct cfg_list *realms, const char *r, size_t rlen, size_t *dlen)
{
	int i;

	for (i = 0; realms != NULL && i < realms->n; i++) {
		const char *e = realms->item[i];
		const char *eq = strchr(e, '=');

		/* realms are case-sensitive (RFC 4120 6.1) */
		if (eq != NULL && (size_t)(eq - e) == rlen && memcmp(e, r, rlen) == 0 &&
		    eq[1] != '\0') {
			*dlen = strlen(eq + 1);
			return eq + 1;
		}
	}
	return NULL;
}

/*
 * Map <principal> to an account name in <out> (<outlen> octets): the
 * default <realm> is stripped, a realm of <realms> ("R=D") becomes "@D",
 * everything else is refused. Returns 0, or -1 with <why>.
 */
int
gssapi_parse_principal(const char *principal, const char *realm,
                       const struct cfg_list *realms, char *out, size_t outlen,
                       const char **why)
{
	const char *at = strrchr(principal, '@');
	const char *r, *dom = NULL;
	size_t nlen, rlen, dlen = 0, i;

	*why = NULL;
	if (outlen > 0)
		out[0] = '\0';
	if (at == NULL || at == principal || at[1] == '\0') {
		*why = "not a user@REALM principal";
		return -1;
	}
	nlen = (size_t)(at - principal);
	r = at + 1;
	rlen = strlen(r);
	for (i = 0; i < nlen; i++) {
		if (!name_octet_ok((unsigned char)principal[i])) {
			/* "user/admin": an instance is another principal, not the user */
			*why = principal[i] == '/' ? "principal has an instance"
			                           : "principal name has a character not mapped";
			return -1;
		}
	}
	if (realm[0] != '\0' && strcmp(r, realm) == 0) {
		dom = NULL;
	} else if ((dom = realm_domain(realms, r, rlen, &dlen)) == NULL) {
		*why = "realm not accepted";
		return -1;
	}
	if (nlen + (dom ? 1 + dlen : 0) + 1 > outlen || nlen > GSSAPI_NAME_MAX) {
		*why = "principal too long";
		return -1;
	}
	memcpy(out, principal, nlen);
	if (dom != NULL) {
		out[nlen] = '@';
		memcpy(out + nlen + 1, dom, dlen);
		nlen += 1 + dlen;
	}
	out[nlen] = '\0';
	return 0;
}
