/*
 * fd.c - what the shim knows about each fd.
 *
 * Discovered lazily (fstat the first time an fd is used), so fds inherited or
 * opened before the shim was active are handled like the rest.  The table is
 * two-level (chunks of 1024 entries allocated on demand and never moved), so
 * it grows without a copy and other threads may read it while it grows.
 */
#include "shim_io.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_BITS 10
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS 4096 /* 4M fds */

static struct shim_fd *chunks[MAX_CHUNKS];

static struct shim_fd *slot(int fd)
{
	unsigned int c = (unsigned int)fd >> CHUNK_BITS;
	struct shim_fd *chunk;

	if (fd < 0 || c >= MAX_CHUNKS)
		return NULL;
	chunk = __atomic_load_n(&chunks[c], __ATOMIC_ACQUIRE);
	if (unlikely(!chunk)) {
		struct shim_fd *fresh = calloc(CHUNK_SIZE, sizeof(*fresh));
		struct shim_fd *expected = NULL;

		if (!fresh)
			return NULL;
		if (__atomic_compare_exchange_n(&chunks[c], &expected, fresh, false,
		                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			chunk = fresh;
		} else {
			free(fresh);
			chunk = expected;
		}
	}
	return &chunk[(unsigned int)fd & (CHUNK_SIZE - 1)];
}

static enum shim_fd_kind discover(int fd, struct shim_fd *e)
{
	struct stat st;
	int fl;

	if (fstat(fd, &st) < 0)
		return SHIM_FD_UNKNOWN;
	fl = SHIM_REAL(fcntl)(fd, F_GETFL);
	e->user_nonblock = fl >= 0 && (fl & O_NONBLOCK);
	e->shim_nonblock = e->desc_shared = e->exec_cleared = false;
	if (S_ISSOCK(st.st_mode))
		return SHIM_FD_SOCKET;
	if (S_ISFIFO(st.st_mode))
		return SHIM_FD_PIPE;
	if (S_ISCHR(st.st_mode) && isatty(fd))
		return SHIM_FD_TTY;
	return SHIM_FD_OTHER;
}

struct shim_fd *shim_fd_get(int fd)
{
	struct shim_fd *e = slot(fd);

	if (!e)
		return NULL;
	if (unlikely(e->kind == SHIM_FD_UNKNOWN)) {
		/* First sight of this number since a close: whatever libev
		 * remembers of an older fd under it is stale. */
		green__fd_renew(green__hub_peek(), fd);
		e->kind = (uint8_t)discover(fd, e);
		if (e->kind == SHIM_FD_UNKNOWN)
			return NULL; /* not open: let the real call say EBADF */
	}
	return e;
}

void shim_fd_created(int fd, enum shim_fd_kind kind, bool user_nonblock,
                     bool shim_nonblock)
{
	struct shim_fd *e = slot(fd);

	green__fd_renew(green__hub_peek(), fd);
	if (!e)
		return;
	e->kind = (uint8_t)kind;
	e->user_nonblock = user_nonblock;
	e->shim_nonblock = shim_nonblock;
	e->is_listener = e->desc_shared = e->exec_cleared = false;
	e->stream = e->rx_drained = false;
	e->greend_listener = e->greend_nonblock = e->greend_conn = false;
	e->rcvtimeo_ns = e->sndtimeo_ns = 0;
}

void shim_fd_closing(int fd)
{
	struct shim_fd *e = slot(fd);
	struct green_hub *h = green__hub_peek();

	shim_report_fd_closing(fd);
	/* libev must hear of it while the fd is still open: waiters in
	 * green_wait_fd have their watchers stopped and wake with EBADF;
	 * poll/select waiters only lose the watcher, as a closed fd never
	 * becomes ready for a real poll(2) either. */
	if (h)
		green__fd_wake_all(h, fd, EBADF);
	shim_select_fd_closing(fd);
	if (!e)
		return;
	if (e->greend_conn)
		shim_listen_conn_closed();
	e->greend_listener = e->greend_nonblock = e->greend_conn = false;
	e->gen++;
	e->kind = SHIM_FD_UNKNOWN;
	e->user_nonblock = e->shim_nonblock = e->is_listener = false;
	e->desc_shared = e->exec_cleared = false;
	e->stream = e->rx_drained = false;
	e->rcvtimeo_ns = e->sndtimeo_ns = 0;
}

void shim_fd_each(unsigned int first, unsigned int last, shim_fd_visit_fn fn, void *arg)
{
	/* Chunks that were never allocated hold nothing: skipped whole. */
	for (unsigned int c = first >> CHUNK_BITS; c < MAX_CHUNKS && c <= last >> CHUNK_BITS; c++) {
		struct shim_fd *chunk = __atomic_load_n(&chunks[c], __ATOMIC_ACQUIRE);

		if (!chunk)
			continue;
		for (unsigned int i = 0; i < CHUNK_SIZE; i++) {
			unsigned int fd = (c << CHUNK_BITS) | i;

			if (fd >= first && fd <= last && chunk[i].kind != SHIM_FD_UNKNOWN)
				fn((int)fd, &chunk[i], arg);
		}
	}
}

static void close_one(int fd, struct shim_fd *e, void *arg)
{
	(void)e;
	(void)arg;
	shim_fd_closing(fd);
}

void shim_fd_closing_range(unsigned int first, unsigned int last)
{
	shim_report_range_closing(first, last);
	/* Only numbers the table has seen can have waiters or a kind to
	 * forget. */
	shim_fd_each(first, last, close_one, NULL);
}

struct shim_fd *shim_fd_rediscover(int fd)
{
	struct shim_fd *e = slot(fd);

