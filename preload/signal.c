/*
 * signal.c - the program's signal handlers, run through the shim's wrapper,
 * and the EINTR they give greened calls.
 *
 * A handler interrupts what the OS thread is doing, which may be the hub in
 * the middle of its own queues: so the wrapper only counts and pokes the
 * hub (an ev_async), and every waking happens later on the hub, where
 * greenlets may be touched.  The module files use the shim_intr_* calls of
 * shim_io.h around each park.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "shim_io.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <string.h>
#include <threads.h>
#include <unistd.h>

/*
 * One record per OS thread that has started an interruptible call: the
 * counters the wrapper bumps, and an ev_async on that thread's hub whose
 * callback wakes the parked calls the signal interrupts.  The wrapper only
 * bumps counters and calls ev_async_send, both async-signal-safe; all the
 * waking happens later on the hub, where greenlets may be touched.
 */
#define SIG_RING 64
#define SIG_BIT(sig) ((uint64_t)1 << ((sig) - 1))

/* A signal the wrapper took instead of running the handler (a green sigwait
 * waits for it): seq says the slot is filled (the ticket + 1). */
struct sig_event {
	unsigned int seq;
	int sig;
	siginfo_t info;
};

/* A green sigwait, sigwaitinfo or sigtimedwait parked on the hub. */
struct sig_waiter {
	struct sig_waiter *next, *prev;
	green_t *g;
	uint64_t set;
};

struct sigstate {
	struct ev_loop *loop;
	ev_async async;
	unsigned int any;       /* handlers run on this thread */
	unsigned int norestart; /* ... of which without SA_RESTART */
	struct shim_intr *head; /* armed waits */

	/* Written by the wrapper (tickets from ring_head), read on the hub. */
	unsigned int ring_head, ring_tail;
	struct sig_event ring[SIG_RING];
	uint64_t ring_lost;     /* taken when the ring was full: no siginfo */
	uint64_t waited;        /* what the parked sigwaits wait for */
	/* Hub side: taken signals no sigwait has consumed yet. */
	uint64_t taken;
	siginfo_t taken_info[64];
	struct sig_waiter *waiters;
};

static __thread struct sigstate *tls_sig;
/* The program's main hub's record: a signal that lands on one of the
 * shim's own threads (which the kernel may pick) is passed on to it. */
static struct sigstate *main_sig;

struct user_handler {
	void *fn;  /* sa_handler or sa_sigaction, as the program gave it */
	int flags; /* the program's sa_flags */
};
static struct user_handler handlers[_NSIG];

/*
 * The wrapper runs in signal context, where dlsym must not: what it calls
 * is resolved before any handler can be installed.  ev_async_send writes
 * to an eventfd through write(), i.e. through the shim's own write, whose
 * pass-through is warmed up here too.
 */
typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static sigaction_fn real_sigaction;

__attribute__((constructor)) static void signal_init(void)
{
	real_sigaction = SHIM_REAL(sigaction);
	shim_passthrough++;
	(void)!write(-1, "", 0);
	shim_passthrough--;
}

static void run_handler(int sig, siginfo_t *info, void *uctx);
static void sig_wrapper(int sig, siginfo_t *info, void *uctx);

/* The hub's side of the ring: every filled slot, in order, into taken. */
static void ring_drain(struct sigstate *st)
{
	uint64_t lost = __atomic_exchange_n(&st->ring_lost, 0, __ATOMIC_ACQUIRE);

	for (;;) {
		unsigned int t = st->ring_tail;
		struct sig_event *ev = &st->ring[t % SIG_RING];

		if (__atomic_load_n(&ev->seq, __ATOMIC_ACQUIRE) != t + 1)
			break;
		if (!(st->taken & SIG_BIT(ev->sig))) {
			st->taken |= SIG_BIT(ev->sig);
			st->taken_info[ev->sig - 1] = ev->info;
		}
		__atomic_store_n(&ev->seq, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&st->ring_tail, t + 1, __ATOMIC_RELEASE);
	}
	for (int sig = 1; lost && sig < 65; sig++) {
		if ((lost & SIG_BIT(sig)) && !(st->taken & SIG_BIT(sig))) {
			st->taken |= SIG_BIT(sig);
			memset(&st->taken_info[sig - 1], 0, sizeof(siginfo_t));
			st->taken_info[sig - 1].si_signo = sig;
			st->taken_info[sig - 1].si_code = SI_USER;
		}
	}
}

