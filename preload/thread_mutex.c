/*
 * thread_mutex.c - green mutexes and condition variables, laid over glibc's
 * pthread_mutex_t and pthread_cond_t (thread_int.h).  They share a file
 * because a condition wait releases and retakes the mutex's green state
 * itself, recursive count and all.
 *
 * Fairness.  Greenlets are not preempted, so an unlock that only woke the
 * next waiter would let the unlocker take the lock straight back, every
 * time (lock; sleep; unlock; lock ...): the waiter would starve for ever,
 * where real threads merely see an unfair lock.  Mutexes and semaphores
 * therefore hand ownership to the first waiter that is still parked
 * (green__wake() tells us; a waiter that timed out is passed over), which is
 * safe under internal.h's protocol because a waiter woken with 0 always sees
 * its park succeed.  Condition variables and rwlocks wake and let the woken
 * re-check.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "thread_int.h"

#include <errno.h>
#include <limits.h>

static inline struct gmutex *gm(pthread_mutex_t *m)
{
	return (struct gmutex *)(void *)m;
}

/*
 * Mutexes that keep glibc's layout, taken with glibc's trylock: the
 * process-shared (robust ones too: glibc marks them so) and the
 * priority-protected, whose __lock glibc's init sets to the ceiling.  Also
 * catches a destroyed mutex (__kind -1): glibc says EINVAL.
 */
static inline bool mutex_glibc(const pthread_mutex_t *m)
{
	return (m->__data.__kind & (KIND_PSHARED | KIND_PP)) != 0;
}

/* Owner-checked kinds: unlock by another is EPERM. */
static inline bool mutex_checked(int kind)
{
	int type = kind & KIND_TYPE_MASK;

	return type == PTHREAD_MUTEX_RECURSIVE || type == PTHREAD_MUTEX_ERRORCHECK ||
	       (kind & (KIND_ROBUST | KIND_PI));
}

/* Hand the mutex to the first waiter still parked, or leave it free. */
static void mutex_release(struct gmutex *m)
{
	struct green__waiter *w = green__waitq_wake_one(&m->waiters, 0);

	m->owner = w ? w->g : NULL;
	m->count = w ? 1 : 0;
}

static int mutex_lock_green(struct green_hub *h, struct gmutex *m, enum lock_mode mode,
                            clockid_t clock, const struct timespec *abs)
{
	green_t *self = h->current;
	int type = m->kind & KIND_TYPE_MASK;
	int64_t deadline = GREEN_FOREVER;
	int saved;

	if (m->owner == self) {
		if (type == PTHREAD_MUTEX_RECURSIVE) {
			if (m->count == UINT_MAX)
				return EAGAIN;
			m->count++;
			return 0;
		}
		if (type == PTHREAD_MUTEX_ERRORCHECK)
			return mode == LOCK_TRY ? EBUSY : EDEADLK;
		/* A normal mutex deadlocks on itself, as in glibc. */
	}
	if (!m->owner) {
		m->owner = self;
		m->count = 1;
		return 0;
	}
	if (mode == LOCK_TRY)
		return EBUSY;
	if (mode == LOCK_TIMED) {
		if (!ts_valid(abs))
			return EINVAL;
		deadline = shim_abs_deadline(clock, abs);
	}
	saved = errno;
	for (;;) {
		if (shim_thread_wait(h, &m->waiters, GREEN_WAIT_LOCK, m, deadline, NULL) < 0) {
			int err = errno;

			errno = saved;
			return err;
		}
		if (m->owner == self)
			break; /* handed over */
		if (!m->owner) {
			m->owner = self;
			m->count = 1;
			break;
		}
	}
	errno = saved;
	return 0;
}

static int mutex_unlock_green(struct green_hub *h, struct gmutex *m)
{
	if (mutex_checked(m->kind)) {
		if (m->owner != h->current)
			return EPERM;
		if ((m->kind & KIND_TYPE_MASK) == PTHREAD_MUTEX_RECURSIVE && --m->count)
			return 0;
	} else if (!m->owner) {
		return 0;
	}
	mutex_release(m);
	return 0;
}

