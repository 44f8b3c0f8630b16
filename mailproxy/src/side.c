/*
 * An endpoint of a session: one socket, plain or TLS, with its watcher and
 * what is known of its readiness, so that the session's phases move bytes
 * without knowing which of the two it talks through. Reads and writes skip
 * the system call when the socket is known drained or full (level-triggered
 * events: a short plain read or write says so; TLS only says so with
 * WANT_*). Buffers are borrowed from the pool when bytes arrive and given
 * back when empty, so an idle endpoint holds none.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "mp.h"

/*
 * Set up <sd> for socket <fd> (-1: none yet) with watcher callback <cb>
 * that receives <owner> in the watcher's data.
 */
void
side_init(struct side *sd, int fd, side_cb cb, void *owner)
{
	memset(sd, 0, sizeof(*sd));
	sd->fd = fd;
	ev_init(&sd->io, cb);
	sd->io.data = owner;
	if (fd >= 0) {
		ev_io_set(&sd->io, fd, 0);
		sd->wr_ready = 1;
	}
}

/*
 * Open a non-blocking TCP connection from <sd> to <sa> (<salen> bytes).
 * Returns 1 when connected, 0 when in progress (EV_WRITE tells, then
 * side_connect_error()), -1 when the connect failed, -2 when no socket
 * could be made (errno set).
 */
int
side_connect(struct side *sd, const struct sockaddr *sa, socklen_t salen)
{
	int fd, one = 1;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -2;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	sd->fd = fd;
	sd->events = 0;
	sd->rd_ready = 0;
	sd->wr_ready = 1;
	ev_io_set(&sd->io, fd, 0);
	if (connect(fd, sa, salen) == 0)
		return 1;
	return errno == EINPROGRESS ? 0 : -1;
}

