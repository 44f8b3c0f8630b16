/*
 * LDAP search filters built from configured templates, with every value
 * escaped per RFC 4515 so that user input can never add filter syntax.
 */
#ifndef GH_FILTER_H
#define GH_FILTER_H

#include <stddef.h>

#define FILTER_MAX 2048   /* buffer size that holds any filter we build */

/*
 * Escape the <len> bytes at <val> as an RFC 4515 assertion value into
 * <out> (<outlen> bytes, NUL-terminated): '*', '(', ')', '\', NUL, other
 * control characters, DEL and every byte >= 0x80 become "\xx" (lower-case
 * hex), as ldap_bv2escaped_filter_value() does for the RFC's set. Returns
 * the length written, or -1 when it does not fit.
 */
int filter_escape(char *out, size_t outlen, const char *val, size_t len)
	__attribute__((warn_unused_result));

/*
 * Build a filter from template <tmpl> into <out> (<outlen> bytes),
 * replacing every "%s" with <val> (<len> bytes) escaped by filter_escape().
 * Any other '%' in <tmpl> is an error. Returns the length written, or -1
 * on a bad template or when the result does not fit.
 */
int filter_build(char *out, size_t outlen, const char *tmpl, const char *val, size_t len)
	__attribute__((warn_unused_result));

#endif
