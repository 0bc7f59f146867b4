/*
 * thread_once.c - pthread_once on glibc's pthread_once_t values, so that a
 * once control is shared alike by green threads and threads that are not;
 * a green caller that finds the routine running elsewhere parks instead
 * of spinning in a futex.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "thread_int.h"


int pthread_once(pthread_once_t *once, void (*init)(void))
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	struct once_frame frame;
	struct gthread *t;
	int v;

	if (!h)
		return SHIM_REAL(pthread_once)(once, init);
	for (;;) {
		v = __atomic_load_n(once, __ATOMIC_ACQUIRE);
		if (v & ONCE_DONE)
			return 0;
		if (v == 0)
			break;
		/* Another green thread runs it (it cannot be us: that is
		 * a deadlock in glibc too). */
		shim_thread_wait(h, &shim_once_waiters, GREEN_WAIT_OTHER, once, GREEN_FOREVER, NULL);
	}
	__atomic_store_n(once, ONCE_RUNNING, __ATOMIC_RELAXED);
	t = h->current->local;
	if (t) {
		frame.once = once;
		frame.prev = t->once_top;
		t->once_top = &frame;
	}
	init();
	if (t)
		t->once_top = frame.prev;
	__atomic_store_n(once, ONCE_DONE, __ATOMIC_RELEASE);
	green__waitq_wake_all(&shim_once_waiters, 0);
	return 0;
}

