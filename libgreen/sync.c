/*
 * sync.c - events, locks, semaphores, condition variables and bounded queues
 * for the greenlets of one hub.  Each is a caller-owned struct whose zero
 * bytes are a valid state, so the preload shim can keep one inside a
 * pthread_mutex_t or pthread_cond_t without an init call.
 *
 * Every wait follows the protocol in internal.h: link a waiter that lives on
 * the waiting greenlet's stack, green__park(), unlink on failure.  Wakers
 * never hand anything over; a woken greenlet re-checks the object and parks
 * again if someone else got there first.  That is what keeps a waiter that
 * timed out or was killed from swallowing a wake-up meant for the next one:
 * green__waitq_wake_one() passes over waiters that are no longer parked.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

/*
 * The one wait of libgreen's primitives and the shim's: park the current
 * greenlet on q until woken, the deadline passes or it is killed.  The
 * waiter is unlinked whatever the outcome; on success the waker has already
 * done it, and then q is not touched again, because an event may be gone by
 * the time its waiters run.
 */
int green__wait_on(struct green_hub *h, struct green__waitq *q,
                   enum green_wait_kind kind, const void *obj,
                   int64_t deadline, int flags, void *data)
{
	struct green__waiter w = {0};

	w.data = data;
	green__waitq_push(q, &w, h->current);
	if (green__park(h, kind, obj, deadline, flags) < 0) {
		int err = errno;

		green__waitq_remove(&w);
		errno = err;
		return -1;
	}
	green__waitq_remove(&w);
	return 0;
}

/* ---- events ----------------------------------------------------------------- */

void green_event_set(green_event_t *ev)
{
	ev->_set = true;
	green__waitq_wake_all(&ev->_waiters, 0);
}

void green_event_clear(green_event_t *ev)
{
	ev->_set = false;
}

bool green_event_is_set(const green_event_t *ev)
{
	return ev->_set;
}

/*
 * A waiter woken by green_event_set() returns 0 without looking at the event
 * again, as gevent's Event.wait does: the event may have been cleared (or
 * its memory reused by the greenlet that set it) before the waiter runs.
 */
int green_event_wait(green_event_t *ev, int64_t deadline)
{
	struct green_hub *h;

	if (ev->_set)
		return 0;
	h = green__hub();
	if (!h)
		return -1;
	return green__wait_on(h, &ev->_waiters, GREEN_WAIT_EVENT, ev, deadline, 0,
	                      NULL);
}

/* ---- locks ------------------------------------------------------------------ */

/* Take the lock for the current greenlet, waiting while another holds it.
 * The caller has checked that it does not hold the lock itself. */
static int lock_take(struct green_hub *h, green_lock_t *lock, int64_t deadline,
                     int flags)
{
	while (lock->_owner) {
		if (green__wait_on(h, &lock->_waiters, GREEN_WAIT_LOCK, lock,
		                   deadline, flags, NULL) < 0)
			return -1;
	}
	lock->_owner = h->current;
	return 0;
}

/* Release without checking the owner.  The next waiter is only woken: it
 * takes the lock when it runs, unless another greenlet has taken it by
 * then, in which case it waits again. */
static void lock_drop(green_lock_t *lock)
{
	lock->_owner = NULL;
	green__waitq_wake_one(&lock->_waiters, 0);
}

int green_lock_acquire(green_lock_t *lock, int64_t deadline)
{
	struct green_hub *h = green__hub();

	if (!h)
		return -1;
	if (lock->_owner == h->current) {
		errno = EDEADLK;
		return -1;
	}
	return lock_take(h, lock, deadline, 0);
}

int green_lock_try(green_lock_t *lock)
{
	struct green_hub *h;

	if (lock->_owner) {
		errno = EBUSY;
		return -1;
	}
	h = green__hub();
	if (!h)
		return -1;
	lock->_owner = h->current;
	return 0;
}

int green_lock_release(green_lock_t *lock)
{
	struct green_hub *h = green__hub_peek();

	/* Without a hub this thread has never been a greenlet that could
	 * have taken the lock. */
	if (!h || !lock->_owner || lock->_owner != h->current) {
		errno = EPERM;
		return -1;
	}
	lock_drop(lock);
	return 0;
}

green_t *green_lock_owner(const green_lock_t *lock)
{
	return lock->_owner;
}

/* ---- semaphores ------------------------------------------------------------- */

void green_sem_init(green_sem_t *sem, unsigned int value)
{
	green__waitq_init(&sem->_waiters);
	sem->_value = value;
}

int green_sem_acquire(green_sem_t *sem, int64_t deadline)
{
	struct green_hub *h;

	if (sem->_value == 0) {
		h = green__hub();
		if (!h)
			return -1;
		do {
			if (green__wait_on(h, &sem->_waiters, GREEN_WAIT_SEM, sem,
			                   deadline, 0, NULL) < 0)
				return -1;
		} while (sem->_value == 0);
	}
	sem->_value--;
	return 0;
}

