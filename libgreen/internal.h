/*
 * internal.h - libgreen's private structures, shared by its sources and by
 * the preload shim (which is built from the same objects).  Everything here
 * is prefixed green__ and hidden from the shared library's exports.
 *
 * The waiting protocol, which every blocking primitive follows:
 *   1. link a struct green__waiter (on the waiting greenlet's own stack)
 *      into the object's green__waitq, or start whatever watcher will wake us;
 *   2. green__park(): switches away until green__wake(), the deadline or a
 *      kill; returns 0 or -1 with errno (ETIMEDOUT, ECANCELED, or the code
 *      the waker passed);
 *   3. on failure unlink the waiter (green__waitq_remove is a no-op if the
 *      waker already took it) and stop the watcher.
 * Wakers never hand over ownership directly: a woken greenlet re-checks its
 * condition, so a waiter that timed out can never swallow a wake-up
 * (green__waitq_wake_one skips waiters that are no longer parked).
 */
#ifndef GREEN_INTERNAL_H
#define GREEN_INTERNAL_H

#include "green.h"
#include "arch/ctx.h"
#include "parse.h" /* green__parse_size, the module table */

#include <ev.h>
#include <sys/types.h>
#include <poll.h>
#include <stdint.h>

#define GREEN__HIDDEN __attribute__((visibility("hidden")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GREEN__ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define GREEN__ASAN 1
#endif

/* Counters read by other threads (green_stats_all, the shim's monitor):
 * relaxed atomics compile to plain loads and stores on x86_64 and aarch64. */
#define GREEN__LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define GREEN__STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define GREEN__BUMP(x) GREEN__STORE(x, GREEN__LOAD(x) + 1)

/* ---- wait queues ---------------------------------------------------------- */

struct green__waiter {
	struct green__waiter *next, *prev;
	struct green__waitq *queue; /* NULL once unlinked */
	green_t *g;
	void *data; /* per-primitive payload (queue items) */
};

GREEN__HIDDEN void green__waitq_push(struct green__waitq *q,
                                     struct green__waiter *w, green_t *g);
GREEN__HIDDEN void green__waitq_remove(struct green__waiter *w);
GREEN__HIDDEN struct green__waiter *green__waitq_pop(struct green__waitq *q);
/*
 * Wake the first waiter still parked; returns it, or NULL if none was.  A
 * waiter woken with 0 always sees its park succeed, so a caller may hand
 * the object over to the returned waiter's greenlet (the preload shim's
 * mutexes and semaphores do, for fairness), where libgreen's own
 * primitives let the woken re-check instead.
 */
GREEN__HIDDEN struct green__waiter *green__waitq_wake_one(struct green__waitq *q,
                                                          int code);
/* Wake every waiter; returns how many were still parked. */
GREEN__HIDDEN unsigned int green__waitq_wake_all(struct green__waitq *q, int code);
static inline bool green__waitq_empty(const struct green__waitq *q)
{
	return q->_head == NULL;
}
/* Forget every waiter without waking any (zero bytes are empty too). */
static inline void green__waitq_init(struct green__waitq *q)
{
	q->_head = q->_tail = NULL;
}

/* ---- stacks --------------------------------------------------------------- */

enum green__stack_kind {
	GREEN__STACK_NONE,    /* the thread's own stack (main greenlet) */
	GREEN__STACK_GUARDED, /* own mapping with a PROT_NONE guard page */
	GREEN__STACK_SLAB     /* carved from a slab; canary at the low end */
};

struct green__slab;

struct green__stack {
	void *lo;    /* lowest usable byte */
	size_t size; /* usable bytes */
	enum green__stack_kind kind;
	struct green__slab *slab;
	unsigned int vg_id; /* valgrind's stack id */
};

struct green_hub;
GREEN__HIDDEN int green__stack_alloc(struct green_hub *h, struct green__stack *s,
                                     size_t size);
GREEN__HIDDEN void green__stack_free(struct green_hub *h, struct green__stack *s);
GREEN__HIDDEN void green__stack_check(const green_t *g);
GREEN__HIDDEN void green__stack_hub_init(struct green_hub *h);
GREEN__HIDDEN void green__stack_hub_destroy(struct green_hub *h);
GREEN__HIDDEN size_t green__stack_default_size(void);
GREEN__HIDDEN void green__stack_install_overflow_handler(struct green_hub *h);

/* ---- greenlets ------------------------------------------------------------ */

struct green__link {
	struct green__link *next;
	void (*cb)(green_t *g, void *arg);
	void *arg;
};

