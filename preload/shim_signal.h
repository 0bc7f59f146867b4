/*
 * shim_signal.h - what signal.c offers the rest of the shim: the EINTR of a
 * parked call, each green thread's own signal state (mask, signals sent to
 * it, handlers delivered to it), and cancellation, which the thread module
 * (thread_cancel.c) builds on the same records and wake-ups.
 *
 * Signals and green threads.  The kernel's mask is the OS thread's; a green
 * thread's mask is the program's idea, kept in its record.  The OS thread
 * blocks in the kernel only what every green thread of its hub blocks, so a
 * signal that arrives is one some green thread takes; the wrapper runs the
 * handler at once unless the green thread it interrupts blocks it, in which
 * case the hub hands it to one that does not (the main thread first, as the
 * kernel prefers a process's first thread), to be run on that green
 * thread's own stack when it next passes a delivery point (the end of a
 * parked call, pthread_sigmask).  A signal no green thread accepts stays
 * pending: in the kernel when every one blocks it, or on the hub, where
 * sigwait, sigpending and an unblocking pthread_sigmask find it.
 */
#ifndef GREEN_SHIM_SIGNAL_H
#define GREEN_SHIM_SIGNAL_H

#include "shim.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/types.h>

struct sigstate;

/* ---- a green thread's signal state ----------------------------------------- */

/*
 * The further instances of real-time signals already pending on a record
 * or a hub: POSIX queues every sending of one (with its own value), where
 * a standard signal is pending once.  The oldest instance of each signal
 * is in its siginfo slot; the rest wait here, oldest first.
 */
struct shim_sigq {
	struct shim_sigq_item *head, **tail; /* tail NULL: empty */
	unsigned int n;
};

struct shim_gsig {
	struct shim_gsig *next, *prev; /* every record of the hub */
	struct sigstate *st;           /* that hub's (NULL: not linked) */
	green_t *g;
	uint64_t blocked;     /* the program's mask for it: bit sig-1 */
	uint64_t pending;     /* sent to it and not delivered yet */
	siginfo_t *infos;     /* their siginfo by sig-1; made on first need */
	struct shim_sigq more; /* real-time instances after those */
	unsigned int any;     /* handlers delivered to it */
	unsigned int norestart; /* ... of which without SA_RESTART */

	/* cancellation (thread_cancel.c) */
	bool cancel_pending;
	bool cancel_disabled;
	bool cancel_async;
	bool cancelling;      /* acting on it: no more cancellation points */
	void *cleanup_top;    /* __pthread_register_cancel's buffers */
	void *old_cleanup_top; /* _pthread_cleanup_push's (the old ABI) */
};

/* Set gs up for greenlet g, inheriting the calling green thread's mask, as
 * a new thread inherits its creator's; fini when the thread ends. */
void shim_sig_thread_init(struct shim_gsig *gs, green_t *g);
void shim_sig_thread_fini(struct shim_gsig *gs);
/* The calling green thread's record, made if need be; NULL if it is not a
 * green thread (or there is no memory). */
struct shim_gsig *shim_sig_self(void);

/* The record a handle names on this OS thread's hub: 0 with *out a green
 * thread's, or the main greenlet's for the main thread's own (glibc's)
 * handle, or NULL for any other thread glibc knows; ESRCH for a green
 * thread that is gone. */
int shim_sig_target(pthread_t th, struct shim_gsig **out);

/* Have the hub look at gs again soon (a cancel is pending): wakes its
 * cancellation-point waits. */
void shim_sig_wake(struct shim_gsig *gs);

/* Provided by the thread module (thread_cancel.c): the record of greenlet
 * g (NULL for a main greenlet, whose record is signal.c's, and, unless
 * create, for a greenlet that has none yet), and of a handle (as
 * shim_sig_target says). */
struct shim_gsig *shim_thread_gsig(green_t *g, bool create);
int shim_thread_gsig_find(pthread_t th, struct shim_gsig **out);

