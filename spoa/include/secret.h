/*
 * Secrets kept in files of their own (the LDAP bind password, the mail
 * proxy's master password): one reader, so every such file means the same.
 */
#ifndef GH_SECRET_H
#define GH_SECRET_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Read the secret in file <path> into <out> (<outlen> bytes, NUL-terminated):
 * the whole file without its trailing CR/LF. Returns its length, or -1 with
 * the reason (naming <path>, never the secret) in <err> (<errlen> bytes)
 * when the file cannot be read, is empty, does not fit, or holds a NUL or a
 * line break inside; <out> is wiped then.
 */
ssize_t secret_read(const char *path, char *out, size_t outlen, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
