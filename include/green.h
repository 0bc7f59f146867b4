/*
 * green.h - libgreen, green threads for C on libev: the only public header.
 *
 * Greenlets are stackful coroutines scheduled cooperatively by a per-OS-thread
 * hub that owns a private libev loop.  The API follows gevent (spawn, join,
 * kill, Timeout, Event, Queue, Pool) and libdill's conventions: every call
 * that can fail returns -1 (or NULL) and sets errno, and every blocking call
 * takes an absolute deadline on the monotonic clock in nanoseconds:
 *
 *   GREEN_FOREVER (-1)  wait as long as it takes
 *   GREEN_NOW (0)       do not block: fail with ETIMEDOUT if it would block
 *   green_now() + 50 * GREEN_MSEC
 *
 * Objects a caller can embed (events, locks, queues, timeouts, groups) are
 * caller-owned structs, as libev's watchers are; zero bytes (or the
 * GREEN_*_INIT macros) are a valid initial state.  Their fields are private.
 * Greenlets are opaque reference-counted handles.
 *
 * Everything here belongs to the calling OS thread's hub: a greenlet, and a
 * sync object in use, must not be shared with another OS thread.
 */
#ifndef GREEN_H
#define GREEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GREEN_VERSION_MAJOR 0
#define GREEN_VERSION_MINOR 1
#define GREEN_VERSION_PATCH 0
#define GREEN_VERSION "0.1.0"

#if defined(__GNUC__)
#define GREEN_EXPORT __attribute__((visibility("default")))
#else
#define GREEN_EXPORT
#endif

/* ---- time ---------------------------------------------------------------- */

#define GREEN_FOREVER ((int64_t)-1)
#define GREEN_NOW ((int64_t)0)
#define GREEN_USEC ((int64_t)1000)
#define GREEN_MSEC ((int64_t)1000000)
#define GREEN_SEC ((int64_t)1000000000)

/* CLOCK_MONOTONIC in nanoseconds; the clock every deadline is measured on. */
GREEN_EXPORT int64_t green_now(void);

/* ---- greenlets ----------------------------------------------------------- */

typedef struct green_greenlet green_t;

enum green_state {
	GREEN_READY,    /* spawned or woken, waiting for its turn */
	GREEN_RUNNING,  /* the current greenlet of its hub */
	GREEN_WAITING,  /* parked on an fd, a lock, an event, a join ... */
	GREEN_SLEEPING, /* parked on a timer only (green_sleep) */
	GREEN_DEAD      /* returned, or killed before it started */
};

typedef struct green_attr {
	const char *name;  /* copied; truncated to 31 bytes; NULL = "greenlet-ID" */
	size_t stack_size; /* 0 = GREEN_STACK_SIZE or 256 KiB; see libgreen(3) */
} green_attr_t;

/* Smallest stack libgreen accepts, and the largest that is carved from
 * shared slabs (canary-checked) instead of getting its own guard page. */
#define GREEN_STACK_MIN ((size_t)2048)
#define GREEN_STACK_COMPACT_MAX ((size_t)16384)

/*
 * Create a greenlet that will run fn(arg) in this thread's hub.  It starts
 * when the caller next waits or yields.  Returns a handle holding one
 * reference, which the caller drops with green_release(); NULL and errno
 * (ENOMEM, EINVAL) on failure, and then fn is never called.
 */
GREEN_EXPORT green_t *green_spawn(void *(*fn)(void *), void *arg,
                                  const green_attr_t *attr);
GREEN_EXPORT green_t *green_ref(green_t *g);
GREEN_EXPORT void green_release(green_t *g);

/* The running greenlet: the thread's main greenlet outside any spawned one. */
GREEN_EXPORT green_t *green_current(void);
GREEN_EXPORT bool green_is_main(const green_t *g);

/*
 * Wait until g is dead and store what fn returned in *result (if not NULL).
 * A dead greenlet can be joined any number of times.  Errors: ETIMEDOUT,
 * ECANCELED (the caller was killed), EDEADLK (g is the caller, or nothing
 * else can ever run).
 */
