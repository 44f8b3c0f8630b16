/*
 * Unit tests for the logger's rate limit: <burst> lines of a kind per
 * window and the rest counted, the count reported by the next line of the
 * kind after the window or by a flush, kinds and levels kept apart, the
 * table's overflow slot, errno kept by the errno variant, and a count that
 * stays exact with several threads. The clock is injected: no sleeping.
 * Lines go to stderr, which each test captures in a temporary file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"
#include "log_limit.h"

/* The injected clock: a settable number of milliseconds. */
static uint64_t
fake_clock(void *arg)
{
	return *(const uint64_t *)arg;
}

/* A logger with a limiter on a fake clock, and stderr captured. */
struct fix {
	struct logger lg;
	struct log_limit ll;
	uint64_t now;
	int saved_stderr;
	FILE *cap;
	char text[65536];
};

static int
setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->now = 1000;
	if (log_init(&f->lg, "test_log", "stderr", "info", NULL) < 0 ||
	    log_limit_init(&f->ll, 3, 10000, fake_clock, &f->now) < 0)
		return -1;
	f->lg.limit = &f->ll;
	f->saved_stderr = -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fix *f = *state;

	if (f->saved_stderr >= 0) {
		dup2(f->saved_stderr, STDERR_FILENO);
		close(f->saved_stderr);
	}
	if (f->cap != NULL)
		fclose(f->cap);
	log_limit_free(&f->ll);
	free(f);
	return 0;
}

/* Send stderr to a fresh temporary file. */
static void
capture(struct fix *f)
{
	f->cap = tmpfile();
	assert_non_null(f->cap);
	f->saved_stderr = dup(STDERR_FILENO);
	assert_true(f->saved_stderr >= 0);
	assert_true(dup2(fileno(f->cap), STDERR_FILENO) >= 0);
}

/* Restore stderr; the captured lines are in f->text. */
static void
captured(struct fix *f)
{
	size_t n;

	dup2(f->saved_stderr, STDERR_FILENO);
	close(f->saved_stderr);
	f->saved_stderr = -1;
	rewind(f->cap);
	n = fread(f->text, 1, sizeof(f->text) - 1, f->cap);
	f->text[n] = '\0';
	fclose(f->cap);
	f->cap = NULL;
}

/* Count the lines of f->text containing <needle>. */
static int
lines_with(const struct fix *f, const char *needle)
{
	const char *p = f->text, *nl;
	int n = 0;

	while (*p) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		if (memmem(p, (size_t)(nl - p), needle, strlen(needle)) != NULL)
			n++;
		p = *nl ? nl + 1 : nl;
	}
	return n;
}

static void
test_burst_then_suppressed_then_reported(void **state)
{
	struct fix *f = *state;
	int i;

	capture(f);
	for (i = 0; i < 50; i++) {
		f->now += 10;   /* 500 ms in all: one window */
		log_limited(&f->lg, LOG_WARNING, "garbage", "bad input %d", i);
	}
	/* the window is not over: a flush reports nothing yet */
	log_limit_flush(&f->lg, 0);
	f->now += 10000;
	log_limited(&f->lg, LOG_WARNING, "garbage", "new window");
	captured(f);
	assert_int_equal(lines_with(f, "bad input "), 3);
	assert_int_equal(lines_with(f, "new window"), 1);
	assert_int_equal(lines_with(f, "warning: garbage: 47 similar messages suppressed "
	                             "(at most 3 per 10 s)"), 1);
	assert_int_equal(lines_with(f, "suppressed"), 1);
	/* the count comes before the new window's first line */
	assert_true(strstr(f->text, "suppressed") < strstr(f->text, "new window"));
}

static void
test_allow_counts(void **state)
{
	struct fix *f = *state;
	int i, ok = 0;

	capture(f);
	for (i = 0; i < 10; i++)
		ok += log_limit_allow(&f->lg, LOG_WARNING, "k");
	log_limit_flush(&f->lg, 1);
	captured(f);
	assert_int_equal(ok, 3);
	/* allow() writes nothing itself but the count */
	assert_int_equal(lines_with(f, ""), 1);
	assert_int_equal(lines_with(f, "k: 7 similar messages suppressed"), 1);
}

