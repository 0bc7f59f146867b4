/*
 * select.c - the "select" module: poll, ppoll, select, pselect, epoll_wait,
 * epoll_pwait, epoll_pwait2 with a timeout park the greenlet instead of the
 * thread.
 *
 * The kernel stays the judge of what is ready: a call first asks it with a
 * zero timeout, and only if nothing is ready parks on one ev_io per fd (on
 * the epoll fd itself for epoll_wait: it is readable while events are
 * pending), then asks again.  A zero timeout passes straight through.
 * Readiness the hub's epoll cannot see (POLLPRI alone, events 0, files that
 * epoll refuses) falls back to re-asking on a backing-off timer, and a
 * watcher that keeps firing while the kernel says "nothing for you" (a
 * regular file, POLLPRI asked without POLLIN) is dropped for the timer.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "shim_io.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>

#define STACK_WATCHES 8
#define RECHECK_MIN (1 * GREEN_MSEC)
#define RECHECK_MAX (50 * GREEN_MSEC)
#define SPURIOUS_LIMIT 16

int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen);
int __ppoll_chk(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout,
                const sigset_t *ss, size_t fdslen);
int __select(int nfds, fd_set *r, fd_set *w, fd_set *x, struct timeval *timeout);

struct watch {
	ev_io io; /* first: the callback finds the watch from it */
	struct parked *p;
	unsigned char spurious;
	bool fired;
	bool dropped; /* libev cannot tell us: the timer re-asks */
	bool started;
};

/* One parked call; linked per OS thread so close() can reach its watchers. */
struct parked {
	struct parked *next, *prev;
	green_t *g;
	struct watch *w;
	nfds_t n;
};

static __thread struct parked *tls_parked;

static void watch_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct watch *w = (struct watch *)io;

	(void)revents;
	ev_io_stop(loop, io);
	w->started = false;
	w->fired = true;
	green__wake(w->p->g, 0);
}

void shim_select_fd_closing(int fd)
{
	struct green_hub *h = green__hub_peek();
	struct parked *p;

	if (!h || fd < 0)
		return;
	for (p = tls_parked; p; p = p->next) {
		for (nfds_t i = 0; i < p->n; i++) {
			struct watch *w = &p->w[i];

			/* A closed fd never becomes ready for poll(2) either:
			 * only the watcher goes, libev must not keep it. */
			if (w->started && w->io.fd == fd) {
				ev_io_stop(h->loop, &w->io);
				w->started = false;
				w->dropped = true;
			}
		}
	}
}

static int ev_events_of(short events)
{
	int ev = 0;

	if (events & (POLLIN | POLLRDNORM | POLLRDBAND | POLLRDHUP))
		ev |= EV_READ;
	if (events & (POLLOUT | POLLWRNORM | POLLWRBAND))
		ev |= EV_WRITE;
	return ev;
}

/* What the kernel says is ready: > 0, 0 for nothing, -1 and errno.  The
 * timeout (ms, -1 forever) is 0 but when nothing else could ever run. */
typedef int (*check_fn)(void *arg, int timeout_ms);