struct green__member {
	struct green__member *next, *prev;
	green_group_t *group;
};

struct green_greenlet {
	struct green__ctx ctx;
	struct green_hub *hub;
	green_t *run_next;  /* ready queue */
	int saved_errno;
	enum green_state state;
	bool started;
	bool in_runq;
	bool kill_pending;  /* the next wait returns ECANCELED */
	bool dying;         /* running link callbacks: no more waits */
	bool is_main;
	bool is_hub;
	bool park_nocancel;
	unsigned int refs;

	/* the current park */
	int wake_code;
	enum green_wait_kind wait_kind;
	const void *wait_obj;
	int wait_fd, wait_events;
	int64_t wait_deadline;    /* effective deadline, GREEN_FOREVER if none */
	int64_t wait_own_deadline;
	ev_timer timer;
	ev_io io;
	uint32_t io_gen; /* the fd's gen when io was last set (GREEN__FD_TRACKED) */
	struct green__waiter fd_waiter; /* in the hub's per-fd table */

	green_timeout_t *timeouts; /* innermost active scope */
	struct green__waitq joiners;
	struct green__link *links;
	struct green__member member;

	void *(*fn)(void *);
	void *arg;
	void *result;

	struct green__stack stack;
	green_t *all_next, *all_prev; /* the hub's list, oldest first */
	green_t *free_next;           /* the hub's free list of structs */
	uint64_t id;
	int64_t born_ns;
	void *local; /* owned by the preload shim (its pthread emulation) */

#ifdef GREEN__ASAN
	void *asan_fake_stack;
	const void *asan_bottom;
	size_t asan_size;
#endif
	char name[32];
};

/* ---- hubs ----------------------------------------------------------------- */

struct green__hub_counters {
	uint64_t spawned, finished, switches, timeouts, iterations, blocked;
	int64_t max_blocking_ns;
};

struct green__fdwait {
	struct green__waitq waiters; /* greenlets in green_wait_fd on this fd */
	uint32_t gen; /* bumped when the fd is closed or its number reused */
};

struct green_hub {
	struct ev_loop *loop;
	green_t *current;
	green_t *hub_g;
	green_t main;

	green_t *run_head, *run_tail;
	unsigned int since_poll; /* dispatches since the loop was last polled */
	unsigned int run_len;    /* greenlets in the ready queue */
	unsigned int round_len;  /* ... right after the last poll */
	unsigned int watchers;   /* active watchers libgreen started (see
	                          * green__watch_begin): none means a forced
	                          * poll could find nothing */
	green_t *reap;           /* died; its stack is freed after the switch */
	green_t *reap_later;     /* died while a compact stack ran: the hub
	                          * frees these on its own large stack */

	green_t *all_head, *all_tail;
	uint64_t alive;
	struct green__hub_counters stats;
	int64_t poll_end_ns;         /* when the hub last polled, or marked progress in a round */
	int64_t turn_ns;             /* when the others last had a turn (fairness) */
	green_t *after_poll;         /* queued once the loop has been polled */
	uint64_t current_id;         /* for the monitor thread */
	/* Calls made while no other greenlet could have used the hub: a lone
	 * greenlet's fast-path calls (shim_alone), and fair points that found
	 * nothing else ready or watched.  The hub does not poll meanwhile and
	 * nobody waits for it, so these count as progress for the monitor
	 * thread and note_busy: holding a hub nobody wants blocks no one. */
	uint64_t alone_calls;
	uint64_t alone_calls_polled;  /* alone_calls at the last poll */
	pid_t tid;                   /* the OS thread the hub runs on */
	/* This thread's errno, saved and restored on every switch: reached
	 * through __errno_location, a call into libc, twice a switch. */
	int *errno_loc;

	green_t *free_structs;
	void **struct_chunks;
	size_t n_struct_chunks, cap_struct_chunks;

	struct green__stack *stack_cache; /* guarded stacks kept for reuse */
	size_t stack_cache_count, stack_cache_cap;
	size_t stack_cache_bytes;
	ev_tstamp stack_cache_used; /* the loop's time at the last put or take */
	ev_timer stack_trim;
	struct green__slab_class *slab_classes;

	struct green__fdwait *fdwaits;
	size_t n_fdwaits;

	/* wake-ups posted from other threads (green__remote_*) */
	ev_async async;
	int remote_lock;
	struct green__remote *remote_head;
	unsigned int remote_pending;

	void *altstack;
	struct green_hub *reg_next, *reg_prev; /* process-wide registry */
};

