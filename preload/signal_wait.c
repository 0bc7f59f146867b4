/*
 * signal_wait.c - waiting for signals without blocking the hub: sigwait,
 * sigwaitinfo and sigtimedwait, pause and sigsuspend, and read() on a
 * signalfd each park only the calling green thread.
 *
 * The sigwait family parks on a signalfd for the set: a signal every green
 * thread blocks is blocked in the kernel too, so it stays pending on the
 * process (or the OS thread); the signalfd turns readable on the hub's
 * poll, and a zero-timeout sigtimedwait takes it, atomically, so two green
 * threads waiting for one signal cannot both have it.  A signal some green
 * thread lets in reaches the wrapper instead, which leaves it pending on
 * the hub for the waiting green thread (signal.c), and one sent to the
 * waiting green thread itself (pthread_kill) is in its own record.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "signal_int.h"

#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

static void waiters_changed(struct sigstate *st)
{
	uint64_t all = 0;

	for (struct sig_waiter *w = st->waiters; w; w = w->next)
		all |= w->set;
	__atomic_store_n(&st->waited, all, __ATOMIC_RELEASE);
}

static void waiter_link(struct sigstate *st, struct sig_waiter *w)
{
	w->prev = NULL;
	w->next = st->waiters;
	if (st->waiters)
		st->waiters->prev = w;
	st->waiters = w;
	waiters_changed(st);
}

static void waiter_unlink(struct sigstate *st, struct sig_waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		st->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	waiters_changed(st);
}

/* A signal of bits pending on the hub or on gs (what the wrapper left in
 * the ring first): its number, or 0. */
static int take_pending(struct sigstate *st, struct shim_gsig *gs, uint64_t bits,
                        siginfo_t *info)
{
	shim_sig_kick(st);
	return shim_sig_take(st, gs, bits, info);
}

/* A signal of want pending now (on the hub, on gs, or in the kernel): its
 * number, 0 if none, -1 with errno. */
static int take_now(struct sigstate *st, struct shim_gsig *gs, const sigset_t *want,
                    uint64_t bits, siginfo_t *info)
{
	static const struct timespec zero;
	int sig;

	sig = take_pending(st, gs, bits, info);
	if (sig > 0)
		return sig;
	sig = SHIM_REAL(sigtimedwait)(want, info, &zero);
	if (sig > 0)
		return sig;
	return errno == EAGAIN ? 0 : -1;
}

/*
 * The green body of the sigwait family: the signal taken, or -1 with errno
 * (EAGAIN at the deadline; EINTR when intr and a handler for a signal
 * outside the set ran).  A cancellation point either way.
 */
static int sigwait_green(struct green_hub *h, const sigset_t *set, siginfo_t *info,
                         int64_t deadline, bool intr)
{
	struct sigstate *st = shim_sigstate();
	struct sig_waiter me = {0};
	struct shim_intr in;
	siginfo_t local;
	sigset_t want = *set;
	int sfd = -1, sig, err = 0;

	if (!info)
		info = &local;
	sigdelset(&want, SIGKILL);
	sigdelset(&want, SIGSTOP);
	if (!st)
		return SHIM_REAL(sigtimedwait)(&want, info, NULL);
	shim_intr_begin_mode(&in, intr ? SHIM_INTR_ALWAYS : SHIM_INTR_LOOK);
	me.g = h->current;
	me.gs = in.gs;
	me.set = shim_set_bits(&want);
	waiter_link(st, &me);
	for (;;) {
		sig = take_now(st, me.gs, &want, me.set, info);
		if (sig != 0 || (errno == EINTR && intr)) {
			err = errno;
			break;
		}
		if (shim_cancel_requested()) {
			sig = -1;
			err = ECANCELED;
			break;
		}
		if (sfd < 0) {
			sfd = SHIM_REAL(signalfd)(-1, &want, SFD_NONBLOCK | SFD_CLOEXEC);
			if (sfd < 0) {
				sig = -1;
				err = errno;
				break;
			}
		}
		if (shim_wait_fd_intr(h, sfd, GREEN_READ, deadline, &in, true) < 0) {
			err = errno;
			/* A signal that came with the deadline or the handler
			 * still counts, as in the kernel. */
			sig = take_now(st, me.gs, &want, me.set, info);
			if (sig > 0) {
				err = 0;
				break;
			}
			/* sigwait's look wait: a handler ran, or a cancel came
			 * (the top of the loop sees it). */
			if (err == EINTR && !intr)
				continue;
			sig = -1;
			break;
		}
	}
	waiter_unlink(st, &me);
	if (sfd >= 0) {
		shim_fd_closing(sfd);
		SHIM_REAL(close)(sfd);
	}
	if (sig > 0)
		return sig;
	shim_cancel_point();
	errno = err;
	return -1;
}

