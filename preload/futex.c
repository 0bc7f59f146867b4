/*
 * futex.c - syscall(SYS_futex, ...) for green threads (part of the "thread"
 * module).  Rust's std (Mutex, Condvar, Once, thread parking) and
 * libstdc++'s std::atomic::wait call the futex system call through libc's
 * syscall(), so this is the one place where they can be seen: a green
 * thread waiting in the kernel would block every other green thread of its
 * hub, the one that would wake it included.
 *
 * SYS_futex_waitv (Wine's fsync) waits on several words with the same
 * queues.  Every other system call number goes to libc's syscall()
 * untouched.  glibc's own locks use futexes from inside libc and never come
 * here; the thread module greens them by replacing the pthread calls.
 *
 * A green FUTEX_WAIT compares the word and parks in one process-wide table
 * of wait queues keyed by address, under the queue's lock, so a wake from
 * any hub either finds the waiter or has changed the word before the compare
 * (the kernel's own argument).  A green FUTEX_WAKE wakes green waiters first,
 * those of its own hub directly and those of other hubs through a remote
 * wake-up, and hands what is left of its count to the kernel for waiters
 * that are really in it.  Wakes the table never sees (a raw syscall
 * instruction, the kernel clearing a thread's tid, another process sharing
 * the memory) cannot reach a parked green thread, so a parked waiter also
 * looks at its word again on a timer that backs off from RECHECK_MIN to
 * RECHECK_MAX: such a wake arrives at most RECHECK_MAX late, and futex users
 * must already take a return of 0 as "look again".
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "shim_io.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define RECHECK_MIN (1 * GREEN_MSEC)
#define RECHECK_MAX (50 * GREEN_MSEC)
#define NBUCKETS 256

/* One word a green thread waits on: FUTEX_WAIT has one, futex_waitv up
 * to FUTEX_WAITV_MAX, all in one group. */
struct fwaiter {
	struct fwaiter *next, *prev;
	struct bucket *bucket; /* NULL once a waker has taken it */
	const uint32_t *addr;
	uint32_t val, bitset;
	bool requeued;         /* moved by FUTEX_REQUEUE: no word to re-check */
	struct fgroup *group;
};

/* The waiting green thread and how its wait ends. */
struct fgroup {
	struct green_hub *hub;
	green_t *g;
	struct green__remote *remote; /* for wakers on other threads; may be NULL */
	bool woken;                   /* a waker took one of the words */
	bool posted;                  /* ... from another thread, by a remote post */
	struct fwaiter *w;
	unsigned int n;               /* words queued */
	const struct timespec *ts;    /* NULL: no timeout */
	bool absolute;
	clockid_t clock;
	bool restartable;             /* SA_RESTART handlers do not end it */
	long number;                  /* the call, for the kernel to do it */
	const long *a;
};

struct bucket {
	int lock;
	struct fwaiter *head;
};

static struct bucket table[NBUCKETS];
/*
 * Green waiters in the table, or about to compare their word: a wake looks
 * at the table only if there are some.  The waiter counts itself before it
 * reads its word and the waker reads the count after the program changed
 * the word, each with a full barrier between, so at least one of them sees
 * the other: the waker counts the waiter, or the waiter sees the new word.
 */
static unsigned int table_waiters;

static bool table_empty(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return __atomic_load_n(&table_waiters, __ATOMIC_RELAXED) == 0;
}

typedef long (*syscall_fn)(long, ...);
static syscall_fn real_syscall;

static syscall_fn real(void)
{
	syscall_fn fn = __atomic_load_n(&real_syscall, __ATOMIC_ACQUIRE);

	if (unlikely(!fn)) {
		fn = (syscall_fn)shim_resolve("syscall");
		__atomic_store_n(&real_syscall, fn, __ATOMIC_RELEASE);
	}
	return fn;
}