static int remaining_ms(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - green_now();
	if (left <= 0)
		return 0;
	left = (left + GREEN_MSEC - 1) / GREEN_MSEC;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

/*
 * The engine: ask the kernel; while nothing is ready, park on the fds (and
 * the deadline, a re-asking timer if needed, signals), and ask again.
 * Sleep-type calls are interrupted by any handler (EINTR); a result the
 * kernel has ready wins over the signal, as in the kernel.
 */
static int wait_any(struct green_hub *h, const struct pollfd *want, nfds_t n,
                    int64_t deadline, check_fn check, void *arg)
{
	struct watch small[STACK_WATCHES], *w = small;
	struct parked p;
	struct shim_intr in;
	int64_t recheck = RECHECK_MIN;
	int rc, err = 0;

	shim_intr_begin(&in, true);
	rc = check(arg, 0);
	if (rc != 0)
		return rc; /* errno is check's */
	if (n > STACK_WATCHES) {
		w = calloc(n, sizeof(*w));
		if (!w) {
			errno = ENOMEM;
			return -1;
		}
	} else {
		memset(small, 0, sizeof(small));
	}
	p.g = h->current;
	p.w = w;
	p.n = n;
	for (nfds_t i = 0; i < n; i++) {
		w[i].p = &p;
		w[i].dropped = want[i].fd < 0 || !ev_events_of(want[i].events);
	}
	for (;;) {
		bool need_timer = false;
		int64_t until;
		int live = 0, park;

		if (deadline >= 0 && green_now() >= deadline) {
			rc = 0;
			break;
		}
		for (nfds_t i = 0; i < n; i++) {
			if (w[i].fired && ++w[i].spurious >= SPURIOUS_LIMIT) {
				SHIM_DEBUG("fd %d keeps waking a poll for nothing: "
				           "asking the kernel on a timer instead", want[i].fd);
				w[i].dropped = true;
			}
			w[i].fired = false;
			if (want[i].fd >= 0 && w[i].dropped)
				need_timer = true;
			if (w[i].dropped)
				continue;
			ev_io_init(&w[i].io, watch_cb, want[i].fd, ev_events_of(want[i].events));
			ev_io_start(h->loop, &w[i].io);
			w[i].started = true;
			live++;
		}
		for (nfds_t i = 0; i < n; i++) {
			/* Urgent data alone does not make the fd readable. */
			if (want[i].fd >= 0 && (want[i].events & POLLPRI))
				need_timer = true;
		}
		until = need_timer ? green__earlier(deadline, green_now() + recheck) : deadline;
		p.prev = NULL;
		p.next = tls_parked;
		if (tls_parked)
			tls_parked->prev = &p;
		tls_parked = &p;
		if (shim_intr_arm(h, &in) < 0) {
			park = -1;
		} else {
			if (n == 1 && live) {
				h->current->wait_fd = want[0].fd;
				h->current->wait_events =
				    ((w[0].io.events & EV_READ) ? GREEN_READ : 0) |
				    ((w[0].io.events & EV_WRITE) ? GREEN_WRITE : 0);
			}
			park = green__park(h, n == 1 && live ? GREEN_WAIT_FD : GREEN_WAIT_OTHER,
			                   NULL, until, 0);
			h->current->wait_fd = -1;
			h->current->wait_events = 0;
			shim_intr_disarm(&in);
		}
		err = errno;
		if (p.prev)
			p.prev->next = p.next;
		else
			tls_parked = p.next;
		if (p.next)
			p.next->prev = p.prev;
		for (nfds_t i = 0; i < n; i++) {
			if (w[i].started) {
				ev_io_stop(h->loop, &w[i].io);
				w[i].started = false;
			}
		}
		if (park < 0 && err == ETIMEDOUT && until != deadline) {
			park = 0; /* the re-asking timer */
			if (recheck < RECHECK_MAX)
				recheck *= 2;
		}
		if (park < 0 && err == EDEADLK) {
			/* Nothing else can ever run (a wait with no fd and no
			 * deadline, everyone else blocked): the kernel may as
			 * well do the waiting, signals and all. */
			rc = check(arg, remaining_ms(deadline));
			err = errno;
			break;
		}
		rc = check(arg, 0);
		if (rc != 0) {
			err = errno;
			break;
		}
		if (park < 0) {
			rc = err == ETIMEDOUT ? 0 : -1;
			break;
		}
	}
	if (w != small)
		free(w);
	if (rc < 0)
		errno = err;
	return rc;
}

static int64_t ms_deadline(int timeout)
{
	return timeout < 0 ? GREEN_FOREVER : green_now() + (int64_t)timeout * GREEN_MSEC;
}

static int64_t ts_deadline(const struct timespec *ts)
{
	if (!ts)
		return GREEN_FOREVER;
	if (ts->tv_sec > INT64_MAX / GREEN_SEC - 2)
		return GREEN_FOREVER;
	return green_now() + (int64_t)ts->tv_sec * GREEN_SEC + ts->tv_nsec;
}

static bool ts_zero(const struct timespec *ts)
{
	return ts && ts->tv_sec == 0 && ts->tv_nsec == 0;
}

/* The signal mask of ppoll/pselect/epoll_pwait holds for the wait only.
 * (For the whole OS thread: other greenlets that run meanwhile share it.) */
static void mask_enter(const sigset_t *mask, sigset_t *old)
{
	if (mask)
		pthread_sigmask(SIG_SETMASK, mask, old);
}

static void mask_leave(const sigset_t *mask, const sigset_t *old)
{
	if (mask) {
		int err = errno;

		pthread_sigmask(SIG_SETMASK, old, NULL);
		errno = err;
	}
}

/* The calls with a mask, straight to the kernel: the green thread's record
 * follows the mask meanwhile (see shim_kmask). */
static int kernel_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout,
                        const sigset_t *mask)
{
	struct shim_kmask k;
	int rc;

	shim_kmask_enter(&k, mask);
	rc = SHIM_REAL(ppoll)(fds, n, timeout, mask);
	shim_kmask_leave(&k);
	return rc;
}