/*
 * Around a kernel call that swaps in a signal mask of its own for its
 * wait (sigsuspend, ppoll, pselect, epoll_pwait, epoll_pwait2, taken
 * straight to the kernel on the fast path): the record of the calling
 * green thread says the same mask meanwhile, or the handler wrapper would
 * take a signal the call lets in for one the thread blocks, and keep it
 * from the program's handler (nginx's master, asleep in sigsuspend, never
 * saw its SIGTERM).  Only the record changes: changing the kernel's mask
 * before the call would open the window these calls exist to close.
 */
struct shim_kmask {
	struct shim_gsig *gs;
	uint64_t old;
};
void shim_kmask_enter(struct shim_kmask *k, const sigset_t *mask);
/* Keeps errno: it follows the call. */
void shim_kmask_leave(struct shim_kmask *k);

/* ---- EINTR ------------------------------------------------------------------
 *
 * A parked call that began before a handler was delivered to its green
 * thread is woken with EINTR if the kernel would have interrupted it:
 * always for sleep-type calls (poll, select, epoll_wait, nanosleep,
 * sem_wait, socket calls with SO_*TIMEO set), only without SA_RESTART for
 * the rest, which are woken to look again (as the kernel restarts them).
 * A "look" wait is never interrupted, only woken so that the handler runs
 * and the wait goes on (mutexes, condition variables, joins).
 *
 * Use: shim_intr_begin() when the call starts (before its first attempt),
 * shim_intr_arm() just before parking, shim_intr_disarm() after the park,
 * whatever it returned: it runs the handlers sent to the green thread
 * meanwhile.  A park that fails with EINTR should try its operation once
 * more without blocking: the kernel, too, prefers a result that is ready
 * to the signal.
 */
enum shim_intr_mode { SHIM_INTR_RESTART, SHIM_INTR_ALWAYS, SHIM_INTR_LOOK };

struct shim_intr {
	struct shim_intr *next, *prev;
	green_t *g;
	struct shim_gsig *gs; /* the green thread's record, or NULL */
	unsigned int seen;    /* its counter when the call began */
	unsigned int seen_any; /* handlers of any kind seen so far */
	bool always;          /* interrupted even by SA_RESTART handlers */
	bool look;            /* never interrupted (SHIM_INTR_LOOK) */
	bool cancel_point;    /* a cancel wakes it (all but look waits, which
	                       * a caller may make one) */
	bool linked;
};

void shim_intr_begin(struct shim_intr *w, bool always);
void shim_intr_begin_mode(struct shim_intr *w, enum shim_intr_mode mode);
/* True if a handler that interrupts this call ran since begin. */
bool shim_intr_pending(const struct shim_intr *w);
/* Link w so the signal wake-up finds it; -1/EINTR if one is pending. */
int shim_intr_arm(struct green_hub *h, struct shim_intr *w);
/* No greenlet of this OS thread waits for a signal (an interruptible
 * wait, a sigwait, a look wait that lets in a signal the main greenlet
 * blocks) and no handler's report waits for the hub: the fast path may
 * let the main greenlet block in the kernel though others are alive. */
bool shim_sig_quiet(void);
void shim_intr_disarm(struct shim_intr *w);

/* Sleep until the deadline (green_sleep's meaning) unless a signal handler
 * runs first: 0, or -1 with EINTR (or ECANCELED).  For the time module. */
int shim_sleep_until(struct green_hub *h, int64_t deadline);

/* True while a program's handler runs on this OS thread: what it calls
 * (sem_post) must only record, never touch the hub's queues. */
bool shim_in_handler(void);
/* Ask the hub of this OS thread to run fn(arg) soon, from signal context:
 * async-signal-safe; false if there is no room (fn then never runs). */
bool shim_sig_defer(void (*fn)(void *), void *arg);

/* ---- cancellation (thread_cancel.c) ----------------------------------------- */

/* A cancellation point: act on a pending cancel of the calling green
 * thread (never returns then). */
void shim_cancel_point(void);
/* Whether the calling green thread's cancel is pending and enabled. */
bool shim_cancel_requested(void);

/* The return of a cancellation point that let go of everything: a call
 * that a cancel woke (EINTR) acts on it now. */
static inline ssize_t shim_cancel_after(ssize_t rc)
{
	if (rc < 0 && errno == EINTR && shim_cancel_requested())
		shim_cancel_point();
	return rc;
}

#endif
