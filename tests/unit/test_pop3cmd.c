/*
 * Unit tests for the POP3 pre-auth command parser: every case fed whole,
 * byte by byte and split in two at every point, with the same events.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "pop3cmd.h"

#define EV_MAX 16384

static const char *const kind_names[] = {
	"NONE", "CAPA", "USER", "PASS", "AUTH", "STLS", "NOOP", "QUIT",
	"UNKNOWN", "SASL", "CANCEL",
};

static void __attribute__((format(printf, 2, 3)))
ev_add(char *ev, const char *fmt, ...)
{
	size_t n = strlen(ev);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ev + n, EV_MAX - n, fmt, ap);
	va_end(ap);
}

/* Describe result <rc> into <ev>, acting like the daemon for AUTH. */
static void
ev_result(struct pop3cmd *st, enum pop3cmd_rc rc, char *ev)
{
	unsigned i;

	switch (rc) {
	case POP3CMD_DONE:
		ev_add(ev, "D:%s", kind_names[st->kind]);
		if (st->kind == POP3CMD_UNKNOWN)
			ev_add(ev, ":%s", st->name);
		for (i = 0; i < st->nargs; i++) {
			size_t len, k;
			const char *a = pop3cmd_arg(st, i, &len);
			assert_non_null(a);
			assert_int_equal(a[len], '\0');
			ev_add(ev, " '");
			for (k = 0; k < len; k++) {
				unsigned char c = (unsigned char)a[k];
				if (c >= 0x20 && c < 0x7f && c != '\'' && c != '%')
					ev_add(ev, "%c", c);
				else
					ev_add(ev, "%%%02X", c);
			}
			ev_add(ev, "'");
		}
		if (st->kind == POP3CMD_AUTH && st->nargs == 1)
			pop3cmd_expect_sasl(st);
		break;
	case POP3CMD_ERROR:
		ev_add(ev, "E:%s", st->error);
		break;
	case POP3CMD_FATAL:
		ev_add(ev, "F:%s", st->error);
		break;
	default:
		ev_add(ev, "?%d", (int)rc);
	}
	ev_add(ev, "|");
}

static void
run(const char *in, size_t len, size_t first, size_t chunk, char *ev,
    const struct pop3cmd_limits *lim)
{
	static struct pop3cmd st;
	size_t off = 0;
	int fatal_seen = 0;

	pop3cmd_init(&st, lim);
	ev[0] = '\0';
	while (off < len && !fatal_seen) {
		size_t n = len - off, pos = 0;

		if (off == 0 && first != 0)
			n = first < n ? first : n;
		else if (chunk != 0)
			n = chunk < n ? chunk : n;
		while (pos < n) {
			size_t used = 99999;
			enum pop3cmd_rc rc = pop3cmd_parse(&st, in + off + pos, n - pos, &used);
			assert_true(used <= n - pos);
			if (rc == POP3CMD_AGAIN)
				assert_int_equal(used, n - pos);
			else
				ev_result(&st, rc, ev);
			pos += used;
			if (rc == POP3CMD_FATAL) {
				fatal_seen = 1;
				break;
			}
		}
		off += n;
	}
}

static void
check_lim(const char *in, size_t len, const char *want, const struct pop3cmd_limits *lim)
{
	static char ev[EV_MAX], ev2[EV_MAX];
	size_t k;

	run(in, len, 0, 0, ev, lim);
	if (strcmp(ev, want) != 0) {
		print_error("input: %.*s\nwant: %s\ngot:  %s\n", (int)len, in, want, ev);
		fail();
	}
	run(in, len, 0, 1, ev2, lim);
	if (strcmp(ev, ev2) != 0) {
		print_error("byte by byte differs: %s\n", ev2);
		fail();
	}
	for (k = 1; k < len; k++) {
		run(in, len, k, 0, ev2, lim);
		if (strcmp(ev, ev2) != 0) {
			print_error("split at %zu differs: %s\n", k, ev2);
			fail();
		}
	}
}