/*
 * A signal of set already pending for the calling green thread on its own
 * record (pthread_kill, pthread_sigqueue) or on the hub, where the kernel's
 * calls cannot see it: its number, or 0.  Asked before any path that goes
 * to the kernel (a zero timeout, a hub with nothing else to run).
 */
static int take_green_pending(const sigset_t *set, siginfo_t *info)
{
	struct sigstate *st = shim_tls_sig;
	siginfo_t local;

	if (!st || shim_passthrough)
		return 0;
	return take_pending(st, shim_patched[SHIM_THREAD] ? shim_sig_self() : NULL,
	                    shim_set_bits(set) & ~SIG_UNBLOCKABLE, info ? info : &local);
}

static bool timespec_ok(const struct timespec *ts)
{
	return ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000L;
}

int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	int64_t ns;
	int sig;

	if (h && (!timeout || timespec_ok(timeout)) && (sig = take_green_pending(set, info)) > 0)
		return sig;
	if (!h || shim_alone(h) || (timeout && !timespec_ok(timeout)) ||
	    (timeout && timeout->tv_sec == 0 && timeout->tv_nsec == 0))
		return SHIM_REAL(sigtimedwait)(set, info, timeout);
	if (!timeout)
		return sigwait_green(h, set, info, GREEN_FOREVER, true);
	ns = timeout->tv_sec > INT64_MAX / GREEN_SEC - 1
	         ? INT64_MAX / 2
	         : (int64_t)timeout->tv_sec * GREEN_SEC + timeout->tv_nsec;
	return sigwait_green(h, set, info, green_now() + ns, true);
}

int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	int sig;

	if (h && (sig = take_green_pending(set, info)) > 0)
		return sig;
	if (!h || shim_alone(h))
		return SHIM_REAL(sigwaitinfo)(set, info);
	return sigwait_green(h, set, info, GREEN_FOREVER, true);
}

/* POSIX: never EINTR (glibc retries); the error is the return value. */
int sigwait(const sigset_t *set, int *sig)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	int rc;

	if (h && (rc = take_green_pending(set, NULL)) > 0) {
		*sig = rc;
		return 0;
	}
	if (!h || shim_alone(h))
		return SHIM_REAL(sigwait)(set, sig);
	rc = sigwait_green(h, set, NULL, GREEN_FOREVER, false);
	if (rc < 0)
		return errno;
	*sig = rc;
	return 0;
}

/*
 * Park until a handler runs on this green thread (counted since in
 * began), then -1/EINTR.  When every green thread waits on another and no
 * watcher can fire, only a signal can change anything: the OS thread waits
 * for it in the kernel, with the green thread's mask.
 */
