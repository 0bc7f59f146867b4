/*
 * thread.c - the "thread" module: an unmodified program's threads become
 * greenlets of the hub of the OS thread that creates them, and its mutexes,
 * condition variables, rwlocks, semaphores, once controls and keys become
 * green waits, as gevent's monkey.patch_thread() does for Python.  This
 * file holds the threads themselves (create, exit, join, detach, self,
 * names, attributes, fork); each kind of object has a file of its own
 * (thread_int.h says which), and the module-wide rules are here.
 *
 * Who is green.  A call is greened when the thread module is patched, the
 * OS thread is not one of the shim's own and the running greenlet is not the
 * hub (shim_hub_for).  Queries that never block (pthread_self, get/setspecific)
 * only look at the hub this thread already has and never create one.
 *
 * Stacks.  A thread gets the stack size its attributes name
 * (pthread_attr_setstacksize); without one it gets GREEN_STACK_SIZE when that
 * is set, and glibc's own default otherwise (RLIMIT_STACK, 8 MiB on Debian):
 * programs size their thread stacks for it (big local arrays), and the
 * stacks are MAP_NORESERVE, so only the pages a thread touches cost memory.
 * A stack the program supplies (pthread_attr_setstack) is not used, only
 * its size.
 *
 * pthread_exit cannot unwind through the switch into the greenlet, so it
 * unwinds only down to the greenlet's own entry frame: a forced unwind
 * (_Unwind_ForcedUnwind, as glibc does) runs C++ destructors and the
 * cleanup handlers of code built with -fexceptions, then a longjmp to the
 * entry frame finishes the thread as if its start routine had returned
 * (key destructors, wake the joiner).  Before that, the cleanup handlers
 * that plain C code registers with pthread_cleanup_push, which each green
 * thread keeps for itself, run newest first (thread_cancel.c).
 *
 * What is not green: process-shared objects.  Mutexes, rwlocks and
 * semaphores that are process-shared keep glibc's layout and are taken with
 * their try variant, the green thread sleeping (50 us, doubling to 5 ms)
 * between attempts; glibc's wait on a process-shared barrier or condition
 * variable runs on a helper OS thread while the green thread parks.
 * Objects are per hub: sharing one between green threads
 * of different OS threads (a program that has several hubs) is not
 * supported.  Compiler TLS (__thread, thread_local) is per green thread,
 * and so are thread_local destructors (tls.c).
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "thread_int.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

/* Green threads made by pthread_create and not finished, for pthread_exit
 * from the main thread (which waits for them). */
static unsigned long live_threads;
static struct green__waitq exit_waiters;  /* main, in pthread_exit */
static struct green__waitq main_joiners;  /* green threads joining main */
static bool main_exited;
static void *main_result;
/* After fork from a green thread: the one thread left; when it ends the
 * process exits, as when a process's last thread does. */
static struct gthread *fork_survivor;

struct green__waitq shim_once_waiters;

/* ---- green threads: records -------------------------------------------------- */

/* A greenlet pthread_create did not make ended: drop its record. */
static void lazy_done(green_t *g, void *arg)
{
	struct gthread *t = arg;

	shim_tsd_run_destructors(t);
	shim_sig_thread_fini(&t->sig);
	if (g->local == t)
		g->local = NULL;
	shim_thread_release(t);
}

struct gthread *shim_thread_of(green_t *g)
{
	struct gthread *t = g->local;

	if (t || g->is_main || g->is_hub)
		return t;
	t = shim_thread_alloc();
	if (!t)
		return NULL;
	t->g = g;
	t->lazy = true;
	t->detached = true;
	snprintf(t->name, sizeof(t->name), "%s", green_name(g));
	if (green_link(g, lazy_done, t) < 0) {
		shim_thread_release(t);
		return NULL;
	}
	g->local = t;
	shim_sig_thread_init(&t->sig, g);
	return t;
}

/* ---- create, exit, join -------------------------------------------------------- */