/*
 * Hand what the wrapper took to the sigwaits that want it; what nobody
 * waits for any more (the wait timed out meanwhile) goes to the handler
 * after all, late but not lost.
 */
static void taken_dispatch(struct sigstate *st)
{
	uint64_t wanted = 0;

	for (struct sig_waiter *w = st->waiters; w; w = w->next) {
		if (st->taken & w->set)
			green__wake(w->g, 0);
		wanted |= w->set;
	}
	for (int sig = 1; sig < 65; sig++) {
		if ((st->taken & SIG_BIT(sig)) && !(wanted & SIG_BIT(sig))) {
			siginfo_t info = st->taken_info[sig - 1];

			st->taken &= ~SIG_BIT(sig);
			run_handler(sig, &info, NULL);
		}
	}
}

static void intr_async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct sigstate *st = (struct sigstate *)((char *)w - offsetof(struct sigstate, async));
	struct shim_intr *i;

	(void)loop;
	(void)revents;
	ring_drain(st);
	if (st->taken)
		taken_dispatch(st);
	for (i = st->head; i; i = i->next) {
		unsigned int any = __atomic_load_n(&st->any, __ATOMIC_ACQUIRE);

		if (shim_intr_pending(i)) {
			green__wake(i->g, EINTR);
		} else if (any != i->seen_any) {
			/* An SA_RESTART handler ran: the kernel would restart
			 * the call, so it only looks again (a SIGCHLD handler
			 * thus wakes waitpid). */
			i->seen_any = any;
			green__wake(i->g, 0);
		}
	}
}

/*
 * A thread's record goes with the thread (C11 tss: glibc calls its own key
 * functions, never the thread module's green ones).  The watcher is left
 * alone: the hub's loop is destroyed or abandoned with the thread too.  The
 * main hub's record stays, as signals on the shim's threads point at it.
 */
static once_flag sig_key_once = ONCE_FLAG_INIT;
static tss_t sig_key;
static bool sig_key_ok;

static void sigstate_free(void *arg)
{
	struct sigstate *st = arg;

	if (st == __atomic_load_n(&main_sig, __ATOMIC_ACQUIRE))
		return;
	if (tls_sig == st)
		tls_sig = NULL;
	free(st);
}

static void sig_key_make(void)
{
	sig_key_ok = tss_create(&sig_key, sigstate_free) == thrd_success;
}

static struct sigstate *sigstate_get(void)
{
	struct green_hub *h;
	struct sigstate *st = tls_sig;

	if (likely(st != NULL))
		return st;
	h = green__hub_peek();
	if (!h)
		return NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->loop = h->loop;
	ev_async_init(&st->async, intr_async_cb);
	ev_async_start(h->loop, &st->async);
	ev_unref(h->loop); /* it must not keep an idle hub from noticing */
	__atomic_store_n(&tls_sig, st, __ATOMIC_RELEASE);
	if (h == __atomic_load_n(&shim_main_hub, __ATOMIC_ACQUIRE))
		__atomic_store_n(&main_sig, st, __ATOMIC_RELEASE);
	call_once(&sig_key_once, sig_key_make);
	if (sig_key_ok)
		tss_set(sig_key, st);
	return st;
}

static unsigned int intr_counter(const struct sigstate *st, bool always)
{
	return always ? __atomic_load_n(&st->any, __ATOMIC_ACQUIRE)
	              : __atomic_load_n(&st->norestart, __ATOMIC_ACQUIRE);
}

void shim_intr_begin(struct shim_intr *w, bool always)
{
	struct sigstate *st = sigstate_get();

	w->next = w->prev = NULL;
	w->g = NULL;
	w->always = always;
	w->linked = false;
	w->seen = st ? intr_counter(st, always) : 0;
	w->seen_any = st ? intr_counter(st, true) : 0;
}

bool shim_intr_pending(const struct shim_intr *w)
{
	const struct sigstate *st = tls_sig;

	return st && intr_counter(st, w->always) != w->seen;
}

int shim_intr_arm(struct green_hub *h, struct shim_intr *w)
{
	struct sigstate *st = sigstate_get();

	if (!st)
		return 0;
	if (shim_intr_pending(w)) {
		errno = EINTR;
		return -1;
	}
	w->g = h->current;
	w->prev = NULL;
	w->next = st->head;
	if (st->head)
		st->head->prev = w;
	st->head = w;
	w->linked = true;
	return 0;
}

void shim_intr_disarm(struct shim_intr *w)
{
	struct sigstate *st = tls_sig;

	if (!w->linked || !st)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		st->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
	w->linked = false;
}