/* Return the outcome of the connect of <sd> once writable: 0, or the errno value. */
int
side_connect_error(const struct side *sd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(sd->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

/* Note that the watcher of <sd> saw <revents>: the socket may be ready again. */
void
side_note(struct side *sd, int revents)
{
	/* TLS can need either direction for either operation */
	if ((revents & EV_READ) || (sd->ssl != NULL && (revents & EV_WRITE)))
		sd->rd_ready = 1;
	if ((revents & EV_WRITE) || (sd->ssl != NULL && (revents & EV_READ)))
		sd->wr_ready = 1;
}

/*
 * Read up to <len> bytes from side <sd> into <buf>. Returns the count,
 * 0 at end of stream, -1 when nothing is available now, -2 on error.
 */
ssize_t
side_read(struct side *sd, void *buf, size_t len)
{
	ssize_t n;

	if (sd->ssl != NULL) {
		int r;

		sd->rd_ww = 0;
		ERR_clear_error();
		r = SSL_read(sd->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
		if (r > 0)
			return r;
		switch (SSL_get_error(sd->ssl, r)) {
		case SSL_ERROR_WANT_READ:
			return -1;
		case SSL_ERROR_WANT_WRITE:
			sd->rd_ww = 1;
			return -1;
		case SSL_ERROR_ZERO_RETURN:
			return 0;
		case SSL_ERROR_SYSCALL:
			return (errno == 0 || errno == ECONNRESET) ? 0 : -2;
		default:
			return -2;
		}
	}
	n = read(sd->fd, buf, len);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return -1;
	return errno == ECONNRESET ? 0 : -2;
}

/*
 * Write up to <len> bytes of <buf> to side <sd>. Returns the count written,
 * -1 when the socket cannot take more now, -2 on error.
 */
ssize_t
side_write(struct side *sd, const void *buf, size_t len)
{
	ssize_t n;

	if (sd->ssl != NULL) {
		int r;

		sd->wr_wr = 0;
		ERR_clear_error();
		r = SSL_write(sd->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
		if (r > 0)
			return r;
		switch (SSL_get_error(sd->ssl, r)) {
		case SSL_ERROR_WANT_WRITE:
			return -1;
		case SSL_ERROR_WANT_READ:
			sd->wr_wr = 1;
			return -1;
		default:
			return -2;
		}
	}
	n = send(sd->fd, buf, len, MSG_NOSIGNAL);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return -1;
	return -2;
}

/*
 * Read from <sd> into <*bp>, borrowed from <pool> on demand and given back
 * when it stays empty. Returns 1 when bytes arrived, 0 when none (end of
 * stream sets sd->eof), -1 on error.
 */
int
side_fill(struct side *sd, struct mbuf_pool *pool, struct mbuf **bp)
{
	struct mbuf *b;
	size_t want;
	ssize_t n;

	/* a socket drained since its last event has nothing: skip the EAGAIN */
	if (!sd->rd_ready)
		return 0;
	if (*bp == NULL && (*bp = mbuf_get(pool)) == NULL)
		return -1;
	b = *bp;
	if (b->w == b->cap && b->r > 0) {
		memmove(b->d, b->d + b->r, b->w - b->r);
		b->w -= b->r;
		b->r = 0;
	}
	if (b->w == b->cap)
		return 0;
	want = b->cap - b->w;
	n = side_read(sd, b->d + b->w, want);
	if (n > 0) {
		b->w += (uint32_t)n;
		/* level-triggered events: a short plain read means drained for
		 * now; TLS returns one record at a time, so only WANT_* tells */
		if (sd->ssl == NULL && (size_t)n < want)
			sd->rd_ready = 0;
		return 1;
	}
	if (n == -1)
		sd->rd_ready = 0;
	if (b->w == b->r)
		mbuf_put(pool, bp);
	if (n == 0)
		sd->eof = 1;
	return n == -2 ? -1 : 0;
}

/*
 * Write <*bp> to <sd>; an emptied buffer goes back to <pool>, wiped first
 * when <wipe> (it held credentials). Returns 1 on progress, 0 none, -1 error.
 */
int
side_flush(struct side *sd, struct mbuf_pool *pool, struct mbuf **bp, int wipe)
{
	int progress = 0;

	while (mbuf_len(*bp) > 0 && sd->wr_ready) {
		size_t len = mbuf_len(*bp);
		ssize_t n = side_write(sd, (*bp)->d + (*bp)->r, len);

		if (n == -2)
			return -1;
		if (n < 0) {
			sd->wr_ready = 0;
			break;
		}
		mbuf_consume(*bp, (size_t)n);
		progress = 1;
		/* a short plain write means the socket buffer is full: wait for
		 * EV_WRITE (TLS may write one record at a time: only WANT_* tells) */
		if (sd->ssl == NULL && (size_t)n < len)
			sd->wr_ready = 0;
	}
	if (*bp != NULL && mbuf_len(*bp) == 0) {
		if (wipe)
			mbuf_put_wipe(pool, bp);
		else
			mbuf_put(pool, bp);
	}
	return progress;
}

/*
 * Arm the watcher of <sd> on <loop> for events <ev>, plus what TLS needs
 * of the socket (a handshake waits for what it asked for, whatever <ev>).
 */
void
side_arm(struct side *sd, struct ev_loop *loop, int ev)
{
	if (sd->ssl != NULL) {
		if (sd->hs) {
			ev = sd->hs_want;
		} else {
			if (sd->rd_ww)
				ev |= EV_WRITE;
			if (sd->wr_wr)
				ev |= EV_READ;
		}
	}
	if (sd->fd < 0 || ev == sd->events)
		return;
	ev_io_stop(loop, &sd->io);
	ev_io_set(&sd->io, sd->fd, ev);
	if (ev != 0)
		ev_io_start(loop, &sd->io);
	sd->events = ev;
}

/* Hand TLS object <ssl> (owned from now on) to <sd>: a <server> or client handshake follows. */
void
side_tls(struct side *sd, SSL *ssl, int server)
{
	sd->ssl = ssl;
	sd->hs = 1;
	sd->hs_want = server ? EV_READ : EV_WRITE;
}

/*
 * Drive the TLS handshake of <sd>. Returns 1 when complete, 0 when waiting
 * (sd->hs_want says for what), -1 on failure with the reason in <err>
 * (<errlen> bytes), -2 when a client closed the connection before sending
 * a single byte (a port probe: not a failed handshake).
 */
int
side_handshake(struct side *sd, char *err, size_t errlen)
{
	int r, e;

	ERR_clear_error();
	r = SSL_do_handshake(sd->ssl);
	if (r == 1) {
		sd->hs = 0;
		sd->tls = 1;
		/* the handshake may have left records in the library's buffer */
		sd->rd_ready = 1;
		sd->wr_ready = 1;
		return 1;
	}
	e = SSL_get_error(sd->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		sd->hs_want = EV_READ;
		return 0;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		sd->hs_want = EV_WRITE;
		return 0;
	}
	if (SSL_is_server(sd->ssl) && BIO_number_read(SSL_get_rbio(sd->ssl)) == 0 &&
	    (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SSL)) {
		snprintf(err, errlen, "the client closed the connection before the handshake");
		ERR_clear_error();
		return -2;
	}
	ERR_error_string_n(ERR_peek_last_error(), err, errlen);
	if (!SSL_is_server(sd->ssl) && SSL_get_verify_result(sd->ssl) != X509_V_OK)
		snprintf(err, errlen, "certificate verification failed: %s",
		         X509_verify_cert_error_string(SSL_get_verify_result(sd->ssl)));
	ERR_clear_error();
	return -1;
}

/* Pass end of stream on to the peer of <sd> (TLS close_notify, then a TCP half-close). */
void
side_shutdown(struct side *sd)
{
	if (sd->ssl != NULL)
		SSL_shutdown(sd->ssl);
	shutdown(sd->fd, SHUT_WR);
	sd->shut = 1;
}

/* Stop the watcher of <sd> on <loop> and release its socket and TLS state. */
void
side_release(struct side *sd, struct ev_loop *loop)
{
	ev_io_stop(loop, &sd->io);
	sd->events = 0;
	if (sd->ssl != NULL) {
		/*
		 * Best effort close_notify, so that clients see a clean end of
		 * TLS rather than a truncation; never waits for the peer's.
		 */
		if (SSL_is_init_finished(sd->ssl) &&
		    !(SSL_get_shutdown(sd->ssl) & SSL_SENT_SHUTDOWN))
			(void)SSL_shutdown(sd->ssl);
		ERR_clear_error();
		SSL_free(sd->ssl);
		sd->ssl = NULL;
	}
	if (sd->fd >= 0) {
		close(sd->fd);
		sd->fd = -1;
	}
	sd->rd_ww = sd->wr_wr = sd->eof = sd->shut = sd->tls = sd->hs = 0;
}
