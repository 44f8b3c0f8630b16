/*
 * Unit tests for the IMAP pre-auth command parser. Every case is checked fed
 * whole, byte by byte, and split in two at every point: the event sequence
 * (results, tags, arguments) must be the same each way.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "imapcmd.h"

#define EV_MAX 65536

static const char *const kind_names[] = {
	"NONE", "CAPABILITY", "NOOP", "LOGOUT", "ID", "STARTTLS", "LOGIN",
	"AUTHENTICATE", "UNKNOWN", "SASL", "CANCEL",
};

/* Append printf-style text to the event string <ev>. */
static void __attribute__((format(printf, 2, 3)))
ev_add(char *ev, const char *fmt, ...)
{
	size_t n = strlen(ev);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ev + n, EV_MAX - n, fmt, ap);
	va_end(ap);
}

/* Describe the result <rc> of <st> into <ev>, acting like the daemon. */
static void
ev_result(struct imapcmd *st, enum imapcmd_rc rc, char *ev)
{
	unsigned i;

	switch (rc) {
	case IMAPCMD_DONE:
		ev_add(ev, "D:%s:%s", kind_names[st->kind], st->tag);
		if (st->id_nil)
			ev_add(ev, " NIL");
		for (i = 0; i < st->nargs; i++) {
			size_t len, k;
			const char *a = imapcmd_arg(st, i, &len);
			ev_add(ev, " %c", "aqln"[st->args[i].type]);
			if (a == NULL)
				continue;
			ev_add(ev, "'");
			for (k = 0; k < len; k++) {
				unsigned char c = (unsigned char)a[k];
				if (c >= 0x20 && c < 0x7f && c != '\'' && c != '%')
					ev_add(ev, "%c", c);
				else
					ev_add(ev, "%%%02X", c);
			}
			ev_add(ev, "'%s", (st->args[i].flags & IMAPCMD_ARG_TRUNCATED) ? "!" : "");
		}
		/* like the daemon: AUTHENTICATE without IR waits for a SASL line */
		if (st->kind == IMAPCMD_AUTHENTICATE && st->nargs == 1)
			imapcmd_expect_sasl(st);
		break;
	case IMAPCMD_LITERAL:
		ev_add(ev, "L%zu", st->literal_size);
		break;
	case IMAPCMD_ERROR:
		ev_add(ev, "E:%s:%s", st->tag, st->error);
		break;
	case IMAPCMD_FATAL:
		ev_add(ev, "F:%s", st->error);
		break;
	default:
		ev_add(ev, "?%d", (int)rc);
	}
	ev_add(ev, "|");
}

/* Feed <len> octets in chunks of <chunk> (0: whole), the first of <first>. */
static void
run(const char *in, size_t len, size_t first, size_t chunk, char *ev,
    const struct imapcmd_limits *lim)
{
	static struct imapcmd st;
	size_t off = 0;
	int fatal_seen = 0;

	imapcmd_init(&st, lim);
	ev[0] = '\0';
	while (off < len && !fatal_seen) {
		size_t n = len - off;
		size_t pos = 0;

		if (off == 0 && first != 0)
			n = first < n ? first : n;
		else if (chunk != 0)
			n = chunk < n ? chunk : n;
		/* one chunk: call until it is used up */
		while (pos < n) {
			size_t used = 99999;
			enum imapcmd_rc rc = imapcmd_parse(&st, in + off + pos, n - pos, &used);
			assert_true(used <= n - pos);
			if (rc == IMAPCMD_AGAIN) {
				assert_int_equal(used, n - pos);
			} else {
				ev_result(&st, rc, ev);
			}
			pos += used;
			if (rc == IMAPCMD_FATAL) {
				fatal_seen = 1;
				break;
			}
		}
		off += n;
	}
}

/* Check <in> gives <want>, whole, byte by byte and split at every point. */
static void
check_lim(const char *in, size_t len, const char *want, const struct imapcmd_limits *lim)
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
/* Check with a line limit of <max>. */
#define CHECK_SMALL(max, in, want) do { \
		struct imapcmd_limits l_ = { .line_max = (max) }; \
		check_lim((in), sizeof(in) - 1, (want), &l_); \
	} while (0)

static void
test_simple_commands(void **state)
{
	(void)state;
	CHECK("a1 CAPABILITY\r\n", "D:CAPABILITY:a1|");
	CHECK("a1 capability\r\n", "D:CAPABILITY:a1|");
	CHECK("x NOOP\r\n", "D:NOOP:x|");
	CHECK("x.1 LogOut\r\n", "D:LOGOUT:x.1|");
	CHECK("T:9] STARTTLS\r\n", "D:STARTTLS:T:9]|");
	CHECK("a NOOP\n", "D:NOOP:a|");    /* bare LF accepted */
	CHECK("a NOOP \r\n", "D:NOOP:a|"); /* trailing space tolerated */
	CHECK("a NOOP x\r\n", "E:a:unexpected argument|");
}

static void
test_pipelining(void **state)
{
	(void)state;
	CHECK("a LOGIN {3+}\r\nbob {4+}\r\nx\r\ny\r\nb LOGOUT\r\n",
	      "D:LOGIN:a l'bob' l'x%0D%0Ay'|D:LOGOUT:b|");
	CHECK("a NOOP\r\nb CAPABILITY\r\nc LOGOUT\r\n",
	      "D:NOOP:a|D:CAPABILITY:b|D:LOGOUT:c|");
	CHECK("a STARTTLS\r\nb NOOP\r\n", "D:STARTTLS:a|D:NOOP:b|");
}