int shim_sleep_until(struct green_hub *h, int64_t deadline)
{
	struct shim_intr in;
	int rc;

	shim_intr_begin(&in, true);
	if (shim_intr_arm(h, &in) < 0)
		return -1;
	rc = green__park(h, GREEN_WAIT_TIMER, NULL, deadline, 0);
	shim_intr_disarm(&in);
	return rc;
}

/* The program's handler for sig, called as the kernel would call it. */
static void call_user(int sig, siginfo_t *info, void *uctx)
{
	struct user_handler *u = &handlers[sig];
	void *fn = __atomic_load_n(&u->fn, __ATOMIC_ACQUIRE);
	int flags = __atomic_load_n(&u->flags, __ATOMIC_RELAXED);

	if (fn == (void *)SIG_DFL || fn == (void *)SIG_IGN)
		return;
	if (flags & SA_SIGINFO)
		((void (*)(int, siginfo_t *, void *))fn)(sig, info, uctx);
	else
		((void (*)(int))fn)(sig);
}

/* Whether the kernel would restart a call this handler interrupts. */
static bool handler_restarts(int sig)
{
	struct sigaction cur;

	/* siginterrupt() and sigset() change the flags behind our back
	 * (glibc calls the kernel directly): the kernel's word wins. */
	if (real_sigaction(sig, NULL, &cur) == 0 && cur.sa_sigaction == sig_wrapper)
		return (cur.sa_flags & SA_RESTART) != 0;
	return (__atomic_load_n(&handlers[sig].flags, __ATOMIC_RELAXED) & SA_RESTART) != 0;
}

/* A handler ran on st's thread: count it for the EINTR of its waits. */
static void count_handler(struct sigstate *st, int sig)
{
	__atomic_fetch_add(&st->any, 1, __ATOMIC_RELEASE);
	if (!handler_restarts(sig))
		__atomic_fetch_add(&st->norestart, 1, __ATOMIC_RELEASE);
}

/*
 * Run a handler outside signal context (a signal taken for a sigwait that
 * gave up, or one delivered to a green thread later): with the signal and
 * the handler's sa_mask blocked, as the kernel runs it, and counted like
 * one the wrapper runs.
 */
static void run_handler(int sig, siginfo_t *info, void *uctx)
{
	struct sigaction cur;
	sigset_t block, old;
	struct sigstate *st = tls_sig;

	if (real_sigaction(sig, NULL, &cur) < 0)
		return;
	block = cur.sa_mask;
	if (!(cur.sa_flags & SA_NODEFER))
		sigaddset(&block, sig);
	SHIM_REAL(pthread_sigmask)(SIG_BLOCK, &block, &old);
	if (st) {
		count_handler(st, sig);
		ev_async_send(st->loop, &st->async);
	}
	shim_passthrough++;
	call_user(sig, info, uctx);
	shim_passthrough--;
	SHIM_REAL(pthread_sigmask)(SIG_SETMASK, &old, NULL);
}

/* Give sig to the hub for a parked sigwait instead of running the handler.
 * Async-signal-safe: a ticket, a copy, a release store. */
