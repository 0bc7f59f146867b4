/*
 * echo_libev.c - TCP echo server written by hand on a libev loop: one thread,
 * non-blocking sockets, an ev_io per connection. It is the event-driven
 * reference the benchmarks hold the greened thread server against.
 */
#define _GNU_SOURCE
#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>

#include "echo_common.h"

#define ACCEPTS_PER_WAKEUP	64
#define EMFILE_PAUSE_S		0.1

/*
 * A connection reads into buf and echoes it at once. When the peer does not
 * take everything, the rest stays in buf[off, len) and the connection stops
 * reading until it is written: a slow reader costs one buffer, never more.
 */
struct conn {
	ev_io	rio;
	ev_io	wio;
	size_t	off;
	size_t	len;
	char	buf[ECHO_BUF_SIZE];
};

static bool quiet;
static ev_io accept_watcher;
static ev_timer accept_resume;

static void
conn_close(struct ev_loop *loop, struct conn *c)
{
	ev_io_stop(loop, &c->rio);
	ev_io_stop(loop, &c->wio);
	close(c->rio.fd);
	free(c);
}

/* Write what is pending; 1 when drained, 0 when the peer is full, -1 error. */
static int
conn_flush(struct conn *c)
{
	ssize_t n;

	while (c->off < c->len) {
		n = write(c->rio.fd, c->buf + c->off, c->len - c->off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		c->off += (size_t)n;
	}
	c->off = c->len = 0;
	return 1;
}

static void
on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, wio));

	switch (conn_flush(c)) {
	case 1:
		ev_io_stop(loop, &c->wio);
		ev_io_start(loop, &c->rio);
		break;
	case 0:
		break;
	default:
		if (!quiet)
			fprintf(stderr, "write: %s\n", strerror(errno));
		conn_close(loop, c);
	}
}

static void
on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, rio));
	ssize_t n;

	n = read(w->fd, c->buf, sizeof(c->buf));
	if (n == -1) {
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (!quiet)
			fprintf(stderr, "read: %s\n", strerror(errno));
		conn_close(loop, c);
		return;
	}
	if (n == 0) {
		conn_close(loop, c);
		return;
	}
	c->off = 0;
	c->len = (size_t)n;
	switch (conn_flush(c)) {
	case 1:
		break;
	case 0:
		ev_io_stop(loop, &c->rio);
		ev_io_start(loop, &c->wio);
		break;
	default:
		if (!quiet)
			fprintf(stderr, "write: %s\n", strerror(errno));
		conn_close(loop, c);
	}
}

static void
on_accept_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_io_start(loop, &accept_watcher);
}

static void
on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c;
	int fd, i;

	for (i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
		fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			switch (errno) {
			case EAGAIN:
#if EAGAIN != EWOULDBLOCK
			case EWOULDBLOCK:
#endif
				return;
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
				continue;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				/*
				 * The pending connection stays queued and the
				 * level-triggered watcher would spin on it;
				 * pause accepting until some fds are freed.
				 */
				if (!quiet)
					fprintf(stderr, "accept: %s\n",
					    strerror(errno));
				ev_io_stop(loop, w);
				ev_timer_start(loop, &accept_resume);
				return;
			default:
				fprintf(stderr, "accept: %s\n", strerror(errno));
				exit(1);
			}
		}
		if ((c = malloc(sizeof(*c))) == NULL) {
			close(fd);
			continue;
		}
		echo_nodelay(fd);
		c->off = c->len = 0;
		ev_io_init(&c->rio, on_readable, fd, EV_READ);
		ev_io_init(&c->wio, on_writable, fd, EV_WRITE);
		ev_io_start(loop, &c->rio);
	}
}

static void
on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

int
main(int argc, char **argv)
{
	struct echo_opts opts;
	struct ev_loop *loop;
	ev_signal sigterm, sigint;
	int lfd;

	echo_parse_args(argc, argv, &opts);
	quiet = opts.quiet;
	echo_raise_nofile(quiet);
	signal(SIGPIPE, SIG_IGN);

	if ((loop = ev_default_loop(EVFLAG_AUTO)) == NULL) {
		fprintf(stderr, "cannot initialise libev\n");
		return 1;
	}
	lfd = echo_listen(&opts);
	if (fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK) == -1) {
		fprintf(stderr, "fcntl: %s\n", strerror(errno));
		return 1;
	}

	ev_io_init(&accept_watcher, on_accept, lfd, EV_READ);
	ev_io_start(loop, &accept_watcher);
	ev_timer_init(&accept_resume, on_accept_resume, EMFILE_PAUSE_S, 0.);
	ev_signal_init(&sigterm, on_stop_signal, SIGTERM);
	ev_signal_start(loop, &sigterm);
	ev_signal_init(&sigint, on_stop_signal, SIGINT);
	ev_signal_start(loop, &sigint);

	ev_run(loop, 0);
	return 0;
}