static void
test_login_forms(void **state)
{
	(void)state;
	CHECK("a LOGIN user pass\r\n", "D:LOGIN:a a'user' a'pass'|");
	CHECK("a LOGIN \"us er\" \"p\\\"a\\\\ss\"\r\n",
	      "D:LOGIN:a q'us er' q'p\"a\\ss'|");
	CHECK("a LOGIN \"\" \"\"\r\n", "D:LOGIN:a q'' q''|");
	CHECK("a LOGIN {4}\r\nuser {5}\r\np ss!\r\n",
	      "L4|L5|D:LOGIN:a l'user' l'p ss!'|");
	CHECK("a LOGIN {4+}\r\nuser {3+}\r\n\r\n\xff\r\n",
	      "D:LOGIN:a l'user' l'%0D%0A%FF'|");
	CHECK("a LOGIN user {0}\r\n\r\n", "L0|D:LOGIN:a a'user' l''|");
	CHECK("a LOGIN {0+}\r\n {0+}\r\n\r\n", "D:LOGIN:a l'' l''|");
	CHECK("a LOGIN user\r\n", "E:a:wrong number of arguments|");
	CHECK("a LOGIN a b c\r\n", "E:a:too many arguments|");
	CHECK("a LOGIN a b {3}\r\n", "E:a:too many arguments|");
	CHECK("a LOGIN {1}\r\nab c\r\nb NOOP\r\n",
	      "L1|E:a:missing space after argument|D:NOOP:b|");
	CHECK("a login \"x\"\"y\"\r\n", "E:a:missing space after argument|");
}

static void
test_authenticate(void **state)
{
	(void)state;
	CHECK("a AUTHENTICATE PLAIN AHVzZXIAcGFzcw==\r\n",
	      "D:AUTHENTICATE:a a'PLAIN' a'AHVzZXIAcGFzcw=='|");
	CHECK("a AUTHENTICATE PLAIN =\r\n", "D:AUTHENTICATE:a a'PLAIN' a'='|");
	CHECK("a AUTHENTICATE PLAIN\r\nAHVzZXIAcGFzcw==\r\nb NOOP\r\n",
	      "D:AUTHENTICATE:a a'PLAIN'|D:SASL:a a'AHVzZXIAcGFzcw=='|D:NOOP:b|");
	CHECK("a AUTHENTICATE PLAIN\r\n*\r\n", "D:AUTHENTICATE:a a'PLAIN'|D:CANCEL:a a'*'|");
	CHECK("a AUTHENTICATE PLAIN\r\n\r\n", "D:AUTHENTICATE:a a'PLAIN'|D:SASL:a a''|");
	CHECK("a AUTHENTICATE PLAIN\r\nab\0c\r\nb NOOP\r\n",
	      "D:AUTHENTICATE:a a'PLAIN'|E:a:NUL in command|D:NOOP:b|");
	/* no literal recognition in SASL lines */
	CHECK("a AUTHENTICATE PLAIN\r\nab\0{3+}\r\nb NOOP\r\n",
	      "D:AUTHENTICATE:a a'PLAIN'|E:a:NUL in command|D:NOOP:b|");
	CHECK("a AUTHENTICATE \"PLAIN\"\r\n", "E:a:AUTHENTICATE arguments must be atoms|");
	CHECK("a AUTHENTICATE\r\n", "E:a:wrong number of arguments|");
	CHECK("a AUTHENTICATE PLAIN x y\r\n", "E:a:too many arguments|");
}

static void
test_id(void **state)
{
	(void)state;
	CHECK("a ID NIL\r\n", "D:ID:a NIL|");
	CHECK("a id nil\r\n", "D:ID:a NIL|");
	CHECK("a ID ()\r\n", "D:ID:a|");
	CHECK("a ID (\"name\" \"mutt\" \"version\" NIL)\r\n",
	      "D:ID:a q'name' q'mutt' q'version' n|");
	CHECK("a ID (\"name\" {4}\r\nmutt \"os\" {2+}\r\nab)\r\n",
	      "L4|D:ID:a q'name' l'mutt' q'os' l'ab'|");
	CHECK("a ID (\"name\")\r\n", "E:a:ID list needs field/value pairs|");
	CHECK("a ID (NIL \"x\")\r\n", "E:a:ID field must be a string|");
	CHECK("a ID (\"a\" \"b\"\r\n", "E:a:wrong number of arguments|");
	CHECK("a ID ((\"a\" \"b\"))\r\n", "E:a:unexpected list|");
	CHECK("a ID \"x\"\r\n", "E:a:ID expects NIL or a list|");
	CHECK("a ID foo\r\n", "E:a:ID expects NIL or a list|");
	CHECK("a ID NIL NIL\r\n", "E:a:unexpected argument|");
	CHECK("a ID (\"a\" \"b\") x\r\n", "E:a:unexpected argument|");
}

/* Build "a ID (" + <pairs> pairs with values of <vlen> + ")\r\n" into <out>. */
static size_t
build_id(char *out, size_t outlen, unsigned pairs, size_t vlen)
{
	size_t n = 0;
	unsigned i;

	n += (size_t)snprintf(out + n, outlen - n, "a ID (");
	for (i = 0; i < pairs; i++) {
		n += (size_t)snprintf(out + n, outlen - n, "%s\"f%u\" \"", i ? " " : "", i);
		memset(out + n, 'v', vlen);
		n += vlen;
		out[n++] = '"';
	}
	n += (size_t)snprintf(out + n, outlen - n, ")\r\n");
	return n;
}

static void
test_id_limits(void **state)
{
	static char in[65536];
	static struct imapcmd st;
	size_t n, used;
	enum imapcmd_rc rc;
	struct imapcmd_limits lim = { .line_max = 65536 };
	(void)state;

	/* 30 pairs of 1024-octet values: accepted, values truncated */
	n = build_id(in, sizeof(in), 30, 1024);
	imapcmd_init(&st, &lim);
	rc = imapcmd_parse(&st, in, n, &used);
	assert_int_equal(rc, IMAPCMD_DONE);
	assert_int_equal(used, n);
	assert_int_equal(st.nargs, 60);
	assert_int_equal(st.args[1].len, IMAPCMD_ID_VALUE_KEEP);
	assert_true(st.args[1].flags & IMAPCMD_ARG_TRUNCATED);
	assert_false(st.args[0].flags & IMAPCMD_ARG_TRUNCATED);

	n = build_id(in, sizeof(in), 31, 1);
	imapcmd_init(&st, &lim);
	rc = imapcmd_parse(&st, in, n, &used);
	assert_int_equal(rc, IMAPCMD_ERROR);
	assert_string_equal(st.error, "too many ID pairs");

	n = build_id(in, sizeof(in), 1, 1025);
	imapcmd_init(&st, &lim);
	rc = imapcmd_parse(&st, in, n, &used);
	assert_int_equal(rc, IMAPCMD_ERROR);
	assert_string_equal(st.error, "ID value too long");

	/* the default line limit takes the same list (issue 10: it used to be cut) */
	n = build_id(in, sizeof(in), 30, 1024);
	imapcmd_init(&st, NULL);
	rc = imapcmd_parse(&st, in, n, &used);
	assert_int_equal(rc, IMAPCMD_DONE);
	assert_int_equal(st.nargs, 60);
}

