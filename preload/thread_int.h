/*
 * thread_int.h - what the files of the thread module share: the layouts the
 * green objects lay over glibc's, the record of a green thread, and how a
 * green thread waits.  The module is split by concern: thread.c (threads),
 * thread_handle.c (their records, and what a pthread_t is), thread_os.c
 * (calls about a thread's OS thread), thread_key.c, thread_mutex.c (with
 * condition variables), thread_rwlock.c, thread_sem.c, thread_once.c,
 * thread_barrier.c (barriers and spin locks), thread_wait.c (deadlines,
 * waiting, helper threads), thread_cancel.c (cancellation, cleanup handlers,
 * and where signal.c finds a green thread's record) and thread_layout.c
 * (the check at start that glibc is laid out as assumed).  Nothing outside
 * the module includes this header.
 *
 * Where green state lives.  The program allocates its pthread_mutex_t,
 * pthread_cond_t, pthread_rwlock_t and sem_t; their sizes are glibc's ABI and
 * the static initialisers fill them with zero bytes (plus a type in
 * __kind/__flags).  The green state is laid over those bytes, keeping the
 * fields glibc's initialisers and *_init functions set (a mutex's __kind, a
 * condition's clock and process-shared bits in __wrefs, an rwlock's __flags
 * and __shared), and all-zero is the unlocked state, so PTHREAD_*_INITIALIZER
 * and glibc's own *_init (which the module calls) give valid green objects.
 * The layouts are pinned by static assertions below.
 */
#ifndef GREEN_THREAD_INT_H
#define GREEN_THREAD_INT_H

#include "shim.h"
#include "shim_signal.h"

#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stddef.h>
#include <sys/types.h>
#include <unwind.h>

/* Process-shared objects are tried with a nap between tries, growing. */
#define POLL_MIN (50 * GREEN_USEC)
#define POLL_MAX (5 * GREEN_MSEC)

enum lock_mode { LOCK_WAIT, LOCK_TRY, LOCK_TIMED };

/* ---- glibc's layouts, and ours over them --------------------------------- */

/* glibc's __kind bits (nptl/pthreadP.h); the type is the low two bits. */
#define KIND_TYPE_MASK 3
#define KIND_ROBUST 16
#define KIND_PI 32
#define KIND_PP 64
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
	unsigned int posted;         /* by signal handlers, not applied yet */
	struct green__waitq waiters;
};
_Static_assert(sizeof(struct gsem) <= sizeof(sem_t), "sem size");

/*
 * A green barrier, like a green semaphore, carries a magic word (where
 * glibc counts arrivals, which stay below 2^31): pthread_barrier_t has no
 * static initialiser, so pthread_barrier_init says which kind each is.
 * shared stays where glibc keeps its own.
 */
#define GBARRIER_MAGIC 0xb4a77e21u
struct gbarrier {
	unsigned int magic;          /* glibc: in */
	unsigned int count;          /* glibc: current_round */
	unsigned int arrived;        /* glibc: count */
	int shared;                  /* glibc: shared */
	struct green__waitq waiters; /* glibc: out, padding */
};
_Static_assert(sizeof(struct gbarrier) <= sizeof(pthread_barrier_t), "barrier size");

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
 * thread is a pointer to it.  Records live in mappings of their own
 * (thread_handle.c), so that any pthread_t can be told to be a green
 * thread's, a finished green thread's or glibc's without reading memory
 * that might not be there.
 */
struct gthread {
	uint64_t magic;   /* THREAD_MAGIC while the handle is valid */
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
	/* The OS thread whose hub runs it: what scheduling, affinity and
	 * CPU-clock calls on the green thread apply to. */
	pthread_t os_thread;
	pid_t os_tid;
	struct gthread *free_next; /* thread_handle.c's list of free records */
	struct shim_gsig sig; /* mask, pending signals, cancel (signal.c) */
	struct shim_tls *tls; /* its compiler TLS and thread_local destructors */
};

/* ---- handles (thread_handle.c) ------------------------------------------- */

/*
 * A new record, zeroed, valid as a handle, its OS thread the caller's; NULL
 * with errno EAGAIN when no memory can be mapped.
 */
struct gthread *shim_thread_alloc(void);
/* The record's handle is no longer valid (joined, or detached and done):
 * its key values are freed and lookups of it say ESRCH until it is reused. */
void shim_thread_release(struct gthread *t);
/*
 * What th is: 0 with *out the record of a green thread (running or
 * finished, not yet joined), 0 with *out NULL for a handle that is glibc's
 * (the main thread, a thread the module did not make), or ESRCH for the
 * handle of a green thread that is gone.  Never reads through th.  Safe
 * from any thread, also from a signal handler.
 */
