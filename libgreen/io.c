/*
 * io.c - waiting on file descriptors, and the "import green" read, write,
 * accept, connect and close built on it.
 *
 * A wait uses the greenlet's own ev_io, so it allocates nothing; the hub
 * also keeps, per fd, the list of greenlets waiting on it, because close()
 * must reach them: libev cannot be told about a closed fd after the fact
 * ("the special problem of disappearing file descriptors" in ev.pod), so
 * green_close stops their watchers first and wakes them with EBADF.
 */
#define _GNU_SOURCE /* accept4 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GREEN__IO_EVENTS (GREEN_READ | GREEN_WRITE)

/* Lives on the waiting greenlet's stack for the length of one wait. */
struct fd_wait {
	green_t *g;
	int revents; /* what libev reported */
};

/* ---- the per-fd table ------------------------------------------------------- */

/*
 * Make room for fd in h->fdwaits.  The table is an array of wait queues, and
 * every waiter points back at its queue, so after realloc has moved the
 * array each waiter still linked must be pointed at its queue's new home
 * before anything unlinks it.
 */
static int fdwaits_reserve(struct green_hub *h, int fd)
{
	size_t want = (size_t)fd + 1, n = h->n_fdwaits, cap;
	struct green__fdwait *grown;

	if (want <= n)
		return 0;
	cap = n ? n : 64;
	while (cap < want)
		cap *= 2;
	grown = realloc(h->fdwaits, cap * sizeof(*grown));
	if (!grown) {
		errno = ENOMEM;
		return -1;
	}
	memset(grown + n, 0, (cap - n) * sizeof(*grown));
	for (size_t i = 0; i < n; i++) {
		struct green__waiter *w;

		for (w = grown[i].waiters._head; w; w = w->next)
			w->queue = &grown[i].waiters;
	}
	h->fdwaits = grown;
	h->n_fdwaits = cap;
	return 0;
}

void green__fd_wake_all(struct green_hub *h, int fd, int code)
{
	struct green__waiter *w;
	struct green__waitq *q;

	if (!h || fd < 0 || (size_t)fd >= h->n_fdwaits)
		return;
	h->fdwaits[fd].gen++;
	q = &h->fdwaits[fd].waiters;
	while ((w = green__waitq_pop(q)) != NULL) {
		green_t *g = w->g;

		ev_io_stop(h->loop, &g->io);
		if (green__wake(g, code))
			continue;
		/*
		 * Not parked: the fd became ready in the same loop iteration
		 * and g sits in the ready queue, still inside green__park.  Its
		 * readiness was for the fd we are closing, and acting on it would
		 * touch a closed (or already reused) fd number, so the close
		 * wins.  A timeout or a kill that got there first is kept.
		 */
		if (g->state == GREEN_READY && g->wait_kind == GREEN_WAIT_FD &&
		    g->wake_code == 0)
			g->wake_code = code;
	}
}

void green__fd_renew(struct green_hub *h, int fd)
{
	if (h && fd >= 0 && (size_t)fd < h->n_fdwaits)
		h->fdwaits[fd].gen++;
}

/* ---- waiting ------------------------------------------------------------------ */

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fd_wait *fw = w->data;

	(void)loop;
	/*
	 * The watcher stays started until the woken greenlet runs and stops
	 * it in green__wait_fd.  Stopping it here would make a poll that
	 * comes first (every GREEN__POLL_EVERY dispatches) drop the fd from
	 * libev's interest, which costs two epoll_ctl calls (remove on the
	 * spurious event, add on the next wait) per wake-up.  Kept started,
	 * the next wait on the same fd and events changes nothing in the
	 * kernel; a level-triggered fd that fires again meanwhile finds the
	 * greenlet already ready, and green__wake ignores it.
	 */
	fw->revents |= revents;
	/* EV_ERROR: libev could not watch the fd (epoll_ctl said EBADF) and
	 * has already stopped the watcher. */
	green__wake(fw->g, (revents & EV_ERROR) ? EBADF : 0);
}

