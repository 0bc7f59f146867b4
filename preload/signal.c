/*
 * signal.c - the program's signal handlers, run through the shim's wrapper;
 * each green thread's signal record, and the delivery of what is pending
 * on it; and the EINTR handlers give greened calls.  shim_signal.h says how
 * signals and green threads fit together; signal_thread.c holds the calls
 * about one thread's signals (masks, pthread_kill), signal_wait.c those
 * that wait for signals.
 *
 * A handler interrupts what the OS thread is doing, which may be the hub in
 * the middle of its own queues: so the wrapper only counts, fills a slot of
 * a ring and pokes the hub (an ev_async), all async-signal-safe, and every
 * waking happens later on the hub, where greenlets may be touched.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "signal_int.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <threads.h>
#include <ucontext.h>
#include <unistd.h>

__thread struct sigstate *shim_tls_sig;
/* The program's main hub's record: a signal that lands on one of the
 * shim's own threads (which the kernel may pick) is passed on to it. */
static struct sigstate *main_sig;
/* Program handlers running on this OS thread (shim_in_handler). */
static __thread int handler_depth;

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
typedef int (*sigmask_fn)(int, const sigset_t *, sigset_t *);
static sigmask_fn real_sigmask;

static void sig_wrapper(int sig, siginfo_t *info, void *uctx);

__attribute__((constructor)) static void signal_init(void)
{
	real_sigaction = SHIM_REAL(sigaction);
	real_sigmask = SHIM_REAL(pthread_sigmask);
	shim_passthrough++;
	(void)!write(-1, "", 0);
	shim_passthrough--;
}

/* ---- sets as bits ------------------------------------------------------------ */

uint64_t shim_set_bits(const sigset_t *set)
{
	uint64_t bits = 0;

	for (int sig = 1; sig <= SIG_NMAX && sig < _NSIG; sig++) {
		if (sigismember(set, sig) == 1)
			bits |= SIG_BIT(sig);
	}
	return bits;
}

void shim_bits_set(uint64_t bits, sigset_t *set)
{
	sigemptyset(set);
	for (int sig = 1; sig <= SIG_NMAX && sig < _NSIG; sig++) {
		if (bits & SIG_BIT(sig))
			sigaddset(set, sig);
	}
}

static int lowest(uint64_t bits)
{
	return __builtin_ctzll(bits) + 1;
}

static uint64_t kernel_mask(void)
{
	sigset_t cur;

	if (real_sigmask(SIG_SETMASK, NULL, &cur) != 0)
		return 0;
	return shim_set_bits(&cur);
}

/* ---- queued real-time signals ------------------------------------------------- */

struct shim_sigq_item {
	struct shim_sigq_item *next;
	int sig;
	siginfo_t info;
};

static bool realtime(int sig)
{
	return sig >= SIGRTMIN && sig <= SIGRTMAX;
}

/* How many instances of real-time signals one record or hub may hold:
 * the kernel's bound on a user's queued signals (read each time: the
 * program may change it), so that a sender is refused (EAGAIN) where it
 * would be natively, and a flood cannot take the memory. */
