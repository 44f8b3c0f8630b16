/*
 * Unit tests for the metrics responder (mhttp) on a real libev loop with
 * real loopback sockets: the whole answer arrives with a correct header,
 * a scraper that never sends neither blocks others nor lives past its
 * deadline, the client cap holds, an answer too big is refused, and
 * stopping frees every client (ASan checks the leaks).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "log.h"
#include "mhttp.h"

struct fx {
	struct ev_loop *loop;
	struct logger lg;
	struct mhttp *srv;
	int renders;
	size_t body;      /* bytes the render callback writes */
};

static int
render(void *arg, char *buf, size_t len, size_t *off)
{
	struct fx *f = arg;
	size_t i;

	f->renders++;
	if (*off + f->body > len)
		return -1;
	for (i = 0; i < f->body; i++)
		buf[*off + i] = (char)('a' + i % 26);
	*off += f->body;
	return 0;
}

/* Return a loopback port that was free a moment ago. */
static uint16_t
free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void
fx_init(struct fx *f, size_t body, double deadline)
{
	char addr[32];
	uint16_t port = free_port();

	memset(f, 0, sizeof(*f));
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(f->loop);
	assert_int_equal(log_init(&f->lg, "test_mhttp", "stderr", "err", NULL), 0);
	f->body = body;
	f->srv = mhttp_start(f->loop, addr, render, f, deadline, 0, &f->lg);
	assert_non_null(f->srv);
	assert_int_equal(mhttp_port(f->srv), port);
}

static void
fx_done(struct fx *f)
{
	mhttp_stop(f->srv);
	ev_loop_destroy(f->loop);
}

/* Connect a non-blocking client to <f>'s server. */
static int
client(struct fx *f)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	sa.sin_port = htons(mhttp_port(f->srv));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	return fd;
}

/* Run the loop until <fd> is closed by the server or <rounds> run out; collect into <out>. */
static size_t
drain(struct fx *f, int fd, char *out, size_t cap, int rounds, int *closed)
{
	size_t got = 0;
	ssize_t n;

	*closed = 0;
	while (rounds-- > 0 && !*closed) {
		ev_run(f->loop, EVRUN_NOWAIT);
		while ((n = read(fd, out + got, cap - got)) > 0)
			got += (size_t)n;
		if (n == 0)
			*closed = 1;
		else if (errno != EAGAIN)
			*closed = 1;
		usleep(1000);
	}
	return got;
}

static void
test_answer_whole(void **state)
{
	static char out[256 * 1024];
	struct fx f;
	size_t got;
	int fd, closed;
	char *body;

	(void)state;
	fx_init(&f, 100000, 5.);
	fd = client(&f);
	assert_int_equal(write(fd, "GET /metrics HTTP/1.0\r\n\r\n", 25), 25);
	got = drain(&f, fd, out, sizeof(out) - 1, 2000, &closed);
	out[got] = '\0';
	assert_true(closed);
	assert_int_equal(strncmp(out, "HTTP/1.0 200 OK\r\n", 17), 0);
	assert_non_null(strstr(out, "Content-Length: 100000\r\n"));
	body = strstr(out, "\r\n\r\n");
	assert_non_null(body);
	assert_int_equal(got - (size_t)(body + 4 - out), 100000);
	assert_int_equal(body[4], 'a');
	assert_int_equal(f.renders, 1);
	assert_int_equal(mhttp_clients(f.srv), 0);
	close(fd);
	fx_done(&f);
}

static void
test_silent_client_blocks_nobody(void **state)
{
	static char out[4096];
	struct fx f;
	int silent, fd, closed, i;
	size_t got;

	(void)state;
	fx_init(&f, 10, 0.2);
	silent = client(&f);
	for (i = 0; i < 20; i++)
		ev_run(f.loop, EVRUN_NOWAIT);
	assert_int_equal(mhttp_clients(f.srv), 1);
	/* another scraper is answered while the silent one is connected */
	fd = client(&f);
	assert_int_equal(write(fd, "GET / HTTP/1.0\r\n\r\n", 18), 18);
	got = drain(&f, fd, out, sizeof(out), 2000, &closed);
	assert_true(closed);
	assert_true(got > 10);
	assert_int_equal(mhttp_clients(f.srv), 1);
	close(fd);
	/* and the silent one is dropped at its deadline, unanswered */
	got = drain(&f, silent, out, sizeof(out), 3000, &closed);
	assert_true(closed);
	assert_int_equal(got, 0);
	assert_int_equal(mhttp_clients(f.srv), 0);
	close(silent);
	fx_done(&f);
}

static void
test_client_cap_and_stop(void **state)
{
	static char out[64];
	struct fx f;
	int fds[MHTTP_MAX_CLIENTS + 1], i, closed;

	(void)state;
	fx_init(&f, 10, 30.);
	for (i = 0; i < MHTTP_MAX_CLIENTS; i++)
		fds[i] = client(&f);
	for (i = 0; i < 50; i++)
		ev_run(f.loop, EVRUN_NOWAIT);
	assert_int_equal(mhttp_clients(f.srv), MHTTP_MAX_CLIENTS);
	/* one more is closed at once */
	fds[MHTTP_MAX_CLIENTS] = client(&f);
	assert_int_equal(drain(&f, fds[MHTTP_MAX_CLIENTS], out, sizeof(out), 2000, &closed), 0);
	assert_true(closed);
	assert_int_equal(mhttp_clients(f.srv), MHTTP_MAX_CLIENTS);
	/* stopping closes (and frees) every pending client */
	mhttp_stop(f.srv);
	f.srv = NULL;
	for (i = 0; i < MHTTP_MAX_CLIENTS; i++) {
		assert_int_equal(read(fds[i], out, sizeof(out)), 0);
		close(fds[i]);
	}
	close(fds[MHTTP_MAX_CLIENTS]);
	ev_loop_destroy(f.loop);
}

