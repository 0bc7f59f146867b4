/*
 * thread.c - the "thread" module: an unmodified program's threads become
 * greenlets of the hub of the OS thread that creates them, and its mutexes,
 * condition variables, rwlocks, semaphores, once controls and keys become
 * green waits, as gevent's monkey.patch_thread() does for Python.
 *
 * Where green state lives.  The program allocates its pthread_mutex_t,
 * pthread_cond_t, pthread_rwlock_t and sem_t; their sizes are glibc's ABI and
 * the static initialisers fill them with zero bytes (plus a type in
 * __kind/__flags).  The green state is laid over those bytes, keeping the
 * fields glibc's initialisers and *_init functions set (a mutex's __kind, a
 * condition's clock and process-shared bits in __wrefs, an rwlock's __flags
 * and __shared), and all-zero is the unlocked state, so PTHREAD_*_INITIALIZER
 * and glibc's own *_init (which this file calls) give valid green objects.
 * The layouts are pinned by static assertions below.
 *
 * Who is green.  A call is greened when the thread module is patched, the
 * OS thread is not one of the shim's own and the running greenlet is not the
 * hub (shim_hub_for).  Queries that never block (pthread_self, get/setspecific)
 * only look at the hub this thread already has and never create one.
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
 * (key destructors, wake the joiner).  Cleanup handlers that plain C code
 * registers with pthread_cleanup_push live in per-OS-thread state that all
 * greenlets share, and are not run.
 *
 * What is not green: process-shared objects.  Mutexes, rwlocks and
 * semaphores that are process-shared keep glibc's layout and are taken with
 * their try variant, the green thread sleeping (50 us, doubling to 5 ms)
 * between attempts.  A process-shared condition variable goes to libc as is
 * (its mutex must then be process-shared too) and blocks the OS thread
 * while it waits.  Objects are per hub: sharing one between green threads
 * of different OS threads (a program that has several hubs) is not
 * supported.  __thread (compiler TLS) data stays per OS thread.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "shim.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <unwind.h>

#define DEADLOCK_NAP (50 * GREEN_MSEC)
#define POLL_MIN (50 * GREEN_USEC)
#define POLL_MAX (5 * GREEN_MSEC)

/* ---- glibc's layouts, and ours over them --------------------------------- */

/* glibc's __kind bits (nptl/pthreadP.h); the type is the low two bits. */
#define KIND_TYPE_MASK 3
#define KIND_ROBUST 16
#define KIND_PI 32
#define KIND_PSHARED 128

struct gmutex {
	green_t *owner;              /* __lock, __count: NULL = unlocked */
	unsigned int count;          /* __owner: times locked (recursive) */
	unsigned int unused;         /* __nusers */
	int kind;                    /* __kind: as glibc's initialisers set it */
	short spins, elision;        /* __spins, __elision: untouched */
	struct green__waitq waiters; /* __list */
};
_Static_assert(sizeof(struct gmutex) <= sizeof(pthread_mutex_t), "mutex size");
_Static_assert(offsetof(struct gmutex, kind) ==
               offsetof(pthread_mutex_t, __data.__kind), "mutex __kind");

/* glibc's __wrefs bits (nptl/pthreadP.h), set by pthread_cond_init. */
#define COND_SHARED 1u
#define COND_MONOTONIC 2u

struct gcond {
	struct green__waitq waiters; /* __wseq, __g1_start */
	unsigned int unused[5];      /* __g_refs, __g_size, __g1_orig_size */
	unsigned int wrefs;          /* __wrefs: clock and pshared bits only */
	unsigned int signals[2];     /* __g_signals */
};
_Static_assert(sizeof(struct gcond) <= sizeof(pthread_cond_t), "cond size");
_Static_assert(offsetof(struct gcond, wrefs) ==
               offsetof(pthread_cond_t, __data.__wrefs), "cond __wrefs");

struct grwlock {
	struct green__waitq readers_q; /* __readers .. __writers_futex */
	green_t *writer;               /* __pad3, __pad4 */
	unsigned int readers;          /* __cur_writer */
	int shared;                    /* __shared: kept */
	struct green__waitq writers_q; /* __rwelision, __pad1, __pad2 */
	unsigned int flags;            /* __flags: kept (the kind) */
	unsigned int writers_waiting;  /* padding */
};
_Static_assert(sizeof(struct grwlock) <= sizeof(pthread_rwlock_t), "rwlock size");
_Static_assert(offsetof(struct grwlock, shared) ==
               offsetof(pthread_rwlock_t, __data.__shared), "rwlock __shared");