/* A mutex that keeps glibc's layout: try, nap, try again. */
static int mutex_lock_pshared(pthread_mutex_t *m, enum lock_mode mode, clockid_t clock,
                              const struct timespec *abs)
{
	int64_t deadline = GREEN_FOREVER, delay = POLL_MIN;
	int saved = errno, rc;

	rc = SHIM_REAL(pthread_mutex_trylock)(m);
	if (rc != EBUSY || mode == LOCK_TRY)
		return rc;
	if (mode == LOCK_TIMED) {
		if (!ts_valid(abs))
			return EINVAL;
		deadline = shim_abs_deadline(clock, abs);
	}
	for (;;) {
		if (shim_poll_nap(&delay, deadline) < 0) {
			rc = ETIMEDOUT;
			break;
		}
		rc = SHIM_REAL(pthread_mutex_trylock)(m);
		if (rc != EBUSY)
			break;
	}
	errno = saved;
	return rc;
}

int pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *attr)
{
	/* glibc's init zeroes the mutex and sets __kind: a valid green
	 * mutex, whoever uses it next. */
	return SHIM_REAL(pthread_mutex_init)(m, attr);
}

int pthread_mutex_destroy(pthread_mutex_t *m)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h || mutex_glibc(m))
		return SHIM_REAL(pthread_mutex_destroy)(m);
	if (gm(m)->owner || !green__waitq_empty(&gm(m)->waiters))
		return EBUSY;
	return SHIM_REAL(pthread_mutex_destroy)(m);
}

int pthread_mutex_lock(pthread_mutex_t *m)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h)
		return SHIM_REAL(pthread_mutex_lock)(m);
	if (mutex_glibc(m))
		return mutex_lock_pshared(m, LOCK_WAIT, 0, NULL);
	return mutex_lock_green(h, gm(m), LOCK_WAIT, 0, NULL);
}

int pthread_mutex_trylock(pthread_mutex_t *m)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h || mutex_glibc(m))
		return SHIM_REAL(pthread_mutex_trylock)(m);
	return mutex_lock_green(h, gm(m), LOCK_TRY, 0, NULL);
}

int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abs)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h)
		return SHIM_REAL(pthread_mutex_timedlock)(m, abs);
	if (mutex_glibc(m))
		return mutex_lock_pshared(m, LOCK_TIMED, CLOCK_REALTIME, abs);
	return mutex_lock_green(h, gm(m), LOCK_TIMED, CLOCK_REALTIME, abs);
}

int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clock, const struct timespec *abs)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h)
		return SHIM_REAL(pthread_mutex_clocklock)(m, clock, abs);
	if (!clock_ok(clock))
		return EINVAL;
	if (mutex_glibc(m))
		return mutex_lock_pshared(m, LOCK_TIMED, clock, abs);
	return mutex_lock_green(h, gm(m), LOCK_TIMED, clock, abs);
}

int pthread_mutex_unlock(pthread_mutex_t *m)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h || mutex_glibc(m))
		return SHIM_REAL(pthread_mutex_unlock)(m);
	return mutex_unlock_green(h, gm(m));
}

int pthread_mutex_consistent(pthread_mutex_t *m)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h || mutex_glibc(m))
		return SHIM_REAL(pthread_mutex_consistent)(m);
	/* A green robust mutex is never left inconsistent (an owner that
	 * dies holding it keeps it, like a normal mutex). */
	return EINVAL;
}

/* ---- condition variables ---------------------------------------------------- */

static inline struct gcond *gc(pthread_cond_t *c)
{
	return (struct gcond *)(void *)c;
}

static inline bool cond_pshared(const pthread_cond_t *c)
{
	return (c->__data.__wrefs & COND_SHARED) != 0;
}