static void ring_put(struct sigstate *st, int sig, const siginfo_t *info)
{
	unsigned int t = __atomic_load_n(&st->ring_head, __ATOMIC_RELAXED);

	do {
		if (t - __atomic_load_n(&st->ring_tail, __ATOMIC_ACQUIRE) >= SIG_RING) {
			__atomic_fetch_or(&st->ring_lost, SIG_BIT(sig), __ATOMIC_RELEASE);
			return;
		}
	} while (!__atomic_compare_exchange_n(&st->ring_head, &t, t + 1, true,
	                                      __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
	st->ring[t % SIG_RING].sig = sig;
	st->ring[t % SIG_RING].info = *info;
	__atomic_store_n(&st->ring[t % SIG_RING].seq, t + 1, __ATOMIC_RELEASE);
}

/*
 * Every handler the program installs runs through here.  Counting comes
 * first, so a handler that leaves by siglongjmp still interrupts.  The
 * program's handler runs with the shim passed through, as it would run
 * natively: a handler must never park (a self-pipe write on a full pipe
 * blocks, as it would without the shim).  A signal a green sigwait waits
 * for is that wait's (the kernel, too, gives it to a thread that waits for
 * it rather than run the handler) and only goes to the hub.
 */
static void sig_wrapper(int sig, siginfo_t *info, void *uctx)
{
	int saved = errno;
	struct sigstate *st = tls_sig;

	if (!st && shim_passthrough)
		st = __atomic_load_n(&main_sig, __ATOMIC_ACQUIRE);
	if (st && (__atomic_load_n(&st->waited, __ATOMIC_ACQUIRE) & SIG_BIT(sig))) {
		ring_put(st, sig, info);
		ev_async_send(st->loop, &st->async);
		errno = saved;
		return;
	}
	shim_passthrough++;
	if (st) {
		count_handler(st, sig);
		ev_async_send(st->loop, &st->async);
	}
	errno = saved;
	call_user(sig, info, uctx);
	shim_passthrough--;
}

static bool wrap_active(void)
{
	return !shim_passthrough &&
	       (shim_patched[SHIM_SOCKET] || shim_patched[SHIM_OS] ||
	        shim_patched[SHIM_SELECT] || shim_patched[SHIM_TIME]);
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *oldact)
{
	struct user_handler prev;
	struct sigaction mine, old;
	int rc;

	if (unlikely(!real_sigaction))
		real_sigaction = SHIM_REAL(sigaction); /* before signal_init ran */
	if (!wrap_active() || sig <= 0 || sig >= _NSIG || sig == SIGKILL || sig == SIGSTOP)
		return real_sigaction(sig, act, oldact);
	prev = handlers[sig];
	if (act && act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN) {
		/* The table first: the signal may come as soon as the kernel
		 * has the wrapper. */
		__atomic_store_n(&handlers[sig].flags, act->sa_flags, __ATOMIC_RELAXED);
		__atomic_store_n(&handlers[sig].fn,
		                 (act->sa_flags & SA_SIGINFO) ? (void *)act->sa_sigaction
		                                              : (void *)act->sa_handler,
		                 __ATOMIC_RELEASE);
		SHIM_DEBUG("signal %d: the program's handler runs through the shim's", sig);
		mine = *act;
		mine.sa_sigaction = sig_wrapper;
		mine.sa_flags |= SA_SIGINFO;
		rc = real_sigaction(sig, &mine, &old);
	} else {
		rc = real_sigaction(sig, act, &old);
	}
	if (rc < 0) {
		int err = errno;

		handlers[sig] = prev;
		errno = err;
		return -1;
	}
	if (oldact) {
		*oldact = old;
		/* Show the program its own handler, never the wrapper. */
		if (old.sa_sigaction == sig_wrapper) {
			if (prev.flags & SA_SIGINFO)
				oldact->sa_sigaction = (void (*)(int, siginfo_t *, void *))prev.fn;
			else
				oldact->sa_handler = (void (*)(int))prev.fn;
			oldact->sa_flags = (old.sa_flags & ~SA_SIGINFO) | (prev.flags & SA_SIGINFO);
		}
	}
	return 0;
}

/* glibc's signal() has BSD semantics: SA_RESTART, the signal blocked in its
 * own handler.  It calls the kernel directly, so it is rebuilt here. */
sighandler_t signal(int sig, sighandler_t handler)
{
	struct sigaction act, old;

	if (!wrap_active())
		return SHIM_REAL(signal)(sig, handler);
	if (sig <= 0 || sig >= _NSIG) {
		errno = EINVAL;
		return SIG_ERR;
	}
	memset(&act, 0, sizeof(act));
	act.sa_handler = handler;
	sigemptyset(&act.sa_mask);
	sigaddset(&act.sa_mask, sig);
	act.sa_flags = SA_RESTART;
	if (sigaction(sig, &act, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}

/* ---- waiting for signals ----------------------------------------------------
 *
 * sigwait, sigwaitinfo and sigtimedwait park the calling green thread on a
 * signalfd for the set: a signal every thread blocks stays pending on the
 * process (or the OS thread), the signalfd turns readable on the hub's
 * poll, and a zero-timeout sigtimedwait takes it, atomically, so two green
 * threads waiting for one signal cannot both have it.  A signal the
 * program has a handler for and does not block reaches the wrapper
 * instead, which gives it to the waiting green thread (see sig_wrapper).
 * pause and sigsuspend park until a handler runs.
 */

static uint64_t set_bits(const sigset_t *set)
{
	uint64_t bits = 0;

	for (int sig = 1; sig < 65 && sig < _NSIG; sig++) {
		if (sigismember(set, sig) == 1)
			bits |= SIG_BIT(sig);
	}
	return bits;
}

/* One signal of set the wrapper took for a sigwait: its number, or 0. */
static int taken_take(struct sigstate *st, uint64_t set, siginfo_t *info)
{
	uint64_t mine = st->taken & set;
	int sig;

	if (!mine)
		return 0;
	sig = __builtin_ctzll(mine) + 1;
	st->taken &= ~SIG_BIT(sig);
	*info = st->taken_info[sig - 1];
	return sig;
}

static void waiters_changed(struct sigstate *st)
{
	uint64_t all = 0;

	for (struct sig_waiter *w = st->waiters; w; w = w->next)
		all |= w->set;
	__atomic_store_n(&st->waited, all, __ATOMIC_RELEASE);
}

static void waiter_link(struct sigstate *st, struct sig_waiter *w)
{
	w->prev = NULL;
	w->next = st->waiters;
	if (st->waiters)
		st->waiters->prev = w;
	st->waiters = w;
	waiters_changed(st);
}

static void waiter_unlink(struct sigstate *st, struct sig_waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		st->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	waiters_changed(st);
}

/* A signal of want pending now (taken by the wrapper, or in the kernel):
 * its number, 0 if none, -1 with errno. */
static int sig_take_now(struct sigstate *st, const sigset_t *want, uint64_t bits,
                        siginfo_t *info)
{
	static const struct timespec zero;
	int sig;

	ring_drain(st);
	sig = taken_take(st, bits, info);
	if (sig > 0)
		return sig;
	sig = SHIM_REAL(sigtimedwait)(want, info, &zero);
	if (sig > 0)
		return sig;
	return errno == EAGAIN ? 0 : -1;
}

/*
 * The green body of the sigwait family: the signal taken, or -1 with errno
 * (EAGAIN at the deadline; EINTR when intr and a handler for a signal
 * outside the set ran).
 */
static int sigwait_green(struct green_hub *h, const sigset_t *set, siginfo_t *info,
                         int64_t deadline, bool intr)
{
	struct sigstate *st = sigstate_get();
	struct sig_waiter me = {0};
	struct shim_intr in;
	siginfo_t local;
	sigset_t want = *set;
	int sfd = -1, sig, err = 0;

	if (!info)
		info = &local;
	sigdelset(&want, SIGKILL);
	sigdelset(&want, SIGSTOP);
	if (!st)
		return SHIM_REAL(sigtimedwait)(&want, info, NULL);
	me.g = h->current;
	me.set = set_bits(&want);
	shim_intr_begin(&in, true);
	waiter_link(st, &me);
	for (;;) {
		sig = sig_take_now(st, &want, me.set, info);
		if (sig != 0 || (errno == EINTR && intr)) {
			err = errno;
			break;
		}
		if (sfd < 0) {
			sfd = SHIM_REAL(signalfd)(-1, &want, SFD_NONBLOCK | SFD_CLOEXEC);
			if (sfd < 0) {
				sig = -1;
				err = errno;
				break;
			}
		}
		if (shim_wait_fd_intr(h, sfd, GREEN_READ, deadline, intr ? &in : NULL, true) < 0) {
			err = errno;
			/* A signal that came with the deadline or the handler
			 * still counts, as in the kernel. */
			sig = sig_take_now(st, &want, me.set, info);
			if (sig <= 0) {
				sig = -1;
				break;
			}
			err = 0;
			break;
		}
	}
	waiter_unlink(st, &me);
	if (sfd >= 0) {
		shim_fd_closing(sfd);
		SHIM_REAL(close)(sfd);
	}
	if (sig > 0)
		return sig;
	errno = err;
	return -1;
}

static bool timespec_ok(const struct timespec *ts)
{
	return ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000L;
}

int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	int64_t ns;

	if (!h || shim_alone(h) || (timeout && !timespec_ok(timeout)) ||
	    (timeout && timeout->tv_sec == 0 && timeout->tv_nsec == 0))
		return SHIM_REAL(sigtimedwait)(set, info, timeout);
	if (!timeout)
		return sigwait_green(h, set, info, GREEN_FOREVER, true);
	ns = timeout->tv_sec > INT64_MAX / GREEN_SEC - 1
	         ? INT64_MAX / 2
	         : (int64_t)timeout->tv_sec * GREEN_SEC + timeout->tv_nsec;
	return sigwait_green(h, set, info, green_now() + ns, true);
}

int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);

	if (!h || shim_alone(h))
		return SHIM_REAL(sigwaitinfo)(set, info);
	return sigwait_green(h, set, info, GREEN_FOREVER, true);
}

/* POSIX: never EINTR (glibc retries); the error is the return value. */
int sigwait(const sigset_t *set, int *sig)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	int rc;

	if (!h || shim_alone(h))
		return SHIM_REAL(sigwait)(set, sig);
	rc = sigwait_green(h, set, NULL, GREEN_FOREVER, false);
	if (rc < 0)
		return errno;
	*sig = rc;
	return 0;
}

