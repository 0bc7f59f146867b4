/*
 * thread_rwlock.c - green rwlocks, laid over glibc's pthread_rwlock_t
 * (thread_int.h), keeping glibc's preference of readers or writers; a
 * process-shared one keeps glibc's layout and is tried and napped on.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "thread_int.h"

#include <errno.h>
#include <limits.h>

static inline struct grwlock *grw(pthread_rwlock_t *rw)
{
	return (struct grwlock *)(void *)rw;
}

static inline bool rw_pshared(pthread_rwlock_t *rw)
{
	return grw(rw)->shared != 0;
}

/* Only PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP makes glibc keep new
 * readers out while a writer waits (PREFER_WRITER_NP is ignored). */
static inline bool rw_prefers_writers(const struct grwlock *l)
{
	return l->flags == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP;
}

static bool rw_read_ok(const struct grwlock *l)
{
	return !l->writer && !(rw_prefers_writers(l) && l->writers_waiting);
}

static int rw_lock_green(struct green_hub *h, struct grwlock *l, bool write,
                         enum lock_mode mode, clockid_t clock, const struct timespec *abs)
{
	green_t *self = h->current;
	int64_t deadline = GREEN_FOREVER;
	int saved = errno, rc = 0;

	/* glibc checks the time before anything else. */
	if (mode == LOCK_TIMED) {
		if (!clock_ok(clock) || !ts_valid(abs))
			return EINVAL;
	}
	if (l->writer == self)
		return mode == LOCK_TRY ? EBUSY : EDEADLK;
	if (write ? !l->writer && !l->readers : rw_read_ok(l))
		goto take;
	if (mode == LOCK_TRY)
		return EBUSY;
	if (mode == LOCK_TIMED)
		deadline = shim_abs_deadline(clock, abs);
	for (;;) {
		if (write) {
			l->writers_waiting++;
			rc = shim_thread_wait(h, &l->writers_q, GREEN_WAIT_LOCK, l, deadline, NULL);
			l->writers_waiting--;
			if (rc < 0) {
				rc = errno;
				/* Readers kept out only for our sake may go now. */
				if (!l->writer && rw_prefers_writers(l) && !l->writers_waiting)
					green__waitq_wake_all(&l->readers_q, 0);
				break;
			}
			if (!l->writer && !l->readers)
				goto take;
		} else {
			if (shim_thread_wait(h, &l->readers_q, GREEN_WAIT_LOCK, l, deadline, NULL) < 0) {
				rc = errno;
				break;
			}
			if (rw_read_ok(l))
				goto take;
		}
	}
	errno = saved;
	return rc;
take:
	if (write) {
		l->writer = self;
	} else {
		if (l->readers == UINT_MAX) {
			errno = saved;
			return EAGAIN;
		}
		l->readers++;
	}
	errno = saved;
	return 0;
}

static int rw_unlock_green(struct green_hub *h, struct grwlock *l)
{
	if (l->writer == h->current) {
		l->writer = NULL;
		if (rw_prefers_writers(l) && green__waitq_wake_one(&l->writers_q, 0))
			return 0;
		if (green__waitq_wake_all(&l->readers_q, 0) == 0)
			green__waitq_wake_one(&l->writers_q, 0);
		return 0;
	}
	if (l->writer || !l->readers)
		return EPERM;
	if (--l->readers == 0)
		green__waitq_wake_one(&l->writers_q, 0);
	return 0;
}

/* Process-shared: glibc's layout, tried and napped on. */
static int rw_lock_pshared(pthread_rwlock_t *rw, bool write, enum lock_mode mode,
                           clockid_t clock, const struct timespec *abs)
{
	int64_t deadline = GREEN_FOREVER, delay = POLL_MIN;
	int saved = errno, rc;

	if (mode == LOCK_TIMED && (!clock_ok(clock) || !ts_valid(abs)))
		return EINVAL;
	for (;;) {
		rc = write ? SHIM_REAL(pthread_rwlock_trywrlock)(rw)
		           : SHIM_REAL(pthread_rwlock_tryrdlock)(rw);
		if (rc != EBUSY || mode == LOCK_TRY)
			break;
		if (mode == LOCK_TIMED && deadline == GREEN_FOREVER)
			deadline = shim_abs_deadline(clock, abs);
		if (shim_poll_nap(&delay, deadline) < 0) {
			rc = ETIMEDOUT;
			break;
		}
	}
	errno = saved;
	return rc;
}

