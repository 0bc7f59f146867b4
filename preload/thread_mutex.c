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

enum cond_call { COND_WAIT, COND_TIMEDWAIT, COND_CLOCKWAIT };

/*
 * A process-shared condition is glibc's (other processes wait on it with
 * glibc's code), and glibc's wait would block the hub: a helper OS thread
 * waits in it instead, on a mutex of its own, while the green thread
 * parks.  glibc's condition does not tie its waiters to one mutex.
 */
struct pshared_wait {
	pthread_cond_t *c;
	pthread_mutex_t helper_mutex;
	enum cond_call call;
	clockid_t clock;
	const struct timespec *abs;
	struct green__remote *remote;
	int entered;
	int rc;
};

static void *pshared_waiter(void *arg)
{
	struct pshared_wait *w = arg;
	int rc;

	SHIM_REAL(pthread_mutex_lock)(&w->helper_mutex);
	__atomic_store_n(&w->entered, 1, __ATOMIC_RELEASE);
	if (w->call == COND_WAIT)
		rc = SHIM_REAL(pthread_cond_wait)(w->c, &w->helper_mutex);
	else if (w->call == COND_TIMEDWAIT)
		rc = SHIM_REAL(pthread_cond_timedwait)(w->c, &w->helper_mutex, w->abs);
	else
		rc = SHIM_REAL(pthread_cond_clockwait)(w->c, &w->helper_mutex, w->clock, w->abs);
	SHIM_REAL(pthread_mutex_unlock)(&w->helper_mutex);
	w->rc = rc;
	green__remote_post(w->remote, 0); /* the last touch of w */
	return NULL;
}

/* Start the helper; 0 once it waits in the condition, -1 without one. */
static int pshared_wait_start(struct green_hub *h, struct pshared_wait *w)
{
	int64_t delay = POLL_MIN;
	pthread_t th;

	if (green__remote_begin(h, &w->remote) < 0)
		return -1;
	SHIM_REAL(pthread_mutex_init)(&w->helper_mutex, NULL);
	if (shim_helper_thread(&th, pshared_waiter, w, 128 * 1024, true) != 0) {
		green__remote_end(h, w->remote);
		SHIM_REAL(pthread_mutex_destroy)(&w->helper_mutex);
		return -1;
	}
	/* The helper lets go of its mutex inside glibc's wait, once it is a
	 * waiter of c: only then may the caller's mutex go, or the signal of
	 * its next holder could come too early. */
	while (!__atomic_load_n(&w->entered, __ATOMIC_ACQUIRE) ||
	       SHIM_REAL(pthread_mutex_trylock)(&w->helper_mutex) != 0)
		shim_poll_nap(&delay, GREEN_FOREVER);
	SHIM_REAL(pthread_mutex_unlock)(&w->helper_mutex);
	return 0;
}

/* Park until the helper is done; its answer. */
static int pshared_wait_end(struct green_hub *h, struct pshared_wait *w)
{
	/* The helper may have posted while we napped above, when the hub
	 * could not wake us for it: look before parking.  Not cancellable:
	 * the helper writes into this stack. */
	while (!__atomic_load_n(&w->remote->posted, __ATOMIC_ACQUIRE))
		green__park(h, GREEN_WAIT_COND, w->remote, GREEN_FOREVER, GREEN__PARK_NOCANCEL);
	green__remote_end(h, w->remote);
	SHIM_REAL(pthread_mutex_destroy)(&w->helper_mutex);
	return w->rc;
}

/*
 * Release m entirely (a recursive one too), wait on c, take m back and
 * restore its count.  The waiter is linked (for a process-shared c: the
 * helper waits in glibc's) before m is released, and nothing switches in
 * between, so the signal of whoever takes m next is not missed.
 */
static int cond_wait_green(struct green_hub *h, pthread_cond_t *c, pthread_mutex_t *m,
                           enum cond_call call, clockid_t clock, const struct timespec *abs)
{
	struct gmutex *mx = gm(m);
	struct pshared_wait pw = {.c = c, .call = call, .clock = clock, .abs = abs};
	int64_t deadline = GREEN_FOREVER;
	unsigned int count = 1;
	int saved = errno, rc, lrc;
	bool glibc_m = mutex_glibc(m), glibc_c = cond_pshared(c);

	/* glibc looks at the time first. */
	if (call != COND_WAIT && !ts_valid(abs))
		return EINVAL;
	if (!glibc_m && mutex_checked(mx->kind) && mx->owner != h->current)
		return EPERM;
	shim_cancel_point(); /* with the mutex held, as POSIX says */
	if (glibc_c) {
		if (pshared_wait_start(h, &pw) < 0) {
			SHIM_DEBUG("thread: no helper thread for a process-shared condition: "
			           "its wait blocks the OS thread");
			return call == COND_WAIT        ? SHIM_REAL(pthread_cond_wait)(c, m)
			       : call == COND_TIMEDWAIT ? SHIM_REAL(pthread_cond_timedwait)(c, m, abs)
			                                : SHIM_REAL(pthread_cond_clockwait)(c, m, clock, abs);
		}
	} else if (call != COND_WAIT) {
		deadline = shim_abs_deadline(clock, abs);
	}
	if (glibc_m) {
		rc = SHIM_REAL(pthread_mutex_unlock)(m);
		if (rc) {
			/* Not ours to unlock: the helper must not wait on.  Its
			 * wake-up is spurious for the other waiters, which POSIX
			 * allows. */
			if (glibc_c) {
				SHIM_REAL(pthread_cond_broadcast)(c);
				pshared_wait_end(h, &pw);
			}
			errno = saved;
			return rc;
		}
	} else {
		count = mx->count ? mx->count : 1;
		mutex_release(mx);
	}
	if (glibc_c)
		rc = pshared_wait_end(h, &pw);
	else
		rc = shim_thread_wait_cp(h, &gc(c)->waiters, GREEN_WAIT_COND, c, deadline, NULL) < 0
		             ? errno : 0;
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
	shim_cancel_point(); /* the mutex taken back first, as POSIX says */
	/* A green wait gives ETIMEDOUT or a wake-up (EDEADLK cannot come back
	 * for a thread that can wait); glibc's answers as glibc does. */
	return glibc_c || rc == ETIMEDOUT ? rc : 0;
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

	if (!h)
		return SHIM_REAL(pthread_cond_wait)(c, m);
	return cond_wait_green(h, c, m, COND_WAIT, 0, NULL);
}

int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *abs)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h)
		return SHIM_REAL(pthread_cond_timedwait)(c, m, abs);
	return cond_wait_green(h, c, m, COND_TIMEDWAIT,
	                       (gc(c)->wrefs & COND_MONOTONIC) ? CLOCK_MONOTONIC
	                                                       : CLOCK_REALTIME,
	                       abs);
}

int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock,
                           const struct timespec *abs)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h)
		return SHIM_REAL(pthread_cond_clockwait)(c, m, clock, abs);
	if (!clock_ok(clock))
		return EINVAL;
	return cond_wait_green(h, c, m, COND_CLOCKWAIT, clock, abs);
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

