/*
 * thread_cancel.c - cancellation of green threads (pthread_cancel,
 * pthread_setcancelstate/type, pthread_testcancel), the cleanup handlers
 * pthread_cleanup_push registers, and where signal.c finds a green
 * thread's record (its mask and pending signals live beside the cancel
 * state, in struct shim_gsig).
 *
 * Deferred cancellation is acted on at the greened cancellation points:
 * every blocking call that takes a shim_intr (read, write, recv, send,
 * accept, connect, poll, select, epoll_wait, sleep, nanosleep, waitpid,
 * sem_wait, sigwait, pause, sigsuspend ...) on entry, and a parked one is
 * woken by the cancel; condition waits and joins look as well.  A woken
 * call acts once it has let go of what it held (select's watchers, a
 * signalfd); one that cannot tell returns -1/EINTR, and the program's
 * next cancellation point acts.  Asynchronous cancellation cannot stop a
 * green thread in the middle of its computation (nothing preempts it): it
 * is acted on at the thread's next wait of any kind.
 *
 * Acting is pthread_exit(PTHREAD_CANCELED).  glibc's pthread_cleanup_push
 * in C code built without -fexceptions registers a buffer with
 * __pthread_register_cancel, whose jump buffer leads back into the push's
 * code: that code runs the handler and calls __pthread_unwind_next, which
 * jumps to the next buffer, and after the last one ends the thread.  glibc
 * keeps these buffers per OS thread; here each green thread has its own,
 * as it has its own for the old _pthread_cleanup_push ABI.  C++ and
 * -fexceptions code runs its handlers as destructors during pthread_exit's
 * unwind (thread.c), after the buffers of C code.  The main thread keeps
 * glibc's buffers: they are not run when it is cancelled.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "thread_int.h"

#include <errno.h>
#include <setjmp.h>

/* The old ABI's buffer (glibc's struct _pthread_cleanup_buffer). */
struct old_cleanup {
	void (*routine)(void *);
	void *arg;
	int canceltype;
	struct old_cleanup *prev;
};

/* glibc's __pthread_unwind_buf_t: a jump buffer, then our links. */
struct unwind_buf {
	struct {
		__jmp_buf jb;
		int mask_was_saved;
	} cancel_jmp_buf[1];
	struct unwind_buf *prev;
	void *unused;
	int canceltype;
};
_Static_assert(sizeof(struct unwind_buf) <= sizeof(__pthread_unwind_buf_t), "unwind buf");

struct shim_gsig *shim_thread_gsig(green_t *g, bool create)
{
	struct gthread *t = create ? shim_thread_of(g) : g->local;

	return t ? &t->sig : NULL;
}

int shim_thread_gsig_find(pthread_t th, struct shim_gsig **out)
{
	struct gthread *t;
	int rc = shim_thread_find(th, &t);

	*out = rc == 0 && t ? &t->sig : NULL;
	return rc;
}

/* The calling green thread, when it is not the main one (which keeps
 * glibc's cleanup buffers). */
static struct gthread *cleanup_owner(void)
{
	green_t *g = green_self();

	if (!g || g->is_main || shim_passthrough)
		return NULL;
	return shim_thread_of(g);
}

/* The record cancellation state lives in: any green thread's. */
static struct shim_gsig *cancel_self(void)
{
	if (!shim_patched[SHIM_THREAD] || shim_passthrough || !green_self())
		return NULL;
	return shim_sig_self();
}

bool shim_cancel_requested(void)
{
	struct shim_gsig *gs = cancel_self();

	return gs && gs->cancel_pending && !gs->cancel_disabled && !gs->cancelling;
}

void shim_cancel_point(void)
{
	struct shim_gsig *gs;

	if (!shim_cancel_requested())
		return;
	gs = cancel_self();
	/* As in glibc: no second cancel while the first one unwinds. */
	gs->cancelling = true;
	gs->cancel_disabled = true;
	SHIM_DEBUG("thread: acting on a cancel");
	pthread_exit(PTHREAD_CANCELED);
}