int pthread_rwlock_init(pthread_rwlock_t *rw, const pthread_rwlockattr_t *attr)
{
	/* glibc zeroes it and sets __flags and __shared. */
	return SHIM_REAL(pthread_rwlock_init)(rw, attr);
}

int pthread_rwlock_destroy(pthread_rwlock_t *rw)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h || rw_pshared(rw))
		return SHIM_REAL(pthread_rwlock_destroy)(rw);
	return 0; /* as glibc: nothing to release */
}

static int rw_lock(pthread_rwlock_t *rw, bool write, enum lock_mode mode,
                   clockid_t clock, const struct timespec *abs)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h)
		return -1;
	if (rw_pshared(rw))
		return rw_lock_pshared(rw, write, mode, clock, abs);
	return rw_lock_green(h, grw(rw), write, mode, clock, abs);
}

/* Each wrapper: rw_lock, or libc when the call is not greened (-1). */
#define RW_CALL(real_call, ...)                                                 \
	do {                                                                   \
		int rc_ = rw_lock(__VA_ARGS__);                                \
		return rc_ >= 0 ? rc_ : (real_call);                           \
	} while (0)

int pthread_rwlock_rdlock(pthread_rwlock_t *rw)
{
	RW_CALL(SHIM_REAL(pthread_rwlock_rdlock)(rw), rw, false, LOCK_WAIT, 0, NULL);
}

int pthread_rwlock_tryrdlock(pthread_rwlock_t *rw)
{
	RW_CALL(SHIM_REAL(pthread_rwlock_tryrdlock)(rw), rw, false, LOCK_TRY, 0, NULL);
}

int pthread_rwlock_timedrdlock(pthread_rwlock_t *rw, const struct timespec *abs)
{
	RW_CALL(SHIM_REAL(pthread_rwlock_timedrdlock)(rw, abs), rw, false, LOCK_TIMED,
	        CLOCK_REALTIME, abs);
}

int pthread_rwlock_clockrdlock(pthread_rwlock_t *rw, clockid_t clock,
                               const struct timespec *abs)
{
	RW_CALL(SHIM_REAL(pthread_rwlock_clockrdlock)(rw, clock, abs), rw, false,
	        LOCK_TIMED, clock, abs);
}

int pthread_rwlock_wrlock(pthread_rwlock_t *rw)
{
	RW_CALL(SHIM_REAL(pthread_rwlock_wrlock)(rw), rw, true, LOCK_WAIT, 0, NULL);
}

int pthread_rwlock_trywrlock(pthread_rwlock_t *rw)
{
	RW_CALL(SHIM_REAL(pthread_rwlock_trywrlock)(rw), rw, true, LOCK_TRY, 0, NULL);
}

int pthread_rwlock_timedwrlock(pthread_rwlock_t *rw, const struct timespec *abs)
{
	RW_CALL(SHIM_REAL(pthread_rwlock_timedwrlock)(rw, abs), rw, true, LOCK_TIMED,
	        CLOCK_REALTIME, abs);
}

int pthread_rwlock_clockwrlock(pthread_rwlock_t *rw, clockid_t clock,
                               const struct timespec *abs)
{
	RW_CALL(SHIM_REAL(pthread_rwlock_clockwrlock)(rw, clock, abs), rw, true,
	        LOCK_TIMED, clock, abs);
}

int pthread_rwlock_unlock(pthread_rwlock_t *rw)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h || rw_pshared(rw))
		return SHIM_REAL(pthread_rwlock_unlock)(rw);
	return rw_unlock_green(h, grw(rw));
}

