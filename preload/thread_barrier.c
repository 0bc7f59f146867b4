/*
 * thread_barrier.c - barriers and spin locks, the two pthread objects that
 * wait in glibc without any call the module could green: a barrier waits
 * in futex(), a spin lock spins on the CPU the holder would need, and on a
 * hub both hang the OS thread (pgbench -j waits on a barrier at start).
 *
 * A barrier made by pthread_barrier_init while the module is active is
 * green (see struct gbarrier): the last arrival wakes the round's waiters
 * through a flag on each waiter's stack, so nobody touches the barrier
 * after its round is over (the serial thread may destroy it at once).  A
 * process-shared barrier, or one made before the module was active, keeps
 * glibc's layout, since other processes may wait on it with glibc's code:
 * glibc's wait then runs on a helper OS thread while the green thread
 * parks, so the hub's other green threads (perhaps the barrier's other
 * parties) go on running.
 *
 * Spin locks keep glibc's layout and its trylock (the lock word's meaning
 * differs between architectures, and a spin lock may be process-shared or
 * shared with threads that are not green).  A lock that is busy is most
 * often held by a green thread of the same hub, which cannot run while we
 * spin: so each failed try yields to the hub's other greenlets, and after
 * SPIN_YIELDS of them the spinner naps as on a process-shared mutex, so
 * that a holder parked for long (in sleep, say) costs no CPU.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "thread_int.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

/* glibc refuses counts from here on (its arrival counter's reset mark). */
#define BARRIER_COUNT_LIMIT (UINT_MAX / 2)
#define SPIN_YIELDS 16

static inline struct gbarrier *gb(pthread_barrier_t *b)
{
	return (struct gbarrier *)(void *)b;
}

static inline bool barrier_green(pthread_barrier_t *b)
{
	return gb(b)->magic == GBARRIER_MAGIC;
}

int pthread_barrier_init(pthread_barrier_t *b, const pthread_barrierattr_t *attr,
                         unsigned int count)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	int pshared = PTHREAD_PROCESS_PRIVATE;
	struct gbarrier *g = gb(b);

	if (attr && pthread_barrierattr_getpshared(attr, &pshared) != 0)
		return EINVAL;
	if (!h || pshared != PTHREAD_PROCESS_PRIVATE)
		return SHIM_REAL(pthread_barrier_init)(b, attr, count);
	if (count == 0 || count >= BARRIER_COUNT_LIMIT)
		return EINVAL;
	memset(b, 0, sizeof(*b));
	g->count = count;
	g->magic = GBARRIER_MAGIC;
	return 0;
}

int pthread_barrier_destroy(pthread_barrier_t *b)
{
	struct gbarrier *g = gb(b);

	if (!barrier_green(b))
		return SHIM_REAL(pthread_barrier_destroy)(b);
	/* glibc would wait for a round in progress to fill up, which
	 * only a program error can leave unfinished: say so instead. */
	if (g->arrived || !green__waitq_empty(&g->waiters))
		return EBUSY;
	g->magic = 0;
	return 0;
}

static int barrier_wait_green(struct green_hub *h, struct gbarrier *g)
{
	struct green__waiter *w;
	bool released = false;
	int saved = errno;

	if (++g->arrived == g->count) {
		g->arrived = 0;
		while ((w = green__waitq_pop(&g->waiters)) != NULL) {
			*(bool *)w->data = true;
			green__wake(w->g, 0);
		}
		return PTHREAD_BARRIER_SERIAL_THREAD;
	}
	/* Only the round's end sets released: a deadlock nap or any other
	 * early return from the wait parks again. */
	while (!released) {
		if (shim_thread_wait(h, &g->waiters, GREEN_WAIT_OTHER, g, GREEN_FOREVER,
		                     &released) < 0 && !released) {
			/* A dying greenlet cannot wait: it leaves the round. */
			g->arrived--;
			errno = saved;
			return EDEADLK;
		}
	}
	errno = saved;
	return 0;
}

/* ---- glibc's barriers, waited for on a helper thread --------------------- */

struct barrier_job {
	pthread_barrier_t *b;
	struct green__remote *remote;
	int rc;
};

static void *barrier_helper(void *arg)
{
	struct barrier_job *job = arg;

	shim_passthrough = 1;
	job->rc = SHIM_REAL(pthread_barrier_wait)(job->b);
	green__remote_post(job->remote, 0);
	return NULL;
}

static int barrier_wait_glibc(struct green_hub *h, pthread_barrier_t *b)
{
	struct barrier_job job = {.b = b};
	pthread_t th;

	if (green__remote_begin(h, &job.remote) < 0)
		goto blocking;
	if (shim_helper_thread(&th, barrier_helper, &job, 128 * 1024, true) != 0) {
		green__remote_end(h, job.remote);
		goto blocking;
	}
	/* Not cancellable: the helper writes into this stack. */
	while (!__atomic_load_n(&job.remote->posted, __ATOMIC_ACQUIRE))
		green__park(h, GREEN_WAIT_OTHER, job.remote, GREEN_FOREVER,
		            GREEN__PARK_NOCANCEL);
	green__remote_end(h, job.remote);
	return job.rc;
blocking:
	SHIM_DEBUG("thread: no helper thread for a process-shared barrier: "
	           "its wait blocks the OS thread");
	return SHIM_REAL(pthread_barrier_wait)(b);
}

int pthread_barrier_wait(pthread_barrier_t *b)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (barrier_green(b)) {
		/* Its other parties are green threads: only a green caller
		 * can wait with them (the hub itself never reaches here but
		 * from a signal handler, where no wait may block). */
		if (!h)
			return EINVAL;
		return barrier_wait_green(h, gb(b));
	}
	if (!h)
		return SHIM_REAL(pthread_barrier_wait)(b);
	return barrier_wait_glibc(h, b);
}

/* ---- spin locks ---------------------------------------------------------- */

int pthread_spin_lock(pthread_spinlock_t *lock)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	int64_t delay = POLL_MIN;
	unsigned int tries = 0;
	int saved, rc;

	if (!h)
		return SHIM_REAL(pthread_spin_lock)(lock);
	saved = errno;
	while ((rc = SHIM_REAL(pthread_spin_trylock)(lock)) == EBUSY) {
		if (++tries <= SPIN_YIELDS)
			green_yield();
		else
			shim_poll_nap(&delay, GREEN_FOREVER);
	}
	errno = saved;
	return rc;
}