/*
 * Park until a handler runs (in begun), then -1/EINTR.  When every green
 * thread waits on another and no watcher can fire, only a signal can
 * change anything: the OS thread waits for it in the kernel, with mask.
 */
static int park_for_handler(struct green_hub *h, struct shim_intr *in, const sigset_t *mask)
{
	for (;;) {
		int rc, err;

		if (shim_intr_arm(h, in) < 0)
			break;
		rc = green__park(h, GREEN_WAIT_OTHER, NULL, GREEN_FOREVER, 0);
		err = errno;
		shim_intr_disarm(in);
		if (rc == 0)
			continue; /* looked at again by a restarting handler */
		if (err == EDEADLK) {
			SHIM_REAL(sigsuspend)(mask);
			break;
		}
		if (err != EINTR) {
			errno = err;
			return -1;
		}
		break;
	}
	errno = EINTR;
	return -1;
}

int pause(void)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	struct shim_intr in;
	sigset_t mask;

	if (!h || shim_alone(h))
		return SHIM_REAL(pause)();
	shim_intr_begin(&in, true);
	SHIM_REAL(pthread_sigmask)(SIG_SETMASK, NULL, &mask);
	return park_for_handler(h, &in, &mask);
}

/*
 * The mask is the OS thread's while the green thread waits: every green
 * thread of this hub runs with it meanwhile (the thread module does not
 * give green threads masks of their own).
 */