/*
 * The longest ID RFC 2971 allows, written the longest way (a 32-octet tag,
 * every field and value octet escaped in a quoted string), parses with the
 * default limits; values are kept truncated. Then a NOOP on the same feed.
 */
static void
test_id_maximal(void **state)
{
	static char in[70000];
	static struct imapcmd st;
	size_t n = 0, used, k, len;
	unsigned i;
	enum imapcmd_rc rc = IMAPCMD_AGAIN;
	const char *v;
	(void)state;

	memset(in, 't', 32);
	n = 32;
	n += (size_t)snprintf(in + n, sizeof(in) - n, " ID (");
	for (i = 0; i < IMAPCMD_ID_PAIRS_MAX; i++) {
		if (i > 0)
			in[n++] = ' ';
		in[n++] = '"';
		for (k = 0; k < IMAPCMD_ID_FIELD_MAX; k++) {
			in[n++] = '\\';
			in[n++] = k == 0 ? (char)('"') : '\\';
		}
		n += (size_t)snprintf(in + n, sizeof(in) - n, "\" \"");
		for (k = 0; k < IMAPCMD_ID_VALUE_MAX; k++) {
			in[n++] = '\\';
			in[n++] = '\\';
		}
		in[n++] = '"';
	}
	n += (size_t)snprintf(in + n, sizeof(in) - n, ")\r\nb NOOP\r\n");
	assert_true(n - 10 > 63000);     /* the ID line alone */
	assert_true(n - 10 <= IMAPCMD_LINE_MAX_DEFAULT);

	imapcmd_init(&st, NULL);
	rc = imapcmd_parse(&st, in, n, &used);
	assert_int_equal(rc, IMAPCMD_DONE);
	assert_int_equal(st.kind, IMAPCMD_ID);
	assert_int_equal(st.taglen, 32);
	assert_int_equal(st.nargs, 2 * IMAPCMD_ID_PAIRS_MAX);
	v = imapcmd_arg(&st, 58, &len);
	assert_non_null(v);
	assert_int_equal(len, IMAPCMD_ID_FIELD_MAX);
	assert_int_equal(v[0], '"');
	v = imapcmd_arg(&st, 59, &len);
	assert_non_null(v);
	assert_int_equal(len, IMAPCMD_ID_VALUE_KEEP);
	assert_int_equal(v[0], '\\');
	assert_true(st.args[59].flags & IMAPCMD_ARG_TRUNCATED);
	assert_int_equal(imapcmd_parse(&st, in + used, n - used, &k), IMAPCMD_DONE);
	assert_int_equal(st.kind, IMAPCMD_NOOP);

	/* byte by byte: the same two commands */
	imapcmd_init(&st, NULL);
	for (k = 0, i = 0; k < n; k++) {
		rc = imapcmd_parse(&st, in + k, 1, &used);
		assert_int_equal(used, 1);
		if (rc == IMAPCMD_AGAIN)
			continue;
		assert_int_equal(rc, IMAPCMD_DONE);
		assert_int_equal(st.kind, i == 0 ? IMAPCMD_ID : IMAPCMD_NOOP);
		if (i == 0)
			assert_int_equal(st.nargs, 2 * IMAPCMD_ID_PAIRS_MAX);
		i++;
	}
	assert_int_equal(i, 2);
}

/*
 * A line far over the limit (200 KiB) gives "<tag> BAD line too long" once
 * it ends, and the next command on the same feed parses (issue 10: it was
 * "* BYE line too long" and a close).
 */
static void
test_overlong_resync(void **state)
{
	static char in[210000];
	static struct imapcmd st;
	size_t n, used, off, k;
	enum imapcmd_rc rc;
	unsigned events = 0;
	(void)state;

	n = (size_t)snprintf(in, sizeof(in), "a1 ID (\"name\" \"");
	memset(in + n, 'v', 200000);
	n += 200000;
	n += (size_t)snprintf(in + n, sizeof(in) - n, "\")\r\na2 LOGIN bob secret\r\n");

	imapcmd_init(&st, NULL);
	rc = imapcmd_parse(&st, in, n, &used);
	assert_int_equal(rc, IMAPCMD_ERROR);
	assert_string_equal(st.tag, "a1");
	assert_string_equal(st.error, "line too long");
	assert_true(st.too_long);
	assert_int_equal(st.line_len, used);
	rc = imapcmd_parse(&st, in + used, n - used, &k);
	assert_int_equal(rc, IMAPCMD_DONE);
	assert_int_equal(st.kind, IMAPCMD_LOGIN);
	assert_false(st.too_long);
	assert_string_equal(imapcmd_arg(&st, 0, NULL), "bob");

	/* in 1000-octet reads, as a socket delivers it: the same */
	imapcmd_init(&st, NULL);
	for (off = 0; off < n; off += k) {
		size_t chunk = n - off < 1000 ? n - off : 1000, pos = 0;

		k = chunk;
		while (pos < chunk) {
			rc = imapcmd_parse(&st, in + off + pos, chunk - pos, &used);
			pos += used;
			if (rc == IMAPCMD_AGAIN)
				continue;
			assert_int_equal(rc, events == 0 ? IMAPCMD_ERROR : IMAPCMD_DONE);
			assert_string_equal(st.tag, events == 0 ? "a1" : "a2");
			events++;
		}
	}
	assert_int_equal(events, 2);

	/* still going at 1 MiB: FATAL, not an endless skip */
	imapcmd_init(&st, NULL);
	memset(in, 'x', 65536);
	for (k = 0; k < 16; k++) {
		rc = imapcmd_parse(&st, in, IMAPCMD_LINE_MAX_DEFAULT, &used);
		assert_int_equal(rc, IMAPCMD_AGAIN);
	}
	rc = imapcmd_parse(&st, in, 1, &used);
	assert_int_equal(rc, IMAPCMD_FATAL);
	assert_int_equal(used, 0);
	assert_true(st.too_long);
}