int shim_thread_find(pthread_t th, struct gthread **out);
/* The record of a green thread from its handle, or NULL when th is no
 * (live) green thread's. */
struct gthread *shim_thread_lookup(pthread_t th);
/* In a fork child: the records' lock is free, and with only_mine_left
 * every record but mine is of a thread that did not come along. */
void shim_thread_handles_after_fork(struct gthread *mine, bool only_mine_left);

/* The record of a greenlet, made on first need for greenlets the program
 * did not create with pthread_create; NULL without memory. */
struct gthread *shim_thread_of(green_t *g);

/* pthread_once calls waiting for another green thread's init routine. */
extern struct green__waitq shim_once_waiters;

/* ---- keys (thread_key.c) ----------------------------------------------------- */

/* Run a finished thread's key destructors (POSIX's rounds), free its values. */
void shim_tsd_run_destructors(struct gthread *t);
/* The same for the main thread, whose values are glibc's. */
void shim_tsd_run_main_destructors(void);
/* Free a thread's key values without running destructors. */
void shim_tsd_drop(struct gthread *t);

/* ---- compiler TLS (tls.c) --------------------------------------------------- */

/* A new green thread gets TLS of its own (from the images when it first
 * runs); -1 without memory. */
int shim_tls_thread_init(struct gthread *t);
/* Run its thread_local destructors (before its key destructors, as glibc). */
void shim_tls_run_dtors(struct gthread *t);
/* It has ended: its TLS is dropped. */
void shim_tls_thread_exit(struct gthread *t);
/* Modules may have been loaded or unloaded behind dlopen's back (glibc's
 * own, for NSS): look again if dl_iterate_phdr's counts moved. */
void shim_tls_modules_changed(void);

/* ---- waiting (thread_wait.c) ------------------------------------------------ */

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

static inline bool ts_valid(const struct timespec *ts)
{
	return ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000L;
}

static inline bool clock_ok(clockid_t clock)
{
	return clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC;
}

static inline bool deadline_passed(int64_t deadline)
{
	return deadline == GREEN_NOW || (deadline > 0 && green_now() >= deadline);
}

/*
 * An absolute time on clock (CLOCK_REALTIME or CLOCK_MONOTONIC) as a green
 * deadline (CLOCK_MONOTONIC ns).  A time already past becomes GREEN_NOW,
 * never a negative number (which would mean "no deadline").
 */
int64_t shim_abs_deadline(clockid_t clock, const struct timespec *abs);

/*
 * Park on q until woken or the deadline.  data goes into the waiter (a
 * waker may hand over through it).  Returns 0 when woken or told to look
 * again (a deadlock nap, a kill), -1 with ETIMEDOUT; -1 with EDEADLK only
 * when the caller cannot wait at all (a dying greenlet).
 */
int shim_thread_wait(struct green_hub *h, struct green__waitq *q,
                     enum green_wait_kind kind, const void *obj,
                     int64_t deadline, void *data);

/*
 * shim_thread_wait for a cancellation point (a condition wait, a join): a
 * pthread_cancel wakes it too (0), and the caller acts on
 * shim_cancel_requested().  shim_thread_wait_intr: for calls a signal
 * handler interrupts, with in begun by the caller (SHIM_INTR_ALWAYS for
 * sem_wait): -1/EINTR then.  Both, like shim_thread_wait, run the handlers
 * sent to the thread while it waited.
 */
int shim_thread_wait_cp(struct green_hub *h, struct green__waitq *q,
                        enum green_wait_kind kind, const void *obj,
                        int64_t deadline, void *data);
int shim_thread_wait_intr(struct green_hub *h, struct green__waitq *q,
                          enum green_wait_kind kind, const void *obj,
                          int64_t deadline, void *data, struct shim_intr *in);

/* ---- cancellation (thread_cancel.c) ------------------------------------------ */

/* pthread_exit: run the calling thread's cleanup handlers, newest first
 * (each push's code runs its handler and comes back through
 * __pthread_unwind_next); returns once none is left. */
void shim_thread_run_cleanups(struct gthread *t);

/* Sleep *delay on the hub between two tries of a process-shared object
 * (doubling it up to POLL_MAX); -1 once the deadline has passed. */
int shim_poll_nap(int64_t *delay, int64_t deadline);

/*
 * Start a real OS thread of the shim's own, every signal blocked, with
 * stack_size bytes of stack; returns 0 or an error number, as
 * pthread_create.
 */
int shim_helper_thread(pthread_t *th, void *(*fn)(void *), void *arg, size_t stack_size,
                       bool detached);

#endif