static unsigned int sigq_cap(void)
{
	struct rlimit rl;
	unsigned int c = 1u << 16;

	if (getrlimit(RLIMIT_SIGPENDING, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < c)
		c = (unsigned int)rl.rlim_cur;
	return c;
}

/* Append an instance: false (nothing kept) when full or out of memory. */
static bool sigq_push(struct shim_sigq *q, int sig, const siginfo_t *info)
{
	struct shim_sigq_item *it;

	/* + 1: the oldest instance, in its slot, counts too */
	if (q->n + 1 >= sigq_cap() || !(it = malloc(sizeof(*it))))
		return false;
	it->next = NULL;
	it->sig = sig;
	it->info = *info;
	*(q->tail ? q->tail : &q->head) = it;
	q->tail = &it->next;
	q->n++;
	return true;
}

/* The oldest queued instance of sig, removed: false if there is none. */
static bool sigq_pop(struct shim_sigq *q, int sig, siginfo_t *info)
{
	struct shim_sigq_item **at = &q->head, *it;

	while ((it = *at) && it->sig != sig)
		at = &it->next;
	if (!it)
		return false;
	*at = it->next;
	if (!it->next) /* it was the last */
		q->tail = q->head ? at : NULL;
	q->n--;
	*info = it->info;
	free(it);
	return true;
}

static void sigq_clear(struct shim_sigq *q)
{
	while (q->head) {
		struct shim_sigq_item *it = q->head;

		q->head = it->next;
		free(it);
	}
	q->tail = NULL;
	q->n = 0;
}

/* ---- the per-OS-thread record -------------------------------------------------- */

static void intr_async_cb(struct ev_loop *loop, ev_async *w, int revents);

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
	if (shim_tls_sig == st)
		shim_tls_sig = NULL;
	free(st->main_gs.infos);
	sigq_clear(&st->main_gs.more);
	sigq_clear(&st->taken_more);
	free(st);
}

static void sig_key_make(void)
{
	sig_key_ok = tss_create(&sig_key, sigstate_free) == thrd_success;
}

static void records_link(struct sigstate *st, struct shim_gsig *gs)
{
	gs->st = st;
	gs->prev = NULL;
	gs->next = st->records;
	if (st->records)
		st->records->prev = gs;
	st->records = gs;
	for (int sig = 1; sig <= SIG_NMAX; sig++) {
		if (!(gs->blocked & SIG_BIT(sig)))
			st->unblocked[sig - 1]++;
	}
}

struct sigstate *shim_sigstate(void)
{
	struct green_hub *h;
	struct sigstate *st = shim_tls_sig;

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
	/* The main greenlet's mask is the OS thread's, as it stands. */
	st->main_gs.g = &h->main;
	st->main_gs.blocked = kernel_mask() & ~SIG_UNBLOCKABLE;
	records_link(st, &st->main_gs);
	__atomic_store_n(&shim_tls_sig, st, __ATOMIC_RELEASE);
	if (h == __atomic_load_n(&shim_main_hub, __ATOMIC_ACQUIRE))
		__atomic_store_n(&main_sig, st, __ATOMIC_RELEASE);
	call_once(&sig_key_once, sig_key_make);
	if (sig_key_ok)
		tss_set(sig_key, st);
	return st;
}

/* ---- green threads' records ---------------------------------------------------- */

/* The record of the greenlet this OS thread runs, from signal context too:
 * never makes one. */
static struct shim_gsig *current_gsig(struct sigstate *st)
{
	struct green_hub *h = green__hub_peek();
	struct shim_gsig *gs;
	green_t *g;

	if (!h || !st)
		return NULL;
	g = h->current;
	if (g == &h->main)
		return &st->main_gs;
	if (g->is_hub || !shim_patched[SHIM_THREAD])
		return NULL;
	gs = shim_thread_gsig(g, false);
	return gs && gs->st == st ? gs : NULL;
}

struct shim_gsig *shim_sig_self(void)
{
	struct green_hub *h = green__hub_peek();
	struct sigstate *st;
	struct shim_gsig *gs;
	green_t *g;

	if (!h || h->current->is_hub || !(st = shim_sigstate()))
		return NULL;
	g = h->current;
	if (g == &h->main)
		return &st->main_gs;
	if (!shim_patched[SHIM_THREAD])
		return NULL;
	gs = shim_thread_gsig(g, true);
	return gs && gs->st == st ? gs : NULL;
}

void shim_sig_thread_init(struct shim_gsig *gs, green_t *g)
{
	struct shim_gsig *parent = shim_sig_self();
	struct sigstate *st = shim_sigstate();

	memset(gs, 0, sizeof(*gs));
	gs->g = g;
	if (!st)
		return;
	gs->blocked = parent ? parent->blocked : kernel_mask() & ~SIG_UNBLOCKABLE;
	records_link(st, gs);
}