int green_sem_try(green_sem_t *sem)
{
	if (sem->_value == 0) {
		errno = EAGAIN;
		return -1;
	}
	sem->_value--;
	return 0;
}

int green_sem_release(green_sem_t *sem)
{
	if (sem->_value == UINT_MAX) {
		errno = EOVERFLOW;
		return -1;
	}
	sem->_value++;
	green__waitq_wake_one(&sem->_waiters, 0);
	return 0;
}

unsigned int green_sem_value(const green_sem_t *sem)
{
	return sem->_value;
}

/* ---- condition variables ---------------------------------------------------- */

/*
 * The lock is taken back with GREEN__PARK_NOCANCEL, so neither a kill nor an
 * enclosing green_timeout can make this return without it; a kill that
 * arrives meanwhile stays pending for the caller's next wait.  The one
 * exception is a real deadlock, which only the main greenlet can be told
 * about: if the holder of the lock never runs again, the hub fails the
 * wait with EDEADLK and we return without the lock rather than hang.
 */
int green_cond_wait(green_cond_t *cond, green_lock_t *lock, int64_t deadline)
{
	struct green_hub *h = green__hub_peek();
	int rc, err = 0;

	if (!h || !lock->_owner || lock->_owner != h->current) {
		errno = EPERM;
		return -1;
	}
	/* Nothing can switch between dropping the lock and parking, so a
	 * signal sent by whoever takes the lock next cannot be missed. */
	lock_drop(lock);
	rc = green__wait_on(h, &cond->_waiters, GREEN_WAIT_COND, cond, deadline,
	                    0, NULL);
	if (rc < 0)
		err = errno;
	if (lock_take(h, lock, GREEN_FOREVER, GREEN__PARK_NOCANCEL) < 0)
		return -1;
	if (rc < 0)
		errno = err;
	return rc;
}

void green_cond_signal(green_cond_t *cond)
{
	green__waitq_wake_one(&cond->_waiters, 0);
}

void green_cond_broadcast(green_cond_t *cond)
{
	green__waitq_wake_all(&cond->_waiters, 0);
}

/* ---- queues ----------------------------------------------------------------- */

/*
 * A queue without a ring, which is what zero bytes and green_queue_destroy()
 * leave behind, is closed: put and get fail with EPIPE.  A waiter that was
 * woken by a put or get just before the destroy finds the ring gone when it
 * re-checks, so it reads the struct once more: the struct itself (not the
 * ring) must outlive the greenlets that were waiting on it.
 */
int green_queue_init(green_queue_t *q, size_t capacity)
{
	void **ring;

	if (capacity == 0) {
		errno = EINVAL;
		return -1;
	}
	/* calloc checks this too, but the sanitizers abort instead of failing */
	if (capacity > SIZE_MAX / sizeof(*ring)) {
		errno = ENOMEM;
		return -1;
	}
	ring = calloc(capacity, sizeof(*ring));
	if (!ring)
		return -1;
	green__waitq_init(&q->_getters);
	green__waitq_init(&q->_putters);
	q->_ring = ring;
	q->_capacity = capacity;
	q->_head = 0;
	q->_count = 0;
	return 0;
}

void green_queue_destroy(green_queue_t *q)
{
	void **ring = q->_ring;

	q->_ring = NULL;
	q->_capacity = q->_head = q->_count = 0;
	green__waitq_wake_all(&q->_getters, EPIPE);
	green__waitq_wake_all(&q->_putters, EPIPE);
	free(ring);
}

int green_queue_put(green_queue_t *q, void *item, int64_t deadline)
{
	struct green_hub *h = NULL;
	size_t tail;

	for (;;) {
		if (!q->_ring) {
			errno = EPIPE;
			return -1;
		}
		if (q->_count < q->_capacity)
			break;
		if (!h && !(h = green__hub()))
			return -1;
		/* EPIPE from a destroy comes back from here, q untouched. */
		if (green__wait_on(h, &q->_putters, GREEN_WAIT_QUEUE, q, deadline,
		                   0, NULL) < 0)
			return -1;
	}
	tail = q->_head + q->_count;
	if (tail >= q->_capacity)
		tail -= q->_capacity;
	q->_ring[tail] = item;
	q->_count++;
	green__waitq_wake_one(&q->_getters, 0);
	return 0;
}

int green_queue_get(green_queue_t *q, void **item, int64_t deadline)
{
	struct green_hub *h = NULL;

	for (;;) {
		if (!q->_ring) {
			errno = EPIPE;
			return -1;
		}
		if (q->_count > 0)
			break;
		if (!h && !(h = green__hub()))
			return -1;
		if (green__wait_on(h, &q->_getters, GREEN_WAIT_QUEUE, q, deadline,
		                   0, NULL) < 0)
			return -1;
	}
	if (item)
		*item = q->_ring[q->_head];
	q->_ring[q->_head] = NULL;
	if (++q->_head == q->_capacity)
		q->_head = 0;
	q->_count--;
	green__waitq_wake_one(&q->_putters, 0);
	return 0;
}

size_t green_queue_count(const green_queue_t *q)
{
	return q->_count;
}
