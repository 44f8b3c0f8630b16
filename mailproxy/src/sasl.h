/*
 * SASL PLAIN (RFC 4616) decoding and encoding with bounded buffers, and the
 * base64 used by SASL. Pure functions, no allocation.
 */
#ifndef GH_SASL_H
#define GH_SASL_H

#include <stddef.h>
#include <sys/types.h>

#define SASL_NAME_MAX 255   /* authzid / authcid octets (RFC 4616 allows 255) */
#define SASL_PASS_MAX 1024  /* password octets */

/* The decoded PLAIN message; each field NUL-terminated. */
struct sasl_plain {
	char authzid[SASL_NAME_MAX + 1];   /* "" when absent */
	char authcid[SASL_NAME_MAX + 1];
	char password[SASL_PASS_MAX + 1];
	size_t authzid_len, authcid_len, password_len;
};

enum sasl_rc {
	SASL_OK = 0,
	SASL_EBASE64 = -1,  /* not valid base64 (or "=" / empty: nothing) */
	SASL_EFORMAT = -2,  /* not authzid NUL authcid NUL password, empty authcid or password, CR/LF */
	SASL_ETOOLONG = -3, /* a field or the message is over the limits */
};

/*
 * Decode base64 <b64> (<len> octets; "=" means empty) into <out> (<outlen>
 * bytes). Padding is required when the input is not a multiple of 4; no
 * whitespace. Returns the decoded length or -1.
 */
ssize_t sasl_b64_decode(const char *b64, size_t len, unsigned char *out, size_t outlen)
	__attribute__((warn_unused_result));

/*
 * Encode <len> octets of <in> as base64 into <out> (<outlen> bytes,
 * NUL-terminated). Returns the encoded length or -1 when <out> is too small.
 */
ssize_t sasl_b64_encode(const unsigned char *in, size_t len, char *out, size_t outlen)
	__attribute__((warn_unused_result));

/*
 * Decode a SASL PLAIN response <b64> of <len> octets into <out>. The fields
 * may hold any octet but NUL, CR and LF. Returns SASL_OK or a negative
 * enum sasl_rc; <out> is wiped on failure.
 */
int sasl_plain_decode(const char *b64, size_t len, struct sasl_plain *out)
	__attribute__((warn_unused_result));

/*
 * Encode <p> as a base64 PLAIN response into <out> (<outlen> bytes,
 * NUL-terminated). Returns the length or -1 when <out> is too small.
 */
ssize_t sasl_plain_encode(const struct sasl_plain *p, char *out, size_t outlen)
	__attribute__((warn_unused_result));

/* Erase <p> (it holds a password). */
void sasl_plain_wipe(struct sasl_plain *p);

#endif