int sigsuspend(const sigset_t *mask)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	struct shim_intr in;
	sigset_t old;
	int rc, err;

	if (!h || shim_alone(h))
		return SHIM_REAL(sigsuspend)(mask);
	/* Begun first: a signal the new mask lets in runs its handler as
	 * soon as the mask is set. */
	shim_intr_begin(&in, true);
	SHIM_REAL(pthread_sigmask)(SIG_SETMASK, mask, &old);
	rc = park_for_handler(h, &in, mask);
	err = errno;
	SHIM_REAL(pthread_sigmask)(SIG_SETMASK, &old, NULL);
	errno = err;
	return rc;
}

int __sigsuspend(const sigset_t *mask);
int __sigsuspend(const sigset_t *mask)
{
	return sigsuspend(mask);
}

/* ---- signalfd ------------------------------------------------------------------
 *
 * A blocking read on a signalfd parks the green thread until the hub's poll
 * says the fd is readable (the OS thread's and the process's pending
 * signals, which is what the fd reports), then reads.  The fd table knows
 * signalfds from their creation; socket.c's read() hands them here.
 */
int signalfd(int fd, const sigset_t *mask, int flags)
{
	int rc = SHIM_REAL(signalfd)(fd, mask, flags);

	if (rc >= 0 && fd < 0 && !shim_passthrough &&
	    (shim_patched[SHIM_SOCKET] || shim_patched[SHIM_OS]))
		shim_fd_created(rc, SHIM_FD_SIGNAL, (flags & SFD_NONBLOCK) != 0, false);
	return rc;
}

ssize_t shim_signalfd_read(struct green_hub *h, struct shim_fd *e, int fd, void *buf,
                           size_t len)
{
	struct shim_intr in;

	if (e->user_nonblock || shim_alone(h))
		return SHIM_REAL(read)(fd, buf, len);
	shim_intr_begin(&in, false);
	for (;;) {
		int ready = shim_ready_now(fd, GREEN_READ);

		if (ready != 0)
			return SHIM_REAL(read)(fd, buf, len); /* data, or the error */
		if (shim_wait_fd_intr(h, fd, GREEN_READ, GREEN_FOREVER, &in, false) < 0) {
			int err = errno;

			/* The kernel prefers a ready result to the signal. */
			if (err == EINTR && shim_ready_now(fd, GREEN_READ) > 0)
				return SHIM_REAL(read)(fd, buf, len);
			errno = err;
			return -1;
		}
	}
}

/* In a fork child: the forking thread's record is now the main one. */
void shim_signal_after_fork(void)
{
	__atomic_store_n(&main_sig, tls_sig, __ATOMIC_RELEASE);
}