	green__fd_renew(green__hub_peek(), fd);
	if (!e)
		return NULL;
	e->kind = SHIM_FD_UNKNOWN;
	e->shim_nonblock = e->is_listener = false;
	e->desc_shared = e->exec_cleared = false;
	e->stream = e->rx_drained = false;
	e->greend_listener = e->greend_nonblock = e->greend_conn = false;
	e->rcvtimeo_ns = e->sndtimeo_ns = 0;
	return shim_fd_get(fd);
}

void shim_fd_duped(int oldfd, int newfd, bool cloexec)
{
	struct shim_fd *from = shim_fd_get(oldfd);
	struct shim_fd *to = slot(newfd);

	green__fd_renew(green__hub_peek(), newfd);
	if (!to)
		return;
	if (!from) {
		to->kind = SHIM_FD_UNKNOWN;
		return;
	}
	/* O_NONBLOCK lives on the open file description, which both share;
	 * socket timeouts too. */
	to->kind = from->kind;
	to->user_nonblock = from->user_nonblock;
	to->shim_nonblock = from->shim_nonblock;
	to->is_listener = from->is_listener;
	to->desc_shared = from->desc_shared;
	to->exec_cleared = false;
	to->stream = from->stream;
	to->greend_listener = from->greend_listener;
	to->greend_nonblock = from->greend_nonblock;
	/* The connection counts once, on the fd accept returned. */
	to->greend_conn = false;
	to->rx_drained = false;
	to->rcvtimeo_ns = from->rcvtimeo_ns;
	to->sndtimeo_ns = from->sndtimeo_ns;
	(void)cloexec;
}

/* GREEN_FASTPATH=0 turns the fast path off, so that tests reach the parked
 * paths of a program that has a single thread. */
static int fastpath_enabled(void)
{
	static int enabled = -1;
	int v = __atomic_load_n(&enabled, __ATOMIC_RELAXED);

	if (unlikely(v < 0)) {
		const char *env = getenv("GREEN_FASTPATH");

		v = !(env && strcmp(env, "0") == 0);
		__atomic_store_n(&enabled, v, __ATOMIC_RELAXED);
	}
	return v;
}

bool shim_alone(struct green_hub *h)
{
	green_t *self = h->current;

	if (!(fastpath_enabled() && self == &h->main && !h->run_head && !h->watchers &&
	      !h->remote_pending && !self->timeouts && !self->kill_pending &&
	      !__atomic_load_n(&green__hooks.due, __ATOMIC_RELAXED)))
		return false;
	/* Other greenlets may be alive (redis's bio threads, node's pool):
	 * with none ready, none watching an fd or a timer, none woken from
	 * another thread or by a signal, only this one can wake them, so it
	 * may block in the kernel as well. */
	if (h->alive && !shim_sig_quiet())
		return false;
	/* Only this thread writes it; the monitor reads it relaxed. */
	__atomic_store_n(&h->alone_calls, h->alone_calls + 1, __ATOMIC_RELAXED);
	return true;
}

int shim_ready_now(int fd, int events)
{
	return green__poll_ready(fd, events, SHIM_REAL(poll));
}

int shim_wait_fd_intr(struct green_hub *h, int fd, int events, int64_t deadline,
                      struct shim_intr *intr, bool known_open)
{
	struct shim_fd *e = shim_fd_get(fd);
	uint32_t gen = e ? e->gen : 0;
	int rc, err;

	if (intr && shim_intr_arm(h, intr) < 0)
		return -1;
	rc = green__wait_fd(fd, events, deadline,
	                    GREEN__FD_TRACKED | (known_open ? GREEN__FD_OPEN : 0));
	err = errno;
	if (intr)
		shim_intr_disarm(intr);
	if (rc >= 0) {
		if (e && e->gen != gen) {
			errno = EBADF; /* closed, and the number reused, meanwhile */
			return -1;
		}
		return 0;
	}
	/* SO_RCVTIMEO/SO_SNDTIMEO expiry reads EAGAIN, as libc says it. */
	errno = err == ETIMEDOUT ? EAGAIN : err;
	return -1;
}

int shim_wait_fd(struct green_hub *h, int fd, int events, int64_t deadline)
{
	return shim_wait_fd_intr(h, fd, events, deadline, NULL, false);
}