int pthread_cancel(pthread_t th)
{
	struct shim_gsig *gs = NULL;
	int rc = shim_patched[SHIM_THREAD] ? shim_sig_target(th, &gs) : 0;

	if (rc)
		return rc;
	if (!gs)
		return SHIM_REAL(pthread_cancel)(th);
	if (!gs->st)
		return 0; /* finished, not joined yet: nothing left to cancel */
	gs->cancel_pending = true;
	if (gs == shim_sig_self()) {
		if (gs->cancel_async)
			shim_cancel_point();
		return 0;
	}
	if (!gs->cancel_disabled)
		shim_sig_wake(gs);
	return 0;
}

int pthread_setcancelstate(int state, int *old)
{
	struct shim_gsig *gs = cancel_self();

	if (!gs)
		return SHIM_REAL(pthread_setcancelstate)(state, old);
	if (state != PTHREAD_CANCEL_ENABLE && state != PTHREAD_CANCEL_DISABLE)
		return EINVAL;
	if (old)
		*old = gs->cancel_disabled ? PTHREAD_CANCEL_DISABLE : PTHREAD_CANCEL_ENABLE;
	if (gs->cancelling)
		return 0;
	gs->cancel_disabled = state == PTHREAD_CANCEL_DISABLE;
	if (gs->cancel_async)
		shim_cancel_point();
	return 0;
}

int pthread_setcanceltype(int type, int *old)
{
	struct shim_gsig *gs = cancel_self();

	if (!gs)
		return SHIM_REAL(pthread_setcanceltype)(type, old);
	if (type != PTHREAD_CANCEL_DEFERRED && type != PTHREAD_CANCEL_ASYNCHRONOUS)
		return EINVAL;
	if (old)
		*old = gs->cancel_async ? PTHREAD_CANCEL_ASYNCHRONOUS : PTHREAD_CANCEL_DEFERRED;
	gs->cancel_async = type == PTHREAD_CANCEL_ASYNCHRONOUS;
	if (gs->cancel_async)
		shim_cancel_point();
	return 0;
}

void pthread_testcancel(void)
{
	if (!cancel_self()) {
		SHIM_REAL(pthread_testcancel)();
		return;
	}
	shim_cancel_point();
}

/* ---- cleanup handlers ------------------------------------------------------------ */

void __pthread_register_cancel(__pthread_unwind_buf_t *buf);
void __pthread_unregister_cancel(__pthread_unwind_buf_t *buf);
void __pthread_register_cancel_defer(__pthread_unwind_buf_t *buf);
void __pthread_unregister_cancel_restore(__pthread_unwind_buf_t *buf);
void __pthread_unwind_next(__pthread_unwind_buf_t *buf) __attribute__((noreturn));
void _pthread_cleanup_push(struct _pthread_cleanup_buffer *buf, void (*routine)(void *),
                           void *arg);
void _pthread_cleanup_pop(struct _pthread_cleanup_buffer *buf, int execute);
void _pthread_cleanup_push_defer(struct _pthread_cleanup_buffer *buf,
                                 void (*routine)(void *), void *arg);
void _pthread_cleanup_pop_restore(struct _pthread_cleanup_buffer *buf, int execute);

void __pthread_register_cancel(__pthread_unwind_buf_t *buf)
{
	struct gthread *t = cleanup_owner();
	struct unwind_buf *b = (struct unwind_buf *)(void *)buf;

	if (!t) {
		SHIM_REAL(__pthread_register_cancel)(buf);
		return;
	}
	b->prev = t->sig.cleanup_top;
	t->sig.cleanup_top = b;
}

void __pthread_unregister_cancel(__pthread_unwind_buf_t *buf)
{
	struct gthread *t = cleanup_owner();
	struct unwind_buf *b = (struct unwind_buf *)(void *)buf;

	if (!t) {
		SHIM_REAL(__pthread_unregister_cancel)(buf);
		return;
	}
	t->sig.cleanup_top = b->prev;
}

void __pthread_register_cancel_defer(__pthread_unwind_buf_t *buf)
{
	struct gthread *t = cleanup_owner();
	struct unwind_buf *b = (struct unwind_buf *)(void *)buf;

	if (!t) {
		SHIM_REAL(__pthread_register_cancel_defer)(buf);
		return;
	}
	b->canceltype = t->sig.cancel_async;
	t->sig.cancel_async = false;
	b->prev = t->sig.cleanup_top;
	t->sig.cleanup_top = b;
}