/* Count a watcher the hub's loop must poll for (timers, fd waits). */
static inline void green__watch_begin(struct green_hub *h) { h->watchers++; }
static inline void green__watch_end(struct green_hub *h) { h->watchers--; }

/* The sooner of two deadlines, a negative one meaning none. */
static inline int64_t green__earlier(int64_t a, int64_t b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

/* This thread's hub, created on first use; NULL and errno on failure. */
GREEN__HIDDEN struct green_hub *green__hub(void);
/* This thread's hub if it has one, without creating it. */
GREEN__HIDDEN struct green_hub *green__hub_peek(void);

/*
 * Park the current greenlet (see the protocol above).  kind/obj describe the
 * wait for green_walk; GREEN_WAIT_TIMER makes reaching the deadline a
 * success.  Flags: GREEN__PARK_NOCANCEL ignores kills and scoped timeouts
 * (used to reacquire a lock after a condition wait).
 */
#define GREEN__PARK_NOCANCEL 0x1
GREEN__HIDDEN int green__park(struct green_hub *h, enum green_wait_kind kind,
                              const void *obj, int64_t deadline, int flags);
/*
 * The whole protocol for one wait on q: link a waiter carrying data (a
 * waker may hand something over through it), park, unlink.  Returns 0 when
 * woken, or -1 with errno from green__park.  On success q is not touched
 * again: the object may be gone by the time its waiters run.
 */
GREEN__HIDDEN int green__wait_on(struct green_hub *h, struct green__waitq *q,
                                 enum green_wait_kind kind, const void *obj,
                                 int64_t deadline, int flags, void *data);
/* Make a parked greenlet ready with the given errno (0 = success).
 * Returns false if it was not parked (already woken, running, dead). */
GREEN__HIDDEN bool green__wake(green_t *g, int code);
GREEN__HIDDEN void green__park_timer_init(green_t *g);
/*
 * green_wait_fd with flags.  GREEN__FD_OPEN: the caller's own call on fd has
 * just failed with EAGAIN, so the fd is known to be open and is not checked
 * again.  GREEN__FD_TRACKED: every close of fd and every new fd under that
 * number is reported to this hub (green__fd_wake_all, green__fd_renew), as
 * the preload shim does, so a greenlet waiting again on the same fd for the
 * same events may restart its watcher unchanged; libev then leaves the
 * kernel's epoll set alone instead of re-adding the fd (one failing
 * epoll_ctl per wait).
 */
#define GREEN__FD_OPEN 0x1
#define GREEN__FD_TRACKED 0x2
GREEN__HIDDEN int green__wait_fd(int fd, int events, int64_t deadline, unsigned int flags);
/*
 * What a zero-timeout poll says is ready: the GREEN_ mask, 0 if nothing is,
 * or -1 with errno (EBADF for a closed fd).  As libev does, an error or a
 * hang-up counts as ready for whatever was asked, so that the caller's next
 * call reports it.  poll_fn is poll, or the shim's pointer to libc's.
 */
typedef int (*green__poll_fn)(struct pollfd *fds, nfds_t nfds, int timeout);
GREEN__HIDDEN int green__poll_ready(int fd, int events, green__poll_fn poll_fn);
/* In a fork child, before anything else: the calling thread's hub gets a
 * loop of its own and the locks other threads held are released. */
GREEN__HIDDEN void green__fork_child(void);
/* A new fd now carries this number (socket, accept, pipe, dup): a watcher
 * set for the old one must be set afresh. */
GREEN__HIDDEN void green__fd_renew(struct green_hub *h, int fd);
/* A dying member leaves its group (pool.c). */
GREEN__HIDDEN void green__group_leave(green_t *g);
GREEN__HIDDEN void green__ready(struct green_hub *h, green_t *g);
GREEN__HIDDEN void green__schedule(struct green_hub *h);
GREEN__HIDDEN void green__greenlet_free(struct green_hub *h, green_t *g);
GREEN__HIDDEN green_t *green__greenlet_alloc(struct green_hub *h);
GREEN__HIDDEN void green__greenlet_reap(struct green_hub *h, green_t *g);
GREEN__HIDDEN void green__greenlet_start(void *arg);
GREEN__HIDDEN void green__switch(struct green_hub *h, green_t *from, green_t *to);
GREEN__HIDDEN void green__after_switch(struct green_hub *h, green_t *self);

/* Deadline of the innermost scoped timeout of g (GREEN_FOREVER if none). */
GREEN__HIDDEN int64_t green__scope_deadline(const green_t *g);

/* fd waits, for green_close and the shim's close() */
GREEN__HIDDEN void green__fd_wake_all(struct green_hub *h, int fd, int code);

/*
 * Wake-ups from other OS threads (the shim's DNS pool): the greenlet calls
 * green__remote_begin before handing work to another thread, which calls
 * green__remote_post(token, code) when done; the greenlet parks with
 * GREEN_WAIT_OTHER and calls green__remote_end afterwards.  A post that
 * arrives after the wait ended (timeout, kill) is dropped.
 */
struct green__remote {
	struct green__remote *next;
	struct green_hub *hub;
	green_t *g;
	int code;
	unsigned int refs; /* the waiting greenlet's and the poster's */
	bool posted;
	bool queued;
};
GREEN__HIDDEN int green__remote_begin(struct green_hub *h,
                                      struct green__remote **out);
GREEN__HIDDEN void green__remote_post(struct green__remote *r, int code);
GREEN__HIDDEN void green__remote_end(struct green_hub *h, struct green__remote *r);
/* green__remote_end for a wait that no other thread will ever post to
 * (the token was handed out only in case, and nobody used it). */
GREEN__HIDDEN void green__remote_abandon(struct green_hub *h, struct green__remote *r);

/* Tiny lock for cross-thread state; never held across a switch. */
GREEN__HIDDEN void green__spin_lock(int *lock);
GREEN__HIDDEN void green__spin_unlock(int *lock);

/* Hooks the shim sets so the hub can run its own duties each iteration. */
struct green__hooks {
	void (*before_poll)(struct green_hub *h);
	/* g runs again, on its own stack (the shim's TLS swap); unset for
	 * programs without thread-local data of their own. */
	void (*switched_in)(struct green_hub *h, green_t *g);
	/* Atomic, set by another thread when before_poll has work, cleared
	 * by the hook.  The fast path and the fairness turns look at this,
	 * not at the hook being set: a hook that is merely installed (the
	 * reporter's, in every greend worker) must not cost a lone greenlet
	 * its kernel fast path. */
	int due;
};
extern GREEN__HIDDEN struct green__hooks green__hooks;
extern GREEN__HIDDEN int64_t green__max_blocking_ns;

/*
 * Fairness for calls that could block but found their answer ready (a poll
 * with a zero timeout or a ready fd, a futex word that differs): at most
 * every GREEN__FAIR_NS of such calls, the caller goes to the back of the
 * ready queue behind every greenlet ready now and every one the loop finds
 * ready, so a greenlet spinning on a level-triggered fd cannot starve the
 * others.  1 ms: the turn costs two switches and a non-blocking poll
 * (about 2 us here), 0.2% of the spinner's time, and the others wait at
 * most 1 ms per spinner.  The check reads the clock (vDSO, no system
 * call) only when something else could run.
 */
#define GREEN__FAIR_NS (1 * GREEN_MSEC)
GREEN__HIDDEN void green__fair_yield(struct green_hub *h);
static inline bool green__others_may_run(const struct green_hub *h)
{
	return h->run_head || h->watchers || h->remote_pending ||
	       __atomic_load_n(&green__hooks.due, __ATOMIC_RELAXED);
}
static inline void green__fair_point(struct green_hub *h)
{
	if (!green__others_may_run(h))
		__atomic_store_n(&h->alone_calls, h->alone_calls + 1, __ATOMIC_RELAXED);
	else if (green_now() - h->turn_ns >= GREEN__FAIR_NS)
		green__fair_yield(h);
}

/* The hub's own counters for the monitor thread: current greenlet and when
 * the hub last polled.  Safe from any thread. */
GREEN__HIDDEN void green__hub_snapshot(struct green_hub *h, uint64_t *current_id,
                                       int64_t *poll_end_ns, uint64_t *switches);
GREEN__HIDDEN green_t *green__find(struct green_hub *h, uint64_t id);
/* green_walk over h from another thread, while h's thread sleeps in the
 * kernel with nobody else able to use the hub (the monitor's dump of a
 * program on the fast path).  Greenlet structs live as long as their hub,
 * so the walk is memory-safe even if the hub wakes meanwhile; the dump is
 * then only as exact as a snapshot taken on the fly. */
GREEN__HIDDEN int green__walk_asleep(struct green_hub *h,
                                     int (*cb)(const struct green_info *info, void *arg),
                                     void *arg);
GREEN__HIDDEN uint64_t green__new_id(void);
GREEN__HIDDEN void green__registry_sum(struct green_stats *out,
                                       void (*add)(struct green_stats *out,
                                                   struct green_hub *h));

#endif