static void
test_unknown(void **state)
{
	(void)state;
	CHECK("a SELECT INBOX\r\n", "D:UNKNOWN:a|");
	CHECK("a1 APPEND INBOX {5+}\r\nb NOO\r\nc NOOP\r\n", "D:UNKNOWN:a1|D:NOOP:c|");
	CHECK("a1 APPEND INBOX {5}\r\nb NOOP\r\n", "D:UNKNOWN:a1|D:NOOP:b|");
	CHECK("a1 X {2+}\r\n{3+}\r\nb NOOP\r\n", "D:UNKNOWN:a1|D:NOOP:b|");
	CHECK("a1 X \"{2+}\"\r\nb NOOP\r\n", "D:UNKNOWN:a1|D:NOOP:b|");
	CHECK("a X\0\r\nb NOOP\r\n", "E:a:NUL in command|D:NOOP:b|");
	CHECK("a VERYLONGCOMMANDNAMEVERYLONGCOMMANDNAMEX\r\n", "D:UNKNOWN:a|");
	CHECK("a ID\r\n", "E:a:wrong number of arguments|");
}

static void
test_bad_input(void **state)
{
	(void)state;
	CHECK("\r\n", "E::empty command line|");
	CHECK("\n", "E::empty command line|");
	CHECK("\r\na NOOP\r\n", "E::empty command line|D:NOOP:a|");
	CHECK("a NOOP\rx\r\nb NOOP\r\n", "E:a:CR without LF|D:NOOP:b|");
	CHECK("a\r\n", "E:a:missing command|");
	CHECK("a \r\n", "E:a:missing command|");
	CHECK(" a NOOP\r\n", "E::invalid tag|");
	CHECK("a+b NOOP\r\n", "E::invalid tag|");
	CHECK("a\0 NOOP\r\nb NOOP\r\n", "E::NUL in command|D:NOOP:b|");
	CHECK("\0\r\n", "E::NUL in command|");
	CHECK("a LOGIN \"u\0\" p\r\n", "E:a:NUL in command|");
	CHECK("a LOGIN {1}\r\n\0 p\r\nb NOOP\r\n", "L1|E:a:NUL in literal|D:NOOP:b|");
	CHECK("a LOGIN {3+}\r\nx\0y p\r\nb NOOP\r\n", "E:a:NUL in literal|D:NOOP:b|");
	CHECK("a LOGIN \"x\\y\" p\r\nb NOOP\r\n",
	      "E:a:invalid escape in quoted string|D:NOOP:b|");
	CHECK("a LOGIN \"x\xc3\xa9\" p\r\n", "E:a:8-bit octet in quoted string|");
	CHECK("a LOGIN \"pass\r\nb NOOP\r\n", "E:a:unterminated quoted string|D:NOOP:b|");
	CHECK("a LOGIN u\xc3\xa9 p\r\n", "E:a:invalid argument|");
	CHECK("a LOGIN u%x p\r\n", "E:a:invalid argument|");
	CHECK("a LOGIN {x}\r\n", "E:a:invalid literal|");
	CHECK("a LOGIN {}\r\n", "E:a:invalid literal|");
	CHECK("a LOGIN {3} \r\nb NOOP\r\n", "E:a:literal must end the line|D:NOOP:b|");
	/* an error before a {n+} literal: its data is skipped, not executed */
	CHECK("a LOGIN \"x\\y\" {8+}\r\nb NOOP\r\n\r\nc NOOP\r\n",
	      "E:a:invalid escape in quoted string|D:NOOP:c|");
}

static void
test_tag_limit(void **state)
{
	(void)state;
	CHECK("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa NOOP\r\n",
	      "D:NOOP:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa|");
	CHECK("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa NOOP\r\nb NOOP\r\n",
	      "E::tag too long|D:NOOP:b|");
}

static void
test_literal_limits(void **state)
{
	static char in[20000];
	size_t n;
	(void)state;

	CHECK("a LOGIN {99999999999999999999}\r\nb NOOP\r\n", "E:a:literal too long|D:NOOP:b|");
	CHECK("a LOGIN {99999999999999999999+}\r\nxx\r\n", "F:literal too long|");
	CHECK("a LOGIN {8193}\r\nb NOOP\r\n", "E:a:literal too long|D:NOOP:b|");
	CHECK("a X {8193+}\r\nb NOOP\r\n", "F:literal too long|");
	CHECK("a X {99999999999999999999}\r\nb NOOP\r\n", "D:UNKNOWN:a|D:NOOP:b|");

	/* two maximal literals fit */
	n = (size_t)snprintf(in, sizeof(in), "a LOGIN {8192+}\r\n");
	memset(in + n, 'u', 8192);
	n += 8192;
	n += (size_t)snprintf(in + n, sizeof(in) - n, " {8192+}\r\n");
	memset(in + n, 'p', 8192);
	n += 8192;
	n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\n");
	{
		static struct imapcmd st;
		size_t used, len;
		imapcmd_init(&st, NULL);
		assert_int_equal(imapcmd_parse(&st, in, n, &used), IMAPCMD_DONE);
		assert_int_equal(used, n);
		assert_non_null(imapcmd_arg(&st, 1, &len));
		assert_int_equal(len, 8192);
	}
	/* a smaller configured literal limit */
	{
		struct imapcmd_limits lim = { .literal_max = 4 };
		const char s[] = "a LOGIN {5}\r\nb LOGIN {4}\r\nuser {4+}\r\npass\r\n";
		check_lim(s, sizeof(s) - 1, "E:a:literal too long|L4|D:LOGIN:b l'user' l'pass'|", &lim);
	}
}

