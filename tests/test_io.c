/*
 * test_io.c - libgreen/io.c: fd waits, the "import green" helpers and
 * green_close, on socketpairs and loopback TCP.  Each test ends with no live
 * greenlets, no fd left open (counted in /proc/self/fd) and no watcher or
 * per-fd waiter left behind in the hub.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "green.h"
#include "internal.h" /* white-box checks: watchers stopped, fd table empty */
#include "test_util.h"

#define MANY 1000

/* ---- helpers ---------------------------------------------------------------- */

/* Checks inside greenlets: counted, and asserted zero by the teardown. */
static int g_failures;
#define GCHECK(cond)                                                         \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,  \
			        __LINE__, #cond);                            \
			g_failures++;                                        \
		}                                                            \
	} while (0)

static int count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n - 1; /* the directory's own fd */
}

static void make_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                            0, sv), 0);
}

static void close_pair(int sv[2])
{
	assert_int_equal(close(sv[0]), 0);
	assert_int_equal(close(sv[1]), 0);
}

/* A non-blocking TCP socket; the _nocheck forms are for greenlets, which
 * must not fail a cmocka assertion (it would longjmp off their stack). */
static int tcp_socket_nocheck(void)
{
	return socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

/* Bound to 127.0.0.1 and an ephemeral port; listening if backlog >= 0. */
static int make_listener_nocheck(struct sockaddr_in *addr, int backlog)
{
	socklen_t len = sizeof(*addr);
	int fd = tcp_socket_nocheck();

	if (fd < 0)
		return -1;
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) < 0 ||
	    getsockname(fd, (struct sockaddr *)addr, &len) < 0 ||
	    (backlog >= 0 && listen(fd, backlog) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int make_listener(struct sockaddr_in *addr, int backlog)
{
	int fd = make_listener_nocheck(addr, backlog);

	assert_true(fd >= 0);
	return fd;
}

static int tcp_socket(void)
{
	int fd = tcp_socket_nocheck();

	assert_true(fd >= 0);
	return fd;
}

/* Fill fd's send direction until the kernel says EAGAIN; returns bytes. */
static size_t fill(int fd)
{
	static char junk[65536];
	size_t total = 0;
	ssize_t n;

	while ((n = write(fd, junk, sizeof(junk))) > 0)
		total += (size_t)n;
	assert_int_equal(n, -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	return total;
}

/* Yield until g reaches state (WAITING once it parked, READY once woken). */
static void settle(green_t *g, enum green_state state)
{
	for (int i = 0; i < 100000 && green_state(g) != state; i++)
		assert_int_equal(green_yield(), 0);
	assert_int_equal(green_state(g), state);
}

static green_t *spawn(void *(*fn)(void *), void *arg)
{
	green_attr_t attr = { .name = NULL, .stack_size = 64 * 1024 };
	green_t *g = green_spawn(fn, arg, &attr);

	assert_non_null(g);
	return g;
}

static int64_t in_ms(int64_t ms)
{
	return green_now() + ms * GREEN_MSEC;
}

static int setup(void **state)
{
	g_failures = 0;
	*state = (void *)(intptr_t)count_open_fds();
	return 0;
}

/* Nothing alive, no fd open that the test opened, no wait left behind. */
static int teardown(void **state)
{
	struct green_hub *h = green__hub_peek();
	struct green_stats st;

	green_stats(&st);
	assert_int_equal(g_failures, 0);
	assert_int_equal(st.alive, 0);
	assert_int_equal(count_open_fds(), (int)(intptr_t)*state);
	assert_non_null(h);
	assert_false(ev_is_active(&h->main.io));
	assert_int_equal(h->main.wait_fd, -1);
	for (size_t i = 0; i < h->n_fdwaits; i++)
		assert_true(green__waitq_empty(&h->fdwaits[i].waiters));
	return 0;
}

/* What a greenlet saw: a return value and errno. */
struct outcome {
	int fd;
	int events;
	int64_t deadline;
	ssize_t rc;
	int err;
};

static void *wait_fd_fn(void *arg)
{
	struct outcome *o = arg;

	errno = 0;
	o->rc = green_wait_fd(o->fd, o->events, o->deadline);
	o->err = errno;
	return NULL;
}

static void *read_byte_fn(void *arg)
{
	struct outcome *o = arg;
	char c;

	errno = 0;
	o->rc = green_read(o->fd, &c, 1, o->deadline);
	o->err = errno;
	return NULL;
}

/* ---- argument checks and immediate answers ------------------------------------ */

static void test_wait_fd_einval(void **state)
{
	int sv[2];

	make_pair(sv);
	errno = 0;
	assert_int_equal(green_wait_fd(-1, GREEN_READ, GREEN_FOREVER), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(green_wait_fd(sv[0], 0, GREEN_FOREVER), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(green_wait_fd(sv[0], 0x4, GREEN_FOREVER), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(green_wait_fd(sv[0], GREEN_READ | 0x8, GREEN_NOW), -1);
	assert_int_equal(errno, EINVAL);
	close_pair(sv);
	assert_none_alive();
}

/* An fd number that is not open: poll says POLLNVAL, libev's epoll_ctl
 * says EBADF (EV_ERROR); either way the wait fails with EBADF. */
static void test_wait_fd_closed_number(void **state)
{
	int sv[2];
	int64_t t0;

	make_pair(sv);
	close_pair(sv);
	errno = 0;
	assert_int_equal(green_wait_fd(sv[0], GREEN_READ, GREEN_NOW), -1);
	assert_int_equal(errno, EBADF);
	t0 = green_now();
	errno = 0;
	assert_int_equal(green_wait_fd(sv[0], GREEN_READ, in_ms(2000)), -1);
	assert_int_equal(errno, EBADF);
	assert_true(green_now() - t0 < GREEN_SEC);
	errno = 0;
	assert_int_equal(green_read(sv[0], &t0, 1, GREEN_FOREVER), -1);
	assert_int_equal(errno, EBADF);
	assert_none_alive();
}

static void test_wait_fd_now_and_timeout(void **state)
{
	struct green_stats before, after;
	int64_t t0, took;
	int sv[2];
	char c;

	make_pair(sv);
	/* GREEN_NOW never blocks, but does report what is ready. */
	errno = 0;
	assert_int_equal(green_wait_fd(sv[0], GREEN_READ, GREEN_NOW), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_int_equal(green_wait_fd(sv[0], GREEN_WRITE, GREEN_NOW), GREEN_WRITE);
	assert_int_equal(green_wait_fd(sv[0], GREEN_READ | GREEN_WRITE, GREEN_NOW),
	                 GREEN_WRITE);
	/* A deadline already in the past behaves like GREEN_NOW. */
	assert_int_equal(green_wait_fd(sv[0], GREEN_WRITE, green_now() - GREEN_SEC),
	                 GREEN_WRITE);
	errno = 0;
	assert_int_equal(green_read(sv[0], &c, 1, GREEN_NOW), -1);
	assert_int_equal(errno, ETIMEDOUT);

	assert_int_equal(write(sv[1], "x", 1), 1);
	assert_int_equal(green_wait_fd(sv[0], GREEN_READ, GREEN_NOW), GREEN_READ);
	assert_int_equal(green_wait_fd(sv[0], GREEN_READ | GREEN_WRITE, GREEN_FOREVER),
	                 GREEN_READ | GREEN_WRITE);
	assert_int_equal(green_read(sv[0], &c, 1, GREEN_NOW), 1);
	assert_int_equal(c, 'x');

	/* A real timeout, counted in the stats. */
	green_stats(&before);
	t0 = green_now();
	errno = 0;
	assert_int_equal(green_wait_fd(sv[0], GREEN_READ, t0 + 30 * GREEN_MSEC), -1);
	assert_int_equal(errno, ETIMEDOUT);
	took = green_now() - t0;
	assert_true(took >= 30 * GREEN_MSEC);
	assert_true(took < 2 * GREEN_SEC);
	green_stats(&after);
	assert_true(after.timeouts > before.timeouts);
	assert_false(ev_is_active(&green_current()->io));

	errno = 0;
	assert_int_equal(green_read(sv[0], &c, 1, in_ms(10)), -1);
	assert_int_equal(errno, ETIMEDOUT);
	close_pair(sv);
	assert_none_alive();
}

static void test_scoped_timeout(void **state)
{
	green_timeout_t t;
	int sv[2];
	char c;

	make_pair(sv);
	green_timeout_enter(&t, in_ms(20));
	errno = 0;
	assert_int_equal(green_read(sv[0], &c, 1, GREEN_FOREVER), -1);
	assert_int_equal(errno, ETIMEDOUT);
	/* Once the scope has expired the fd is still polled: ready wins. */
	assert_int_equal(green_wait_fd(sv[0], GREEN_WRITE, GREEN_FOREVER), GREEN_WRITE);
	assert_true(green_timeout_leave(&t));
	close_pair(sv);
	assert_none_alive();
}

/* /dev/null cannot be put in an epoll set (EPERM): libev reports it ready. */
static void test_wait_fd_not_pollable(void **state)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(green_wait_fd(fd, GREEN_READ, in_ms(2000)), GREEN_READ);
	assert_int_equal(green_wait_fd(fd, GREEN_WRITE, GREEN_FOREVER), GREEN_WRITE);
	assert_int_equal(green_close(fd), 0);
	assert_none_alive();
}


/* ---- data between greenlets ---------------------------------------------------- */

#define ROUNDS 1000

struct pingpong {
	int fd;
	bool first; /* speaks first, so hears odd numbers */
	unsigned int heard;
};

static void *pingpong_fn(void *arg)
{
	struct pingpong *p = arg;
	unsigned int expect = p->first ? 1 : 0, got, next;

	if (p->first) {
		next = 0;
		GCHECK(green_write(p->fd, &next, sizeof(next), GREEN_FOREVER) ==
		       (ssize_t)sizeof(next));
	}
	for (;;) {
		ssize_t r = green_read(p->fd, &got, sizeof(got), in_ms(5000));

		if (r == 0) {
			/* The other side is done: so are we (a no-op if we
			 * shut down first). */
			shutdown(p->fd, SHUT_WR);
			return NULL;
		}
		GCHECK(r == (ssize_t)sizeof(got));
		if (r != (ssize_t)sizeof(got))
			return NULL;
		GCHECK(got == expect);
		p->heard++;
		if (got == ROUNDS) {
			GCHECK(shutdown(p->fd, SHUT_WR) == 0);
			continue;
		}
		next = got + 1;
		expect = got + 2;
		GCHECK(green_write(p->fd, &next, sizeof(next), GREEN_FOREVER) ==
		       (ssize_t)sizeof(next));
	}
}

static void test_ping_pong(void **state)
{
	struct pingpong a = { 0, true, 0 }, b = { 0, false, 0 };
	green_t *ga, *gb;
	int sv[2];

	make_pair(sv);
	a.fd = sv[0];
	b.fd = sv[1];
	ga = spawn(pingpong_fn, &a);
	gb = spawn(pingpong_fn, &b);
	join_release(ga);
	join_release(gb);
	assert_int_equal(a.heard + b.heard, ROUNDS + 1);
	assert_int_equal(a.heard, ROUNDS / 2);
	close_pair(sv);
	assert_none_alive();
}

/* The main greenlet waits on fds too: it parks like any other. */
static void *echo_once_fn(void *arg)
{
	int fd = *(int *)arg;
	char buf[16];
	ssize_t n = green_read(fd, buf, sizeof(buf), GREEN_FOREVER);

	GCHECK(n > 0);
	if (n > 0)
		GCHECK(green_write(fd, buf, (size_t)n, GREEN_FOREVER) == n);
	return NULL;
}

static void test_main_waits(void **state)
{
	char buf[16];
	green_t *g;
	int sv[2];

	make_pair(sv);
	g = spawn(echo_once_fn, &sv[1]);
	assert_int_equal(green_write(sv[0], "hello", 5, GREEN_FOREVER), 5);
	assert_int_equal(green_read(sv[0], buf, sizeof(buf), GREEN_FOREVER), 5);
	assert_memory_equal(buf, "hello", 5);
	join_release(g);
	close_pair(sv);
	assert_none_alive();
}

#define BIG ((size_t)8 << 20)

struct big {
	int write_fd, read_fd;
	unsigned char *buf;
	size_t len;
	int64_t deadline;
	ssize_t rc;
	int err;
	int after_err; /* errno of the wait after a short write */
	green_t *writer;
	bool saw_writer_wait;
	size_t reads;
};

static unsigned char *pattern(size_t len)
{
	unsigned char *buf = malloc(len);

	assert_non_null(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(i % 251);
	return buf;
}

static void *big_writer_fn(void *arg)
{
	struct big *b = arg;

	errno = 0;
	b->rc = green_write(b->write_fd, b->buf, b->len, b->deadline);
	b->err = errno;
	return NULL;
}

static int find_writer(const struct green_info *info, void *arg)
{
	struct big *b = arg;

	if (info->id == green_id(b->writer) && info->state == GREEN_WAITING &&
	    info->wait == GREEN_WAIT_FD && info->fd == b->write_fd &&
	    info->events == GREEN_WRITE)
		b->saw_writer_wait = true;
	return 0;
}

static void *big_reader_fn(void *arg)
{
	static unsigned char chunk[4096];
	struct big *b = arg;
	size_t total = 0;

	while (total < b->len) {
		ssize_t n;

		green_walk(find_writer, b);
		n = green_read(b->read_fd, chunk, sizeof(chunk), in_ms(10000));
		GCHECK(n > 0);
		if (n <= 0)
			return NULL;
		for (ssize_t i = 0; i < n; i++) {
			if (chunk[i] != (unsigned char)((total + (size_t)i) % 251)) {
				GCHECK(!"stream corrupted");
				return NULL;
			}
		}
		total += (size_t)n;
		b->reads++;
	}
	return NULL;
}

static void shrink_buffers(int sv[2])
{
	int small = 4096;

	assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small,
	                            sizeof(small)), 0);
	assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small,
	                            sizeof(small)), 0);
}

static void test_large_write(void **state)
{
	struct big b;
	green_t *gr;
	int sv[2];

	make_pair(sv);
	shrink_buffers(sv);
	memset(&b, 0, sizeof(b));
	b.write_fd = sv[0];
	b.read_fd = sv[1];
	b.len = BIG;
	b.buf = pattern(BIG);
	b.deadline = GREEN_FOREVER;
	b.writer = spawn(big_writer_fn, &b);
	gr = spawn(big_reader_fn, &b);
	join_release(gr);
	join_release(b.writer);
	assert_int_equal(b.rc, (ssize_t)BIG);
	assert_true(b.saw_writer_wait); /* it had to wait, then loop */
	assert_true(b.reads > 1);
	free(b.buf);
	close_pair(sv);
	assert_none_alive();
}

/* Nobody reads: the deadline passes with part of the buffer written.  The
 * part's length comes back; the next call reports the timeout. */
static void test_partial_write_timeout(void **state)
{
	unsigned char *buf = pattern(BIG);
	int64_t deadline = in_ms(30);
	ssize_t n;
	int sv[2];

	make_pair(sv);
	shrink_buffers(sv);
	n = green_write(sv[0], buf, BIG, deadline);
	assert_true(n > 0);
	assert_true((size_t)n < BIG);
	errno = 0;
	assert_int_equal(green_write(sv[0], buf + n, BIG - (size_t)n, deadline), -1);
	assert_int_equal(errno, ETIMEDOUT);
	free(buf);
	close_pair(sv);
	assert_none_alive();
}

/* A kill that lands after a partial write is not lost: the short count
 * comes back and the greenlet's next wait fails with ECANCELED. */
static void *partial_then_sleep_fn(void *arg)
{
	struct big *b = arg;
	int64_t t0;

	big_writer_fn(b);
	t0 = green_now();
	errno = 0;
	GCHECK(green_sleep(t0 + 10 * GREEN_SEC) == -1);
	b->after_err = errno;
	GCHECK(green_now() - t0 < 5 * GREEN_SEC);
	return NULL;
}

static void test_partial_write_kill(void **state)
{
	struct big b;
	int sv[2];

	make_pair(sv);
	shrink_buffers(sv);
	memset(&b, 0, sizeof(b));
	b.write_fd = sv[0];
	b.len = BIG;
	b.buf = pattern(BIG);
	b.deadline = GREEN_FOREVER;
	b.writer = spawn(partial_then_sleep_fn, &b);
	settle(b.writer, GREEN_WAITING);
	assert_int_equal(green_kill(b.writer), 0);
	join_release(b.writer);
	assert_true(b.rc > 0);
	assert_true((size_t)b.rc < BIG);
	assert_int_equal(b.after_err, ECANCELED);
	free(b.buf);
	close_pair(sv);
	assert_none_alive();
}

static void test_write_epipe(void **state)
{
	int sv[2];

	make_pair(sv);
	/* An empty write is one write(2) of nothing, as with libc. */
	assert_int_equal(green_write(sv[0], "", 0, GREEN_FOREVER), 0);
	assert_int_equal(green_close(sv[1]), 0);
	errno = 0;
	assert_int_equal(green_write(sv[0], "x", 1, GREEN_FOREVER), -1);
	assert_int_equal(errno, EPIPE);
	errno = 0;
	assert_int_equal(green_write(sv[0], "", 0, GREEN_FOREVER), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(close(sv[0]), 0);
	assert_none_alive();
}

static void test_eof(void **state)
{
	struct outcome o = { 0 };
	green_t *g;
	char c;
	int sv[2];

	make_pair(sv);
	o.fd = sv[0];
	o.deadline = GREEN_FOREVER;
	o.rc = -2;
	g = spawn(read_byte_fn, &o);
	settle(g, GREEN_WAITING);
	assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
	join_release(g);
	assert_int_equal(o.rc, 0);
	/* EOF again, without waiting, after the peer is closed. */
	assert_int_equal(green_close(sv[1]), 0);
	assert_int_equal(green_read(sv[0], &c, 1, GREEN_FOREVER), 0);
	assert_int_equal(green_close(sv[0]), 0);
	assert_none_alive();
}

/* ---- cancellation and close ------------------------------------------------------ */

static void test_kill_while_waiting(void **state)
{
	struct outcome o = { 0 };
	green_t *g;
	int sv[2];

	make_pair(sv);
	o.fd = sv[0];
	o.deadline = GREEN_FOREVER;
	g = spawn(read_byte_fn, &o);
	settle(g, GREEN_WAITING);
	assert_true(ev_is_active(&g->io));
	assert_int_equal(green_kill(g), 0);
	assert_int_equal(green_join(g, NULL, in_ms(2000)), 0);
	assert_int_equal(o.rc, -1);
	assert_int_equal(o.err, ECANCELED);
	assert_false(ev_is_active(&g->io));
	assert_int_equal(g->wait_fd, -1);
	green_release(g);
	close_pair(sv);
	assert_none_alive();
}

/* A kill that comes before the wait wins even over a ready fd. */
static void *kill_self_fn(void *arg)
{
	struct outcome *o = arg;

	GCHECK(green_kill(green_current()) == 0);
	wait_fd_fn(o);
	return NULL;
}

static void test_kill_before_wait(void **state)
{
	struct outcome o = { 0 };
	green_t *g;
	int sv[2];

	make_pair(sv);
	o.fd = sv[0];
	o.events = GREEN_WRITE; /* ready */
	o.deadline = GREEN_NOW;
	g = spawn(kill_self_fn, &o);
	join_release(g);
	assert_int_equal(o.rc, -1);
	assert_int_equal(o.err, ECANCELED);
	close_pair(sv);
	assert_none_alive();
}

static void test_close_wakes_waiters(void **state)
{
	struct outcome r1 = { 0 }, r2 = { 0 }, w = { 0 }, other = { 0 };
	green_t *g1, *g2, *gw, *go;
	int sv[2], pv[2];

	make_pair(sv);
	make_pair(pv);
	fill(sv[0]); /* not writable either */
	r1.fd = r2.fd = w.fd = sv[0];
	r1.events = r2.events = GREEN_READ;
	w.events = GREEN_WRITE;
	r1.deadline = r2.deadline = w.deadline = GREEN_FOREVER;
	other.fd = pv[0];
	other.events = GREEN_READ;
	other.deadline = in_ms(10000);
	g1 = spawn(wait_fd_fn, &r1);
	g2 = spawn(wait_fd_fn, &r2);
	gw = spawn(wait_fd_fn, &w);
	go = spawn(wait_fd_fn, &other);
	settle(g1, GREEN_WAITING);
	settle(g2, GREEN_WAITING);
	settle(gw, GREEN_WAITING);
	settle(go, GREEN_WAITING);

	assert_int_equal(green_close(sv[0]), 0);
	assert_false(ev_is_active(&g1->io)); /* stopped before the close */
	join_release(g1);
	join_release(g2);
	join_release(gw);
	assert_int_equal(r1.rc, -1);
	assert_int_equal(r1.err, EBADF);
	assert_int_equal(r2.rc, -1);
	assert_int_equal(r2.err, EBADF);
	assert_int_equal(w.rc, -1);
	assert_int_equal(w.err, EBADF);

	/* A wait on another fd is untouched. */
	settle(go, GREEN_WAITING);
	assert_int_equal(write(pv[1], "x", 1), 1);
	join_release(go);
	assert_int_equal(other.rc, GREEN_READ);

	assert_int_equal(close(sv[1]), 0);
	close_pair(pv);
	assert_none_alive();
}

/* The fd became ready and its waiter was woken, but has not run yet when
 * the fd is closed: it must not go on to use the closed fd number. */
static void test_close_after_ready(void **state)
{
	struct outcome o = { 0 };
	green_t *g;
	int sv[2];

	make_pair(sv);
	o.fd = sv[0];
	o.events = GREEN_READ;
	o.deadline = GREEN_FOREVER;
	g = spawn(wait_fd_fn, &o);
	settle(g, GREEN_WAITING);
	assert_int_equal(write(sv[1], "x", 1), 1);
	/* Each yield requeues main ahead of g, so main runs first after the
	 * poll that wakes g. */
	settle(g, GREEN_READY);
	assert_int_equal(green_close(sv[0]), 0);
	join_release(g);
	assert_int_equal(o.rc, -1);
	assert_int_equal(o.err, EBADF);
	assert_int_equal(close(sv[1]), 0);
	assert_none_alive();
}

static void test_green_close_plain(void **state)
{
	int sv[2];

	make_pair(sv);
	assert_int_equal(green_close(sv[0]), 0);
	errno = 0;
	assert_int_equal(green_close(sv[0]), -1);
	assert_int_equal(errno, EBADF);
	errno = 0;
	assert_int_equal(green_close(-1), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(green_close(sv[1]), 0);
	assert_none_alive();
}

/* The per-fd table is an array that moves when it grows; greenlets already
 * waiting must still be found (and unlink themselves) afterwards. */
static void test_fd_table_grows_while_waiting(void **state)
{
	struct outcome timed = { 0 }, forever = { 0 }, high = { 0 };
	struct green_hub *h = green__hub_peek();
	struct rlimit rl;
	green_t *gt, *gf, *gh;
	int sv[2], hi;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	make_pair(sv);
	timed.fd = forever.fd = sv[0];
	timed.events = forever.events = GREEN_READ;
	timed.deadline = in_ms(50);
	forever.deadline = GREEN_FOREVER;
	gt = spawn(wait_fd_fn, &timed);
	gf = spawn(wait_fd_fn, &forever);
	settle(gt, GREEN_WAITING);
	settle(gf, GREEN_WAITING);

	hi = (int)h->n_fdwaits * 2 + 7;
	if ((rlim_t)hi >= rl.rlim_cur) {
		hi = (int)rl.rlim_cur - 1;
		assert_true((size_t)hi >= h->n_fdwaits);
	}
	assert_int_equal(fcntl(sv[1], F_DUPFD_CLOEXEC, hi), hi);
	high.fd = hi;
	high.events = GREEN_READ;
	high.deadline = GREEN_FOREVER;
	gh = spawn(wait_fd_fn, &high);
	settle(gh, GREEN_WAITING);
	assert_true(h->n_fdwaits > (size_t)hi);

	join_release(gt); /* times out, unlinking itself from the moved table */
	assert_int_equal(timed.rc, -1);
	assert_int_equal(timed.err, ETIMEDOUT);
	assert_int_equal(green_state(gf), GREEN_WAITING);
	assert_int_equal(green_close(sv[0]), 0);
	assert_int_equal(green_close(hi), 0);
	join_release(gf);
	join_release(gh);
	assert_int_equal(forever.err, EBADF);
	assert_int_equal(high.err, EBADF);
	assert_int_equal(close(sv[1]), 0);
	assert_none_alive();
}

/* ---- loopback TCP --------------------------------------------------------------- */

#define CLIENTS 8

struct server {
	int lfd;
	int accepted;
	int flag_errors;
	green_t *handlers[CLIENTS];
};

static void *echo_handler_fn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[256];
	ssize_t n;

	while ((n = green_read(fd, buf, sizeof(buf), in_ms(5000))) > 0)
		GCHECK(green_write(fd, buf, (size_t)n, in_ms(5000)) == n);
	GCHECK(n == 0);
	GCHECK(green_close(fd) == 0);
	return NULL;
}

static void *server_fn(void *arg)
{
	struct server *s = arg;

	for (int i = 0; i < CLIENTS; i++) {
		struct sockaddr_in peer;
		socklen_t len = sizeof(peer);
		int fd = green_accept(s->lfd, (struct sockaddr *)&peer, &len,
		                      SOCK_NONBLOCK | SOCK_CLOEXEC, in_ms(5000));

		GCHECK(fd >= 0);
		if (fd < 0)
			return NULL;
		GCHECK(len == sizeof(peer) && peer.sin_family == AF_INET);
		if (!(fcntl(fd, F_GETFL) & O_NONBLOCK) ||
		    !(fcntl(fd, F_GETFD) & FD_CLOEXEC))
			s->flag_errors++;
		s->handlers[i] = spawn(echo_handler_fn, (void *)(intptr_t)fd);
		s->accepted++;
	}
	for (int i = 0; i < CLIENTS; i++) {
		GCHECK(green_join(s->handlers[i], NULL, GREEN_FOREVER) == 0);
		green_release(s->handlers[i]);
	}
	return NULL;
}

struct client {
	struct sockaddr_in addr;
	int id;
	bool ok;
};

static void *client_fn(void *arg)
{
	struct client *c = arg;
	char msg[64], got[64];
	size_t len, have = 0;
	ssize_t n;
	int fd = tcp_socket_nocheck();

	GCHECK(fd >= 0);
	if (fd < 0)
		return NULL;
	len = (size_t)snprintf(msg, sizeof(msg), "hello from client %d", c->id);
	GCHECK(green_connect(fd, (struct sockaddr *)&c->addr, sizeof(c->addr),
	                     in_ms(5000)) == 0);
	GCHECK(green_write(fd, msg, len, in_ms(5000)) == (ssize_t)len);
	GCHECK(shutdown(fd, SHUT_WR) == 0);
	while ((n = green_read(fd, got + have, sizeof(got) - have, in_ms(5000))) > 0)
		have += (size_t)n;
	GCHECK(n == 0);
	c->ok = have == len && memcmp(got, msg, len) == 0;
	GCHECK(green_close(fd) == 0);
	return NULL;
}

static void test_accept_connect(void **state)
{
	struct server s = { 0 };
	struct client c[CLIENTS];
	green_t *gs, *gc[CLIENTS];
	struct sockaddr_in addr;

	s.lfd = make_listener(&addr, 16);
	gs = spawn(server_fn, &s);
	for (int i = 0; i < CLIENTS; i++) {
		c[i].addr = addr;
		c[i].id = i;
		c[i].ok = false;
		gc[i] = spawn(client_fn, &c[i]);
	}
	assert_int_equal(green_joinall(gc, CLIENTS, 0, in_ms(10000)), CLIENTS);
	for (int i = 0; i < CLIENTS; i++) {
		assert_true(c[i].ok);
		green_release(gc[i]);
	}
	join_release(gs);
	assert_int_equal(s.accepted, CLIENTS);
	assert_int_equal(s.flag_errors, 0);
	assert_int_equal(green_close(s.lfd), 0);
	assert_none_alive();
}

static void test_accept_timeout(void **state)
{
	struct sockaddr_in addr;
	int lfd = make_listener(&addr, 4);
	int64_t t0 = green_now();

	errno = 0;
	assert_int_equal(green_accept(lfd, NULL, NULL, 0, GREEN_NOW), -1);
	assert_int_equal(errno, ETIMEDOUT);
	errno = 0;
	assert_int_equal(green_accept(lfd, NULL, NULL, 0, t0 + 20 * GREEN_MSEC), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_true(green_now() - t0 >= 20 * GREEN_MSEC);
	errno = 0;
	assert_int_equal(green_accept(lfd, NULL, NULL, 0x7fff0000, GREEN_NOW), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(green_close(lfd), 0);
	assert_none_alive();
}

/* A port that is bound but not listening answers with a reset. */
static void *refused_fn(void *arg)
{
	struct outcome *o = arg;
	struct sockaddr_in addr;
	int bound = make_listener_nocheck(&addr, -1), fd = tcp_socket_nocheck();

	GCHECK(bound >= 0 && fd >= 0);
	errno = 0;
	o->rc = green_connect(fd, (struct sockaddr *)&addr, sizeof(addr), in_ms(5000));
	o->err = errno;
	GCHECK(green_close(fd) == 0);
	GCHECK(green_close(bound) == 0);
	return NULL;
}

static void test_connect_refused(void **state)
{
	struct outcome o = { 0 };

	join_release(spawn(refused_fn, &o));
	assert_int_equal(o.rc, -1);
	assert_int_equal(o.err, ECONNREFUSED);
	assert_none_alive();
}

/* A listener whose accept queue is full drops further SYNs, so a connect
 * to it stays in progress until the deadline.  Calling again finds the
 * attempt under way (EALREADY) and waits for it once more. */
static void test_connect_timeout(void **state)
{
	struct sockaddr_in addr;
	int lfd = make_listener(&addr, 0), fds[8], n = 0;
	bool timed_out = false;

	while (n < 8 && !timed_out) {
		int fd = tcp_socket();

		fds[n++] = fd;
		errno = 0;
		if (green_connect(fd, (struct sockaddr *)&addr, sizeof(addr),
		                  in_ms(100)) == 0)
			continue;
		assert_int_equal(errno, ETIMEDOUT);
		timed_out = true;
		errno = 0;
		assert_int_equal(green_connect(fd, (struct sockaddr *)&addr,
		                               sizeof(addr), in_ms(20)), -1);
		assert_int_equal(errno, ETIMEDOUT);
	}
	assert_true(timed_out);
	assert_false(ev_is_active(&green_current()->io));
	while (n > 0)
		assert_int_equal(green_close(fds[--n]), 0);
	assert_int_equal(green_close(lfd), 0);
	assert_none_alive();
}

/* ---- many at once, and introspection ---------------------------------------------- */

struct many {
	int fd;
	int seen;
	bool eof;
};

static void *many_fn(void *arg)
{
	struct many *m = arg;
	int v, reply;

	GCHECK(green_read(m->fd, &v, sizeof(v), in_ms(30000)) == (ssize_t)sizeof(v));
	m->seen = v;
	reply = v * 2 + 1;
	GCHECK(green_write(m->fd, &reply, sizeof(reply), GREEN_FOREVER) ==
	       (ssize_t)sizeof(reply));
	m->eof = green_read(m->fd, &v, sizeof(v), in_ms(30000)) == 0;
	GCHECK(green_close(m->fd) == 0);
	return NULL;
}

static int count_fd_waits(const struct green_info *info, void *arg)
{
	if (info->wait == GREEN_WAIT_FD && info->events == GREEN_READ &&
	    info->state == GREEN_WAITING)
		(*(int *)arg)++;
	return 0;
}

static void test_many_socketpairs(void **state)
{
	struct many *m = calloc(MANY, sizeof(*m));
	green_t **gs = calloc(MANY, sizeof(*gs));
	int *peer = calloc(MANY, sizeof(*peer));
	int waiting = 0;

	assert_non_null(m);
	assert_non_null(gs);
	assert_non_null(peer);
	for (int i = 0; i < MANY; i++) {
		int sv[2];

		make_pair(sv);
		m[i].fd = sv[0];
		peer[i] = sv[1];
		gs[i] = spawn(many_fn, &m[i]);
	}
	settle(gs[MANY - 1], GREEN_WAITING);
	assert_int_equal(green_walk(count_fd_waits, &waiting), 0);
	assert_int_equal(waiting, MANY);

	for (int i = 0; i < MANY; i++)
		assert_int_equal(green_write(peer[i], &i, sizeof(i), GREEN_NOW),
		                 sizeof(i));
	for (int i = MANY; i-- > 0;) {
		int reply;

		assert_int_equal(green_read(peer[i], &reply, sizeof(reply), in_ms(30000)),
		                 sizeof(reply));
		assert_int_equal(reply, i * 2 + 1);
		assert_int_equal(green_close(peer[i]), 0);
	}
	assert_int_equal(green_joinall(gs, MANY, 0, in_ms(30000)), MANY);
	for (int i = 0; i < MANY; i++) {
		assert_int_equal(m[i].seen, i);
		assert_true(m[i].eof);
		green_release(gs[i]);
	}
	free(m);
	free(gs);
	free(peer);
	assert_none_alive();
}

struct walk_find {
	uint64_t id;
	struct green_info info;
	int found;
	int main_seen;
};

static int walk_find_cb(const struct green_info *info, void *arg)
{
	struct walk_find *w = arg;

	if (info->id == w->id) {
		w->info = *info;
		w->found++;
	}
	if (info->main) {
		w->main_seen++;
		GCHECK(info->current);
		GCHECK(info->fd == -1);
		GCHECK(info->wait == GREEN_WAIT_NONE);
	}
	return 0;
}

static void walk_for(green_t *g, struct walk_find *w)
{
	memset(w, 0, sizeof(*w));
	w->id = green_id(g);
	assert_int_equal(green_walk(walk_find_cb, w), 0);
	assert_int_equal(w->main_seen, 1);
}

static void test_walk_shows_fd_wait(void **state)
{
	struct outcome r = { 0 }, rw = { 0 };
	green_attr_t attr = { .name = "fd-reader", .stack_size = 64 * 1024 };
	struct walk_find w;
	green_t *gr, *grw;
	int sv[2];

	make_pair(sv);
	fill(sv[1]); /* sv[1] is neither readable nor writable */
	r.fd = sv[1];
	r.events = GREEN_READ;
	r.deadline = in_ms(10000);
	rw.fd = sv[1];
	rw.events = GREEN_READ | GREEN_WRITE;
	rw.deadline = GREEN_FOREVER;
	gr = green_spawn(wait_fd_fn, &r, &attr);
	assert_non_null(gr);
	grw = spawn(wait_fd_fn, &rw);
	settle(gr, GREEN_WAITING);
	settle(grw, GREEN_WAITING);

	walk_for(gr, &w);
	assert_int_equal(w.found, 1);
	assert_string_equal(w.info.name, "fd-reader");
	assert_int_equal(w.info.state, GREEN_WAITING);
	assert_int_equal(w.info.wait, GREEN_WAIT_FD);
	assert_string_equal(green_wait_kind_name(w.info.wait), "fd");
	assert_int_equal(w.info.fd, sv[1]);
	assert_int_equal(w.info.events, GREEN_READ);
	assert_int_equal(w.info.deadline, r.deadline);
	assert_false(w.info.current);

	walk_for(grw, &w);
	assert_int_equal(w.found, 1);
	assert_int_equal(w.info.wait, GREEN_WAIT_FD);
	assert_int_equal(w.info.fd, sv[1]);
	assert_int_equal(w.info.events, GREEN_READ | GREEN_WRITE);
	assert_int_equal(w.info.deadline, GREEN_FOREVER);

	assert_int_equal(green_kill(gr), 0);
	assert_int_equal(green_kill(grw), 0);
	join_release(gr);
	join_release(grw);
	assert_int_equal(r.err, ECANCELED);
	assert_int_equal(rw.err, ECANCELED);
	walk_for(gr, &w);
	assert_int_equal(w.found, 0); /* dead greenlets are not walked */
	close_pair(sv);
	assert_none_alive();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_wait_fd_einval),
		T(test_wait_fd_closed_number),
		T(test_wait_fd_now_and_timeout),
		T(test_scoped_timeout),
		T(test_wait_fd_not_pollable),
		T(test_ping_pong),
		T(test_main_waits),
		T(test_large_write),
		T(test_partial_write_timeout),
		T(test_partial_write_kill),
		T(test_write_epipe),
		T(test_eof),
		T(test_kill_while_waiting),
		T(test_kill_before_wait),
		T(test_close_wakes_waiters),
		T(test_close_after_ready),
		T(test_green_close_plain),
		T(test_fd_table_grows_while_waiting),
		T(test_accept_connect),
		T(test_accept_timeout),
		T(test_connect_refused),
		T(test_connect_timeout),
		T(test_many_socketpairs),
		T(test_walk_shows_fd_wait),
#undef T
	};
	struct rlimit rl;

	/* A write to a closed peer must come back as EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	/* MANY socketpairs need 2 * MANY fds. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* The hub's own fds (epoll, eventfd) exist before any test counts. */
	if (!green_current()) {
		perror("green_current");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