static int kernel_pselect(int nfds, fd_set *r, fd_set *w, fd_set *x, const struct timespec *ts,
                          const sigset_t *mask)
{
	struct shim_kmask k;
	int rc;

	shim_kmask_enter(&k, mask);
	rc = SHIM_REAL(pselect)(nfds, r, w, x, ts, mask);
	shim_kmask_leave(&k);
	return rc;
}

static int kernel_epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout,
                              const sigset_t *mask)
{
	struct shim_kmask k;
	int rc;

	shim_kmask_enter(&k, mask);
	rc = SHIM_REAL(epoll_pwait)(epfd, events, max, timeout, mask);
	shim_kmask_leave(&k);
	return rc;
}

static int kernel_epoll_pwait2(int epfd, struct epoll_event *events, int max,
                               const struct timespec *timeout, const sigset_t *mask)
{
	struct shim_kmask k;
	int rc;

	shim_kmask_enter(&k, mask);
	rc = SHIM_REAL(epoll_pwait2)(epfd, events, max, timeout, mask);
	shim_kmask_leave(&k);
	return rc;
}

/* ---- poll ------------------------------------------------------------------ */

struct poll_call {
	struct pollfd *fds;
	nfds_t n;
};

static int poll_check(void *arg, int timeout_ms)
{
	struct poll_call *c = arg;
	int rc;

	if (timeout_ms)
		return SHIM_REAL(poll)(c->fds, c->n, timeout_ms);
	do
		rc = SHIM_REAL(poll)(c->fds, c->n, 0);
	while (rc < 0 && errno == EINTR);
	return rc;
}

static int poll_green(struct green_hub *h, struct pollfd *fds, nfds_t n,
                      int64_t deadline, const sigset_t *mask)
{
	struct poll_call c = {.fds = fds, .n = n};
	sigset_t old;
	int rc;

	mask_enter(mask, &old);
	rc = wait_any(h, fds, n, deadline, poll_check, &c);
	mask_leave(mask, &old);
	return rc;
}

int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	struct green_hub *h = shim_hub_for(SHIM_SELECT);

	if (!h || shim_alone(h))
		return SHIM_REAL(poll)(fds, n, timeout);
	green__fair_point(h);
	if (timeout == 0)
		return SHIM_REAL(poll)(fds, n, timeout);
	return poll_green(h, fds, n, ms_deadline(timeout), NULL);
}

int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
	if (fdslen / sizeof(*fds) < n)
		__chk_fail();
	return poll(fds, n, timeout);
}

int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout,
          const sigset_t *mask)
{
	struct green_hub *h = shim_hub_for(SHIM_SELECT);

	if (!h || shim_alone(h))
		return kernel_ppoll(fds, n, timeout, mask);
	green__fair_point(h);
	if (ts_zero(timeout))
		return kernel_ppoll(fds, n, timeout, mask);
	if (timeout && !shim_ts_valid(timeout)) {
		errno = EINVAL;
		return -1;
	}
	return poll_green(h, fds, n, ts_deadline(timeout), mask);
}

int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *timeout,
                const sigset_t *mask, size_t fdslen)
{
	if (fdslen / sizeof(*fds) < n)
		__chk_fail();
	return ppoll(fds, n, timeout, mask);
}

/* ---- select ------------------------------------------------------------------ */

/* fd_set words for nfds bits: programs may pass sets larger than
 * FD_SETSIZE, sized by nfds. */
#define SET_WORD_BITS (8 * sizeof(unsigned long))

struct select_call {
	int nfds;
	size_t bytes;
	fd_set *sets[3];     /* the program's (may be NULL) */
	unsigned long *copy; /* 3 sets' worth of scratch */
};

static bool set_has(const void *set, int fd)
{
	const unsigned long *words = set;

	return (words[fd / SET_WORD_BITS] >> (fd % SET_WORD_BITS)) & 1;
}

