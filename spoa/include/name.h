/*
 * Account name normalisation: the one form used for cache keys, LDAP
 * filters and throttle counters.
 */
#ifndef GH_NAME_H
#define GH_NAME_H

#include <stddef.h>

#define NAME_MAX_LEN 255   /* longest normalised name, bytes without NUL */

/*
 * Normalise account name <in> (a C string) into <out> (<outlen> bytes):
 * trim spaces and tabs at both ends, lower-case ASCII letters (other bytes,
 * such as UTF-8, are kept as they are), and append "@<default_domain>" when
 * <in> has no '@' and <default_domain> is neither NULL nor empty. Returns
 * the length written, or -1 when the trimmed name is empty, contains a
 * control character or DEL, or the result does not fit in <outlen> or
 * NAME_MAX_LEN. On -1, <out> holds "".
 */
int name_normalise(char *out, size_t outlen, const char *in, const char *default_domain)
	__attribute__((warn_unused_result));

/*
 * Do what name_normalise() does for the <inlen> bytes at <in>, which may
 * contain a NUL (rejected, like any control character): for names taken
 * from SASL or IMAP literals.
 */
int name_normalise_len(char *out, size_t outlen, const char *in, size_t inlen,
                       const char *default_domain) __attribute__((warn_unused_result));

#endif