/* The stack of a thread whose attributes name no size (see the top). */
static size_t default_stack_size(void)
{
	static size_t cached;
	size_t size = __atomic_load_n(&cached, __ATOMIC_RELAXED);

	if (!size) {
		const char *env = getenv("GREEN_STACK_SIZE");
		pthread_attr_t attr;

		if (!env || green__parse_size(env, &size) < 0 || size < GREEN_STACK_MIN) {
			size = (size_t)8 << 20;
			if (pthread_getattr_default_np(&attr) == 0) {
				if (pthread_attr_getstacksize(&attr, &size) != 0 ||
				    size < GREEN_STACK_MIN)
					size = (size_t)8 << 20;
				pthread_attr_destroy(&attr);
			}
		}
		__atomic_store_n(&cached, size, __ATOMIC_RELAXED);
	}
	return size;
}

/* glibc's default, which pthread_attr_getstacksize reports for an attr
 * whose size was never set. */
static size_t glibc_stack_size(void)
{
	static size_t cached;
	size_t size = __atomic_load_n(&cached, __ATOMIC_RELAXED);
	pthread_attr_t attr;

	if (!size) {
		size = 1;
		if (pthread_getattr_default_np(&attr) == 0) {
			if (pthread_attr_getstacksize(&attr, &size) != 0)
				size = 1;
			pthread_attr_destroy(&attr);
		}
		__atomic_store_n(&cached, size, __ATOMIC_RELAXED);
	}
	return size;
}

/*
 * Whether the kernel would map a stack of this size without MAP_NORESERVE,
 * which glibc's stacks do not have and libgreen's do: under the default
 * overcommit policy (heuristic) a mapping larger than all memory and swap
 * is refused, and glibc's pthread_create then fails with EAGAIN.  The
 * policy is read once; under "always" (1) and "strict" (2) the size is left
 * to the kernel's own mmap.
 */
static bool stack_would_map(size_t size)
{
	static int policy = -1;
	struct sysinfo si;
	int p = __atomic_load_n(&policy, __ATOMIC_RELAXED);

	if (p < 0) {
		FILE *f = fopen("/proc/sys/vm/overcommit_memory", "re");

		if (!f || fscanf(f, "%d", &p) != 1)
			p = 0;
		if (f)
			fclose(f);
		__atomic_store_n(&policy, p, __ATOMIC_RELAXED);
	}
	if (p != 0 || sysinfo(&si) != 0)
		return true;
	return size / si.mem_unit <= (uint64_t)si.totalram + si.totalswap;
}

/* A new thread's name is its creator's, as a cloned task inherits comm. */
static void creator_name(green_t *self, char name[16])
{
	struct gthread *t = self->local;

	name[0] = '\0';
	if (t) {
		memcpy(name, t->name, 16);
	} else if (self->is_main) {
		if (SHIM_REAL(pthread_getname_np)(SHIM_REAL(pthread_self)(), name, 16) != 0)
			name[0] = '\0';
	}
	name[15] = '\0';
}

static void thread_finish(struct gthread *t);

static void *thread_main(void *arg)
{
	struct gthread *t = arg;
	void *result;

	/* A real frame address, even under ASan's fake stacks. */
	t->frame = __builtin_frame_address(0);
	if (setjmp(t->exit_jb) == 0)
		t->result = t->start(t->arg);
	result = t->result;
	thread_finish(t); /* may free t */
	return result;
}

/* Everything a thread does after its start routine, whichever way it ended. */
static void thread_finish(struct gthread *t)
{
	green_t *g = t->g;
	struct once_frame *f;

	/* A pthread_once whose routine called pthread_exit: as glibc's
	 * cleanup does, let another caller run it. */
	for (f = t->once_top; f; f = f->prev)
		__atomic_store_n(f->once, 0, __ATOMIC_RELEASE);
	if (t->once_top)
		green__waitq_wake_all(&shim_once_waiters, 0);
	t->once_top = NULL;
	shim_tls_run_dtors(t);
	shim_tsd_run_destructors(t);
	shim_tls_thread_exit(t);
	shim_sig_thread_fini(&t->sig);
	if (t == fork_survivor)
		exit(0); /* the last thread of a forked child */
	t->exited = true;
	live_threads--;
	green__waitq_wake_all(&exit_waiters, 0);
	if (t->detached) {
		g->local = NULL;
		shim_thread_release(t);
		green_release(g); /* the greenlet's own life reference remains */
	}
}