_Static_assert(offsetof(struct grwlock, flags) ==
               offsetof(pthread_rwlock_t, __data.__flags), "rwlock __flags");

/*
 * A green semaphore carries a magic word where glibc keeps its futex flag
 * (0 or 128): sem_t has no static initialiser, so sem_init always says which
 * kind a semaphore is, and a process-shared one (or one initialised while
 * the module was not active) keeps glibc's layout and is polled.
 */
#define GSEM_MAGIC 0x67536d21u
struct gsem {
	unsigned int value;          /* glibc: the low half of its 64-bit word */
	unsigned int nwaiters;       /* glibc: the high half */
	unsigned int magic;          /* glibc: private */
	unsigned int unused;
	struct green__waitq waiters;
};
_Static_assert(sizeof(struct gsem) <= sizeof(sem_t), "sem size");

/* glibc's pthread_once_t states: 0 not run, bit 1 in progress, bit 2 done. */
#define ONCE_RUNNING 1
#define ONCE_DONE 2

/* ---- green threads --------------------------------------------------------- */

#define THREAD_MAGIC 0x6772656e74687264ull /* "grenthrd" */

struct tsd_slot {
	void *value;
	unsigned int seq; /* the key's generation when the value was set */
};

struct once_frame {
	pthread_once_t *once;
	struct once_frame *prev;
};

/*
 * One per green thread, kept in its greenlet's local; a pthread_t of a green
 * thread is a pointer to it (a real pthread_t points to glibc's struct
 * pthread, whose first word points to itself, never our magic).
 */
struct gthread {
	uint64_t magic;
	green_t *g;       /* our handle: dropped when joined, or at exit if detached */
	void *(*start)(void *);
	void *arg;
	void *result;
	bool detached;
	bool joining;     /* a pthread_join is waiting */
	bool exited;      /* finished; only the greenlet's last return follows */
	bool lazy;        /* a greenlet pthread_create did not make */
	bool unwinding;   /* pthread_exit in progress */
	void *frame;      /* thread_main's frame: where an exit's unwind stops */
	jmp_buf exit_jb;
	struct _Unwind_Exception exc;
	struct once_frame *once_top; /* pthread_once calls in progress */
	struct tsd_slot *tsd;
	unsigned int ntsd;
	char name[16];
	struct gthread *next, *prev; /* every record, for fork */
};

static struct gthread *all_threads;
static int all_threads_lock;
/* Green threads made by pthread_create and not finished, for pthread_exit
 * from the main thread (which waits for them). */
static unsigned long live_threads;
static struct green__waitq exit_waiters;  /* main, in pthread_exit */
static struct green__waitq main_joiners;  /* green threads joining main */
static struct green__waitq once_waiters;  /* pthread_once in progress */
static bool main_exited;
static void *main_result;
/* After fork from a green thread: the one thread left; when it ends the
 * process exits, as when a process's last thread does. */
static struct gthread *fork_survivor;

/* ---- small helpers ----------------------------------------------------------- */

/*
 * The greenlet the caller runs as, if it is greened; never creates a hub.
 * shim_passthrough does not count here: it is raised while the shim runs
 * a program's signal handler, and the handler still runs as the green
 * thread it interrupted, whose key values it must see (so must ASan's
 * allocator, which asks pthread_getspecific on every malloc).  A thread
 * that has no hub runs no greenlet; the shim's own threads have none.
 */
static inline green_t *green_self(void)
{
	struct green_hub *h = green__hub_peek();

	if (!h || !shim_patched[SHIM_THREAD] || h->current->is_hub)
		return NULL;
	return h->current;
}

static bool ts_valid(const struct timespec *ts)
{
	return ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000L;
}

static bool clock_ok(clockid_t clock)
{
	return clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC;
}

/*
 * An absolute time on clock (CLOCK_REALTIME or CLOCK_MONOTONIC) as a green
 * deadline (CLOCK_MONOTONIC ns).  A time already past becomes GREEN_NOW,
 * never a negative number (which would mean "no deadline").
 */
static int64_t abs_deadline(clockid_t clock, const struct timespec *abs)
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