/*
 * Release m entirely (a recursive one too), wait on c, take m back and
 * restore its count.  The waiter is linked before m is released and nothing
 * switches in between, so the signal of whoever takes m next is not missed.
 */
static int cond_wait_green(struct green_hub *h, pthread_cond_t *c, pthread_mutex_t *m,
                           bool timed, clockid_t clock, const struct timespec *abs)
{
	struct gmutex *mx = gm(m);
	int64_t deadline = GREEN_FOREVER;
	unsigned int count = 1;
	int saved = errno, rc, lrc;
	bool glibc_m = mutex_glibc(m);

	if (timed) {
		if (!ts_valid(abs))
			return EINVAL;
		deadline = shim_abs_deadline(clock, abs);
	}
	if (glibc_m) {
		rc = SHIM_REAL(pthread_mutex_unlock)(m);
		if (rc)
			return rc;
	} else {
		if (mutex_checked(mx->kind) && mx->owner != h->current)
			return EPERM;
		count = mx->count ? mx->count : 1;
		mutex_release(mx);
	}
	rc = shim_thread_wait(h, &gc(c)->waiters, GREEN_WAIT_COND, c, deadline, NULL) < 0 ? errno : 0;
	if (glibc_m) {
		lrc = mutex_lock_pshared(m, LOCK_WAIT, 0, NULL);
	} else {
		lrc = mutex_lock_green(h, mx, LOCK_WAIT, 0, NULL);
		if (lrc == 0)
			mx->count = count;
	}
	errno = saved;
	if (lrc)
		return lrc;
	/* EDEADLK cannot come back from wait_on for a thread that can wait:
	 * only ETIMEDOUT reaches the caller. */
	return rc == ETIMEDOUT ? ETIMEDOUT : 0;
}

int pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *attr)
{
	/* glibc zeroes it and keeps the clock and pshared bits in __wrefs. */
	return SHIM_REAL(pthread_cond_init)(c, attr);
}

int pthread_cond_destroy(pthread_cond_t *c)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h || cond_pshared(c))
		return SHIM_REAL(pthread_cond_destroy)(c);
	if (!green__waitq_empty(&gc(c)->waiters))
		return EBUSY;
	return 0;
}

int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h || cond_pshared(c))
		return SHIM_REAL(pthread_cond_wait)(c, m);
	return cond_wait_green(h, c, m, false, 0, NULL);
}

int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *abs)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h || cond_pshared(c))
		return SHIM_REAL(pthread_cond_timedwait)(c, m, abs);
	return cond_wait_green(h, c, m, true,
	                       (gc(c)->wrefs & COND_MONOTONIC) ? CLOCK_MONOTONIC
	                                                       : CLOCK_REALTIME,
	                       abs);
}

int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock,
                           const struct timespec *abs)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h || cond_pshared(c))
		return SHIM_REAL(pthread_cond_clockwait)(c, m, clock, abs);
	if (!clock_ok(clock))
		return EINVAL;
	return cond_wait_green(h, c, m, true, clock, abs);
}

/*
 * Signalling is green whenever the condition is private, whoever signals:
 * a greenlet is only ever parked on it by this file, and from a context
 * that is not green (a signal handler while the hub polls) the wake-up is
 * still one the hub will act on.  Without a hub there can be no green
 * waiter on this thread, and glibc's signal on our layout is a no-op.
 */
int pthread_cond_signal(pthread_cond_t *c)
{
	if (!cond_pshared(c) && shim_patched[SHIM_THREAD] && green__hub_peek()) {
		green__waitq_wake_one(&gc(c)->waiters, 0);
		return 0;
	}
	return SHIM_REAL(pthread_cond_signal)(c);
}

int pthread_cond_broadcast(pthread_cond_t *c)
{
	if (!cond_pshared(c) && shim_patched[SHIM_THREAD] && green__hub_peek()) {
		green__waitq_wake_all(&gc(c)->waiters, 0);
		return 0;
	}
	return SHIM_REAL(pthread_cond_broadcast)(c);
}