static int to_green_events(int revents)
{
	return ((revents & EV_READ) ? GREEN_READ : 0) |
	       ((revents & EV_WRITE) ? GREEN_WRITE : 0);
}

/* Has the effective deadline of a wait (the caller's, or an enclosing
 * green_timeout's) already passed? */
static bool deadline_passed(const green_t *self, int64_t deadline)
{
	int64_t scope = green__scope_deadline(self), eff;

	if (deadline < 0)
		eff = scope;
	else if (scope < 0)
		eff = deadline;
	else
		eff = deadline < scope ? deadline : scope;
	if (eff < 0)
		return false;
	return eff == 0 || eff <= green_now();
}

int green__poll_ready(int fd, int events, green__poll_fn poll_fn)
{
	struct pollfd p = { .fd = fd, .events = 0, .revents = 0 };
	int ready = 0, rc;

	if (events & GREEN_READ)
		p.events |= POLLIN;
	if (events & GREEN_WRITE)
		p.events |= POLLOUT;
	do
		rc = poll_fn(&p, 1, 0);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return -1;
	if (p.revents & POLLNVAL) {
		errno = EBADF;
		return -1;
	}
	if (p.revents & (POLLIN | POLLERR | POLLHUP))
		ready |= GREEN_READ;
	if (p.revents & (POLLOUT | POLLERR | POLLHUP))
		ready |= GREEN_WRITE;
	return ready & events;
}

int green_wait_fd(int fd, int events, int64_t deadline)
{
	return green__wait_fd(fd, events, deadline, 0);
}

int green__wait_fd(int fd, int events, int64_t deadline, unsigned int flags)
{
	struct green_hub *h = green__hub();
	struct fd_wait fw;
	green_t *self;
	int rc, err = 0, ev_events;
	bool unchanged;

	if (!h)
		return -1;
	if (fd < 0 || !(events & GREEN__IO_EVENTS) || (events & ~GREEN__IO_EVENTS)) {
		errno = EINVAL;
		return -1;
	}
	self = h->current;

	/*
	 * A wait that cannot block (GREEN_NOW, a deadline in the past) still
	 * reports an fd that is ready, so it asks the kernel directly; a
	 * pending kill goes first, as in every other wait.  When nothing is
	 * ready green__park fails at once with the right errno and counter.
	 */
	if (self->kill_pending || deadline_passed(self, deadline)) {
		if (!self->kill_pending) {
			rc = green__poll_ready(fd, events, poll);
			if (rc != 0)
				return rc;
		}
		return green__park(h, GREEN_WAIT_FD, NULL, deadline, 0);
	}

	ev_events = ((events & GREEN_READ) ? EV_READ : 0) |
	            ((events & GREEN_WRITE) ? EV_WRITE : 0);
	/*
	 * ev_io_set marks the fd as possibly new to libev, which then re-adds
	 * it to epoll at the next poll (see GREEN__FD_TRACKED); a watcher
	 * restarted unchanged makes libev touch neither the kernel nor the fd.
	 */
	unchanged = (flags & GREEN__FD_TRACKED) && self->io.fd == fd &&
	            (self->io.events & (EV_READ | EV_WRITE)) == ev_events &&
	            (size_t)fd < h->n_fdwaits && self->io_gen == h->fdwaits[fd].gen;
	if (!unchanged) {
		/*
		 * Debian's libev is built with assertions: epoll_ctl failing
		 * with EBADF aborts the whole process instead of reporting
		 * EV_ERROR, so a closed fd is refused here.  (Another OS thread
		 * closing it between this check and the next poll still hits
		 * the assertion; within one hub green_close stops the watchers
		 * before the close.)  A caller whose own call on fd just said
		 * EAGAIN knows it is open and saves the system call.
		 */
		if (!(flags & GREEN__FD_OPEN) && fcntl(fd, F_GETFD) < 0)
			return -1;
		if (fdwaits_reserve(h, fd) < 0)
			return -1;
		ev_io_init(&self->io, io_cb, fd, ev_events);
		self->io_gen = h->fdwaits[fd].gen;
	}
	fw.g = self;
	fw.revents = 0;
	self->io.data = &fw;
	ev_io_start(h->loop, &self->io);
	green__watch_begin(h);
	green__waitq_push(&h->fdwaits[fd].waiters, &self->fd_waiter, self);
	self->wait_fd = fd;
	self->wait_events = events;

	rc = green__park(h, GREEN_WAIT_FD, NULL, deadline, 0);
	if (rc < 0)
		err = errno;

	/* Every way out stops the watcher: the caller may close the fd as
	 * soon as we return. */
	ev_io_stop(h->loop, &self->io);
	green__watch_end(h);
	self->io.data = NULL;
	green__waitq_remove(&self->fd_waiter);
	self->wait_fd = -1;
	self->wait_events = 0;
	if (rc < 0) {
		errno = err;
		return -1;
	}
	return to_green_events(fw.revents) & events;
}