#define CHECK(in, want) check_lim((in), sizeof(in) - 1, (want), NULL)

static void
test_commands(void **state)
{
	(void)state;
	CHECK("CAPA\r\n", "D:CAPA|");
	CHECK("capa\r\n", "D:CAPA|");
	CHECK("StLs\r\n", "D:STLS|");
	CHECK("NOOP\r\nQUIT\r\n", "D:NOOP|D:QUIT|");
	CHECK("USER bob@example.com\r\n", "D:USER 'bob@example.com'|");
	CHECK("user b\xc3\xb6" "b\r\n", "D:USER 'b%C3%B6b'|");
	CHECK("PASS se cret \r\n", "D:PASS 'se cret '|");
	CHECK("PASS  x\r\n", "D:PASS ' x'|");
	CHECK("APOP bob 0123456789abcdef\r\n", "D:UNKNOWN:APOP|");
	CHECK("RETR 1\r\n", "D:UNKNOWN:RETR|");
	CHECK("XTNDXMIT\r\n", "D:UNKNOWN:XTNDXMI|");
	CHECK("CAPA\n", "D:CAPA|");    /* bare LF accepted, like nginx */
}

static void
test_auth(void **state)
{
	(void)state;
	CHECK("AUTH\r\n", "D:AUTH|");
	CHECK("AUTH PLAIN AGJvYgBzZWNyZXQ=\r\n", "D:AUTH 'PLAIN' 'AGJvYgBzZWNyZXQ='|");
	CHECK("AUTH PLAIN =\r\n", "D:AUTH 'PLAIN' '='|");
	CHECK("AUTH PLAIN\r\nAGJvYgBzZWNyZXQ=\r\nQUIT\r\n",
	      "D:AUTH 'PLAIN'|D:SASL 'AGJvYgBzZWNyZXQ='|D:QUIT|");
	CHECK("AUTH PLAIN\r\n*\r\n", "D:AUTH 'PLAIN'|D:CANCEL '*'|");
	CHECK("AUTH PLAIN\r\n\r\n", "D:AUTH 'PLAIN'|D:SASL ''|");
	CHECK("AUTH PLAIN\r\na\0b\r\nQUIT\r\n", "D:AUTH 'PLAIN'|E:NUL in command|D:QUIT|");
	CHECK("AUTH PLAIN a b\r\n", "E:invalid AUTH arguments|");
	CHECK("AUTH  PLAIN\r\n", "E:invalid AUTH arguments|");
	CHECK("AUTH \r\n", "E:invalid AUTH arguments|");
	CHECK("AUTH PLAIN \r\n", "E:invalid AUTH arguments|");
}

static void
test_errors(void **state)
{
	(void)state;
	CHECK("\r\nCAPA\r\n", "E:empty command|D:CAPA|");
	CHECK("USER\r\n", "E:missing argument|");
	CHECK("USER \r\n", "E:missing argument|");
	CHECK("PASS\r\n", "E:missing argument|");
	CHECK("USER a b\r\n", "E:USER takes one argument|");
	CHECK("CAPA x\r\n", "E:unexpected argument|");
	CHECK("QUIT \r\n", "E:unexpected argument|");
	CHECK("US\0ER bob\r\nNOOP\r\n", "E:NUL in command|D:NOOP|");
	CHECK("USER bob\rx\r\nNOOP\r\n", "E:CR without LF|D:NOOP|");
	CHECK("USER bob\r\0\r\nNOOP\r\n", "E:NUL in command|D:NOOP|");
}

