/*
 * Unit tests for listen_pause on a real libev loop: resource exhaustion
 * stops the listener's watcher and a timer starts it again; other accept
 * errors change nothing; stopping cancels a pending resume.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <unistd.h>
#include <cmocka.h>

#include "listen.h"

static void
never_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

static void
test_pause_and_resume(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct listen_pause p;
	struct logger lg;
	ev_io io;
	int fds[2], i;

	(void)state;
	assert_non_null(loop);
	assert_int_equal(log_init(&lg, "test_listen", "stderr", "err", NULL), 0);
	assert_int_equal(pipe(fds), 0);
	ev_io_init(&io, never_cb, fds[0], EV_READ);
	ev_io_start(loop, &io);
	listen_pause_init(&p, loop, &io, &lg, "test");

	/* not a resource error: nothing changes */
	assert_int_equal(listen_pause_on_error(&p, EAGAIN), 0);
	assert_int_equal(listen_pause_on_error(&p, ECONNABORTED), 0);
	assert_true(ev_is_active(&io));

	/* out of descriptors: paused, and a second error does not re-arm */
	assert_int_equal(listen_pause_on_error(&p, EMFILE), 1);
	assert_false(ev_is_active(&io));
	assert_int_equal(listen_pause_on_error(&p, ENFILE), 1);
	assert_false(ev_is_active(&io));
	/* the timer starts it again */
	for (i = 0; i < 100 && !ev_is_active(&io); i++)
		ev_run(loop, EVRUN_ONCE);
	assert_true(ev_is_active(&io));

	/* stopping cancels a pending resume */
	assert_int_equal(listen_pause_on_error(&p, ENOBUFS), 1);
	listen_pause_stop(&p);
	ev_io_stop(loop, &io);
	usleep((useconds_t)(LISTEN_PAUSE_S * 2e6));
	ev_run(loop, EVRUN_NOWAIT);
	assert_false(ev_is_active(&io));

	close(fds[0]);
	close(fds[1]);
	ev_loop_destroy(loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pause_and_resume),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