/* ---- import green ----------------------------------------------------------- */

static bool would_block(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK;
}

ssize_t green_read(int fd, void *buf, size_t len, int64_t deadline)
{
	for (;;) {
		ssize_t n = read(fd, buf, len);

		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (!would_block(errno))
			return -1;
		if (green__wait_fd(fd, GREEN_READ, deadline, GREEN__FD_OPEN) < 0)
			return -1;
	}
}

/*
 * Writes all len bytes.  If an error, a timeout or a kill comes after part
 * of the buffer has gone out, the part's length is returned (as a short
 * write(2) would) and the error is left for the next call to report: the
 * kernel repeats a socket error, a passed deadline stays passed, and a kill
 * is re-armed so that the greenlet's next wait fails with ECANCELED instead
 * of the kill being lost.
 */
ssize_t green_write(int fd, const void *buf, size_t len, int64_t deadline)
{
	const char *p = buf;
	size_t done = 0;

	for (;;) {
		ssize_t n = write(fd, p + done, len - done);

		if (n > 0 || (n == 0 && done == len)) {
			done += (size_t)n;
			if (done == len)
				return (ssize_t)done;
			continue;
		}
		if (n == 0)
			return (ssize_t)done; /* no progress: a short write */
		if (errno == EINTR)
			continue;
		if (would_block(errno) &&
		    green__wait_fd(fd, GREEN_WRITE, deadline, GREEN__FD_OPEN) >= 0)
			continue;
		if (done == 0)
			return -1;
		if (errno == ECANCELED) {
			struct green_hub *h = green__hub_peek();

			if (h)
				h->current->kill_pending = true;
		}
		return (ssize_t)done;
	}
}

int green_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags,
                 int64_t deadline)
{
	for (;;) {
		int conn = accept4(fd, addr, addrlen, flags);

		if (conn >= 0)
			return conn;
		if (errno == EINTR)
			continue;
		if (!would_block(errno))
			return -1;
		if (green__wait_fd(fd, GREEN_READ, deadline, GREEN__FD_OPEN) < 0)
			return -1;
	}
}

/*
 * connect(2) is not retried on EINTR: the attempt goes on in the kernel and a
 * second call would only say EALREADY.  EINTR, EINPROGRESS and EALREADY (a
 * connect already under way, say one an earlier call gave up on) all mean
 * "wait until writable, then ask SO_ERROR how it went", as gevent does.
 */
int green_connect(int fd, const struct sockaddr *addr, socklen_t addrlen,
                  int64_t deadline)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (connect(fd, addr, addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EALREADY && errno != EINTR)
		return -1;
	for (;;) {
		int ready = green_wait_fd(fd, GREEN_WRITE, deadline);

		if (ready < 0)
			return -1;
		if (ready & GREEN_WRITE)
			break;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return -1;
	if (soerr) {
		errno = soerr;
		return -1;
	}
	return 0;
}

int green_close(int fd)
{
	/* Waiters first: their watchers must be stopped while the fd is
	 * still open.  A thread without a hub has no waiters to wake. */
	green__fd_wake_all(green__hub_peek(), fd, EBADF);
	return close(fd);
}
