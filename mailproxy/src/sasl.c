/*
 * SASL helpers for the mail proxy: strict base64 and the PLAIN mechanism
 * (RFC 4616: [authzid] NUL authcid NUL passwd), with fixed-size buffers so
 * that a client cannot make the proxy allocate or overflow.
 */
#include <string.h>

#include "sasl.h"

/* Largest PLAIN message: two names, a password and two NULs. */
#define SASL_PLAIN_MAX (2 * SASL_NAME_MAX + SASL_PASS_MAX + 2)

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Value of base64 digit <c>, or -1. */
static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Decode base64 <b64> of <len> octets into <out> (<outlen> bytes). "=" alone
 * and "" decode to nothing. Returns the decoded length or -1.
 */
ssize_t
sasl_b64_decode(const char *b64, size_t len, unsigned char *out, size_t outlen)
{
	size_t i, n = 0;

	if (len == 0 || (len == 1 && b64[0] == '='))
		return 0;
	if (len % 4 != 0)
		return -1;
	for (i = 0; i < len; i += 4) {
		int v[4], k, pad = 0;
		int last = (i + 4 == len);

		for (k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)b64[i + k];
			if (c == '=' && last && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad != 0)
				return -1;    /* data after padding */
			v[k] = b64_value(c);
			if (v[k] < 0)
				return -1;
		}
		if (n + (size_t)(3 - pad) > outlen)
			return -1;
		out[n++] = (unsigned char)((v[0] << 2) | (v[1] >> 4));
		if (pad < 2)
			out[n++] = (unsigned char)(((v[1] & 0xf) << 4) | (v[2] >> 2));
		if (pad < 1)
			out[n++] = (unsigned char)(((v[2] & 0x3) << 6) | v[3]);
	}
	return (ssize_t)n;
}

/*
 * Encode <len> octets of <in> into <out> (<outlen> bytes, NUL-terminated).
 * Returns the encoded length or -1 when <out> is too small.
 */
ssize_t
sasl_b64_encode(const unsigned char *in, size_t len, char *out, size_t outlen)
{
	size_t need = (len + 2) / 3 * 4, i, n = 0;

	if (need + 1 > outlen || need < len)
		return -1;
	for (i = 0; i + 2 < len; i += 3) {
		out[n++] = b64_alphabet[in[i] >> 2];
		out[n++] = b64_alphabet[((in[i] & 0x3) << 4) | (in[i + 1] >> 4)];
		out[n++] = b64_alphabet[((in[i + 1] & 0xf) << 2) | (in[i + 2] >> 6)];
		out[n++] = b64_alphabet[in[i + 2] & 0x3f];
	}
	if (len - i == 1) {
		out[n++] = b64_alphabet[in[i] >> 2];
		out[n++] = b64_alphabet[(in[i] & 0x3) << 4];
		out[n++] = '=';
		out[n++] = '=';
	} else if (len - i == 2) {
		out[n++] = b64_alphabet[in[i] >> 2];
		out[n++] = b64_alphabet[((in[i] & 0x3) << 4) | (in[i + 1] >> 4)];
		out[n++] = b64_alphabet[(in[i + 1] & 0xf) << 2];
		out[n++] = '=';
	}
	out[n] = '\0';
	return (ssize_t)n;
}

/* Copy field <src>/<len> into <dst> of <max>+1 bytes; SASL_OK or an error. */
static int
copy_field(char *dst, size_t *dlen, size_t max, const unsigned char *src, size_t len)
{
	if (len > max)
		return SASL_ETOOLONG;
	if (memchr(src, '\r', len) != NULL || memchr(src, '\n', len) != NULL)
		return SASL_EFORMAT;
	memcpy(dst, src, len);
	dst[len] = '\0';
	*dlen = len;
	return SASL_OK;
}

/*
 * Decode the PLAIN response <b64>/<len> into <out>. Returns SASL_OK or a
 * negative enum sasl_rc; <out> is wiped on failure.
 */
int
sasl_plain_decode(const char *b64, size_t len, struct sasl_plain *out)
{
	unsigned char msg[SASL_PLAIN_MAX];
	const unsigned char *z1, *z2;
	ssize_t n;
	int rc;

	memset(out, 0, sizeof(*out));
	if (len > (SASL_PLAIN_MAX + 2) / 3 * 4)
		return SASL_ETOOLONG;
	n = sasl_b64_decode(b64, len, msg, sizeof(msg));
	if (n <= 0) {
		rc = SASL_EBASE64;
		goto out;
	}
	z1 = memchr(msg, '\0', (size_t)n);
	z2 = z1 ? memchr(z1 + 1, '\0', (size_t)n - (size_t)(z1 + 1 - msg)) : NULL;
	if (z1 == NULL || z2 == NULL ||
	    memchr(z2 + 1, '\0', (size_t)n - (size_t)(z2 + 1 - msg)) != NULL) {
		rc = SASL_EFORMAT;
		goto out;
	}
	/* an empty authcid or password is not a login */
	if (z2 == z1 + 1 || z2 + 1 == msg + n) {
		rc = SASL_EFORMAT;
		goto out;
	}
	rc = copy_field(out->authzid, &out->authzid_len, SASL_NAME_MAX, msg, (size_t)(z1 - msg));
	if (rc == SASL_OK)
		rc = copy_field(out->authcid, &out->authcid_len, SASL_NAME_MAX, z1 + 1,
		                (size_t)(z2 - z1 - 1));
	if (rc == SASL_OK)
		rc = copy_field(out->password, &out->password_len, SASL_PASS_MAX, z2 + 1,
		                (size_t)(msg + n - z2 - 1));
out:
	explicit_bzero(msg, sizeof(msg));
	if (rc != SASL_OK)
		sasl_plain_wipe(out);
	return rc;
}

/*
 * Encode <p> as a base64 PLAIN response into <out> (<outlen> bytes,
 * NUL-terminated). Returns the length or -1.
 */
ssize_t
sasl_plain_encode(const struct sasl_plain *p, char *out, size_t outlen)
{
	unsigned char msg[SASL_PLAIN_MAX];
	size_t n = 0;
	ssize_t rc;

	if (p->authzid_len > SASL_NAME_MAX || p->authcid_len > SASL_NAME_MAX ||
	    p->password_len > SASL_PASS_MAX)
		return -1;
	memcpy(msg, p->authzid, p->authzid_len);
	n += p->authzid_len;
	msg[n++] = '\0';
	memcpy(msg + n, p->authcid, p->authcid_len);
	n += p->authcid_len;
	msg[n++] = '\0';
	memcpy(msg + n, p->password, p->password_len);
	n += p->password_len;
	rc = sasl_b64_encode(msg, n, out, outlen);
	explicit_bzero(msg, sizeof(msg));
	return rc;
}

/* Erase <p>. */
void
sasl_plain_wipe(struct sasl_plain *p)
{
	explicit_bzero(p, sizeof(*p));
}