static bool deadline_passed(int64_t deadline)
{
	return deadline == GREEN_NOW || (deadline > 0 && green_now() >= deadline);
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
 * Park on q until woken or the deadline.  data goes into the waiter (a
 * waker may hand over through it).  Returns 0 when woken or told to look
 * again (a deadlock nap, a kill), -1 with ETIMEDOUT; -1 with EDEADLK only
 * when the caller cannot wait at all (a dying greenlet).
 */
static int wait_on(struct green_hub *h, struct green__waitq *q,
                   enum green_wait_kind kind, const void *obj,
                   int64_t deadline, void *data)
{
	struct green__waiter w = {0};
	int rc, err;

	w.data = data;
	green__waitq_push(q, &w, h->current);
	rc = green__park(h, kind, obj, deadline, 0);
	err = errno;
	green__waitq_remove(&w);
	if (rc == 0)
		return 0;
	if (err == ETIMEDOUT)
		return errno = ETIMEDOUT, -1;
	if (err == EDEADLK) {
		if (!h->current->is_main || h->current->dying)
			return errno = EDEADLK, -1;
		deadlocked();
	}
	return 0;
}

/* Sleep a little on the hub between two tries of a process-shared object. */
static int poll_nap(int64_t *delay, int64_t deadline)
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

/* ---- green threads: records -------------------------------------------------- */

static void thread_register(struct gthread *t)
{
	green__spin_lock(&all_threads_lock);
	t->prev = NULL;
	t->next = all_threads;
	if (all_threads)
		all_threads->prev = t;
	all_threads = t;
	green__spin_unlock(&all_threads_lock);
}

/*
 * Free a thread's key values.  The array is unhooked first: free() asks
 * for the calling thread's key values (ASan's allocator does, through
 * pthread_getspecific), and when the caller is this very thread they
 * would be read out of the block being freed.
 */
static void tsd_drop(struct gthread *t)
{
	struct tsd_slot *old = t->tsd;

	t->tsd = NULL;
	t->ntsd = 0;
	free(old);
}

static void thread_free(struct gthread *t)
{
	green__spin_lock(&all_threads_lock);
	if (t->prev)
		t->prev->next = t->next;
	else
		all_threads = t->next;
	if (t->next)
		t->next->prev = t->prev;
	green__spin_unlock(&all_threads_lock);
	t->magic = 0;
	tsd_drop(t);
	free(t);
}

static struct gthread *as_thread(pthread_t th)
{
	struct gthread *t = (struct gthread *)th;

	if (!th || t->magic != THREAD_MAGIC)
		return NULL;
	return t;
}

static void run_tsd_destructors(struct gthread *t);

/* A greenlet pthread_create did not make ended: drop its record. */
static void lazy_done(green_t *g, void *arg)
{
	struct gthread *t = arg;

	run_tsd_destructors(t);
	if (g->local == t)
		g->local = NULL;
	thread_free(t);
}

/* The record of a greenlet, made on first need for greenlets the program
 * did not create with pthread_create. */
static struct gthread *thread_of(green_t *g)
{
	struct gthread *t = g->local;

	if (t || g->is_main || g->is_hub)
		return t;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->magic = THREAD_MAGIC;
	t->g = g;
	t->lazy = true;
	t->detached = true;
	snprintf(t->name, sizeof(t->name), "%s", green_name(g));
	if (green_link(g, lazy_done, t) < 0) {
		free(t);
		return NULL;
	}
	g->local = t;
	thread_register(t);
	return t;
}

/* ---- keys -------------------------------------------------------------------- */

/*
 * Keys are glibc's (so the numbering, PTHREAD_KEYS_MAX and the values of
 * threads that are not green stay glibc's); this table adds what green
 * threads need: each key's destructor and a generation, bumped on create and
 * delete, so a value set under a deleted key reads as NULL.
 *
 * Every key is per green thread, also those made before the shim was
 * initialised.  ASan's runtime keeps its record of the current thread in
 * such a key (AsanTSDGet), and its pthread_create interceptor runs before
 * ours and sets that key in the new thread, whose start routine it wraps:
 * so each green thread is an ASan thread of its own, with its green stack
 * as the stack (ASan asks pthread_getattr_np(pthread_self())).  Its
 * allocator reads the key on every malloc and free, so the value must
 * never be read out of memory that is being freed (see tsd_drop).
 */
static struct key_info {
	void (*dtor)(void *);
	unsigned int seq;
	bool used;
	bool early;          /* made before the thread module was set up */
	signed char runtime; /* the sanitizer's: 1, not: -1, not known yet: 0 */
} keys[PTHREAD_KEYS_MAX];

/* Weak: in a build without ASan it is there only when a sanitized program
 * brought the runtime along. */
extern void __asan_init(void) __attribute__((weak));

/*
 * A key of the sanitizer runtime: with ASan in the process, a key made
 * before the thread module was set up (ASan initialises before any
 * instrumented code runs, the shim's own constructor included) whose
 * destructor is in the object that holds ASan.  Looked up the first time
 * it is needed, not when the key is made: that happens in the middle of
 * ASan's initialisation.
 */
static bool runtime_key(unsigned int k)
{
	struct key_info *ki = &keys[k];
	signed char r = __atomic_load_n(&ki->runtime, __ATOMIC_RELAXED);

	if (r == 0) {
		void (*dtor)(void *) = __atomic_load_n(&ki->dtor, __ATOMIC_RELAXED);
		Dl_info mine, asan;

		r = -1;
		if (__asan_init && dtor && __atomic_load_n(&ki->early, __ATOMIC_RELAXED) &&
		    dladdr((void *)dtor, &mine) && dladdr((void *)__asan_init, &asan) &&
		    mine.dli_fbase == asan.dli_fbase)
			r = 1;
		__atomic_store_n(&ki->runtime, r, __ATOMIC_RELAXED);
	}
	return r > 0;
}

/*
 * Ending a green thread's ASan thread.  ASan's key destructor sets its
 * value again for PTHREAD_DESTRUCTOR_ITERATIONS - 1 rounds and in the last
 * one ends the ASan thread (AsanThread::Destroy): marks it finished (so
 * LeakSanitizer no longer scans its stack, which we are about to free),
 * returns its allocator caches and quarantine, and frees its record.  It
 * also ends what it takes for the calling OS thread's own state: disables
 * and unmaps its alternate signal stack, and marks its dynamic TLS record
 * destroyed, after which a second ASan thread ending on the same OS
 * thread crashes.  So the destructor runs on a short-lived OS thread of
 * its own, which has neither to lose, while the green thread's OS thread
 * waits for it: nothing else touches this ASan thread meanwhile, and no
 * fork from this OS thread can catch the helper half-way through ASan's
 * allocator.  If no thread can be had the ASan thread is left as it is,
 * a leak of about 56 KiB.
 */
struct runtime_end {
	pthread_key_t key;
	void (*dtor)(void *);
	void *value;
};

static void *runtime_end_main(void *arg)
{
	struct runtime_end *e = arg;
	void *v = e->value;

	/* glibc's protocol, for this one key. */
	for (int round = 0; v && round < PTHREAD_DESTRUCTOR_ITERATIONS; round++) {
		SHIM_REAL(pthread_setspecific)(e->key, NULL);
		e->dtor(v);
		v = SHIM_REAL(pthread_getspecific)(e->key);
	}
	SHIM_REAL(pthread_setspecific)(e->key, NULL);
	return NULL;
}

static void runtime_end(pthread_key_t key, void (*dtor)(void *), void *value)
{
	struct runtime_end e = {.key = key, .dtor = dtor, .value = value};
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_t th;
	int rc;

	if (pthread_attr_init(&attr) != 0)
		return;
	pthread_attr_setstacksize(&attr, 256 * 1024);
	/* No handler of the program's may run there. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = SHIM_REAL(pthread_create)(&th, &attr, runtime_end_main, &e);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc == 0)
		SHIM_REAL(pthread_join)(th, NULL);
}

int pthread_key_create(pthread_key_t *key, void (*dtor)(void *))
{
	/* Not greened: a key is process-wide, and its destructor is
	 * recorded whoever creates it, so green threads can run it. */
	int rc = SHIM_REAL(pthread_key_create)(key, dtor);

	if (rc == 0 && *key < PTHREAD_KEYS_MAX) {
		struct key_info *k = &keys[*key];

		__atomic_store_n(&k->dtor, dtor, __ATOMIC_RELAXED);
		__atomic_store_n(&k->early, !shim_patched[SHIM_THREAD], __ATOMIC_RELAXED);
		__atomic_store_n(&k->runtime, 0, __ATOMIC_RELAXED);
		__atomic_add_fetch(&k->seq, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&k->used, true, __ATOMIC_RELEASE);
	}
	return rc;
}

int pthread_key_delete(pthread_key_t key)
{
	int rc = SHIM_REAL(pthread_key_delete)(key);

	if (rc == 0 && key < PTHREAD_KEYS_MAX) {
		__atomic_store_n(&keys[key].used, false, __ATOMIC_RELEASE);
		__atomic_add_fetch(&keys[key].seq, 1, __ATOMIC_RELAXED);
	}
	return rc;
}

void *pthread_getspecific(pthread_key_t key)
{
	green_t *g;
	struct gthread *t;

	if (key >= PTHREAD_KEYS_MAX || !(g = green_self()) || g->is_main)
		return SHIM_REAL(pthread_getspecific)(key);
	t = g->local;
	if (!t || key >= t->ntsd)
		return NULL;
	if (t->tsd[key].seq != __atomic_load_n(&keys[key].seq, __ATOMIC_RELAXED))
		return NULL;
	return t->tsd[key].value;
}

int pthread_setspecific(pthread_key_t key, const void *value)
{
	green_t *g;
	struct gthread *t;

	if (!(g = green_self()) || g->is_main)
		return SHIM_REAL(pthread_setspecific)(key, value);
	if (key >= PTHREAD_KEYS_MAX || !__atomic_load_n(&keys[key].used, __ATOMIC_ACQUIRE))
		return EINVAL;
	t = thread_of(g);
	if (!t)
		return ENOMEM;
	if (key >= t->ntsd) {
		unsigned int n = t->ntsd ? t->ntsd : 8;
		struct tsd_slot *grown, *old;

		while (n <= key)
			n *= 2;
		if (n > PTHREAD_KEYS_MAX)
			n = PTHREAD_KEYS_MAX;
		/* Not realloc: the old array must stay readable until the new
		 * one is in place (see tsd_drop). */
		grown = malloc(n * sizeof(*grown));
		if (!grown)
			return ENOMEM;
		if (t->ntsd)
			memcpy(grown, t->tsd, t->ntsd * sizeof(*grown));
		memset(grown + t->ntsd, 0, (n - t->ntsd) * sizeof(*grown));
		old = t->tsd;
		t->tsd = grown;
		t->ntsd = n;
		free(old);
	}
	t->tsd[key].value = (void *)(uintptr_t)value;
	t->tsd[key].seq = __atomic_load_n(&keys[key].seq, __ATOMIC_RELAXED);
	return 0;
}

/* Take the value of key k out of t; its destructor if it is to run. */
static void (*tsd_take(struct gthread *t, unsigned int k, void **v))(void *)
{
	*v = t->tsd[k].value;
	if (!*v)
		return NULL;
	t->tsd[k].value = NULL;
	if (t->tsd[k].seq != __atomic_load_n(&keys[k].seq, __ATOMIC_RELAXED) ||
	    !__atomic_load_n(&keys[k].used, __ATOMIC_ACQUIRE))
		return NULL;
	return __atomic_load_n(&keys[k].dtor, __ATOMIC_RELAXED);
}

/*
 * POSIX: up to PTHREAD_DESTRUCTOR_ITERATIONS rounds while values remain.
 * The runtime's keys come last, so that the program's destructors still
 * run in the ASan thread they belong to.
 */
static void run_tsd_destructors(struct gthread *t)
{
	void (*dtor)(void *);
	void *v;

	for (int round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS; round++) {
		bool called = false;

		/* A destructor may set values (and grow t->tsd): re-read. */
		for (unsigned int k = 0; k < t->ntsd; k++) {
			if (runtime_key(k))
				continue;
			dtor = tsd_take(t, k, &v);
			if (dtor) {
				called = true;
				dtor(v);
			}
		}
		if (!called)
			break;
	}
	for (unsigned int k = 0; k < t->ntsd; k++) {
		if (runtime_key(k) && (dtor = tsd_take(t, k, &v)) != NULL)
			runtime_end(k, dtor, v);
	}
	tsd_drop(t);
}

/* The main thread's values are glibc's; run its destructors the same way. */
static void run_main_tsd_destructors(void)
{
	for (int round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS; round++) {
		bool called = false;

		for (unsigned int k = 0; k < PTHREAD_KEYS_MAX; k++) {
			void (*dtor)(void *);
			void *v;

			/* The runtime's value here is the OS thread's, which
			 * goes on running greenlets: ending it would end ASan's
			 * record of this thread under their feet. */
			if (!__atomic_load_n(&keys[k].used, __ATOMIC_ACQUIRE) || runtime_key(k))
				continue;
			dtor = __atomic_load_n(&keys[k].dtor, __ATOMIC_RELAXED);
			if (!dtor || !(v = SHIM_REAL(pthread_getspecific)(k)))
				continue;
			SHIM_REAL(pthread_setspecific)(k, NULL);
			called = true;
			dtor(v);
		}
		if (!called)
			break;
	}
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
		green__waitq_wake_all(&once_waiters, 0);
	t->once_top = NULL;
	run_tsd_destructors(t);
	if (t == fork_survivor)
		exit(0); /* the last thread of a forked child */
	t->exited = true;
	live_threads--;
	green__waitq_wake_all(&exit_waiters, 0);
	if (t->detached) {
		g->local = NULL;
		thread_free(t);
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
	int detach = PTHREAD_CREATE_JOINABLE;

	if (!h)
		return SHIM_REAL(pthread_create)(thread, attr, start, arg);
	ga.stack_size = default_stack_size();
	if (attr) {
		size_t size;

		if (pthread_attr_getstacksize(attr, &size) == 0 &&
		    size != glibc_stack_size() && size >= GREEN_STACK_MIN)
			ga.stack_size = size;
		if (pthread_attr_getdetachstate(attr, &detach) != 0)
			detach = PTHREAD_CREATE_JOINABLE;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return EAGAIN;
	t->magic = THREAD_MAGIC;
	t->start = start;
	t->arg = arg;
	t->detached = detach == PTHREAD_CREATE_DETACHED;
	creator_name(h->current, t->name);
	/* ga.name stays NULL: dumps say "greenlet-ID" until pthread_setname_np. */
	g = green_spawn(thread_main, t, &ga);
	if (!g) {
		free(t);
		return EAGAIN; /* glibc's answer to a stack it cannot map */
	}
	t->g = g;
	g->local = t;
	thread_register(t);
	live_threads++;
	*thread = (pthread_t)t;
	SHIM_DEBUG("thread: pthread_create -> greenlet %llu (stack %zu)",
	           (unsigned long long)g->id, ga.stack_size);
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
	run_main_tsd_destructors();
	while (live_threads > 0)
		wait_on(h, &exit_waiters, GREEN_WAIT_JOIN, NULL, GREEN_FOREVER, NULL);
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
			deadline = abs_deadline(clock, abs);
		}
	}
	t->joining = true;
	while (g->state != GREEN_DEAD) {
		if (wait_on(h, &g->joiners, GREEN_WAIT_JOIN, g, deadline, NULL) < 0) {
			int err = errno;

			t->joining = false;
			errno = saved;
			return err;
		}
	}
	errno = saved;
	if (ret)
		*ret = t->result;
	thread_free(t);
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
			deadline = abs_deadline(clock, abs);
		}
	}
	while (!main_exited) {
		if (wait_on(h, &main_joiners, GREEN_WAIT_JOIN, &h->main, deadline, NULL) < 0) {
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

/* Which join th means: 1 green, 2 the hub's main thread, 0 libc's. */
static int join_kind(struct green_hub *h, pthread_t th, struct gthread **t)
{
	*t = as_thread(th);
	if (*t)
		return (*t)->lazy ? 0 : 1;
	if (!h->current->is_main && pthread_equal(th, SHIM_REAL(pthread_self)()))
		return 2;
	return 0;
}

int pthread_join(pthread_t th, void **ret)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	struct gthread *t;

	if (!h)
		return SHIM_REAL(pthread_join)(th, ret);
	switch (join_kind(h, th, &t)) {
	case 1: return join_green(h, t, ret, GREEN_FOREVER, 0, NULL);
	case 2: return join_main(h, ret, GREEN_FOREVER, 0, NULL);
	default: return SHIM_REAL(pthread_join)(th, ret);
	}
}

int pthread_tryjoin_np(pthread_t th, void **ret)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	struct gthread *t;

	if (!h)
		return SHIM_REAL(pthread_tryjoin_np)(th, ret);
	switch (join_kind(h, th, &t)) {
	case 1: return join_green(h, t, ret, GREEN_NOW, 0, NULL);
	case 2: return join_main(h, ret, GREEN_NOW, 0, NULL);
	default: return SHIM_REAL(pthread_tryjoin_np)(th, ret);
	}
}