static void
test_line_limit(void **state)
{
	static char in[9000];
	static struct imapcmd st;
	size_t n, used, len;
	struct imapcmd_limits lim = { .line_max = 8192 };
	(void)state;

	/* with a limit of 8192: 8192 octets including CRLF pass; 8193 do not */
	n = (size_t)snprintf(in, sizeof(in), "a LOGIN u ");
	memset(in + n, 'p', sizeof(in) - n);
	memcpy(in + 8190, "\r\n", 2);
	imapcmd_init(&st, &lim);
	assert_int_equal(imapcmd_parse(&st, in, 8192, &used), IMAPCMD_DONE);
	assert_int_equal(used, 8192);
	assert_non_null(imapcmd_arg(&st, 1, &len));
	assert_int_equal(len, 8190 - n);

	memcpy(in + 8190, "p\r\n", 3);
	imapcmd_init(&st, &lim);
	assert_int_equal(imapcmd_parse(&st, in, 8193, &used), IMAPCMD_ERROR);
	assert_int_equal(used, 8193);
	assert_string_equal(st.error, "line too long");
	assert_string_equal(st.tag, "a");
	/* fed byte by byte: the same */
	imapcmd_init(&st, &lim);
	for (n = 0; n < 8193; n++) {
		enum imapcmd_rc rc = imapcmd_parse(&st, in + n, 1, &used);
		if (rc != IMAPCMD_AGAIN) {
			assert_int_equal(rc, IMAPCMD_ERROR);
			break;
		}
	}
	assert_int_equal(n, 8192);
}

static void
test_line_limit_small(void **state)
{
	struct imapcmd_limits lim = { .line_max = 20 };
	const char ok[] = "a LOGIN uuuu pppp\r\n";          /* 19 */
	const char bad[] = "a LOGIN uuuu ppppppp\r\n";      /* 22 */
	const char lit[] = "a LOGIN {4}\r\nuuuu {4}\r\npppp\r\n"; /* 21 + 8 literal */
	struct imapcmd_limits lim21 = { .line_max = 21 };
	(void)state;

	check_lim(ok, sizeof(ok) - 1, "D:LOGIN:a a'uuuu' a'pppp'|", &lim);
	check_lim(bad, sizeof(bad) - 1, "E:a:line too long|", &lim);
	/* literal data does not count toward the line */
	check_lim(lit, sizeof(lit) - 1, "L4|L4|D:LOGIN:a l'uuuu' l'pppp'|", &lim21);
	/* after the BAD the next command parses */
	CHECK_SMALL(12, "a LOGIN uuuu pppp\r\nb NOOP\r\n", "E:a:line too long|D:NOOP:b|");
	/* an over-long line that was already bad says "line too long" */
	CHECK_SMALL(12, "a LOGIN u\"u \"\r\nb NOOP\r\n", "E:a:line too long|D:NOOP:b|");
	/* the limit hit inside the tag: no tag to answer with */
	CHECK_SMALL(8, "abcdefghij NOOP\r\nb NOOP\r\n", "E::line too long|D:NOOP:b|");
	/* the limit hit inside a {n+} header: its data is still skipped */
	CHECK_SMALL(12, "a LOGIN u {3+}\r\nx\ny\r\nb NOOP\r\n", "E:a:line too long|D:NOOP:b|");
	CHECK_SMALL(11, "a LOGIN u {3+}\r\nx\ny\r\nb NOOP\r\n", "E:a:line too long|D:NOOP:b|");
	CHECK_SMALL(14, "a LOGIN u {3+}\r\nx\ny\r\nb NOOP\r\n", "E:a:line too long|D:NOOP:b|");
	CHECK_SMALL(15, "a LOGIN u {3+}\r\nx\ny\r\nb NOOP\r\n", "E:a:line too long|D:NOOP:b|");
	/* ... and a {n} there ends the command: the client waits for "+" */
	CHECK_SMALL(12, "a LOGIN uuuu {3}\r\nb NOOP\r\n", "E:a:line too long|D:NOOP:b|");
	/* a {n+} in the skipped part is skipped too */
	CHECK_SMALL(12, "a LOGIN uuuu {3+}\r\n\r\n\n {3+}\r\nabc\r\nb NOOP\r\n",
	            "E:a:line too long|D:NOOP:b|");
	/* still going at skip_max octets: FATAL */
	{
		static char big[300];
		struct imapcmd_limits l12 = { .line_max = 12, .skip_max = 192 };
		memset(big, 'x', sizeof(big));
		memcpy(big, "a NOOP ", 7);
		check_lim(big, 192, "", &l12);
		check_lim(big, 193, "F:line too long|", &l12);
	}
}

static void
test_after_fatal(void **state)
{
	static struct imapcmd st;
	size_t used;
	const char s[] = "a X {9999999+}\r\n";
	(void)state;

	imapcmd_init(&st, NULL);
	assert_int_equal(imapcmd_parse(&st, s, sizeof(s) - 1, &used), IMAPCMD_FATAL);
	assert_int_equal(imapcmd_parse(&st, "b NOOP\r\n", 8, &used), IMAPCMD_FATAL);
	assert_int_equal(used, 0);
	imapcmd_wipe(&st);
	assert_int_equal(imapcmd_parse(&st, "b NOOP\r\n", 8, &used), IMAPCMD_DONE);
}

static void
test_results_stable(void **state)
{
	static struct imapcmd st;
	size_t used, len;
	const char s[] = "a LOGIN bob secret\r\nb NOOP\r\n";
	(void)state;

	imapcmd_init(&st, NULL);
	assert_int_equal(imapcmd_parse(&st, s, sizeof(s) - 1, &used), IMAPCMD_DONE);
	assert_int_equal(used, 20);
	assert_string_equal(imapcmd_arg(&st, 1, &len), "secret");
	assert_null(imapcmd_arg(&st, 2, &len));
	assert_int_equal(len, 0);
	/* an empty feed between lines keeps nothing stale */
	assert_int_equal(imapcmd_parse(&st, s + used, 0, &used), IMAPCMD_AGAIN);
	assert_int_equal(st.nargs, 0);
	assert_int_equal(st.buf[0], 0);
}