static void
test_too_big_and_bad_address(void **state)
{
	static char out[4096];
	struct fx f;
	int fd, closed;

	(void)state;
	fx_init(&f, MHTTP_BUF, 5.);
	fd = client(&f);
	assert_int_equal(write(fd, "GET / HTTP/1.0\r\n\r\n", 18), 18);
	/* refused (closed without an answer), not truncated */
	assert_int_equal(drain(&f, fd, out, sizeof(out), 2000, &closed), 0);
	assert_true(closed);
	close(fd);
	assert_null(mhttp_start(f.loop, "not-an-address", render, &f, 1., 0, &f.lg));
	assert_null(mhttp_start(f.loop, "192.0.2.1:1", render, &f, 1., 0, &f.lg));
	fx_done(&f);
}

/* Request mode: what the request callback saw and did. */
struct rfx {
	struct fx f;
	int requests, drops;
	struct mhttp_client *held;     /* answered later by the test */
	char head[256];
};

static void
on_drop(void *arg)
{
	struct rfx *r = arg;

	r->drops++;
	r->held = NULL;
}

static void
on_request(void *arg, struct mhttp_client *c, char *head, size_t len)
{
	struct rfx *r = arg;

	r->requests++;
	assert_int_equal(strlen(head), len);
	snprintf(r->head, sizeof(r->head), "%s", head);
	r->held = c;
	mhttp_on_drop(c, on_drop, r);
}

static void
rfx_init(struct rfx *r, double deadline)
{
	char addr[32];

	memset(r, 0, sizeof(*r));
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", free_port());
	r->f.loop = ev_loop_new(EVFLAG_AUTO);
	assert_int_equal(log_init(&r->f.lg, "test_mhttp", "stderr", "err", NULL), 0);
	r->f.srv = mhttp_start_req(r->f.loop, addr, on_request, r, deadline, 64, 4, "test",
	                           &r->f.lg);
	assert_non_null(r->f.srv);
}

static void
test_request_mode(void **state)
{
	static char out[4096];
	struct rfx r;
	int fd, closed, i;
	size_t got;

	(void)state;
	rfx_init(&r, 0.3);
	/* a head in two pieces is handed over once, whole, without the body */
	fd = client(&r.f);
	assert_int_equal(write(fd, "GET /a HTTP/1.0\r\nX: y", 21), 21);
	for (i = 0; i < 20; i++)
		ev_run(r.f.loop, EVRUN_NOWAIT);
	assert_int_equal(r.requests, 0);
	assert_int_equal(write(fd, "\r\n\r\nbody", 8), 8);
	for (i = 0; i < 20 && r.requests == 0; i++)
		ev_run(r.f.loop, EVRUN_NOWAIT);
	assert_int_equal(r.requests, 1);
	assert_string_equal(r.head, "GET /a HTTP/1.0\r\nX: y\r\n\r\n");
	assert_string_equal(mhttp_peer(r.held), "127.0.0.1");
	/* answered later, from outside the callback */
	assert_int_equal(mhttp_reply(r.held, "HTTP/1.0 204 x\r\n\r\n", 18), 0);
	got = drain(&r.f, fd, out, sizeof(out), 2000, &closed);
	assert_true(closed);
	assert_int_equal(got, 18);
	assert_int_equal(r.drops, 0);
	close(fd);
	/* never answered: dropped at the deadline, the drop callback told once */
	fd = client(&r.f);
	assert_int_equal(write(fd, "GET / HTTP/1.0\r\n\r\n", 18), 18);
	got = drain(&r.f, fd, out, sizeof(out), 3000, &closed);
	assert_true(closed);
	assert_int_equal(got, 0);
	assert_int_equal(r.requests, 2);
	assert_int_equal(r.drops, 1);
	close(fd);
	/* a head over the bound: 400, never handed over */
	fd = client(&r.f);
	memset(out, 'x', 200);
	assert_int_equal(write(fd, out, 200), 200);
	got = drain(&r.f, fd, out, sizeof(out) - 1, 2000, &closed);
	out[got] = '\0';
	assert_int_equal(strncmp(out, "HTTP/1.0 400 ", 13), 0);
	assert_int_equal(r.requests, 2);
	close(fd);
	/* a client waiting for its answer is dropped (told) when the server stops */
	fd = client(&r.f);
	assert_int_equal(write(fd, "GET / HTTP/1.0\r\n\r\n", 18), 18);
	for (i = 0; i < 50 && r.requests < 3; i++)
		ev_run(r.f.loop, EVRUN_NOWAIT);
	assert_int_equal(r.requests, 3);
	fx_done(&r.f);
	assert_int_equal(r.drops, 2);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answer_whole),
		cmocka_unit_test(test_silent_client_blocks_nobody),
		cmocka_unit_test(test_client_cap_and_stop),
		cmocka_unit_test(test_too_big_and_bad_address),
		cmocka_unit_test(test_request_mode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
