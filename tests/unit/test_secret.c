/*
 * Unit tests of the secret file reader: the trailing line end goes, and
 * every file that cannot be one password is refused with a reason that
 * names the file and never holds its content.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "secret.h"

/* Write <len> bytes of <data> to a new temporary file; returns its path (static). */
static const char *
file_with(const char *data, size_t len)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/test_secret.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

static void
test_secret_read(void **state)
{
	char out[16], err[256];
	const char *p;
	(void)state;

	p = file_with("s3cret\r\n", 8);
	assert_int_equal(secret_read(p, out, sizeof(out), err, sizeof(err)), 6);
	assert_string_equal(out, "s3cret");
	unlink(p);
	p = file_with("no-newline", 10);
	assert_int_equal(secret_read(p, out, sizeof(out), err, sizeof(err)), 10);
	assert_string_equal(out, "no-newline");
	unlink(p);
	/* exactly what fits, and one byte more */
	p = file_with("123456789012345\n", 16);
	assert_int_equal(secret_read(p, out, sizeof(out), err, sizeof(err)), 15);
	unlink(p);
	p = file_with("1234567890123456", 16);
	assert_int_equal(secret_read(p, out, sizeof(out), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too long"));
	assert_null(strstr(err, "123456"));
	assert_string_equal(out, "");
	unlink(p);
	/* empty, a line break or a NUL inside */
	p = file_with("\n", 1);
	assert_int_equal(secret_read(p, out, sizeof(out), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "empty"));
	unlink(p);
	p = file_with("one\ntwo\n", 8);
	assert_int_equal(secret_read(p, out, sizeof(out), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not one line"));
	assert_null(strstr(err, "one\n"));
	unlink(p);
	p = file_with("a\0b\n", 4);
	assert_int_equal(secret_read(p, out, sizeof(out), err, sizeof(err)), -1);
	unlink(p);
	assert_int_equal(secret_read("/nonexistent/secret", out, sizeof(out), err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "cannot read /nonexistent/secret"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secret_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