static void
test_exact_burst(void **state)
{
	struct fix *f = *state;
	int i;

	capture(f);
	for (i = 0; i < 20; i++)
		log_limited(&f->lg, LOG_WARNING, "k", "line %d", i);
	captured(f);
	assert_int_equal(lines_with(f, "line "), 3);
	assert_int_equal(lines_with(f, "line 0"), 1);
	assert_int_equal(lines_with(f, "line 2"), 1);
	assert_int_equal(lines_with(f, "line 3"), 0);
	assert_int_equal(lines_with(f, "suppressed"), 0);
}

static void
test_flush_reports_after_the_window(void **state)
{
	struct fix *f = *state;
	int i;

	capture(f);
	for (i = 0; i < 10; i++)
		log_limited(&f->lg, LOG_WARNING, "k", "line %d", i);
	f->now += 9999;
	log_limit_flush(&f->lg, 0);          /* 1 ms early: nothing */
	f->now += 1;
	log_limit_flush(&f->lg, 0);          /* the flood stopped: the count is still told */
	log_limit_flush(&f->lg, 0);          /* once */
	/* a fresh window after the flush */
	for (i = 0; i < 4; i++)
		log_limited(&f->lg, LOG_WARNING, "k", "later %d", i);
	log_limit_flush(&f->lg, 1);          /* at exit: whatever is pending */
	captured(f);
	assert_int_equal(lines_with(f, "k: 7 similar messages suppressed"), 1);
	assert_int_equal(lines_with(f, "later "), 3);
	assert_int_equal(lines_with(f, "k: 1 similar message suppressed"), 1);
	assert_int_equal(lines_with(f, "suppressed"), 2);
}

static void
test_kinds_are_separate(void **state)
{
	struct fix *f = *state;
	char other[] = "other-kind";
	int i;

	capture(f);
	for (i = 0; i < 10; i++)
		log_limited(&f->lg, LOG_WARNING, "flood", "flood %d", i);
	/* another kind still has its whole budget; an equal string at
	 * another address is the same kind */
	for (i = 0; i < 3; i++)
		log_limited(&f->lg, LOG_WARNING, other, "quiet %d", i);
	log_limited(&f->lg, LOG_WARNING, "other-kind", "quiet 3");
	log_limit_flush(&f->lg, 1);
	captured(f);
	assert_int_equal(lines_with(f, "flood "), 3);
	assert_int_equal(lines_with(f, "quiet "), 3);
	assert_int_equal(lines_with(f, "flood: 7 similar"), 1);
	assert_int_equal(lines_with(f, "other-kind: 1 similar message"), 1);
}

static void
test_levels(void **state)
{
	struct fix *f = *state;
	int i;

	capture(f);
	/* below the log level: neither written nor counted */
	for (i = 0; i < 10; i++)
		log_limited(&f->lg, LOG_DEBUG, "k", "debug %d", i);
	for (i = 0; i < 3; i++)
		log_limited(&f->lg, LOG_INFO, "k", "info %d", i);
	log_limited(&f->lg, LOG_INFO, "k", "info suppressed");
	log_limited(&f->lg, LOG_ERR, "k", "error suppressed");
	log_limit_flush(&f->lg, 1);
	captured(f);
	assert_int_equal(lines_with(f, "debug "), 0);
	assert_int_equal(lines_with(f, "info "), 3);
	/* the summary is as severe as the worst message it stands for */
	assert_int_equal(lines_with(f, "error: k: 2 similar messages suppressed"), 1);
}