static void
test_limits(void **state)
{
	static char in[40000];
	size_t n;
	(void)state;

	/* 2048 octets including CRLF pass (a 1024-octet password fits), 2049
	 * give -ERR and the next line is read */
	memcpy(in, "PASS ", 5);
	memset(in + 5, 'p', 2041);
	memcpy(in + 2046, "\r\n", 2);
	{
		static struct pop3cmd st;
		size_t used, len;
		pop3cmd_init(&st, NULL);
		assert_int_equal(pop3cmd_parse(&st, in, 2048, &used), POP3CMD_DONE);
		assert_non_null(pop3cmd_arg(&st, 0, &len));
		assert_int_equal(len, 2041);
		memcpy(in + 2046, "p\r\nCAPA\r\n", 9);
		pop3cmd_init(&st, NULL);
		assert_int_equal(pop3cmd_parse(&st, in, 2055, &used), POP3CMD_ERROR);
		assert_int_equal(used, 2049);
		assert_string_equal(st.error, "line too long");
		assert_true(st.too_long);
		assert_int_equal(st.line_len, 2049);
		assert_int_equal(pop3cmd_parse(&st, in + used, 6, &used), POP3CMD_DONE);
		assert_int_equal(st.kind, POP3CMD_CAPA);
		assert_false(st.too_long);
	}
	/* a line still going at 1 MiB: FATAL, and FATAL stays */
	memset(in, 'x', 32768);
	{
		static struct pop3cmd st;
		size_t used;
		pop3cmd_init(&st, NULL);
		for (n = 0; n < 32; n++)
			assert_int_equal(pop3cmd_parse(&st, in, 32768, &used), POP3CMD_AGAIN);
		assert_int_equal(pop3cmd_parse(&st, in, 1, &used), POP3CMD_FATAL);
		assert_int_equal(used, 0);
		assert_string_equal(st.error, "line too long");
		assert_int_equal(pop3cmd_parse(&st, "CAPA\r\n", 6, &used), POP3CMD_FATAL);
		assert_int_equal(used, 0);
		pop3cmd_wipe(&st);
		assert_int_equal(pop3cmd_parse(&st, "CAPA\r\n", 6, &used), POP3CMD_DONE);
	}
	/* AUTH lines may be 8 KiB */
	n = (size_t)snprintf(in, sizeof(in), "AUTH PLAIN ");
	memset(in + n, 'A', 8190 - n);
	memcpy(in + 8190, "\r\n", 2);
	{
		static struct pop3cmd st;
		size_t used, len;
		pop3cmd_init(&st, NULL);
		assert_int_equal(pop3cmd_parse(&st, in, 8192, &used), POP3CMD_DONE);
		assert_non_null(pop3cmd_arg(&st, 1, &len));
		assert_int_equal(len, 8190 - n);
		memcpy(in + 8190, "A\r\n", 3);
		pop3cmd_init(&st, NULL);
		assert_int_equal(pop3cmd_parse(&st, in, 8193, &used), POP3CMD_ERROR);
		assert_string_equal(st.error, "line too long");
	}
	{
		struct pop3cmd_limits lim = { .line_max = 16, .auth_max = 20 };
		const char s1[] = "USER abcdefghij\r\nNOOP\r\n";     /* 17 */
		const char s2[] = "AUTH PLAIN abcdefg\r\n";          /* 20 */
		const char s3[] = "AUTH X\r\nabcdefghijklmnopqrs\r\nQUIT\r\n";
		const char s4[] = "USER abcdefghij\rx\r\nNOOP\r\n";  /* CR error, then too long */
		check_lim(s1, sizeof(s1) - 1, "E:line too long|D:NOOP|", &lim);
		check_lim(s2, sizeof(s2) - 1, "D:AUTH 'PLAIN' 'abcdefg'|", &lim);
		/* the SASL exchange ends; the next line is a command again */
		check_lim(s3, sizeof(s3) - 1, "D:AUTH 'X'|E:line too long|D:QUIT|", &lim);
		check_lim(s4, sizeof(s4) - 1, "E:line too long|D:NOOP|", &lim);
	}
	{
		struct pop3cmd_limits lim = { .line_max = 16, .skip_max = 40 };
		const char s5[] = "USER abcdefghijklmnopqrstuvwxyzabcdefghijk\r\nNOOP\r\n";
		check_lim(s5, 40, "", &lim);
		check_lim(s5, sizeof(s5) - 1, "F:line too long|", &lim);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
