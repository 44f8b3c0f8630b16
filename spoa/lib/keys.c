/*
 * memcached key encoding. Keys are shared by every gatehouse node and the
 * CLI, so the format is fixed: "gh:" + kind + the key itself when it is
 * short printable ASCII without spaces, otherwise '#' + hex SHA-256 of it.
 * The hashed form keeps arbitrary user input (spaces, CR/LF, UTF-8, very
 * long names) out of the memcached protocol.
 */
#include <openssl/evp.h>
#include <string.h>

#include "keys.h"

#define KEYS_PLAIN_MAX 200   /* longest key stored as itself */

/* Tell whether <key> of <len> bytes may be stored as itself. */
static int
keys_plain(const char *key, size_t len)
{
	size_t i;

	if (len == 0 || len > KEYS_PLAIN_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)key[i];

		if (c <= 0x20 || c >= 0x7f)
			return 0;
		/* '#' starts the hashed form: never let a plain key look like one */
		if (i == 0 && c == '#')
			return 0;
	}
	return 1;
}

/*
 * Write "gh:<kind><key or #sha256>" into <out> (<outlen> bytes). <key> must
 * already be normalised. Returns 0, or -1 when <out> is too small or
 * hashing fails.
 */
int
keys_make(char *out, size_t outlen, const char *kind, const char *key)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	size_t klen = strlen(key), kindlen = strlen(kind), off;

	if (outlen < 3 + kindlen + 1)
		return -1;
	memcpy(out, "gh:", 3);
	memcpy(out + 3, kind, kindlen);
	off = 3 + kindlen;
	if (keys_plain(key, klen)) {
		if (off + klen + 1 > outlen)
			return -1;
		memcpy(out + off, key, klen + 1);
		return 0;
	}
	if (EVP_Digest(key, klen, md, &mdlen, EVP_sha256(), NULL) != 1)
		return -1;
	if (off + 1 + 2 * (size_t)mdlen + 1 > outlen)
		return -1;
	out[off++] = '#';
	for (i = 0; i < mdlen; i++) {
		out[off++] = hex[md[i] >> 4];
		out[off++] = hex[md[i] & 15];
	}
	out[off] = '\0';
	return 0;
}