static void
test_quote(void **state)
{
	char out[64];
	size_t split;
	(void)state;

	assert_int_equal(imapcmd_quote(out, sizeof(out), "bob", 3, 0, &split), 5);
	assert_string_equal(out, "\"bob\"");
	assert_int_equal(split, 0);
	assert_int_equal(imapcmd_quote(out, sizeof(out), "", 0, 0, &split), 2);
	assert_string_equal(out, "\"\"");
	assert_int_equal(imapcmd_quote(out, sizeof(out), "a b", 3, 0, &split), 5);
	assert_int_equal(imapcmd_quote(out, sizeof(out), "a\"b", 3, 0, &split), 8);
	assert_string_equal(out, "{3}\r\na\"b");
	assert_int_equal(split, 5);
	assert_int_equal(imapcmd_quote(out, sizeof(out), "a\\b", 3,
	                               IMAPCMD_QUOTE_LITERALPLUS, &split), 9);
	assert_string_equal(out, "{3+}\r\na\\b");
	assert_int_equal(split, 0);
	assert_int_equal(imapcmd_quote(out, sizeof(out), "\xc3\xa9\r\n", 4, 0, &split), 9);
	assert_int_equal(imapcmd_quote(out, sizeof(out), "a\0b", 3, 0, &split), -1);
	assert_int_equal(imapcmd_quote(out, 5, "bob", 3, 0, &split), -1);
	assert_int_equal(imapcmd_quote(out, 6, "bob", 3, 0, &split), 5);
	assert_int_equal(imapcmd_quote(out, 8, "a\"b", 3, 0, &split), -1);
	assert_int_equal(imapcmd_quote(out, 9, "a\"b", 3, 0, &split), 8);
}

/* A quoted or literal re-encoding parses back to the same value. */
static void
test_quote_roundtrip(void **state)
{
	static const char *const vals[] = { "bob", "p a\"s\\s", "", "\xff\r\n", "{3}" };
	static struct imapcmd st;
	char out[64], line[128];
	size_t split, used, i, len;
	(void)state;

	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		ssize_t n = imapcmd_quote(out, sizeof(out), vals[i], strlen(vals[i]),
		                          IMAPCMD_QUOTE_LITERALPLUS, &split);
		int m;
		assert_true(n >= 0);
		m = snprintf(line, sizeof(line), "t LOGIN x %s\r\n", out);
		imapcmd_init(&st, NULL);
		assert_int_equal(imapcmd_parse(&st, line, (size_t)m, &used), IMAPCMD_DONE);
		assert_string_equal(imapcmd_arg(&st, 1, &len), vals[i]);
	}
}

static void
test_starttls_consumed(void **state)
{
	static struct imapcmd st;
	const char s[] = "a STARTTLS\r\nb NOOP\r\n";
	size_t used;
	(void)state;

	/* consumed marks where the injected plaintext starts: the daemon drops it */
	imapcmd_init(&st, NULL);
	assert_int_equal(imapcmd_parse(&st, s, sizeof(s) - 1, &used), IMAPCMD_DONE);
	assert_int_equal(st.kind, IMAPCMD_STARTTLS);
	assert_int_equal(used, 12);
}

static void
test_sasl_limit(void **state)
{
	struct imapcmd_limits lim = { .sasl_max = 12 };
	const char ok[] = "a AUTHENTICATE PLAIN\r\n0123456789\r\n";
	const char bad[] = "a AUTHENTICATE PLAIN\r\n0123456789A\r\n";
	(void)state;
	check_lim(ok, sizeof(ok) - 1,
	          "D:AUTHENTICATE:a a'PLAIN'|D:SASL:a a'0123456789'|", &lim);
	const char bad2[] = "a AUTHENTICATE PLAIN\r\n0123456789A\r\nb NOOP\r\n";

	check_lim(bad, sizeof(bad) - 1, "D:AUTHENTICATE:a a'PLAIN'|E:a:line too long|", &lim);
	/* the BAD ends the exchange; the next line is a command */
	check_lim(bad2, sizeof(bad2) - 1,
	          "D:AUTHENTICATE:a a'PLAIN'|E:a:line too long|D:NOOP:b|", &lim);
	CHECK("a AUTHENTICATE PLAIN\r\nab\rc\r\nb NOOP\r\n",
	      "D:AUTHENTICATE:a a'PLAIN'|E:a:CR without LF|D:NOOP:b|");
}

/*
 * The lexer, token by token: what each token may hold, where it ends, and
 * the octet that ends it.
 */
static void
test_lex_tokens(void **state)
{
	(void)state;
	/* atom: ASTRING-CHAR, ']' included; it ends at SP, CR, LF or ')' */
	CHECK("a LOGIN u]x p\r\n", "D:LOGIN:a a'u]x' a'p'|");
	CHECK("a LOGIN u*x p\r\n", "E:a:invalid argument|");
	CHECK("a LOGIN u(x p\r\n", "E:a:invalid argument|");
	CHECK("a LOGIN u\"x p\r\n", "E:a:invalid argument|");
	CHECK("a LOGIN u) p\r\n", "E:a:missing space after argument|");
	/* spaces between tokens are tolerated, a missing one is not */
	CHECK("a LOGIN  u   p \r\n", "D:LOGIN:a a'u' a'p'|");
	CHECK("a LOGIN \"u\"p\r\n", "E:a:missing space after argument|");
	/* quoted: any 7-bit octet but CR, LF and NUL; only \" and \\ escape */
	CHECK("a LOGIN \"\x01(*{\" p\r\n", "D:LOGIN:a q'%01(*{' a'p'|");
	CHECK("a LOGIN \"x\\\r\n", "E:a:invalid escape in quoted string|");
	/* lists: only where the command takes one */
	CHECK("a LOGIN (u) p\r\n", "E:a:unexpected list|");
	CHECK("a LOGIN ) p\r\n", "E:a:unexpected ')'|");
	CHECK("a ID (\"a\" \"b\")(\r\n", "E:a:missing space after argument|");
	/* CRLF: CR must be followed by LF, after any token */
	CHECK("a LOGIN u p\rq\r\nb NOOP\r\n", "E:a:CR without LF|D:NOOP:b|");
	CHECK("a LOGIN u \"p\"\r\r\nb NOOP\r\n", "E:a:CR without LF|D:NOOP:b|");
	/* command name: an atom; a bad octet in it is an error */
	CHECK("a NO\"OP\r\nb NOOP\r\n", "E:a:invalid command name|D:NOOP:b|");
	CHECK("a  NOOP\r\n", "E:a:missing command|");
}