/* Apply to the kernel what the counts now say for the signals in changed. */
static void kernel_follow(struct sigstate *st, uint64_t changed)
{
	uint64_t block = 0, unblock = 0;
	sigset_t set;

	for (int sig = 1; sig <= SIG_NMAX; sig++) {
		if (!(changed & SIG_BIT(sig)) || (SIG_UNBLOCKABLE & SIG_BIT(sig)))
			continue;
		if (st->unblocked[sig - 1] == 0)
			block |= SIG_BIT(sig);
		else
			unblock |= SIG_BIT(sig);
	}
	if (block) {
		shim_bits_set(block, &set);
		real_sigmask(SIG_BLOCK, &set, NULL);
	}
	if (unblock) {
		shim_bits_set(unblock, &set);
		real_sigmask(SIG_UNBLOCK, &set, NULL);
	}
}

void shim_sig_thread_fini(struct shim_gsig *gs)
{
	struct sigstate *st = gs->st;
	uint64_t changed = 0;

	if (!st)
		return;
	for (int sig = 1; sig <= SIG_NMAX; sig++) {
		if (!(gs->blocked & SIG_BIT(sig)) && --st->unblocked[sig - 1] == 0)
			changed |= SIG_BIT(sig);
	}
	if (gs->prev)
		gs->prev->next = gs->next;
	else
		st->records = gs->next;
	if (gs->next)
		gs->next->prev = gs->prev;
	gs->st = NULL;
	gs->pending = 0;
	free(gs->infos);
	gs->infos = NULL;
	sigq_clear(&gs->more); /* a thread's own pending signals end with it */
	kernel_follow(st, changed);
}

/* The record's mask and the per-signal counts that follow it, without
 * the kernel's. */
static void record_only(struct shim_gsig *gs, uint64_t blocked)
{
	struct sigstate *st = gs->st;
	uint64_t changed = gs->blocked ^ blocked;

	__atomic_store_n(&gs->blocked, blocked, __ATOMIC_RELEASE);
	for (int sig = 1; st && changed && sig <= SIG_NMAX; sig++) {
		if (!(changed & SIG_BIT(sig)))
			continue;
		if (blocked & SIG_BIT(sig))
			st->unblocked[sig - 1]--;
		else
			st->unblocked[sig - 1]++;
	}
}

void shim_sig_set_blocked_only(struct shim_gsig *gs, uint64_t blocked)
{
	uint64_t changed;

	blocked &= ~SIG_UNBLOCKABLE;
	changed = gs->blocked ^ blocked;
	if (!changed)
		return;
	record_only(gs, blocked);
	if (gs->st)
		kernel_follow(gs->st, changed);
}

void shim_kmask_enter(struct shim_kmask *k, const sigset_t *mask)
{
	struct sigstate *st = shim_tls_sig;

	k->gs = mask && shim_patched[SHIM_THREAD] ? current_gsig(st) : NULL;
	if (!k->gs)
		return;
	k->old = k->gs->blocked;
	record_only(k->gs, shim_set_bits(mask) & ~SIG_UNBLOCKABLE);
}