int pthread_clockjoin_np(pthread_t th, void **ret, clockid_t clock,
                         const struct timespec *abs)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	struct gthread *t;

	if (!h)
		return SHIM_REAL(pthread_clockjoin_np)(th, ret, clock, abs);
	if (!clock_ok(clock))
		return EINVAL;
	switch (join_kind(h, th, &t)) {
	case 1: return join_green(h, t, ret, GREEN_FOREVER, clock, abs);
	case 2: return join_main(h, ret, GREEN_FOREVER, clock, abs);
	default: return SHIM_REAL(pthread_clockjoin_np)(th, ret, clock, abs);
	}
}

int pthread_timedjoin_np(pthread_t th, void **ret, const struct timespec *abs)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	struct gthread *t;

	if (!h)
		return SHIM_REAL(pthread_timedjoin_np)(th, ret, abs);
	switch (join_kind(h, th, &t)) {
	case 1: return join_green(h, t, ret, GREEN_FOREVER, CLOCK_REALTIME, abs);
	case 2: return join_main(h, ret, GREEN_FOREVER, CLOCK_REALTIME, abs);
	default: return SHIM_REAL(pthread_timedjoin_np)(th, ret, abs);
	}
}

int pthread_detach(pthread_t th)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	struct gthread *t;

	if (!h || !(t = as_thread(th)) || t->lazy)
		return SHIM_REAL(pthread_detach)(th);
	if (t->detached)
		return EINVAL;
	if (t->exited) {
		green_t *g = t->g;

		if (g->local == t)
			g->local = NULL;
		thread_free(t);
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
	if (!g || g->is_main || !(t = thread_of(g)))
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
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	struct gthread *t;
	green_t *g;
	int rc;

	if (!h || !(t = as_thread(th)))
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

int pthread_setname_np(pthread_t th, const char *name)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	struct gthread *t;
	size_t len;

	if (!h || !(t = as_thread(th)))
		return SHIM_REAL(pthread_setname_np)(th, name);
	len = strlen(name);
	if (len > 15)
		return ERANGE;
	memcpy(t->name, name, len + 1);
	/* So that greend's dump shows it. */
	memcpy(t->g->name, name, len + 1);
	return 0;
}