int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                   void *(*start)(void *), void *arg)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	green_attr_t ga = {0};
	struct gthread *t;
	green_t *g;
	int detach = PTHREAD_CREATE_JOINABLE, saved;

	/* A module that waits with futex system calls of its own, loaded
	 * after start, gets OS threads (rawsys.c). */
	if (!h || shim_rawsys_native_caller(__builtin_return_address(0)))
		return SHIM_REAL(pthread_create)(thread, attr, start, arg);
	/* The answer is the return value, as glibc's: errno stays the
	 * caller's whatever happens below. */
	saved = errno;
	ga.stack_size = default_stack_size();
	if (attr) {
		size_t size;

		if (pthread_attr_getstacksize(attr, &size) == 0 &&
		    size != glibc_stack_size() && size >= GREEN_STACK_MIN)
			ga.stack_size = size;
		if (pthread_attr_getdetachstate(attr, &detach) != 0)
			detach = PTHREAD_CREATE_JOINABLE;
	}
	if (!stack_would_map(ga.stack_size)) {
		errno = saved;
		return EAGAIN;
	}
	shim_tls_modules_changed();
	t = shim_thread_alloc();
	if (!t) {
		errno = saved;
		return EAGAIN;
	}
	if (shim_tls_thread_init(t) < 0) {
		shim_thread_release(t);
		errno = saved;
		return EAGAIN;
	}
	t->start = start;
	t->arg = arg;
	t->detached = detach == PTHREAD_CREATE_DETACHED;
	creator_name(h->current, t->name);
	/* ga.name stays NULL: dumps say "greenlet-ID" until pthread_setname_np. */
	g = green_spawn(thread_main, t, &ga);
	if (!g) {
		shim_thread_release(t);
		errno = saved;
		return EAGAIN; /* glibc's answer to a stack it cannot map */
	}
	t->g = g;
	g->local = t;
	shim_sig_thread_init(&t->sig, g); /* the creator's mask */
	live_threads++;
	*thread = (pthread_t)t;
	SHIM_DEBUG("thread: pthread_create -> greenlet %llu (stack %zu)",
	           (unsigned long long)g->id, ga.stack_size);
	errno = saved;
	return 0;
}

static _Unwind_Reason_Code exit_stop(int version, _Unwind_Action actions,
                                     _Unwind_Exception_Class cls,
                                     struct _Unwind_Exception *exc,
                                     struct _Unwind_Context *ctx, void *param)
{
	struct gthread *t = param;

	/* Every frame below thread_main has its CFA at or below thread_main's
	 * frame address; thread_main's own is above. */
	if ((actions & _UA_END_OF_STACK) ||
	    _Unwind_GetCFA(ctx) > (_Unwind_Word)(uintptr_t)t->frame)
		longjmp(t->exit_jb, 1);
	return _URC_NO_REASON;
}

static void exit_cleanup(_Unwind_Reason_Code reason, struct _Unwind_Exception *exc)
{
	/* Only reached if a C++ catch (...) swallowed the exit: glibc too
	 * dies then. */
	static const char msg[] = "libgreen-preload: FATAL: pthread_exit's unwind not rethrown\n";

	syscall(SYS_write, 2, msg, sizeof(msg) - 1);
	abort();
}

/* The main thread leaves: the process goes on until the others are done,
 * then exits with 0, as when a process's last thread exits. */
static void __attribute__((noreturn)) main_exit(struct green_hub *h, void *retval)
{
	main_result = retval;
	main_exited = true;
	green__waitq_wake_all(&main_joiners, 0);
	shim_tsd_run_main_destructors();
	while (live_threads > 0)
		shim_thread_wait(h, &exit_waiters, GREEN_WAIT_JOIN, NULL, GREEN_FOREVER, NULL);
	exit(0);
}