void __pthread_unregister_cancel_restore(__pthread_unwind_buf_t *buf)
{
	struct gthread *t = cleanup_owner();
	struct unwind_buf *b = (struct unwind_buf *)(void *)buf;

	if (!t) {
		SHIM_REAL(__pthread_unregister_cancel_restore)(buf);
		return;
	}
	t->sig.cleanup_top = b->prev;
	t->sig.cancel_async = b->canceltype != 0;
	if (t->sig.cancel_async)
		shim_cancel_point();
}

/* Into a push's code: its buffer is only as big as glibc's jump buffer
 * without the signal mask, which it never saved (so longjmp reads no
 * further); the compiler is not told the size. */
static void __attribute__((noreturn)) jump_to(struct unwind_buf *b)
{
	struct __jmp_buf_tag *env;

	__asm__("" : "=r"(env) : "0"(b->cancel_jmp_buf));
	longjmp(env, 1);
}

/* Jump into the newest buffer's push, whose code runs its handler and
 * comes back here; after the last one the exit goes on. */
void __pthread_unwind_next(__pthread_unwind_buf_t *buf)
{
	struct gthread *t = cleanup_owner();
	struct unwind_buf *next;

	if (!t)
		SHIM_REAL(__pthread_unwind_next)(buf);
	next = t->sig.cleanup_top;
	if (next) {
		t->sig.cleanup_top = next->prev;
		jump_to(next);
	}
	pthread_exit(t->result);
}

void shim_thread_run_cleanups(struct gthread *t)
{
	struct unwind_buf *top;

	while (t->sig.old_cleanup_top) {
		struct old_cleanup *b = t->sig.old_cleanup_top;

		t->sig.old_cleanup_top = b->prev;
		b->routine(b->arg);
	}
	top = t->sig.cleanup_top;
	if (top) {
		t->sig.cleanup_top = top->prev;
		jump_to(top);
	}
}

void _pthread_cleanup_push(struct _pthread_cleanup_buffer *buf, void (*routine)(void *),
                           void *arg)
{
	struct gthread *t = cleanup_owner();
	struct old_cleanup *b = (struct old_cleanup *)(void *)buf;

	if (!t) {
		SHIM_REAL(_pthread_cleanup_push)(buf, routine, arg);
		return;
	}
	b->routine = routine;
	b->arg = arg;
	b->prev = t->sig.old_cleanup_top;
	t->sig.old_cleanup_top = b;
}

void _pthread_cleanup_pop(struct _pthread_cleanup_buffer *buf, int execute)
{
	struct gthread *t = cleanup_owner();
	struct old_cleanup *b = (struct old_cleanup *)(void *)buf;

	if (!t) {
		SHIM_REAL(_pthread_cleanup_pop)(buf, execute);
		return;
	}
	t->sig.old_cleanup_top = b->prev;
	if (execute)
		b->routine(b->arg);
}

void _pthread_cleanup_push_defer(struct _pthread_cleanup_buffer *buf,
                                 void (*routine)(void *), void *arg)
{
	struct gthread *t = cleanup_owner();
	struct old_cleanup *b = (struct old_cleanup *)(void *)buf;

	if (!t) {
		SHIM_REAL(_pthread_cleanup_push_defer)(buf, routine, arg);
		return;
	}
	_pthread_cleanup_push(buf, routine, arg);
	b->canceltype = t->sig.cancel_async;
	t->sig.cancel_async = false;
}

void _pthread_cleanup_pop_restore(struct _pthread_cleanup_buffer *buf, int execute)
{
	struct gthread *t = cleanup_owner();
	struct old_cleanup *b = (struct old_cleanup *)(void *)buf;

	if (!t) {
		SHIM_REAL(_pthread_cleanup_pop_restore)(buf, execute);
		return;
	}
	_pthread_cleanup_pop(buf, execute);
	t->sig.cancel_async = b->canceltype != 0;
	if (t->sig.cancel_async)
		shim_cancel_point();
}
