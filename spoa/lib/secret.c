/*
 * Secret files: a password alone in a file, read whole, the trailing line
 * end dropped. The reasons given name the file, never what is in it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "secret.h"

/* Read the secret in <path> into <out>: see secret.h. */
ssize_t
secret_read(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
	const char *bad = NULL;
	FILE *fp;
	size_t n;
	int extra;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	fp = fopen(path, "re");
	if (fp == NULL) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	n = fread(out, 1, outlen - 1, fp);
	/* a secret that fills <out> exactly may still end with its line end */
	while ((extra = fgetc(fp)) == '\n' || extra == '\r')
		;
	extra = extra != EOF;
	fclose(fp);
	out[n] = '\0';
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	if (extra)
		bad = "too long";
	else if (n == 0)
		bad = "empty";       /* an empty password is no password */
	else if (strlen(out) != n || strpbrk(out, "\r\n") != NULL)
		bad = "not one line (a NUL or a line break inside)";
	if (bad != NULL) {
		explicit_bzero(out, outlen);
		snprintf(err, errlen, "%s is %s", path, bad);
		return -1;
	}
	return (ssize_t)n;
}