void pthread_exit(void *retval)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	struct gthread *t;

	if (!h)
		SHIM_REAL(pthread_exit)(retval);
	if (h->current->is_main)
		main_exit(h, retval);
	t = h->current->local;
	if (!t || t->lazy) {
		/* A greenlet the program did not create as a thread (one of
		 * libgreen's own): there is no thread to end. */
		shim_log("pthread_exit from greenlet %llu, which is not a thread",
		         (unsigned long long)h->current->id);
		abort();
	}
	t->result = retval;
	shim_thread_run_cleanups(t); /* C code's pthread_cleanup_push */
	if (!t->unwinding) {
		t->unwinding = true;
		memset(&t->exc, 0, sizeof(t->exc));
		t->exc.exception_class = THREAD_MAGIC;
		t->exc.exception_cleanup = exit_cleanup;
		_Unwind_ForcedUnwind(&t->exc, exit_stop, t);
	}
	/* No unwinder, or it failed (a frame without unwind tables): skip
	 * the frames' cleanups but still end the thread properly. */
	longjmp(t->exit_jb, 1);
}

/* Join a green thread; deadline GREEN_FOREVER, GREEN_NOW (tryjoin) or a
 * deadline from abs on clock (validated only if we have to wait). */
static int join_green(struct green_hub *h, struct gthread *t, void **ret,
                      int64_t deadline, clockid_t clock, const struct timespec *abs)
{
	int saved = errno;
	green_t *g = t->g;

	if (t->detached)
		return EINVAL;
	if (g == h->current)
		return EDEADLK;
	if (t->joining)
		return EINVAL;
	if (g->state != GREEN_DEAD) {
		if (deadline == GREEN_NOW)
			return EBUSY;
		if (abs) {
			if (!ts_valid(abs))
				return EINVAL;
			deadline = shim_abs_deadline(clock, abs);
		}
	}
	t->joining = true;
	while (g->state != GREEN_DEAD) {
		int rc;

		/* A cancellation point: acted on with the join undone. */
		if (shim_cancel_requested()) {
			t->joining = false;
			shim_cancel_point();
		}
		rc = shim_thread_wait_cp(h, &g->joiners, GREEN_WAIT_JOIN, g, deadline, NULL);
		if (rc < 0) {
			int err = errno;

			t->joining = false;
			errno = saved;
			return err;
		}
	}
	errno = saved;
	if (ret)
		*ret = t->result;
	shim_thread_release(t);
	green_release(g);
	return 0;
}

/* A green thread joins the main thread of its hub: wait for its
 * pthread_exit (there is no other way for it to end and the process to go
 * on). */
static int join_main(struct green_hub *h, void **ret, int64_t deadline,
                     clockid_t clock, const struct timespec *abs)
{
	int saved = errno;

	if (!main_exited) {
		if (deadline == GREEN_NOW)
			return EBUSY;
		if (abs) {
			if (!ts_valid(abs))
				return EINVAL;
			deadline = shim_abs_deadline(clock, abs);
		}
	}
	while (!main_exited) {
		if (shim_thread_wait(h, &main_joiners, GREEN_WAIT_JOIN, &h->main, deadline, NULL) < 0) {
			int err = errno;

			errno = saved;
			return err;
		}
	}
	errno = saved;
	if (ret)
		*ret = main_result;
	return 0;
}

/*
 * Join th if it is a green thread or, for a green caller, the main thread of
 * its hub; -1 if it is glibc's to join.  deadline is GREEN_FOREVER,
 * GREEN_NOW (tryjoin) or comes from abs on clock.
 */