int pthread_getname_np(pthread_t th, char *buf, size_t len)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	struct gthread *t;

	if (!h || !(t = as_thread(th)))
		return SHIM_REAL(pthread_getname_np)(th, buf, len);
	if (len < 16)
		return ERANGE;
	memcpy(buf, t->name, 16);
	buf[15] = '\0';
	return 0;
}

/* ---- mutexes ------------------------------------------------------------------ */

enum lock_mode { LOCK_WAIT, LOCK_TRY, LOCK_TIMED };

static inline struct gmutex *gm(pthread_mutex_t *m)
{
	return (struct gmutex *)(void *)m;
}

static inline bool mutex_pshared(const pthread_mutex_t *m)
{
	/* Also catches a destroyed mutex (__kind -1): glibc says EINVAL. */
	return (m->__data.__kind & KIND_PSHARED) != 0;
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
	struct green__waiter *w;

	while ((w = green__waitq_pop(&m->waiters)) != NULL) {
		if (green__wake(w->g, 0)) {
			m->owner = w->g;
			m->count = 1;
			return;
		}
	}
	m->owner = NULL;
	m->count = 0;
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
		deadline = abs_deadline(clock, abs);
	}
	saved = errno;
	for (;;) {
		if (wait_on(h, &m->waiters, GREEN_WAIT_LOCK, m, deadline, NULL) < 0) {
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

/* A process-shared mutex keeps glibc's layout: try, nap, try again. */
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
		deadline = abs_deadline(clock, abs);
	}
	for (;;) {
		if (poll_nap(&delay, deadline) < 0) {
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

	if (!h || mutex_pshared(m))
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
	if (mutex_pshared(m))
		return mutex_lock_pshared(m, LOCK_WAIT, 0, NULL);
	return mutex_lock_green(h, gm(m), LOCK_WAIT, 0, NULL);
}

int pthread_mutex_trylock(pthread_mutex_t *m)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h || mutex_pshared(m))
		return SHIM_REAL(pthread_mutex_trylock)(m);
	return mutex_lock_green(h, gm(m), LOCK_TRY, 0, NULL);
}