/* A select with a zero timeout on copies; on success the copies (the
 * result) go back to the program's sets. */
static int select_check(void *arg, int timeout_ms)
{
	struct select_call *c = arg;
	size_t words = c->bytes / sizeof(unsigned long);
	fd_set *s[3];
	struct timeval zero = {0, 0}, tv;
	int rc;

	if (timeout_ms) {
		tv.tv_sec = timeout_ms / 1000;
		tv.tv_usec = (timeout_ms % 1000) * 1000;
		rc = SHIM_REAL(select)(c->nfds, c->sets[0], c->sets[1], c->sets[2],
		                       timeout_ms < 0 ? NULL : &tv);
		return rc;
	}
	for (int k = 0; k < 3; k++) {
		s[k] = c->sets[k] ? (fd_set *)(c->copy + k * words) : NULL;
		if (s[k])
			memcpy(s[k], c->sets[k], c->bytes);
	}
	do {
		rc = SHIM_REAL(select)(c->nfds, s[0], s[1], s[2], &zero);
	} while (rc < 0 && errno == EINTR);
	if (rc > 0) {
		for (int k = 0; k < 3; k++) {
			if (s[k])
				memcpy(c->sets[k], s[k], c->bytes);
		}
	}
	return rc;
}

static int select_green(struct green_hub *h, int nfds, fd_set *r, fd_set *w,
                        fd_set *x, int64_t deadline, const sigset_t *mask)
{
	struct select_call c = {.nfds = nfds, .sets = {r, w, x}};
	unsigned long small_copy[3 * (FD_SETSIZE / SET_WORD_BITS)];
	struct pollfd small_want[STACK_WATCHES], *want = small_want;
	size_t words = ((size_t)nfds + SET_WORD_BITS - 1) / SET_WORD_BITS;
	nfds_t n = 0;
	sigset_t old;
	int rc;

	c.bytes = words * sizeof(unsigned long);
	c.copy = small_copy;
	if (words * 3 > sizeof(small_copy) / sizeof(small_copy[0])) {
		c.copy = malloc(3 * c.bytes);
		if (!c.copy) {
			errno = ENOMEM;
			return -1;
		}
	}
	for (int fd = 0; fd < nfds; fd++) {
		if ((r && set_has(r, fd)) || (w && set_has(w, fd)) || (x && set_has(x, fd)))
			n++;
	}
	if (n > STACK_WATCHES) {
		want = malloc(n * sizeof(*want));
		if (!want) {
			if (c.copy != small_copy)
				free(c.copy);
			errno = ENOMEM;
			return -1;
		}
	}
	n = 0;
	for (int fd = 0; fd < nfds; fd++) {
		short ev = 0;

		if (r && set_has(r, fd))
			ev |= POLLIN;
		if (w && set_has(w, fd))
			ev |= POLLOUT;
		if (x && set_has(x, fd))
			ev |= POLLPRI;
		if (ev) {
			want[n].fd = fd;
			want[n].events = ev;
			want[n].revents = 0;
			n++;
		}
	}
	mask_enter(mask, &old);
	rc = wait_any(h, want, n, deadline, select_check, &c);
	mask_leave(mask, &old);
	if (rc == 0) {
		/* Nothing: every set comes back empty, as the kernel leaves it. */
		for (int k = 0; k < 3; k++) {
			if (c.sets[k])
				memset(c.sets[k], 0, c.bytes);
		}
	}
	if (want != small_want) {
		int err = errno;

		free(want);
		errno = err;
	}
	if (c.copy != small_copy) {
		int err = errno;

		free(c.copy);
		errno = err;
	}
	return rc;
}