static int park_for_handler(struct green_hub *h, struct shim_intr *in)
{
	for (;;) {
		int rc, err;

		if (shim_intr_arm(h, in) < 0)
			break;
		rc = green__park(h, GREEN_WAIT_OTHER, NULL, GREEN_FOREVER, 0);
		err = errno;
		shim_intr_disarm(in);
		if (rc == 0)
			continue; /* looked at again by a restarting handler */
		if (err == EDEADLK) {
			sigset_t mask;

			if (in->gs)
				shim_bits_set(in->gs->blocked, &mask);
			else
				SHIM_REAL(pthread_sigmask)(SIG_SETMASK, NULL, &mask);
			SHIM_REAL(sigsuspend)(&mask);
			break;
		}
		if (err != EINTR) {
			errno = err;
			return -1;
		}
		break;
	}
	shim_cancel_point();
	errno = EINTR;
	return -1;
}

int pause(void)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	struct shim_intr in;

	if (!h || shim_alone(h))
		return SHIM_REAL(pause)();
	shim_intr_begin(&in, true);
	return park_for_handler(h, &in);
}

/*
 * The mask is the green thread's own while it waits (the others keep
 * theirs); a signal that was pending and the new mask lets in runs its
 * handler at once.  Without a record of its own (the thread module is not
 * patched) the OS thread's mask is changed for the wait.
 */
int sigsuspend(const sigset_t *mask)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	struct shim_intr in;
	sigset_t kold;
	uint64_t old = 0;
	int rc, err;

	if (!h || shim_alone(h)) {
		struct shim_kmask k;

		shim_kmask_enter(&k, mask);
		rc = SHIM_REAL(sigsuspend)(mask);
		shim_kmask_leave(&k);
		return rc;
	}
	shim_intr_begin(&in, true);
	if (in.gs) {
		old = in.gs->blocked;
		shim_sig_set_blocked(in.gs, shim_set_bits(mask));
	} else {
		SHIM_REAL(pthread_sigmask)(SIG_SETMASK, mask, &kold);
	}
	rc = park_for_handler(h, &in);
	err = errno;
	if (in.gs)
		shim_sig_set_blocked(in.gs, old);
	else
		SHIM_REAL(pthread_sigmask)(SIG_SETMASK, &kold, NULL);
	errno = err;
	return rc;
}

int __sigsuspend(const sigset_t *mask);
int __sigsuspend(const sigset_t *mask)
{
	return sigsuspend(mask);
}

/* ---- signalfd ------------------------------------------------------------------
 *
 * A blocking read on a signalfd parks the green thread until the hub's poll
 * says the fd is readable (the OS thread's and the process's pending
 * signals, which is what the fd reports), then reads.  The fd table knows
 * signalfds from their creation; socket.c's read() hands them here.
 */
int signalfd(int fd, const sigset_t *mask, int flags)
{
	int rc = SHIM_REAL(signalfd)(fd, mask, flags);

	if (rc >= 0 && fd < 0 && !shim_passthrough &&
	    (shim_patched[SHIM_SOCKET] || shim_patched[SHIM_OS]))
		shim_fd_created(rc, SHIM_FD_SIGNAL, (flags & SFD_NONBLOCK) != 0, false);
	return rc;
}

ssize_t shim_signalfd_read(struct green_hub *h, struct shim_fd *e, int fd, void *buf,
                           size_t len)
{
	struct shim_intr in;

	if (e->user_nonblock || shim_alone(h))
		return SHIM_REAL(read)(fd, buf, len);
	shim_intr_begin(&in, false);
	for (;;) {
		int ready = shim_ready_now(fd, GREEN_READ);

		if (ready != 0)
			return SHIM_REAL(read)(fd, buf, len); /* data, or the error */
		if (shim_wait_fd_intr(h, fd, GREEN_READ, GREEN_FOREVER, &in, false) < 0) {
			int err = errno;

			/* The kernel prefers a ready result to the signal. */
			if (err == EINTR && shim_ready_now(fd, GREEN_READ) > 0)
				return SHIM_REAL(read)(fd, buf, len);
			shim_cancel_point();
			errno = err;
			return -1;
		}
	}
}