void shim_kmask_leave(struct shim_kmask *k)
{
	int saved = errno;

	if (k->gs)
		record_only(k->gs, k->old);
	errno = saved;
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

/* A handler goes to gs (runs, or will run on it): count it for the EINTR
 * of gs's waits, and of the OS thread's waits that have no record. */
static void count_for(struct sigstate *st, struct shim_gsig *gs, int sig)
{
	bool restart = handler_restarts(sig);

	if (gs) {
		__atomic_fetch_add(&gs->any, 1, __ATOMIC_RELEASE);
		if (!restart)
			__atomic_fetch_add(&gs->norestart, 1, __ATOMIC_RELEASE);
	}
	__atomic_fetch_add(&st->any, 1, __ATOMIC_RELEASE);
	if (!restart)
		__atomic_fetch_add(&st->norestart, 1, __ATOMIC_RELEASE);
}

/* Who takes a signal sent to the process: the main thread if it lets it
 * in (the kernel prefers a process's first thread), else the first that
 * does; NULL if none does. */
static struct shim_gsig *pick_target(struct sigstate *st, int sig)
{
	if (!(st->main_gs.blocked & SIG_BIT(sig)))
		return &st->main_gs;
	for (struct shim_gsig *gs = st->records; gs; gs = gs->next) {
		if (!(gs->blocked & SIG_BIT(sig)))
			return gs;
	}
	return NULL;
}

int shim_sig_post(struct sigstate *st, struct shim_gsig *gs, int sig, const siginfo_t *info)
{
	if (!(gs->pending & SIG_BIT(sig))) {
		if (!gs->infos)
			gs->infos = calloc(SIG_NMAX, sizeof(siginfo_t));
		if (gs->infos)
			gs->infos[sig - 1] = *info;
		gs->pending |= SIG_BIT(sig);
	} else if (realtime(sig) && (!gs->infos || !sigq_push(&gs->more, sig, info))) {
		errno = EAGAIN;
		return -1;
	}
	if (!(gs->blocked & SIG_BIT(sig)))
		count_for(st, gs, sig);
	return 0;
}

/* The oldest pending instance of sig on gs into *info; the bit stays while
 * more are queued. */
static void record_take(struct shim_gsig *gs, int sig, siginfo_t *info)
{
	if (gs->infos)
		*info = gs->infos[sig - 1];
	else
		shim_sig_default_info(sig, info);
	if (!gs->infos || !sigq_pop(&gs->more, sig, &gs->infos[sig - 1]))
		gs->pending &= ~SIG_BIT(sig);
}

/* The same for the hub's pending signals. */
static void taken_take(struct sigstate *st, int sig, siginfo_t *info)
{
	*info = st->taken_info[sig - 1];
	if (!sigq_pop(&st->taken_more, sig, &st->taken_info[sig - 1]))
		st->taken &= ~SIG_BIT(sig);
}

void shim_sig_taken_move(struct sigstate *st, int sig, struct shim_gsig *gs)
{
	siginfo_t info;

	while (st->taken & SIG_BIT(sig)) {
		taken_take(st, sig, &info);
		/* Full: the instance is lost, as a sender would have been
		 * refused natively. */
		(void)shim_sig_post(st, gs, sig, &info);
	}
}

void shim_sig_default_info(int sig, siginfo_t *info)
{
	memset(info, 0, sizeof(*info));
	info->si_signo = sig;
	info->si_code = SI_USER;
	info->si_pid = getpid();
	info->si_uid = getuid();
}

int shim_sig_take(struct sigstate *st, struct shim_gsig *gs, uint64_t set, siginfo_t *info)
{
	uint64_t mine;
	int sig;

	if (gs && (mine = gs->pending & set) != 0) {
		sig = lowest(mine);
		record_take(gs, sig, info);
		return sig;
	}
	if ((mine = st->taken & set) != 0) {
		sig = lowest(mine);
		taken_take(st, sig, info);
		return sig;
	}
	return 0;
}

/* ---- the ring: signal context to hub ------------------------------------------ */

/* Async-signal-safe: a ticket, a copy, a release store.  False when full. */
static bool ring_put(struct sigstate *st, int kind, int sig, const siginfo_t *info,
                     void (*fn)(void *), void *arg)
{
	unsigned int t = __atomic_load_n(&st->ring_head, __ATOMIC_RELAXED);
	struct sig_event *ev;

	do {
		if (t - __atomic_load_n(&st->ring_tail, __ATOMIC_ACQUIRE) >= SIG_RING)
			return false;
	} while (!__atomic_compare_exchange_n(&st->ring_head, &t, t + 1, true,
	                                      __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
	ev = &st->ring[t % SIG_RING];
	ev->kind = kind;
	ev->sig = sig;
	ev->fn = fn;
	ev->arg = arg;
	if (info)
		ev->info = *info;
	__atomic_store_n(&ev->seq, t + 1, __ATOMIC_RELEASE);
	return true;
}

static void take_on_hub(struct sigstate *st, int sig, const siginfo_t *info)
{
	if (st->taken & SIG_BIT(sig)) {
		/* A standard signal is pending once; a real-time one is
		 * queued (a lost one has no siginfo: it was not queued). */
		if (realtime(sig) && info)
			(void)sigq_push(&st->taken_more, sig, info);
		return;
	}
	st->taken |= SIG_BIT(sig);
	if (info)
		st->taken_info[sig - 1] = *info;
	else
		shim_sig_default_info(sig, &st->taken_info[sig - 1]);
}

static void ring_drain(struct sigstate *st)
{
	uint64_t lost = __atomic_exchange_n(&st->ring_lost, 0, __ATOMIC_ACQUIRE);

	for (;;) {
		unsigned int t = st->ring_tail;
		struct sig_event *ev = &st->ring[t % SIG_RING];
		struct sig_event copy;
		struct shim_gsig *gs;

		if (__atomic_load_n(&ev->seq, __ATOMIC_ACQUIRE) != t + 1)
			break;
		copy = *ev;
		__atomic_store_n(&ev->seq, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&st->ring_tail, t + 1, __ATOMIC_RELEASE);
		switch (copy.kind) {
		case SIG_EV_PEND:
			take_on_hub(st, copy.sig, &copy.info);
			break;
		case SIG_EV_INTR:
			gs = pick_target(st, copy.sig);
			if (gs) {
				__atomic_fetch_add(&gs->any, 1, __ATOMIC_RELEASE);
				if (!handler_restarts(copy.sig))
					__atomic_fetch_add(&gs->norestart, 1, __ATOMIC_RELEASE);
			}
			break;
		default:
			copy.fn(copy.arg);
			break;
		}
	}
	for (int sig = 1; lost && sig <= SIG_NMAX; sig++) {
		if (lost & SIG_BIT(sig))
			take_on_hub(st, sig, NULL);
	}
}

/* Pending on the hub: hand each signal to a sigwait that wants it, else to
 * a green thread that lets it in; what none takes stays. */
static void taken_dispatch(struct sigstate *st)
{
	uint64_t wanted = 0;

	for (struct sig_waiter *w = st->waiters; w; w = w->next)
		wanted |= w->set;
	for (int sig = 1; sig <= SIG_NMAX; sig++) {
		struct shim_gsig *gs;

		if (!(st->taken & SIG_BIT(sig)) || (wanted & SIG_BIT(sig)))
			continue;
		gs = pick_target(st, sig);
		if (gs)
			shim_sig_taken_move(st, sig, gs);
	}
}

static bool wants_cancel(const struct shim_intr *i)
{
	return i->gs && i->gs->cancel_pending && !i->gs->cancel_disabled &&
	       !i->gs->cancelling && (i->cancel_point || i->gs->cancel_async);
}

void shim_sig_kick(struct sigstate *st)
{
	unsigned int any;

	ring_drain(st);
	if (st->taken)
		taken_dispatch(st);
	for (struct sig_waiter *w = st->waiters; w; w = w->next) {
		if ((st->taken | (w->gs ? w->gs->pending : 0)) & w->set)
			green__wake(w->g, 0);
	}
	any = __atomic_load_n(&st->any, __ATOMIC_ACQUIRE);
	for (struct shim_intr *i = st->head; i; i = i->next) {
		if (shim_intr_pending(i) || wants_cancel(i)) {
			green__wake(i->g, EINTR);
		} else if (!i->always && !i->look && any != i->seen_any) {
			/* An SA_RESTART handler ran: the kernel would restart
			 * the call, so it only looks again (a SIGCHLD handler
			 * thus wakes waitpid). */
			i->seen_any = any;
			green__wake(i->g, 0);
		}
	}
}

static void intr_async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)loop;
	(void)revents;
	shim_sig_kick((struct sigstate *)((char *)w - offsetof(struct sigstate, async)));
}

bool shim_sig_defer(void (*fn)(void *), void *arg)
{
	struct sigstate *st = shim_tls_sig;

	if (!st && shim_passthrough)
		st = __atomic_load_n(&main_sig, __ATOMIC_ACQUIRE);
	if (!st || !ring_put(st, SIG_EV_CALL, 0, NULL, fn, arg))
		return false;
	ev_async_send(st->loop, &st->async);
	return true;
}

bool shim_in_handler(void)
{
	return handler_depth > 0;
}

/* ---- EINTR --------------------------------------------------------------------- */

static unsigned int gs_counter(const struct shim_gsig *gs, bool any)
{
	return any ? __atomic_load_n(&gs->any, __ATOMIC_ACQUIRE)
	           : __atomic_load_n(&gs->norestart, __ATOMIC_ACQUIRE);
}

static unsigned int st_counter(const struct sigstate *st, bool any)
{
	return any ? __atomic_load_n(&st->any, __ATOMIC_ACQUIRE)
	           : __atomic_load_n(&st->norestart, __ATOMIC_ACQUIRE);
}

void shim_intr_begin_mode(struct shim_intr *w, enum shim_intr_mode mode)
{
	struct sigstate *st = shim_sigstate();
	struct shim_gsig *gs = st ? shim_sig_self() : NULL;

	w->next = w->prev = NULL;
	w->g = NULL;
	w->always = mode == SHIM_INTR_ALWAYS;
	w->look = mode == SHIM_INTR_LOOK;
	w->cancel_point = !w->look;
	w->linked = false;
	w->gs = gs;
	if (gs) {
		/* Every blocking call but a look wait is a cancellation
		 * point, and nothing is held yet; an asynchronous cancel is
		 * acted on at any wait. */
		if (!w->look || gs->cancel_async)
			shim_cancel_point();
		if (gs->pending & ~gs->blocked)
			shim_sig_deliver(gs);
		w->seen = gs_counter(gs, w->always || w->look);
	} else {
		w->seen = st ? st_counter(st, w->always) : 0;
	}
	w->seen_any = st ? st_counter(st, true) : 0;
}

void shim_intr_begin(struct shim_intr *w, bool always)
{
	shim_intr_begin_mode(w, always ? SHIM_INTR_ALWAYS : SHIM_INTR_RESTART);
}

bool shim_intr_pending(const struct shim_intr *w)
{
	const struct sigstate *st = shim_tls_sig;

	if (w->gs)
		return gs_counter(w->gs, w->always || w->look) != w->seen;
	return st && st_counter(st, w->always) != w->seen;
}

/*
 * A look wait (a condition, a lock) only looks again after a handler: the
 * hub may be late for it.  But it must not be the one a signal is for: a
 * signal the main greenlet blocks and a waiter lets in is handed to the
 * hub, which would not run while the main greenlet sits in a restarted
 * kernel call.  The walk is short or not made: past a few waiters the
 * answer is no.
 */
#define QUIET_WALK_MAX 16

bool shim_sig_quiet(void)
{
	const struct sigstate *st = shim_tls_sig;
	const struct shim_intr *w;
	uint64_t main_blocked;
	int n = 0;

	if (!st)
		return true;
	if (st->waiters || __atomic_load_n(&st->ring_head, __ATOMIC_ACQUIRE) != st->ring_tail)
		return false;
	main_blocked = __atomic_load_n(&st->main_gs.blocked, __ATOMIC_RELAXED);
	for (w = st->head; w; w = w->next) {
		if (!w->look || ++n > QUIET_WALK_MAX)
			return false;
		if (w->gs && w->gs->pending)
			return false;
		if (w->gs && (~__atomic_load_n(&w->gs->blocked, __ATOMIC_RELAXED) & main_blocked))
			return false;
	}
	return true;
}

int shim_intr_arm(struct green_hub *h, struct shim_intr *w)
{
	struct sigstate *st = shim_sigstate();

	if (!st)
		return 0;
	if (!w->look && (shim_intr_pending(w) || wants_cancel(w))) {
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
	struct sigstate *st = shim_tls_sig;

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
	if (w->gs) {
		if (w->look)
			w->seen = gs_counter(w->gs, true);
		if (w->gs->pending & ~w->gs->blocked)
			shim_sig_deliver(w->gs);
	}
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

/* ---- running the program's handlers -------------------------------------------- */

static void call_user(void *fn, int flags, int sig, siginfo_t *info, void *uctx)
{
	if (fn == (void *)SIG_DFL || fn == (void *)SIG_IGN)
		return;
	handler_depth++;
	if (flags & SA_SIGINFO)
		((void (*)(int, siginfo_t *, void *))fn)(sig, info, uctx);
	else
		((void (*)(int))fn)(sig);
	handler_depth--;
}

/* What the kernel does with a signal that has no handler and is not ignored
 * by default: it terminates, stops or dumps the process. */
static bool default_ignores(int sig)
{
	return sig == SIGCHLD || sig == SIGCONT || sig == SIGURG || sig == SIGWINCH;
}

/*
 * Run the handler of sig on the calling green thread gs, as the kernel runs
 * one: gs blocks the signal and the handler's sa_mask meanwhile; SA_RESETHAND
 * resets it; a signal whose action is the default goes to the kernel, on
 * this OS thread (which lets it in, since gs does).
 */
static void deliver_one(struct shim_gsig *gs, int sig, siginfo_t *info)
{
	struct user_handler u;
	struct sigaction cur;
	ucontext_t uc;
	uint64_t mask = gs->blocked;

	if (real_sigaction(sig, NULL, &cur) < 0)
		return;
	if (cur.sa_sigaction != sig_wrapper) {
		if (cur.sa_handler == SIG_IGN || default_ignores(sig))
			return;
		syscall(SYS_tgkill, getpid(), gettid(), sig);
		return;
	}
	u.fn = __atomic_load_n(&handlers[sig].fn, __ATOMIC_ACQUIRE);
	u.flags = __atomic_load_n(&handlers[sig].flags, __ATOMIC_RELAXED);
	shim_sig_set_blocked_only(gs, mask | shim_set_bits(&cur.sa_mask) |
	                         ((cur.sa_flags & SA_NODEFER) ? 0 : SIG_BIT(sig)));
	if (cur.sa_flags & SA_RESETHAND) {
		struct sigaction dfl;

		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigaction(sig, &dfl, NULL);
	}
	memset(&uc, 0, sizeof(uc));
	getcontext(&uc);
	shim_passthrough++;
	call_user(u.fn, u.flags, sig, info, &uc);
	shim_passthrough--;
	shim_sig_set_blocked_only(gs, mask);
}

void shim_sig_deliver(struct shim_gsig *gs)
{
	int saved = errno;
	uint64_t ready;

	while ((ready = gs->pending & ~gs->blocked) != 0) {
		int sig = lowest(ready);
		siginfo_t info;

		record_take(gs, sig, &info);
		deliver_one(gs, sig, &info);
	}
	errno = saved;
}

/* Synchronous signals (a fault in the code that runs) must run now, or the
 * instruction faults again at once. */
static bool synchronous(int sig, const siginfo_t *info)
{
	return (sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL ||
	        sig == SIGTRAP || sig == SIGSYS) &&
	       info && info->si_code > 0;
}

/*
 * Every handler the program installs runs through here.  Counting comes
 * first, so a handler that leaves by siglongjmp still interrupts.  The
 * program's handler runs with the shim passed through, as it would run
 * natively: a handler must never park (a self-pipe write on a full pipe
 * blocks, as it would without the shim).
 *
 * A signal a green sigwait waits for is that wait's (the kernel, too,
 * gives it to a thread that waits for it rather than run the handler), and
 * one the interrupted green thread blocks is some other green thread's:
 * both only go to the hub.  Otherwise the handler runs now, and the EINTR
 * goes to the main thread if it lets the signal in, else to the green
 * thread it interrupted, else (the hub was polling) to one the hub picks.
 */
static void sig_wrapper(int sig, siginfo_t *info, void *uctx)
{
	int saved = errno;
	struct sigstate *st = shim_tls_sig;
	struct shim_gsig *cur, *target;
	bool foreign = false, masks;

	if (!st && shim_passthrough) {
		st = __atomic_load_n(&main_sig, __ATOMIC_ACQUIRE);
		foreign = true;
	}
	if (!st) {
		shim_passthrough++;
		call_user(handlers[sig].fn, handlers[sig].flags, sig, info, uctx);
		shim_passthrough--;
		errno = saved;
		return;
	}
	/* Masks are per green thread only with the thread module: else the
	 * kernel's mask is the whole truth, and the main greenlet (with the
	 * OS thread's other waits) takes every signal. */
	masks = shim_patched[SHIM_THREAD];
	cur = foreign || !masks ? NULL : current_gsig(st);
	if (!synchronous(sig, info) &&
	    ((__atomic_load_n(&st->waited, __ATOMIC_ACQUIRE) & SIG_BIT(sig)) ||
	     (cur && (__atomic_load_n(&cur->blocked, __ATOMIC_ACQUIRE) & SIG_BIT(sig))))) {
		if (!ring_put(st, SIG_EV_PEND, sig, info, NULL, NULL))
			__atomic_fetch_or(&st->ring_lost, SIG_BIT(sig), __ATOMIC_RELEASE);
		ev_async_send(st->loop, &st->async);
		errno = saved;
		return;
	}
	shim_passthrough++;
	target = !masks || !(__atomic_load_n(&st->main_gs.blocked, __ATOMIC_ACQUIRE) & SIG_BIT(sig))
	             ? &st->main_gs
	             : cur;
	count_for(st, target, sig);
	if (!target)
		(void)ring_put(st, SIG_EV_INTR, sig, info, NULL, NULL);
	ev_async_send(st->loop, &st->async);
	errno = saved;
	call_user(__atomic_load_n(&handlers[sig].fn, __ATOMIC_ACQUIRE),
	          __atomic_load_n(&handlers[sig].flags, __ATOMIC_RELAXED), sig, info, uctx);
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

/* ---- fork ------------------------------------------------------------------------ */

/*
 * In the child only the forking thread lives on: its record is the OS
 * thread's main one now, the only green thread left, and the kernel's mask
 * (the forking OS thread's) becomes that thread's own.
 */
void shim_signal_after_fork(void)
{
	struct sigstate *st = shim_tls_sig;
	struct shim_gsig *self = current_gsig(st);
	sigset_t mask;

	__atomic_store_n(&main_sig, st, __ATOMIC_RELEASE);
	if (!st)
		return;
	st->head = NULL;
	st->waiters = NULL;
	__atomic_store_n(&st->waited, 0, __ATOMIC_RELEASE);
	st->ring_head = st->ring_tail = 0;
	memset(st->ring, 0, sizeof(st->ring));
	st->records = NULL;
	memset(st->unblocked, 0, sizeof(st->unblocked));
	if (self) {
		records_link(st, self);
		shim_bits_set(self->blocked, &mask);
		real_sigmask(SIG_SETMASK, &mask, NULL);
	}
	if (self != &st->main_gs)
		st->main_gs.blocked = ~(uint64_t)0 & ~SIG_UNBLOCKABLE; /* it never runs again */
}