GREEN_EXPORT int green_join(green_t *g, void **result, int64_t deadline);

/*
 * Wait until at least `count` of the n greenlets are dead (0 = all of them).
 * Returns the number that are dead, or -1 with ETIMEDOUT, ECANCELED, EDEADLK.
 */
GREEN_EXPORT int green_joinall(green_t *const *gs, size_t n, size_t count,
                               int64_t deadline);

/*
 * Ask g to finish: its current wait, or its next one, returns -1/ECANCELED
 * once (gevent's GreenletExit) so it can clean up and return.  A greenlet
 * that has not started yet dies without running.  Killing the caller itself
 * makes its next wait fail.  Returns 0, or -1/ESRCH if g is already dead.
 */
GREEN_EXPORT int green_kill(green_t *g);

/* Let every other ready greenlet run once; returns 0 or -1/ECANCELED. */
GREEN_EXPORT int green_yield(void);

/* Sleep until the deadline.  -1/ETIMEDOUT if an enclosing green_timeout
 * expires first, -1/ECANCELED if killed. */
GREEN_EXPORT int green_sleep(int64_t deadline);

GREEN_EXPORT enum green_state green_state(const green_t *g);
GREEN_EXPORT const char *green_state_name(enum green_state state);
GREEN_EXPORT uint64_t green_id(const green_t *g);
GREEN_EXPORT const char *green_name(const green_t *g);
/* What fn returned; NULL while g is not dead. */
GREEN_EXPORT void *green_result(const green_t *g);

/*
 * Call cb(g, arg) when g dies, in the dying greenlet, after its result is
 * set and before joiners wake; immediately if g is already dead.
 * Returns 0, or -1/ENOMEM.
 */
GREEN_EXPORT int green_link(green_t *g, void (*cb)(green_t *g, void *arg),
                            void *arg);

/* ---- scoped timeouts (gevent.Timeout) ------------------------------------ */

typedef struct green_timeout {
	int64_t _deadline;
	int64_t _effective;
	struct green_timeout *_outer;
	green_t *_owner;
} green_timeout_t;

/*
 * Every wait of the calling greenlet between enter and leave fails with
 * ETIMEDOUT once the deadline has passed.  Scopes nest; leave them in reverse
 * order.  green_timeout_leave returns true if this scope's deadline passed.
 */
GREEN_EXPORT void green_timeout_enter(green_timeout_t *t, int64_t deadline);
GREEN_EXPORT bool green_timeout_leave(green_timeout_t *t);
GREEN_EXPORT bool green_timeout_expired(const green_timeout_t *t);

/* ---- synchronisation (one hub only) -------------------------------------- */

/* An intrusive FIFO of waiting greenlets; private. */
struct green__waitq {
	struct green__waiter *_head;
	struct green__waiter *_tail;
};

typedef struct green_event {
	struct green__waitq _waiters;
	bool _set;
} green_event_t;
#define GREEN_EVENT_INIT {{0, 0}, 0}

GREEN_EXPORT void green_event_set(green_event_t *ev);
GREEN_EXPORT void green_event_clear(green_event_t *ev);
GREEN_EXPORT bool green_event_is_set(const green_event_t *ev);
/* Returns 0 once set; -1 with ETIMEDOUT or ECANCELED. */
GREEN_EXPORT int green_event_wait(green_event_t *ev, int64_t deadline);

/* A non-recursive lock with an owner; release by another greenlet is EPERM. */
typedef struct green_lock {
	struct green__waitq _waiters;
	green_t *_owner;
} green_lock_t;
#define GREEN_LOCK_INIT {{0, 0}, 0}

/* EDEADLK if the caller already holds it; ETIMEDOUT; ECANCELED. */
GREEN_EXPORT int green_lock_acquire(green_lock_t *lock, int64_t deadline);
/* 0, or -1/EBUSY. */
GREEN_EXPORT int green_lock_try(green_lock_t *lock);
/* 0, or -1/EPERM if the caller does not hold it. */
GREEN_EXPORT int green_lock_release(green_lock_t *lock);
GREEN_EXPORT green_t *green_lock_owner(const green_lock_t *lock);