int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abs)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h)
		return SHIM_REAL(pthread_mutex_timedlock)(m, abs);
	if (mutex_pshared(m))
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
	if (mutex_pshared(m))
		return mutex_lock_pshared(m, LOCK_TIMED, clock, abs);
	return mutex_lock_green(h, gm(m), LOCK_TIMED, clock, abs);
}

int pthread_mutex_unlock(pthread_mutex_t *m)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h || mutex_pshared(m))
		return SHIM_REAL(pthread_mutex_unlock)(m);
	return mutex_unlock_green(h, gm(m));
}

int pthread_mutex_consistent(pthread_mutex_t *m)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h || mutex_pshared(m))
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
	bool pshared_m = mutex_pshared(m);

	if (timed) {
		if (!ts_valid(abs))
			return EINVAL;
		deadline = abs_deadline(clock, abs);
	}
	if (pshared_m) {
		rc = SHIM_REAL(pthread_mutex_unlock)(m);
		if (rc)
			return rc;
	} else {
		if (mutex_checked(mx->kind) && mx->owner != h->current)
			return EPERM;
		count = mx->count ? mx->count : 1;
		mutex_release(mx);
	}
	rc = wait_on(h, &gc(c)->waiters, GREEN_WAIT_COND, c, deadline, NULL) < 0 ? errno : 0;
	if (pshared_m) {
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

/* ---- rwlocks -------------------------------------------------------------------- */

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

/* Wake every parked reader; returns how many were. */
static unsigned int rw_wake_readers(struct grwlock *l)
{
	struct green__waiter *w;
	unsigned int n = 0;

	while ((w = green__waitq_pop(&l->readers_q)) != NULL)
		n += green__wake(w->g, 0);
	return n;
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
		deadline = abs_deadline(clock, abs);
	for (;;) {
		if (write) {
			l->writers_waiting++;
			rc = wait_on(h, &l->writers_q, GREEN_WAIT_LOCK, l, deadline, NULL);
			l->writers_waiting--;
			if (rc < 0) {
				rc = errno;
				/* Readers kept out only for our sake may go now. */
				if (!l->writer && rw_prefers_writers(l) && !l->writers_waiting)
					rw_wake_readers(l);
				break;
			}
			if (!l->writer && !l->readers)
				goto take;
		} else {
			if (wait_on(h, &l->readers_q, GREEN_WAIT_LOCK, l, deadline, NULL) < 0) {
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
		if (rw_wake_readers(l) == 0)
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
			deadline = abs_deadline(clock, abs);
		if (poll_nap(&delay, deadline) < 0) {
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

/* ---- semaphores --------------------------------------------------------------- */

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

/* try, or wait until the deadline (GREEN_FOREVER, GREEN_NOW, a deadline).
 * Returns 0 or -1 with errno, like sem_wait. */
static int sem_wait_green(struct green_hub *h, struct gsem *g, bool try, int64_t deadline)
{
	int saved = errno;

	if (g->value > 0) {
		g->value--;
		return 0;
	}
	if (try) {
		errno = EAGAIN;
		return -1;
	}
	for (;;) {
		bool handed = false;
		int rc;

		g->nwaiters++;
		rc = wait_on(h, &g->waiters, GREEN_WAIT_SEM, g, deadline, &handed);
		g->nwaiters--;
		if (handed)
			break; /* sem_post gave its unit straight to us */
		if (rc < 0)
			return -1;
		if (g->value > 0) {
			g->value--;
			break;
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
		if (poll_nap(&delay, deadline) < 0) {
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
	return sem_wait_any(h, s, false, abs_deadline(CLOCK_REALTIME, abs));
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
	return sem_wait_any(h, s, false, abs_deadline(clock, abs));
}

/*
 * The layout decides, not the caller: sem_post is async-signal-safe and
 * programs post from signal handlers, which may run while the hub polls.
 * The unit goes straight to the first parked waiter (see the top).
 */
int sem_post(sem_t *s)
{
	struct gsem *g = gs(s);
	struct green__waiter *w;

	if (!sem_green(s))
		return SHIM_REAL(sem_post)(s);
	if (green__hub_peek()) {
		while ((w = green__waitq_pop(&g->waiters)) != NULL) {
			if (green__wake(w->g, 0)) {
				*(bool *)w->data = true;
				return 0;
			}
		}
	}
	if (g->value >= SEM_VALUE_MAX) {
		errno = EOVERFLOW;
		return -1;
	}
	g->value++;
	return 0;
}

int sem_getvalue(sem_t *restrict s, int *restrict value)
{
	if (!sem_green(s))
		return SHIM_REAL(sem_getvalue)(s, value);
	*value = (int)gs(s)->value;
	return 0;
}

/* ---- once ------------------------------------------------------------------------ */

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
		wait_on(h, &once_waiters, GREEN_WAIT_OTHER, once, GREEN_FOREVER, NULL);
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
	green__waitq_wake_all(&once_waiters, 0);
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
	struct gthread *t, *mine;
	uint64_t dropped = 0;

	if (!shim_patched[SHIM_THREAD] || !h || h->current->is_hub)
		return;
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
	green__spin_lock(&all_threads_lock);
	for (t = all_threads; t; t = t->next) {
		if (t != mine)
			t->exited = true;
	}
	green__spin_unlock(&all_threads_lock);
	live_threads = mine && !mine->lazy && !mine->exited ? 1 : 0;
	exit_waiters._head = exit_waiters._tail = NULL;
	main_joiners._head = main_joiners._tail = NULL;
	once_waiters._head = once_waiters._tail = NULL;
	if (!self->is_main) {
		main_exited = true; /* it never runs again */
		fork_survivor = mine;
	}
}