/* Linux writes the time left back into select's timeout. */
static int do_select(int nfds, fd_set *r, fd_set *w, fd_set *x, struct timeval *tv)
{
	struct green_hub *h = shim_hub_for(SHIM_SELECT);
	int64_t deadline = GREEN_FOREVER;
	int rc;

	if (!h || shim_alone(h))
		return SHIM_REAL(select)(nfds, r, w, x, tv);
	green__fair_point(h);
	if ((tv && tv->tv_sec == 0 && tv->tv_usec == 0) || nfds < 0)
		return SHIM_REAL(select)(nfds, r, w, x, tv);
	if (tv) {
		if (tv->tv_sec < 0 || tv->tv_usec < 0) {
			errno = EINVAL;
			return -1;
		}
		deadline = green_now() + (int64_t)tv->tv_sec * GREEN_SEC +
		           (int64_t)tv->tv_usec * GREEN_USEC;
	}
	rc = select_green(h, nfds, r, w, x, deadline, NULL);
	if (tv) {
		int64_t left = deadline - green_now();

		if (left < 0)
			left = 0;
		tv->tv_sec = (time_t)(left / GREEN_SEC);
		tv->tv_usec = (suseconds_t)((left % GREEN_SEC) / GREEN_USEC);
	}
	return rc;
}

int select(int nfds, fd_set *r, fd_set *w, fd_set *x, struct timeval *tv)
{
	return do_select(nfds, r, w, x, tv);
}

int __select(int nfds, fd_set *r, fd_set *w, fd_set *x, struct timeval *tv)
{
	return do_select(nfds, r, w, x, tv);
}

int pselect(int nfds, fd_set *r, fd_set *w, fd_set *x, const struct timespec *ts,
            const sigset_t *mask)
{
	struct green_hub *h = shim_hub_for(SHIM_SELECT);

	if (!h || shim_alone(h))
		return kernel_pselect(nfds, r, w, x, ts, mask);
	green__fair_point(h);
	if (ts_zero(ts) || nfds < 0)
		return kernel_pselect(nfds, r, w, x, ts, mask);
	if (ts && !shim_ts_valid(ts)) {
		errno = EINVAL;
		return -1;
	}
	return select_green(h, nfds, r, w, x, ts_deadline(ts), mask);
}

/* ---- epoll ------------------------------------------------------------------- */

struct epoll_call {
	int epfd;
	struct epoll_event *events;
	int max;
};

static int epoll_check(void *arg, int timeout_ms)
{
	struct epoll_call *c = arg;
	int rc;

	if (timeout_ms)
		return SHIM_REAL(epoll_wait)(c->epfd, c->events, c->max, timeout_ms);
	do
		rc = SHIM_REAL(epoll_wait)(c->epfd, c->events, c->max, 0);
	while (rc < 0 && errno == EINTR);
	return rc;
}

static int epoll_green(struct green_hub *h, int epfd, struct epoll_event *events,
                       int max, int64_t deadline, const sigset_t *mask)
{
	struct epoll_call c = {.epfd = epfd, .events = events, .max = max};
	struct pollfd want = {.fd = epfd, .events = POLLIN};
	sigset_t old;
	int rc;

	mask_enter(mask, &old);
	rc = wait_any(h, &want, 1, deadline, epoll_check, &c);
	mask_leave(mask, &old);
	return rc;
}

int epoll_wait(int epfd, struct epoll_event *events, int max, int timeout)
{
	struct green_hub *h = shim_hub_for(SHIM_SELECT);

	if (!h || shim_alone(h))
		return SHIM_REAL(epoll_wait)(epfd, events, max, timeout);
	green__fair_point(h);
	if (timeout == 0)
		return SHIM_REAL(epoll_wait)(epfd, events, max, timeout);
	return epoll_green(h, epfd, events, max, ms_deadline(timeout), NULL);
}

int epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout,
                const sigset_t *mask)
{
	struct green_hub *h = shim_hub_for(SHIM_SELECT);

	if (!h || shim_alone(h))
		return kernel_epoll_pwait(epfd, events, max, timeout, mask);
	green__fair_point(h);
	if (timeout == 0)
		return kernel_epoll_pwait(epfd, events, max, timeout, mask);
	return epoll_green(h, epfd, events, max, ms_deadline(timeout), mask);
}

int epoll_pwait2(int epfd, struct epoll_event *events, int max,
                 const struct timespec *timeout, const sigset_t *mask)
{
	struct green_hub *h = shim_hub_for(SHIM_SELECT);

	if (!h || shim_alone(h))
		return kernel_epoll_pwait2(epfd, events, max, timeout, mask);
	green__fair_point(h);
	if (ts_zero(timeout))
		return kernel_epoll_pwait2(epfd, events, max, timeout, mask);
	if (timeout && !shim_ts_valid(timeout)) {
		errno = EINVAL;
		return -1;
	}
	return epoll_green(h, epfd, events, max, ts_deadline(timeout), mask);
}
