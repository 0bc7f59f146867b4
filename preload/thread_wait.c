/*
 * thread_wait.c - how a green thread of the thread module waits: deadlines
 * from the absolute times pthread calls take, one park on a wait queue with
 * the deadlock rule below, and the nap between two tries of a
 * process-shared object, and the helper OS threads that wait where no
 * green thread can.  Every blocking pthread call of the module goes
 * through here, so the rules hold for all of them alike.
 *
 * Deadlock.  When every greenlet waits on another and no watcher can fire,
 * the hub fails the main greenlet's wait with EDEADLK (gevent's LoopExit).
 * A native program would hang there, and no pthread call may return an
 * error its caller cannot expect, so the main greenlet keeps waiting: it
 * sleeps on a hub timer for DEADLOCK_NAP and looks again (a signal handler
 * may post a semaphore meanwhile).  The process idles instead of spinning,
 * greend's dump shows every greenlet waiting, and GREEN_DEBUG logs it once.
 * A condition wait returns 0 instead (a spurious wake-up, which POSIX
 * allows and every caller loops on).
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "thread_int.h"

#include <errno.h>
#include <signal.h>
#include <time.h>

#define DEADLOCK_NAP (50 * GREEN_MSEC)

int64_t shim_abs_deadline(clockid_t clock, const struct timespec *abs)
{
	struct timespec now;
	int64_t sec, ns, base;

	if (abs->tv_sec < 0)
		return GREEN_NOW;
	if (clock == CLOCK_MONOTONIC) {
		if (abs->tv_sec > INT64_MAX / GREEN_SEC - 1)
			return GREEN_FOREVER;
		ns = (int64_t)abs->tv_sec * GREEN_SEC + abs->tv_nsec;
		return ns > 0 ? ns : GREEN_NOW;
	}
	clock_gettime(clock, &now);
	base = green_now();
	sec = (int64_t)abs->tv_sec - (int64_t)now.tv_sec;
	if (sec > (int64_t)100 * 365 * 24 * 3600)
		return GREEN_FOREVER;
	ns = sec * GREEN_SEC + (abs->tv_nsec - now.tv_nsec);
	if (ns <= 0)
		return GREEN_NOW;
	return base + ns;
}

/* The main greenlet's wait found a deadlock: nap on a timer (see the top). */
static void deadlocked(void)
{
	static bool said;

	if (!said) {
		said = true;
		SHIM_DEBUG("thread: every green thread waits on another: a deadlock; "
		           "the main thread keeps waiting, as a native program would hang");
	}
	green_sleep(green_now() + DEADLOCK_NAP);
}

/*
 * Every wait is armed for signals (shim_signal.h): a handler sent to the
 * green thread meanwhile wakes it, runs on its stack, and the caller looks
 * again (or, for an interruptible call, fails with EINTR).
 */
int shim_thread_wait_intr(struct green_hub *h, struct green__waitq *q,
                          enum green_wait_kind kind, const void *obj,
                          int64_t deadline, void *data, struct shim_intr *in)
{
	int rc, err;

	for (;;) {
		if (shim_intr_arm(h, in) < 0)
			return -1;
		rc = green__wait_on(h, q, kind, obj, deadline, 0, data);
		err = errno;
		shim_intr_disarm(in); /* runs the handlers */
		if (rc == 0 || err != EINTR || !in->look)
			break;
		/* A look wait woken for a handler or a cancel: the handler
		 * has run; a cancel is the caller's to act on (or, when
		 * asynchronous, acted on here, the waiter unlinked). */
		if (in->cancel_point && shim_cancel_requested())
			return 0;
		if (in->gs && in->gs->cancel_async)
			shim_cancel_point();
	}
	if (rc == 0)
		return 0;
	errno = err;
	if (err == ETIMEDOUT || err == EINTR)
		return -1;
	if (err == EDEADLK) {
		if (!h->current->is_main || h->current->dying)
			return -1;
		deadlocked();
	}
	return 0;
}

int shim_thread_wait(struct green_hub *h, struct green__waitq *q,
                     enum green_wait_kind kind, const void *obj,
                     int64_t deadline, void *data)
{
	struct shim_intr in;

	shim_intr_begin_mode(&in, SHIM_INTR_LOOK);
	return shim_thread_wait_intr(h, q, kind, obj, deadline, data, &in);
}

int shim_thread_wait_cp(struct green_hub *h, struct green__waitq *q,
                        enum green_wait_kind kind, const void *obj,
                        int64_t deadline, void *data)
{
	struct shim_intr in;

	shim_intr_begin_mode(&in, SHIM_INTR_LOOK);
	in.cancel_point = true;
	return shim_thread_wait_intr(h, q, kind, obj, deadline, data, &in);
}

int shim_poll_nap(int64_t *delay, int64_t deadline)
{
	int64_t until = green_now() + *delay;

	if (deadline_passed(deadline))
		return -1;
	if (deadline > 0 && deadline < until)
		until = deadline;
	green_sleep(until);
	if (*delay < POLL_MAX)
		*delay *= 2;
	return 0;
}

int shim_helper_thread(pthread_t *th, void *(*fn)(void *), void *arg, size_t stack_size,
                       bool detached)
{
	pthread_attr_t attr;
	sigset_t all;
	int rc = pthread_attr_init(&attr);

	if (rc)
		return rc;
	pthread_attr_setstacksize(&attr, stack_size);
	if (detached)
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* No handler of the program's may run there. */
	sigfillset(&all);
	rc = pthread_attr_setsigmask_np(&attr, &all);
	if (rc == 0) {
		shim_passthrough++;
		rc = SHIM_REAL(pthread_create)(th, &attr, fn, arg);
		shim_passthrough--;
	}
	pthread_attr_destroy(&attr);
	return rc;
}