static long real_futex(const long *a)
{
	return real()(SYS_futex, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* Waiters of a parent's other threads never run in a fork child: the
 * table starts empty there, its locks free. */
static void futex_after_fork(void)
{
	for (size_t i = 0; i < NBUCKETS; i++) {
		table[i].lock = 0;
		table[i].head = NULL;
	}
	table_waiters = 0;
}

/* Resolved before any signal handler can call syscall(): dlsym is not
 * async-signal-safe. */
__attribute__((constructor)) static void futex_init(void)
{
	(void)real();
	pthread_atfork(NULL, NULL, futex_after_fork);
}

static struct bucket *bucket_of(const uint32_t *addr)
{
	uint64_t key = (uint64_t)(uintptr_t)addr >> 2;

	return &table[(key * 0x9E3779B97F4A7C15ull) >> 56];
}

static void bucket_insert(struct bucket *b, struct fwaiter *w)
{
	__atomic_store_n(&w->bucket, b, __ATOMIC_RELEASE);
	w->prev = NULL;
	w->next = b->head;
	if (b->head)
		b->head->prev = w;
	b->head = w;
}

static void bucket_remove(struct fwaiter *w)
{
	struct bucket *b = w->bucket;

	if (w->prev)
		w->prev->next = w->next;
	else
		b->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
	__atomic_store_n(&w->bucket, NULL, __ATOMIC_RELEASE);
}

/* Lock the bucket w is in now (a requeue may move it); NULL, with nothing
 * locked, once a waker took w. */
static struct bucket *lock_own_bucket(struct fwaiter *w)
{
	for (;;) {
		struct bucket *b = __atomic_load_n(&w->bucket, __ATOMIC_ACQUIRE);

		if (!b)
			return NULL;
		green__spin_lock(&b->lock);
		if (w->bucket == b)
			return b;
		green__spin_unlock(&b->lock);
	}
}

static void lock_two(struct bucket *a, struct bucket *b)
{
	if (a == b) {
		green__spin_lock(&a->lock);
	} else if (a < b) {
		green__spin_lock(&a->lock);
		green__spin_lock(&b->lock);
	} else {
		green__spin_lock(&b->lock);
		green__spin_lock(&a->lock);
	}
}

static void unlock_two(struct bucket *a, struct bucket *b)
{
	green__spin_unlock(&a->lock);
	if (a != b)
		green__spin_unlock(&b->lock);
}

/* Take w off its queue as woken and make its thread run: directly on our
 * own hub (h), by a remote wake-up otherwise, once for the whole group.
 * The bucket lock is held.  Returns false, leaving w queued, when w cannot
 * be reached from here (no remote record): its re-check timer finds the
 * change then. */
static bool wake_waiter(struct green_hub *h, struct fwaiter *w)
{
	struct fgroup *grp = w->group;

	bool first;

	if (grp->hub != h && !grp->remote)
		return false;
	/* Both before w leaves the queue: the waiter, seeing it gone, may
	 * end its wait at once and must know whether a post is coming. */
	first = !__atomic_exchange_n(&grp->woken, true, __ATOMIC_ACQ_REL);
	if (first && grp->hub != h)
		__atomic_store_n(&grp->posted, true, __ATOMIC_RELEASE);
	bucket_remove(w);
	if (!first)
		return true; /* woken by another of its words already */
	if (grp->hub == h)
		green__wake(grp->g, 0);
	else
		green__remote_post(grp->remote, 0);
	return true;
}

/* Wake up to nr green waiters on addr whose bitset meets bitset; h is the
 * caller's hub, or NULL for a thread that has none.  Returns how many. */
static int wake_green(struct green_hub *h, const uint32_t *addr, int nr, uint32_t bitset)
{
	struct bucket *b = bucket_of(addr);
	struct fwaiter *w, *next;
	int woken = 0;

	if (nr <= 0 || table_empty())
		return 0;
	green__spin_lock(&b->lock);
	for (w = b->head; w && woken < nr; w = next) {
		next = w->next;
		if (w->addr == addr && (w->bitset & bitset) && wake_waiter(h, w))
			woken++;
	}
	green__spin_unlock(&b->lock);
	return woken;
}

/* The kernel's count: FUTEX_WAKE of 0 (or less) still wakes one. */
static int wake_count(long val)
{
	int nr = (int)val;

	return nr <= 0 ? 1 : nr;
}

/* FUTEX_WAKE, FUTEX_WAKE_BITSET: green waiters first, the rest in the kernel. */
static long futex_wake(struct green_hub *h, const long *a, uint32_t bitset)
{
	const uint32_t *addr = (const uint32_t *)a[0];
	long k[6] = {a[0], a[1], a[2], a[3], a[4], a[5]};
	int nr = wake_count(a[2]);
	int woken;
	long rc;

	if (bitset == 0 || ((uintptr_t)addr & 3))
		return real_futex(a); /* the kernel's EINVAL */
	woken = wake_green(h, addr, nr, bitset);
	if (woken >= nr)
		return woken;
	if (woken > 0)
		k[2] = nr - woken;
	rc = real_futex(k);
	if (rc < 0)
		return woken > 0 ? woken : rc;
	return woken + rc;
}

/* A wake from a thread without a hub (the shim's own threads, a handler
 * on one of them): remote wake-ups only, with signals held off so that a
 * handler calling this on the same thread cannot meet the locks taken. */
static long futex_wake_outside(const long *a, uint32_t bitset)
{
	sigset_t all, old;
	long rc = real_futex(a);
	int nr = wake_count(a[2]), woken;

	if (rc < 0 || rc >= nr || bitset == 0 || table_empty())
		return rc;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	woken = wake_green(NULL, (const uint32_t *)a[0], nr - (int)rc, bitset);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc + woken;
}

static int64_t ts_ns(const struct timespec *ts)
{
	if (ts->tv_sec > INT64_MAX / GREEN_SEC - 2)
		return INT64_MAX / 2;
	return (int64_t)ts->tv_sec * GREEN_SEC + ts->tv_nsec;
}

/* The monotonic deadline of an absolute time on clock, now. */
static int64_t abs_deadline(clockid_t clock, const struct timespec *ts)
{
	struct timespec now;
	int64_t left;

	if (clock == CLOCK_MONOTONIC)
		return ts_ns(ts);
	clock_gettime(clock, &now);
	left = ts_ns(ts) - ts_ns(&now);
	return green_now() + (left > 0 ? left : 0);
}

/* Take every queued word of the group off its queue: the index of one a
 * waker took meanwhile, or -1. */
static long dequeue_all(struct fgroup *grp)
{
	long idx = -1;

	for (unsigned int i = 0; i < grp->n; i++) {
		struct bucket *b = lock_own_bucket(&grp->w[i]);

		if (!b) {
			if (idx < 0)
				idx = (long)i;
			continue;
		}
		bucket_remove(&grp->w[i]);
		green__spin_unlock(&b->lock);
	}
	return idx;
}

/* The index of a word seen changed (a wake the table missed), or -1. */
static long changed_word(const struct fgroup *grp)
{
	for (unsigned int i = 0; i < grp->n; i++) {
		const struct fwaiter *w = &grp->w[i];

		if (!__atomic_load_n(&w->requeued, __ATOMIC_ACQUIRE) &&
		    __atomic_load_n(__atomic_load_n(&w->addr, __ATOMIC_ACQUIRE),
		                    __ATOMIC_ACQUIRE) != w->val)
			return (long)i;
	}
	return -1;
}

/* Park until woken, the deadline, a handler, or a word is seen changed.
 * Returns the index of the word that ended the wait, or -1 and errno. */
static long wait_parked(struct green_hub *h, struct fgroup *grp, struct shim_intr *in)
{
	int64_t rel_deadline = GREEN_FOREVER, recheck = RECHECK_MIN;
	long idx;
	int err = 0;

	if (grp->ts && !grp->absolute)
		rel_deadline = green_now() + ts_ns(grp->ts);
	for (;;) {
		int64_t deadline = !grp->ts ? GREEN_FOREVER
		                   : grp->absolute ? abs_deadline(grp->clock, grp->ts)
		                                   : rel_deadline;
		int64_t until = green__earlier(deadline, green_now() + recheck);
		int park;

		if (shim_intr_arm(h, in) < 0) {
			park = -1;
		} else {
			/* A re-check is a timer wait that succeeds at its end: it
			 * must not count as a timeout in the hub's stats. */
			park = green__park(h, until == deadline ? GREEN_WAIT_OTHER : GREEN_WAIT_TIMER,
			                   grp->remote ? (const void *)grp->remote
			                               : (const void *)grp->w[0].addr,
			                   until, 0);
			shim_intr_disarm(in);
		}
		err = park < 0 ? errno : 0;
		if (__atomic_load_n(&grp->woken, __ATOMIC_ACQUIRE))
			return dequeue_all(grp); /* whatever else happened meanwhile */
		if (park < 0 && err == EDEADLK) {
			/* This greenlet cannot park (it is dying): the kernel waits. */
			idx = dequeue_all(grp);
			return idx >= 0 ? idx : real()(grp->number, grp->a[0], grp->a[1], grp->a[2],
			                               grp->a[3], grp->a[4], grp->a[5]);
		}
		if (park == 0 || (err == ETIMEDOUT && until != deadline)) {
			/* The re-check timer, or an SA_RESTART handler (the kernel
			 * restarts the wait): the words decide. */
			long changed = changed_word(grp);

			if (changed >= 0) {
				idx = dequeue_all(grp);
				return idx >= 0 ? idx : changed;
			}
			recheck = recheck * 2 > RECHECK_MAX ? RECHECK_MAX : recheck * 2;
			continue;
		}
		idx = dequeue_all(grp);
		if (idx >= 0)
			return idx;
		/* A kill is no futex error: the nearest is a signal's. */
		errno = err == ECANCELED ? EINTR : err;
		return -1;
	}
}

/*
 * Queue every word of the group whose value is as expected and park.  A
 * word that differs ends it with EAGAIN, as in the kernel, unless a waker
 * took one of those already queued.
 */
static long wait_group(struct green_hub *h, struct fgroup *grp, unsigned int n)
{
	struct shim_intr in;
	long rc = 0;
	int err = 0;

	grp->hub = h;
	grp->g = h->current;
	grp->woken = false;
	grp->posted = false;
	grp->n = 0;
	/* A waiter that cannot be woken from another thread still works on
	 * its own hub and by its re-check timer. */
	if (green__remote_begin(h, &grp->remote) < 0)
		grp->remote = NULL;
	/* Before the compare: a handler that runs after it interrupts us. */
	shim_intr_begin(&in, !grp->restartable);
	__atomic_add_fetch(&table_waiters, 1, __ATOMIC_SEQ_CST);
	for (unsigned int i = 0; i < n; i++) {
		struct fwaiter *w = &grp->w[i];
		struct bucket *b = bucket_of(w->addr);

		w->group = grp;
		w->requeued = false;
		green__spin_lock(&b->lock);
		if (__atomic_load_n(w->addr, __ATOMIC_SEQ_CST) != w->val) {
			green__spin_unlock(&b->lock);
			rc = dequeue_all(grp);
			err = EAGAIN;
			break;
		}
		bucket_insert(b, w);
		grp->n++;
		green__spin_unlock(&b->lock);
	}
	if (grp->n == n) {
		rc = wait_parked(h, grp, &in);
		err = errno;
	}
	__atomic_sub_fetch(&table_waiters, 1, __ATOMIC_RELEASE);
	/* Every word is off its queue: no waker can post from now on. */
	if (grp->remote && __atomic_load_n(&grp->posted, __ATOMIC_ACQUIRE))
		green__remote_end(h, grp->remote);
	else if (grp->remote)
		green__remote_abandon(h, grp->remote);
	if (rc < 0)
		errno = err;
	return rc;
}

/* FUTEX_WAIT, FUTEX_WAIT_BITSET. */
static long futex_wait(struct green_hub *h, const long *a, bool bitset_form)
{
	struct fwaiter w = {
		.addr = (const uint32_t *)a[0],
		.val = (uint32_t)a[2],
		.bitset = bitset_form ? (uint32_t)a[5] : FUTEX_BITSET_MATCH_ANY,
	};
	struct fgroup grp = {
		.w = &w,
		.ts = (const struct timespec *)a[3],
		.absolute = bitset_form,
		.clock = ((int)a[1] & FUTEX_CLOCK_REALTIME) ? CLOCK_REALTIME : CLOCK_MONOTONIC,
		.number = SYS_futex,
		.a = a,
	};

	if (w.bitset == 0 || ((uintptr_t)w.addr & 3) || (grp.ts && !shim_ts_valid(grp.ts))) {
		errno = EINVAL;
		return -1;
	}
	if (!w.addr) {
		errno = EFAULT;
		return -1;
	}
	/* The kernel restarts a wait without a timeout after an SA_RESTART
	 * handler; one with a timeout fails with EINTR. */
	grp.restartable = grp.ts == NULL;
	return wait_group(h, &grp, 1);
}

#ifdef SYS_futex_waitv
#define WAITV_ON_STACK 8
#define WAITV_SIZE_U32 2     /* FUTEX2_SIZE_U32 */
#define WAITV_PRIVATE 128    /* FUTEX2_PRIVATE */

/*
 * futex_waitv(waiters, n, flags, timeout, clockid): the same queues, one
 * entry per word, one wake-up for the group.  What is not plainly valid
 * (other sizes, flags the shim does not know) goes to the kernel, which
 * refuses it or, for a kind this code does not know, waits there.
 */
static long futex_waitv(struct green_hub *h, const long *a)
{
	const struct futex_waitv *v = (const struct futex_waitv *)a[0];
	unsigned int n = (unsigned int)a[1];
	const struct timespec *ts = (const struct timespec *)a[3];
	clockid_t clock = (clockid_t)a[4];
	struct fwaiter small[WAITV_ON_STACK], *w = small;
	struct fgroup grp = {.ts = ts, .absolute = true, .clock = clock,
	                     .restartable = true, .number = SYS_futex_waitv, .a = a};
	long rc;

	if (!v || n == 0 || n > FUTEX_WAITV_MAX || a[2] != 0 ||
	    (ts && ((clock != CLOCK_MONOTONIC && clock != CLOCK_REALTIME) || !shim_ts_valid(ts))))
		return real()(SYS_futex_waitv, a[0], a[1], a[2], a[3], a[4], a[5]);
	for (unsigned int i = 0; i < n; i++) {
		if ((v[i].flags & ~(uint32_t)WAITV_PRIVATE) != WAITV_SIZE_U32 || v[i].__reserved ||
		    v[i].val > UINT32_MAX || !v[i].uaddr || (v[i].uaddr & 3))
			return real()(SYS_futex_waitv, a[0], a[1], a[2], a[3], a[4], a[5]);
	}
	if (n > WAITV_ON_STACK) {
		w = calloc(n, sizeof(*w));
		if (!w) {
			errno = ENOMEM;
			return -1;
		}
	}
	for (unsigned int i = 0; i < n; i++) {
		w[i] = (struct fwaiter){.addr = (const uint32_t *)(uintptr_t)v[i].uaddr,
		                        .val = (uint32_t)v[i].val,
		                        .bitset = FUTEX_BITSET_MATCH_ANY};
	}
	grp.w = w;
	rc = wait_group(h, &grp, n);
	if (w != small) {
		int err = errno;

		free(w);
		errno = err;
	}
	return rc;
}
#endif

/* FUTEX_REQUEUE, FUTEX_CMP_REQUEUE: the green waiters on addr are woken or
 * moved to addr2 as the kernel would, then the kernel does the same with
 * what is left of both counts for its own waiters.  Both count the woken
 * and the moved (the kernel does so for FUTEX_REQUEUE too). */
static long futex_requeue(struct green_hub *h, const long *a, bool cmp)
{
	const uint32_t *addr = (const uint32_t *)a[0], *addr2 = (const uint32_t *)a[4];
	int nr_wake = (int)a[2], nr_requeue = (int)a[3];
	struct bucket *b1 = bucket_of(addr), *b2;
	struct fwaiter *w, *next;
	int woken = 0, moved = 0;
	long k[6] = {a[0], a[1], a[2], a[3], a[4], a[5]};
	long rc;

	if (nr_wake < 0 || nr_requeue < 0 || ((uintptr_t)addr & 3) ||
	    ((uintptr_t)addr2 & 3) || !addr || !addr2 || table_empty())
		return real_futex(a);
	b2 = bucket_of(addr2);
	lock_two(b1, b2);
	if (cmp && __atomic_load_n(addr, __ATOMIC_ACQUIRE) != (uint32_t)a[5]) {
		unlock_two(b1, b2);
		errno = EAGAIN;
		return -1;
	}
	for (w = b1->head; w && (woken < nr_wake || moved < nr_requeue); w = next) {
		next = w->next;
		if (w->addr != addr)
			continue;
		if (woken < nr_wake) {
			if (wake_waiter(h, w))
				woken++;
		} else if (addr2 != addr) {
			bucket_remove(w);
			/* Atomic: a waiter re-checks its word without the lock. */
			__atomic_store_n(&w->addr, addr2, __ATOMIC_RELEASE);
			__atomic_store_n(&w->requeued, true, __ATOMIC_RELEASE);
			bucket_insert(b2, w);
			moved++;
		} else {
			moved++;
		}
	}
	unlock_two(b1, b2);
	if (woken == nr_wake && moved == nr_requeue && !cmp)
		return woken + moved;
	k[2] = nr_wake - woken;
	k[3] = nr_requeue - moved;
	rc = real_futex(k);
	if (rc < 0)
		return woken + moved > 0 ? woken + moved : rc;
	return woken + moved + rc;
}

/*
 * FUTEX_WAKE_OP: the kernel changes the second word and wakes its own
 * waiters; the green waiters on both words are then woken as if the
 * comparison had held (a futex wake may always be spurious), after the
 * change, so that none of them can see the old value.
 */
static long futex_wake_op(struct green_hub *h, const long *a)
{
	long rc = real_futex(a);
	int woken;

	if (rc < 0)
		return rc;
	woken = wake_green(h, (const uint32_t *)a[0], wake_count(a[2]), FUTEX_BITSET_MATCH_ANY);
	woken += wake_green(h, (const uint32_t *)a[4], (int)a[3], FUTEX_BITSET_MATCH_ANY);
	return rc + woken;
}

static long futex_call(const long *a)
{
	struct green_hub *h = shim_hub_for(SHIM_THREAD);
	int cmd = (int)a[1] & FUTEX_CMD_MASK;

	if (!h) {
		if ((cmd == FUTEX_WAKE || cmd == FUTEX_WAKE_BITSET) && !green__hub_peek())
			return futex_wake_outside(a, cmd == FUTEX_WAKE ? FUTEX_BITSET_MATCH_ANY
			                                               : (uint32_t)a[5]);
		return real_futex(a);
	}
	switch (cmd) {
	case FUTEX_WAIT:
	case FUTEX_WAIT_BITSET:
		if (shim_alone(h))
			return real_futex(a);
		/* A wait that fails at once is a spin: let the others run. */
		green__fair_point(h);
		return futex_wait(h, a, cmd == FUTEX_WAIT_BITSET);
	case FUTEX_WAKE:
		return futex_wake(h, a, FUTEX_BITSET_MATCH_ANY);
	case FUTEX_WAKE_BITSET:
		return futex_wake(h, a, (uint32_t)a[5]);
	case FUTEX_REQUEUE:
		return futex_requeue(h, a, false);
	case FUTEX_CMP_REQUEUE:
		return futex_requeue(h, a, true);
	case FUTEX_WAKE_OP:
		return futex_wake_op(h, a);
	default:
		/* The priority-inheritance operations: the kernel knows every
		 * green thread of a hub as one thread (one tid), so a PI lock
		 * held by one of them and wanted by another fails with EDEADLK
		 * there instead of blocking. */
		return real_futex(a);
	}
}

/*
 * libc's syscall() reads six long arguments whatever the number, so do we.
 * errno: the futex paths set it themselves, the rest is libc's.
 */
long syscall(long number, ...)
{
	va_list ap;
	long a[6];

	va_start(ap, number);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (number == SYS_futex)
		return futex_call(a);
#ifdef SYS_futex_waitv
	if (number == SYS_futex_waitv) {
		struct green_hub *h = shim_hub_for(SHIM_THREAD);

		if (h && !shim_alone(h)) {
			green__fair_point(h);
			return futex_waitv(h, a);
		}
	}
#endif
	return real()(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