/* Each token kind at its bound and one past it. */
static void
test_lex_bounds(void **state)
{
	static char in[20000];
	static struct imapcmd st;
	size_t n, used;
	(void)state;

	/* tag: 32 octets */
	CHECK("t234567890123456789012345678901c NOOP\r\n",
	      "D:NOOP:t234567890123456789012345678901c|");
	CHECK("t234567890123456789012345678901cd NOOP\r\n", "E::tag too long|");
	/* command name: 32 octets kept; a longer one is unknown */
	CHECK("a N234567890123456789012345678901c x\r\n", "D:UNKNOWN:a|");

	/* atoms and quoted strings share the argument buffer: both LOGIN
	 * arguments together hold IMAPCMD_BUF_SIZE - 2 octets, no more */
	n = (size_t)snprintf(in, sizeof(in), "a LOGIN ");
	memset(in + n, 'u', 8447);
	n += 8447;
	in[n++] = ' ';
	in[n++] = '"';
	memset(in + n, 'p', IMAPCMD_BUF_SIZE - 2 - 8447);
	n += IMAPCMD_BUF_SIZE - 2 - 8447;
	memcpy(in + n, "\"\r\n", 3);
	imapcmd_init(&st, NULL);
	assert_int_equal(imapcmd_parse(&st, in, n + 3, &used), IMAPCMD_DONE);
	assert_int_equal(st.args[1].len, IMAPCMD_BUF_SIZE - 2 - 8447);
	memcpy(in + n, "p\"\r\n", 4);
	imapcmd_init(&st, NULL);
	assert_int_equal(imapcmd_parse(&st, in, n + 4, &used), IMAPCMD_ERROR);
	assert_string_equal(st.error, "arguments too long");
	assert_int_equal(used, n + 4);

	/* literal: literal_max octets, {n} and {n+} */
	{
		struct imapcmd_limits lim = { .literal_max = 4 };
		const char ok[] = "a LOGIN {4+}\r\nuser {4}\r\npass\r\n";
		const char bad[] = "a LOGIN {5}\r\nb NOOP\r\n";
		const char badplus[] = "a LOGIN {5+}\r\nxxxxx\r\n";
		const char skipped[] = "a X {5+}\r\nxxxxx\r\n";
		check_lim(ok, sizeof(ok) - 1, "L4|D:LOGIN:a l'user' l'pass'|", &lim);
		check_lim(bad, sizeof(bad) - 1, "E:a:literal too long|D:NOOP:b|", &lim);
		/* {n+} data cannot be told from commands once refused */
		check_lim(badplus, sizeof(badplus) - 1, "F:literal too long|", &lim);
		check_lim(skipped, sizeof(skipped) - 1, "F:literal too long|", &lim);
	}
}

/* The literal forms, well and badly written, read and skipped. */
static void
test_lex_literals(void **state)
{
	(void)state;
	CHECK("a LOGIN {1}\r\nu {1}\r\np\r\n", "L1|L1|D:LOGIN:a l'u' l'p'|");
	CHECK("a LOGIN {1+}\r\nu {1+}\r\np\r\n", "D:LOGIN:a l'u' l'p'|");
	CHECK("a LOGIN {1}\nu {001+}\np\n", "L1|D:LOGIN:a l'u' l'p'|");
	CHECK("a LOGIN {\r\nb NOOP\r\n", "E:a:invalid literal|D:NOOP:b|");
	CHECK("a LOGIN {+}\r\n", "E:a:invalid literal|");
	CHECK("a LOGIN {1x}\r\n", "E:a:invalid literal|");
	CHECK("a LOGIN {1+x}\r\n", "E:a:invalid literal|");
	CHECK("a LOGIN {1++}\r\n", "E:a:invalid literal|");
	CHECK("a LOGIN {1}x\r\n", "E:a:literal must end the line|");
	CHECK("a LOGIN {1}\rx\r\nb NOOP\r\n", "E:a:literal must end the line|D:NOOP:b|");
	/* after a bad header, the same recognizer still finds a {n+} in the
	 * rest of the line and skips its data: it never runs as commands */
	CHECK("a LOGIN {x {8+}\r\nb NOOP\r\n\r\nc NOOP\r\n", "E:a:invalid literal|D:NOOP:c|");
	CHECK("a LOGIN {{8+}\r\nb NOOP\r\n\r\nc NOOP\r\n", "E:a:invalid literal|D:NOOP:c|");
	CHECK("a LOGIN {8}{8+}\r\nb NOOP\r\n\r\nc NOOP\r\n",
	      "E:a:literal must end the line|D:NOOP:c|");
	/* a header cut by CR is no header: the line ends there */
	CHECK("a X {8+}\r\r\nb NOOP\r\n", "D:UNKNOWN:a|D:NOOP:b|");
	CHECK("a X {8+} \r\nb NOOP\r\n", "D:UNKNOWN:a|D:NOOP:b|");
	/* a {0+} in a skipped line: nothing to skip */
	CHECK("a X {0+}\r\n\r\nb NOOP\r\n", "D:UNKNOWN:a|D:NOOP:b|");
}