static int join_any(pthread_t th, void **ret, int64_t deadline, clockid_t clock,
                    const struct timespec *abs)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	struct gthread *t;
	int rc = shim_thread_find(th, &t);

	if (rc)
		return rc;
	if (!t && !(h && !h->current->is_main &&
	            pthread_equal(th, SHIM_REAL(pthread_self)())))
		return -1;
	/* Only a green caller can wait for a green thread. */
	if (!h)
		return EINVAL;
	if (abs && !clock_ok(clock))
		return EINVAL;
	if (t)
		return join_green(h, t, ret, deadline, clock, abs);
	return join_main(h, ret, deadline, clock, abs);
}

/* Each join: join_any, or glibc's when th is glibc's (-1). */
#define JOIN_CALL(real_call, ...)                                              \
	do {                                                                   \
		int rc_ = join_any(__VA_ARGS__);                               \
		return rc_ >= 0 ? rc_ : (real_call);                           \
	} while (0)

int pthread_join(pthread_t th, void **ret)
{
	JOIN_CALL(SHIM_REAL(pthread_join)(th, ret), th, ret, GREEN_FOREVER, 0, NULL);
}

int pthread_tryjoin_np(pthread_t th, void **ret)
{
	JOIN_CALL(SHIM_REAL(pthread_tryjoin_np)(th, ret), th, ret, GREEN_NOW, 0, NULL);
}

int pthread_clockjoin_np(pthread_t th, void **ret, clockid_t clock,
                         const struct timespec *abs)
{
	JOIN_CALL(SHIM_REAL(pthread_clockjoin_np)(th, ret, clock, abs), th, ret,
	          GREEN_FOREVER, clock, abs);
}

int pthread_timedjoin_np(pthread_t th, void **ret, const struct timespec *abs)
{
	JOIN_CALL(SHIM_REAL(pthread_timedjoin_np)(th, ret, abs), th, ret,
	          GREEN_FOREVER, CLOCK_REALTIME, abs);
}

int pthread_detach(pthread_t th)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	struct gthread *t;
	int rc = shim_thread_find(th, &t);

	if (rc)
		return rc;
	if (!t)
		return SHIM_REAL(pthread_detach)(th);
	/* Lazy records are detached too: a greenlet the program did not
	 * create is no joinable thread. */
	if (t->detached)
		return EINVAL;
	if (t->exited) {
		green_t *g = t->g;

		/* Its greenlet belongs to a hub: only that hub may free it. */
		if (!h || g->hub != h)
			return EINVAL;
		if (g->local == t)
			g->local = NULL;
		shim_thread_release(t);
		green_release(g);
		return 0;
	}
	t->detached = true;
	return 0;
}

pthread_t pthread_self(void)
{
	green_t *g = green_self();
	struct gthread *t;

	/* The main thread keeps glibc's answer: the same before and after
	 * its hub exists. */
	if (!g || g->is_main || !(t = shim_thread_of(g)))
		return SHIM_REAL(pthread_self)();
	return (pthread_t)t;
}

int pthread_equal(pthread_t a, pthread_t b)
{
	return a == b;
}

int sched_yield(void)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	int saved = errno;

	/* Nothing else on the hub could run: the kernel's turn for the
	 * other OS threads, as natively. */
	if (!h || !green__others_may_run(h))
		return SHIM_REAL(sched_yield)();
	green_yield();
	errno = saved;
	return 0;
}

/* <pthread.h> redirects pthread_yield to sched_yield with an asm label;
 * the old binaries that still call pthread_yield get this. */
int shim_pthread_yield(void) __asm__("pthread_yield");
int shim_pthread_yield(void)
{
	return sched_yield();
}

int pthread_getattr_np(pthread_t th, pthread_attr_t *attr)
{
	struct gthread *t;
	green_t *g;
	int rc = shim_thread_find(th, &t);

	if (rc)
		return rc;
	if (!t)
		return SHIM_REAL(pthread_getattr_np)(th, attr);
	g = t->g;
	rc = pthread_attr_init(attr);
	if (rc)
		return rc;
	pthread_attr_setdetachstate(attr, t->detached ? PTHREAD_CREATE_DETACHED
	                                              : PTHREAD_CREATE_JOINABLE);
	if (g->stack.lo && g->stack.size >= (size_t)PTHREAD_STACK_MIN)
		pthread_attr_setstack(attr, g->stack.lo, g->stack.size);
	pthread_attr_setguardsize(attr, g->stack.kind == GREEN__STACK_GUARDED
	                                    ? (size_t)sysconf(_SC_PAGESIZE) : 0);
	return 0;
}