static void
test_no_limiter_or_limit_off(void **state)
{
	struct fix *f = *state;
	struct logger plain = f->lg;
	int i;

	plain.limit = NULL;
	capture(f);
	for (i = 0; i < 20; i++)
		log_limited(&plain, LOG_WARNING, "k", "plain %d", i);
	log_limit_set(&f->ll, 0, 10000);       /* rate_limit = 0: off */
	for (i = 0; i < 20; i++)
		log_limited(&f->lg, LOG_WARNING, "k", "off %d", i);
	log_limit_set(&f->ll, 2, 10000);       /* a reload turns it on again */
	for (i = 0; i < 20; i++)
		log_limited(&f->lg, LOG_WARNING, "k", "on %d", i);
	log_limit_flush(&f->lg, 1);
	captured(f);
	assert_int_equal(lines_with(f, "plain "), 20);
	assert_int_equal(lines_with(f, "off "), 20);
	assert_int_equal(lines_with(f, "on "), 2);
	assert_int_equal(lines_with(f, "k: 18 similar messages suppressed (at most 2 per 10 s)"), 1);
}

static void
test_table_overflow_shares_one_slot(void **state)
{
	struct fix *f = *state;
	static char kinds[LOG_LIMIT_KINDS + 10][16];
	int i, j;

	capture(f);
	for (i = 0; i < LOG_LIMIT_KINDS + 10; i++) {
		snprintf(kinds[i], sizeof(kinds[i]), "kind%d", i);
		for (j = 0; j < 3; j++)
			log_limited(&f->lg, LOG_WARNING, kinds[i], "msg %s", kinds[i]);
	}
	log_limit_flush(&f->lg, 1);
	captured(f);
	/* the first kinds have a slot each; the last 11 share "other" */
	assert_int_equal(lines_with(f, "msg kind0"), 3);
	assert_int_equal(lines_with(f, "msg kind46"), 3);
	assert_int_equal(lines_with(f, "msg "), (LOG_LIMIT_KINDS - 1) * 3 + 3);
	assert_int_equal(lines_with(f, "other: 30 similar messages suppressed"), 1);
}

static void
test_errno_variant(void **state)
{
	struct fix *f = *state;
	int i, kept = 1;

	capture(f);
	for (i = 0; i < 5; i++) {
		errno = EMFILE;
		log_limited_errno(&f->lg, LOG_WARNING, "accept", "accept on %s", "imap");
		kept = kept && errno == EMFILE;
	}
	f->now += 20000;
	errno = ENFILE;
	log_limited_errno(&f->lg, LOG_WARNING, "accept", "accept on %s", "imap");
	kept = kept && errno == ENFILE;
	captured(f);
	assert_true(kept);
	assert_int_equal(lines_with(f, "accept on imap: Too many open files"), 4);
	assert_int_equal(lines_with(f, "accept on imap: Too many open files in system"), 1);
	assert_int_equal(lines_with(f, "accept: 2 similar messages suppressed"), 1);
}

#define NTHREADS 4
#define PER_THREAD 5000

/* Thread: ask for PER_THREAD lines; returns how many were allowed. */
static void *
hammer(void *arg)
{
	const struct logger *lg = arg;
	intptr_t ok = 0;
	int i;

	for (i = 0; i < PER_THREAD; i++)
		ok += log_limit_allow(lg, LOG_WARNING, "shared");
	return (void *)ok;
}

static void
test_threads_count_exactly(void **state)
{
	struct fix *f = *state;
	pthread_t t[NTHREADS];
	intptr_t total = 0;
	void *rv;
	char want[128];
	int i;

	capture(f);
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &f->lg), 0);
	for (i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_join(t[i], &rv), 0);
		total += (intptr_t)rv;
	}
	log_limit_flush(&f->lg, 1);
	captured(f);
	assert_int_equal(total, 3);
	snprintf(want, sizeof(want), "shared: %d similar messages suppressed",
	         NTHREADS * PER_THREAD - 3);
	assert_int_equal(lines_with(f, want), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_burst_then_suppressed_then_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allow_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exact_burst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_reports_after_the_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kinds_are_separate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_limiter_or_limit_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_overflow_shares_one_slot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errno_variant, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_count_exactly, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
