/*
 * thread_sem.c - green unnamed semaphores.  A semaphore sem_init made while
 * the module was active is green (a magic word says so, see thread_int.h);
 * any other keeps glibc's layout and is tried and napped on.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "thread_int.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

static inline struct gsem *gs(sem_t *s)
{
	return (struct gsem *)(void *)s;
}

static inline bool sem_green(sem_t *s)
{
	return gs(s)->magic == GSEM_MAGIC;
}

int sem_init(sem_t *s, int pshared, unsigned int value)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	struct gsem *g = gs(s);

	if (!h || pshared)
		return SHIM_REAL(sem_init)(s, pshared, value);
	if (value > SEM_VALUE_MAX) {
		errno = EINVAL;
		return -1;
	}
	memset(s, 0, sizeof(*s));
	g->value = value;
	g->magic = GSEM_MAGIC;
	return 0;
}

int sem_destroy(sem_t *s)
{
	if (sem_green(s))
		return 0;
	return SHIM_REAL(sem_destroy)(s);
}

/*
 * A sem_post from a signal handler may interrupt this very OS thread in
 * the middle of a wait-queue or ready-queue operation, so it only counts,
 * atomically, in the word glibc leaves unused (posted), and asks the hub to
 * apply the count (shim_sig_defer); a waiter takes the count itself too.
 */
static void sem_absorb(struct gsem *g)
{
	unsigned int n;

	if (!__atomic_load_n(&g->posted, __ATOMIC_ACQUIRE))
		return;
	n = __atomic_exchange_n(&g->posted, 0, __ATOMIC_ACQ_REL);
	g->value = n > SEM_VALUE_MAX - g->value ? SEM_VALUE_MAX : g->value + n;
}

static int sem_post_green(struct gsem *g);

static void sem_apply(void *arg)
{
	struct gsem *g = arg;
	unsigned int n;

	if (g->magic != GSEM_MAGIC)
		return; /* destroyed meanwhile */
	n = __atomic_exchange_n(&g->posted, 0, __ATOMIC_ACQ_REL);
	while (n--)
		sem_post_green(g);
}

/* try, or wait until the deadline (GREEN_FOREVER, GREEN_NOW, a deadline).
 * Returns 0 or -1 with errno, like sem_wait: EINTR when a signal handler
 * without SA_RESTART ran; after one with SA_RESTART the wait goes on, as
 * Linux restarts it (signal(7), since 2.6.22). */
static int sem_wait_green(struct green_hub *h, struct gsem *g, bool try, int64_t deadline)
{
	struct shim_intr in;
	int saved = errno;

	sem_absorb(g);
	if (g->value > 0) {
		g->value--;
		return 0;
	}
	if (try) {
		errno = EAGAIN;
		return -1;
	}
	shim_intr_begin(&in, false);
	for (;;) {
		bool handed = false;
		int rc;

		g->nwaiters++;
		rc = shim_thread_wait_intr(h, &g->waiters, GREEN_WAIT_SEM, g, deadline,
		                           &handed, &in);
		g->nwaiters--;
		if (handed)
			break; /* sem_post gave its unit straight to us */
		sem_absorb(g);
		if (g->value > 0) {
			g->value--; /* a unit ready beats the signal, as in the kernel */
			break;
		}
		if (rc < 0) {
			int err = errno;

			shim_cancel_point(); /* the cancel that woke us */
			errno = err;
			return -1;
		}
	}
	errno = saved;
	return 0;
}

/* Not green (process-shared, or made before the module was active). */
static int sem_wait_polled(sem_t *s, bool try, int64_t deadline)
{
	int64_t delay = POLL_MIN;
	int saved = errno;

	for (;;) {
		if (SHIM_REAL(sem_trywait)(s) == 0) {
			errno = saved;
			return 0;
		}
		if (errno != EAGAIN || try)
			return -1;
		if (shim_poll_nap(&delay, deadline) < 0) {
			errno = ETIMEDOUT;
			return -1;
		}
	}
}

static int sem_wait_any(struct green_hub *h, sem_t *s, bool try, int64_t deadline)
{
	if (sem_green(s))
		return sem_wait_green(h, gs(s), try, deadline);
	return sem_wait_polled(s, try, deadline);
}

int sem_wait(sem_t *s)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h)
		return SHIM_REAL(sem_wait)(s);
	return sem_wait_any(h, s, false, GREEN_FOREVER);
}

int sem_trywait(sem_t *s)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h)
		return SHIM_REAL(sem_trywait)(s);
	return sem_wait_any(h, s, true, GREEN_NOW);
}

int sem_timedwait(sem_t *s, const struct timespec *abs)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h)
		return SHIM_REAL(sem_timedwait)(s, abs);
	/* glibc checks the time first, even when the semaphore is free. */
	if (!ts_valid(abs)) {
		errno = EINVAL;
		return -1;
	}
	return sem_wait_any(h, s, false, shim_abs_deadline(CLOCK_REALTIME, abs));
}

int sem_clockwait(sem_t *s, clockid_t clock, const struct timespec *abs)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h)
		return SHIM_REAL(sem_clockwait)(s, clock, abs);
	if (!clock_ok(clock) || !ts_valid(abs)) {
		errno = EINVAL;
		return -1;
	}
	return sem_wait_any(h, s, false, shim_abs_deadline(clock, abs));
}

/*
 * The layout decides, not the caller: sem_post is async-signal-safe and
 * programs post from signal handlers, which may run while the hub polls.
 * The unit goes straight to the first parked waiter (see the top).
 */
static int sem_post_green(struct gsem *g)
{
	struct green__waiter *w;

	if (green__hub_peek() && (w = green__waitq_wake_one(&g->waiters, 0)) != NULL) {
		*(bool *)w->data = true;
		return 0;
	}
	if (g->value >= SEM_VALUE_MAX) {
		errno = EOVERFLOW;
		return -1;
	}
	g->value++;
	return 0;
}

int sem_post(sem_t *s)
{
	struct gsem *g = gs(s);

	if (!sem_green(s))
		return SHIM_REAL(sem_post)(s);
	if (shim_in_handler()) {
		if (__atomic_fetch_add(&g->posted, 1, __ATOMIC_ACQ_REL) == 0)
			(void)shim_sig_defer(sem_apply, g); /* else a waiter absorbs it */
		return 0;
	}
	return sem_post_green(g);
}

int sem_getvalue(sem_t *restrict s, int *restrict value)
{
	if (!sem_green(s))
		return SHIM_REAL(sem_getvalue)(s, value);
	*value = (int)(gs(s)->value + __atomic_load_n(&gs(s)->posted, __ATOMIC_ACQUIRE));
	return 0;
}

