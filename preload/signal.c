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
struct sigstate {
	struct ev_loop *loop;
	ev_async async;
	unsigned int any;       /* handlers run on this thread */
	unsigned int norestart; /* ... of which without SA_RESTART */
	struct shim_intr *head; /* armed waits */
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

static void intr_async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct sigstate *st = (struct sigstate *)((char *)w - offsetof(struct sigstate, async));
	struct shim_intr *i;

	(void)loop;
	(void)revents;
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

/*
 * Every handler the program installs runs through here.  Counting comes
 * first, so a handler that leaves by siglongjmp still interrupts.  The
 * program's handler runs with the shim passed through, as it would run
 * natively: a handler must never park (a self-pipe write on a full pipe
 * blocks, as it would without the shim).
 */
static void sig_wrapper(int sig, siginfo_t *info, void *uctx)
{
	int saved = errno;
	struct user_handler *u = &handlers[sig];
	void *fn = __atomic_load_n(&u->fn, __ATOMIC_ACQUIRE);
	int flags = __atomic_load_n(&u->flags, __ATOMIC_RELAXED);
	struct sigstate *st = tls_sig;
	struct sigaction cur;
	bool restart = (flags & SA_RESTART) != 0;

	/* siginterrupt() and sigset() change the flags behind our back
	 * (glibc calls the kernel directly): the kernel's word wins. */
	if (real_sigaction(sig, NULL, &cur) == 0 && cur.sa_sigaction == sig_wrapper)
		restart = (cur.sa_flags & SA_RESTART) != 0;
	if (!st && shim_passthrough)
		st = __atomic_load_n(&main_sig, __ATOMIC_ACQUIRE);
	shim_passthrough++;
	if (st) {
		__atomic_fetch_add(&st->any, 1, __ATOMIC_RELEASE);
		if (!restart)
			__atomic_fetch_add(&st->norestart, 1, __ATOMIC_RELEASE);
		ev_async_send(st->loop, &st->async);
	}
	errno = saved;
	if (fn != (void *)SIG_DFL && fn != (void *)SIG_IGN) {
		if (flags & SA_SIGINFO)
			((void (*)(int, siginfo_t *, void *))fn)(sig, info, uctx);
		else
			((void (*)(int))fn)(sig);
	}
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

/* In a fork child: the forking thread's record is now the main one. */
void shim_signal_after_fork(void)
{
	__atomic_store_n(&main_sig, tls_sig, __ATOMIC_RELEASE);
}