typedef struct green_sem {
	struct green__waitq _waiters;
	unsigned int _value;
} green_sem_t;
#define GREEN_SEM_INIT(value) {{0, 0}, (value)}

GREEN_EXPORT void green_sem_init(green_sem_t *sem, unsigned int value);
GREEN_EXPORT int green_sem_acquire(green_sem_t *sem, int64_t deadline);
GREEN_EXPORT int green_sem_try(green_sem_t *sem); /* 0 or -1/EAGAIN */
/* 0, or -1/EOVERFLOW at UINT_MAX. */
GREEN_EXPORT int green_sem_release(green_sem_t *sem);
GREEN_EXPORT unsigned int green_sem_value(const green_sem_t *sem);

typedef struct green_cond {
	struct green__waitq _waiters;
} green_cond_t;
#define GREEN_COND_INIT {{0, 0}}

/*
 * Release lock, wait for a signal, reacquire lock (also on failure, as
 * pthread_cond_timedwait does).  EPERM if the caller does not hold lock.
 */
GREEN_EXPORT int green_cond_wait(green_cond_t *cond, green_lock_t *lock,
                                 int64_t deadline);
GREEN_EXPORT void green_cond_signal(green_cond_t *cond);
GREEN_EXPORT void green_cond_broadcast(green_cond_t *cond);

/* A bounded FIFO of pointers (gevent.queue.Queue(maxsize)). */
typedef struct green_queue {
	struct green__waitq _getters;
	struct green__waitq _putters;
	void **_ring;
	size_t _capacity, _head, _count;
} green_queue_t;

/* capacity >= 1; 0 or -1 with EINVAL, ENOMEM. */
GREEN_EXPORT int green_queue_init(green_queue_t *q, size_t capacity);
/* Wakes every waiter with EPIPE, then frees the ring. */
GREEN_EXPORT void green_queue_destroy(green_queue_t *q);
GREEN_EXPORT int green_queue_put(green_queue_t *q, void *item, int64_t deadline);
GREEN_EXPORT int green_queue_get(green_queue_t *q, void **item, int64_t deadline);
GREEN_EXPORT size_t green_queue_count(const green_queue_t *q);

/* ---- groups and pools ---------------------------------------------------- */

/* A set of greenlets that leave it when they die (gevent.pool.Group). */
typedef struct green_group {
	struct green__member *_members;
	size_t _count;
	size_t _limit; /* 0 = unlimited: a group; otherwise a pool */
	struct green__waitq _waiters;
} green_group_t;
#define GREEN_GROUP_INIT {0, 0, 0, {0, 0}}

typedef green_group_t green_pool_t;
#define GREEN_POOL_INIT(size) {0, 0, (size), {0, 0}}

GREEN_EXPORT void green_group_init(green_group_t *group);
GREEN_EXPORT void green_pool_init(green_pool_t *pool, size_t size);
/*
 * Spawn into the group; for a pool, first wait (until the deadline) while
 * it is full.  The returned greenlet is borrowed: the group holds it until
 * it dies; take green_ref() to keep it longer.  NULL and errno on failure.
 */
GREEN_EXPORT green_t *green_group_spawn(green_group_t *group,
                                        void *(*fn)(void *), void *arg,
                                        const green_attr_t *attr,
                                        int64_t deadline);
GREEN_EXPORT size_t green_group_count(const green_group_t *group);
/* Free slots in a pool (SIZE_MAX for a plain group). */
GREEN_EXPORT size_t green_pool_free_count(const green_pool_t *pool);
/* Wait until the group is empty. */
GREEN_EXPORT int green_group_join(green_group_t *group, int64_t deadline);
/* Kill every member; with a deadline other than GREEN_NOW, wait until the
 * group is empty too. */
GREEN_EXPORT int green_group_kill(green_group_t *group, int64_t deadline);