/* Build "a ID (<field> <value>)\r\n" with a field of <flen> and a value of <vlen> octets. */
static size_t
build_id_pair(char *out, size_t flen, size_t vlen, int literal)
{
	size_t n = (size_t)sprintf(out, "a ID (");

	if (literal)
		n += (size_t)sprintf(out + n, "{%zu+}\r\n", flen);
	else
		out[n++] = '"';
	memset(out + n, 'f', flen);
	n += flen;
	if (literal)
		n += (size_t)sprintf(out + n, " {%zu+}\r\n", vlen);
	else
		n += (size_t)sprintf(out + n, "\" \"");
	memset(out + n, 'v', vlen);
	n += vlen;
	n += (size_t)sprintf(out + n, "%s)\r\n", literal ? "" : "\"");
	return n;
}

/* The command table: each command's argument count, form and caps. */
static void
test_command_table(void **state)
{
	static char in[4096];
	static char want[1024];
	size_t n;
	int lit;
	(void)state;

	/* no arguments */
	CHECK("a CAPABILITY x\r\n", "E:a:unexpected argument|");
	CHECK("a NOOP \"x\"\r\n", "E:a:unexpected argument|");
	CHECK("a LOGOUT (x)\r\n", "E:a:unexpected argument|");
	CHECK("a STARTTLS {1}\r\n", "E:a:unexpected argument|");
	/* LOGIN: exactly two astrings */
	CHECK("a LOGIN\r\n", "E:a:wrong number of arguments|");
	CHECK("a LOGIN u\r\n", "E:a:wrong number of arguments|");
	CHECK("a LOGIN u \"p\"\r\n", "D:LOGIN:a a'u' q'p'|");
	CHECK("a LOGIN u p (\r\n", "E:a:too many arguments|");
	/* AUTHENTICATE: one or two atoms */
	CHECK("a AUTHENTICATE\r\n", "E:a:wrong number of arguments|");
	CHECK("a AUTHENTICATE PLAIN =\r\n", "D:AUTHENTICATE:a a'PLAIN' a'='|");
	CHECK("a AUTHENTICATE PLAIN = \"x\"\r\n", "E:a:too many arguments|");
	CHECK("a AUTHENTICATE {5}\r\n", "E:a:AUTHENTICATE arguments must be atoms|");
	CHECK("a AUTHENTICATE PLAIN {4+}\r\nAAAA\r\n",
	      "E:a:AUTHENTICATE arguments must be atoms|");
	/* ID: NIL or a list; NIL alone, a list only once */
	CHECK("a ID NIL ()\r\n", "E:a:unexpected argument|");
	CHECK("a ID ) \r\n", "E:a:ID expects NIL or a list|");
	CHECK("a ID {3}\r\n", "E:a:ID expects NIL or a list|");
	CHECK("a ID (\"a\" \"b\" (\r\n", "E:a:unexpected list|");
	CHECK("a ID (\"a\" NIL) \r\n", "D:ID:a q'a' n|");
	CHECK("a ID (\"a\" Nil \"b\" nIL)\r\n", "D:ID:a q'a' n q'b' n|");
	CHECK("a ID (a b)\r\n", "D:ID:a a'a' a'b'|");
	CHECK("a ID NILX\r\n", "E:a:ID expects NIL or a list|");

	/* ID field: 30 octets, quoted or literal; 31 is an error */
	for (lit = 0; lit <= 1; lit++) {
		n = build_id_pair(in, IMAPCMD_ID_FIELD_MAX, 1, lit);
		snprintf(want, sizeof(want), "D:ID:a %c'%.*s' %c'v'|", lit ? 'l' : 'q',
		         IMAPCMD_ID_FIELD_MAX, "ffffffffffffffffffffffffffffffffff", lit ? 'l' : 'q');
		check_lim(in, n, want, NULL);
		n = build_id_pair(in, IMAPCMD_ID_FIELD_MAX + 1, 1, lit);
		check_lim(in, n, "E:a:ID field too long|", NULL);
	}
	/* ID value: 1024 octets, kept to 256 and flagged; 1025 is an error */
	for (lit = 0; lit <= 1; lit++) {
		static struct imapcmd st;
		size_t used, len;

		n = build_id_pair(in, 1, IMAPCMD_ID_VALUE_MAX, lit);
		imapcmd_init(&st, NULL);
		assert_int_equal(imapcmd_parse(&st, in, n, &used), IMAPCMD_DONE);
		assert_int_equal(used, n);
		assert_non_null(imapcmd_arg(&st, 1, &len));
		assert_int_equal(len, IMAPCMD_ID_VALUE_KEEP);
		assert_true(st.args[1].flags & IMAPCMD_ARG_TRUNCATED);
		n = build_id_pair(in, 1, IMAPCMD_ID_VALUE_MAX + 1, lit);
		imapcmd_init(&st, NULL);
		assert_int_equal(imapcmd_parse(&st, in, n, &used), IMAPCMD_ERROR);
		assert_int_equal(used, n);
		assert_string_equal(st.error, "ID value too long");
	}
	/* ID pairs: 30, not 31 (see test_id_limits); a {n} pair announced
	 * past the cap gets no continuation */
	n = build_id(in, sizeof(in), 30, 1);
	memcpy(in + n - 3, " {1}\r\n", 6);
	check_lim(in, n + 3, "E:a:too many ID pairs|", NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_commands),
		cmocka_unit_test(test_pipelining),
		cmocka_unit_test(test_login_forms),
		cmocka_unit_test(test_authenticate),
		cmocka_unit_test(test_id),
		cmocka_unit_test(test_id_limits),
		cmocka_unit_test(test_id_maximal),
		cmocka_unit_test(test_overlong_resync),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_tag_limit),
		cmocka_unit_test(test_literal_limits),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_line_limit_small),
		cmocka_unit_test(test_after_fatal),
		cmocka_unit_test(test_results_stable),
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_quote_roundtrip),
		cmocka_unit_test(test_starttls_consumed),
		cmocka_unit_test(test_sasl_limit),
		cmocka_unit_test(test_lex_tokens),
		cmocka_unit_test(test_lex_bounds),
		cmocka_unit_test(test_lex_literals),
		cmocka_unit_test(test_command_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