/*
 * The green thread whose name th asks for, NULL for glibc's, or the error:
 * glibc reads and writes a name in /proc/self/task/TID/comm, which a thread
 * that has finished no longer has (ENOENT).
 */
static int name_target(pthread_t th, struct gthread **t)
{
	int rc = shim_thread_find(th, t);

	if (rc == ESRCH || (*t && (*t)->exited))
		return ENOENT;
	return rc;
}

int pthread_setname_np(pthread_t th, const char *name)
{
	struct gthread *t;
	size_t len = strlen(name);
	int rc;

	/* glibc checks the length first. */
	if (len > 15)
		return ERANGE;
	rc = name_target(th, &t);
	if (rc)
		return rc;
	if (!t)
		return SHIM_REAL(pthread_setname_np)(th, name);
	memcpy(t->name, name, len + 1);
	/* So that greend's dump shows it. */
	memcpy(t->g->name, name, len + 1);
	return 0;
}

int pthread_getname_np(pthread_t th, char *buf, size_t len)
{
	struct gthread *t;
	int rc;

	if (len < 16)
		return ERANGE;
	rc = name_target(th, &t);
	if (rc)
		return rc;
	if (!t)
		return SHIM_REAL(pthread_getname_np)(th, buf, len);
	memcpy(buf, t->name, 16);
	buf[15] = '\0';
	return 0;
}

/* ---- fork -------------------------------------------------------------------------- */

/*
 * In the child of a fork, when the thread module is patched, only the green
 * thread that forked goes on (POSIX).  Every other greenlet is discarded
 * without running again: its watchers stopped, taken off the ready queue,
 * marked dead so that no wake-up (a mutex hand-over, a condition signal)
 * can reach it.  Its struct and stack are kept (leaked): waiters it had
 * linked into the program's mutexes and conditions live on that stack and
 * stay reachable from them.  If the survivor is not the main greenlet, the
 * process exits when it ends, as a process does when its last thread does.
 */
void shim_thread_after_fork(void)
{
	struct green_hub *h = green__hub_peek();
	green_t *self, *g;
	struct gthread *mine;
	uint64_t dropped = 0;

	/* The records' lock, whoever held it, and the records of the green
	 * threads that did not come along (all but the one that forked). */
	if (!shim_patched[SHIM_THREAD] || !h || h->current->is_hub) {
		shim_thread_handles_after_fork(NULL, false);
		return;
	}
	self = h->current;
	for (g = h->run_head; g; g = g->run_next)
		g->in_runq = false;
	h->run_head = h->run_tail = NULL;
	for (g = h->all_head; g; g = g->all_next) {
		if (g == self || g->is_hub || g->state == GREEN_DEAD)
			continue;
		if (ev_is_active(&g->timer)) {
			ev_timer_stop(h->loop, &g->timer);
			green__watch_end(h);
		}
		if (ev_is_active(&g->io)) {
			ev_io_stop(h->loop, &g->io);
			green__watch_end(h);
		}
		green__waitq_remove(&g->fd_waiter);
		g->state = GREEN_DEAD;
		if (!g->is_main) {
			g->refs++; /* never freed: see above */
			dropped++;
		}
	}
	GREEN__STORE(h->alive, GREEN__LOAD(h->alive) - dropped);

	mine = self->local;
	shim_thread_handles_after_fork(mine, true);
	live_threads = mine && !mine->lazy && !mine->exited ? 1 : 0;
	green__waitq_init(&exit_waiters);
	green__waitq_init(&main_joiners);
	green__waitq_init(&shim_once_waiters);
	if (!self->is_main) {
		main_exited = true; /* it never runs again */
		fork_survivor = mine;
	}
}