/* ---- I/O ------------------------------------------------------------------ */

#define GREEN_READ 0x1
#define GREEN_WRITE 0x2

/*
 * Park until fd is readable and/or writable.  Returns the events that are
 * ready (GREEN_READ|GREEN_WRITE), or -1 with ETIMEDOUT, ECANCELED, EBADF
 * (the fd was closed with green_close while we waited), EINVAL.
 */
GREEN_EXPORT int green_wait_fd(int fd, int events, int64_t deadline);

/*
 * "Import green" helpers for programs that call libgreen directly.  They
 * expect a non-blocking fd (O_NONBLOCK or SOCK_NONBLOCK) and wait on the hub
 * whenever the kernel says EAGAIN.  green_write writes everything (or fails,
 * having possibly written a part: see libgreen(3)).
 */
GREEN_EXPORT ssize_t green_read(int fd, void *buf, size_t len, int64_t deadline);
GREEN_EXPORT ssize_t green_write(int fd, const void *buf, size_t len,
                                 int64_t deadline);
GREEN_EXPORT int green_accept(int fd, struct sockaddr *addr, socklen_t *addrlen,
                              int flags, int64_t deadline);
GREEN_EXPORT int green_connect(int fd, const struct sockaddr *addr,
                               socklen_t addrlen, int64_t deadline);
/* Wake every greenlet of this hub waiting on fd with EBADF, then close it. */
GREEN_EXPORT int green_close(int fd);

/* ---- introspection -------------------------------------------------------- */

struct green_stats {
	uint64_t alive;       /* greenlets not dead, main greenlets excluded */
	uint64_t spawned;
	uint64_t finished;
	uint64_t switches;
	uint64_t timeouts;    /* waits that ended in ETIMEDOUT by a deadline */
	uint64_t iterations;  /* hub loop iterations (libev polls) */
	uint64_t blocked;     /* times the hub was kept from polling too long */
	double max_blocking_ms; /* longest the hub was kept from polling */
	uint64_t hubs;        /* hubs summed in this record */
};

/* Counters of the calling thread's hub (all zero if it has none). */
GREEN_EXPORT void green_stats(struct green_stats *out);
/* Counters summed over every hub in the process; safe from any thread. */
GREEN_EXPORT void green_stats_all(struct green_stats *out);
/* Count a "blocked" event when the hub is kept from polling longer than
 * this (0 = never).  Process-wide. */
GREEN_EXPORT void green_set_max_blocking(int64_t ns);

enum green_wait_kind {
	GREEN_WAIT_NONE,
	GREEN_WAIT_FD,
	GREEN_WAIT_TIMER,
	GREEN_WAIT_EVENT,
	GREEN_WAIT_LOCK,
	GREEN_WAIT_SEM,
	GREEN_WAIT_COND,
	GREEN_WAIT_QUEUE,
	GREEN_WAIT_JOIN,
	GREEN_WAIT_GROUP,
	GREEN_WAIT_OTHER
};

struct green_info {
	uint64_t id;
	const char *name;
	enum green_state state;
	enum green_wait_kind wait;
	int fd;               /* GREEN_WAIT_FD: the fd, else -1 */
	int events;           /* GREEN_WAIT_FD: GREEN_READ|GREEN_WRITE */
	const void *object;   /* the lock, event, ... waited on, or NULL */
	int64_t deadline;     /* GREEN_FOREVER when none */
	int64_t age_ns;       /* since spawn */
	size_t stack_size;
	bool main;            /* the thread's main greenlet */
	bool current;
};

/*
 * Call cb for every greenlet of the calling thread's hub that is not dead,
 * the main greenlet included, oldest first; a non-zero return stops the walk
 * and is returned.  cb must not switch.
 */
GREEN_EXPORT int green_walk(int (*cb)(const struct green_info *info, void *arg),
                            void *arg);
GREEN_EXPORT const char *green_wait_kind_name(enum green_wait_kind kind);

#ifdef __cplusplus
}
#endif
#endif /* GREEN_H */
