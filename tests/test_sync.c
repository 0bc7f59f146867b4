/*
 * test_sync.c - events, locks, semaphores, condition variables and queues
 * (libgreen/sync.c): wake order, every way a wait can end (deadline,
 * GREEN_NOW, kill, scoped timeouts, deadlock), wake-ups that must not be
 * lost, and the zero-initialised state the preload shim relies on.
 *
 * Races are built from the scheduler's rules rather than from timing: a
 * greenlet that was woken sits in the ready queue until it runs, so killing
 * a parked waiter, or yielding until its timer has made it ready, gives a
 * waiter that "timed out exactly as the object was released" every time.
 * Greenlets only record what happened; the main greenlet asserts.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "green.h"
#include "test_util.h"

#define SHORT (20 * GREEN_MSEC)
#define LONG (10 * GREEN_SEC)

/* blocked_wait() results besides 0 and errno values */
#define NO_COND_LOCK (-100) /* could not take the condition's lock first */
#define LOST_LOCK (-101)    /* green_cond_wait returned without the lock */

/* ---- helpers --------------------------------------------------------------- */

static uint64_t switches(void)
{
	struct green_stats s;

	green_stats(&s);
	return s.switches;
}

static green_t *spawn(void *(*fn)(void *), void *arg)
{
	green_t *g = green_spawn(fn, arg, NULL);

	assert_non_null(g);
	return g;
}

static void join_all(green_t **gs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		join_release(gs[i]);
}

/* 0 for success, else the errno the call left. */
static int err_of(int rc)
{
	return rc == 0 ? 0 : errno;
}

/* Yield until every greenlet of gs is parked. */
static void settle(green_t *const *gs, size_t n)
{
	for (int spins = 0; spins < 100000; spins++) {
		size_t parked = 0;

		for (size_t i = 0; i < n; i++)
			parked += green_state(gs[i]) == GREEN_WAITING;
		if (parked == n)
			return;
		assert_int_equal(green_yield(), 0);
	}
	fail_msg("greenlets never parked");
}

/* Yield until g's wait has ended (by its timer) but g has not run yet.  The
 * main greenlet is in the ready queue whenever the hub polls, so it runs
 * before a greenlet that a timer readies. */
static void yield_until_ready(green_t *g)
{
	while (green_state(g) == GREEN_WAITING)
		assert_int_equal(green_yield(), 0);
	assert_int_equal(green_state(g), GREEN_READY);
}

struct seen {
	uint64_t id;
	bool found;
	enum green_state state;
	enum green_wait_kind wait;
	const void *object;
};

static int seen_cb(const struct green_info *info, void *arg)
{
	struct seen *s = arg;

	if (info->id != s->id)
		return 0;
	s->found = true;
	s->state = info->state;
	s->wait = info->wait;
	s->object = info->object;
	return 1;
}

/* green_walk must show g parked on obj with the given kind. */
static void assert_waiting_on(green_t *g, enum green_wait_kind kind,
                              const void *obj)
{
	struct seen s = { .id = green_id(g) };

	assert_int_equal(green_walk(seen_cb, &s), 1);
	assert_true(s.found);
	assert_int_equal(s.state, GREEN_WAITING);
	assert_string_equal(green_wait_kind_name(s.wait),
	                    green_wait_kind_name(kind));
	assert_ptr_equal(s.object, obj);
}

/* ---- one object of each kind, in a state where a wait blocks ------------------ */

enum prim { P_EVENT, P_LOCK, P_SEM, P_COND, P_GET, P_PUT, P_COUNT };

static const char *const prim_name[P_COUNT] = {
	"event", "lock", "semaphore", "condition", "queue get", "queue put"
};

struct prims {
	green_event_t ev;      /* never set */
	green_lock_t lock;     /* held by the main greenlet */
	green_sem_t sem;       /* value 0 */
	green_cond_t cond;     /* never signalled */
	green_lock_t cond_lock;
	green_queue_t empty;   /* capacity 1, empty: get blocks */
	green_queue_t full;    /* capacity 1, full: put blocks */
};

static void prims_init(struct prims *p)
{
	memset(p, 0, sizeof(*p));
	assert_int_equal(green_lock_try(&p->lock), 0);
	assert_int_equal(green_queue_init(&p->empty, 1), 0);
	assert_int_equal(green_queue_init(&p->full, 1), 0);
	assert_int_equal(green_queue_put(&p->full, p, GREEN_NOW), 0);
}

/* Every waiter must have unlinked itself, whatever ended its wait. */
static void prims_fini(struct prims *p)
{
	assert_null(p->ev._waiters._head);
	assert_null(p->lock._waiters._head);
	assert_null(p->sem._waiters._head);
	assert_null(p->cond._waiters._head);
	assert_null(p->cond_lock._waiters._head);
	assert_null(p->empty._getters._head);
	assert_null(p->empty._putters._head);
	assert_null(p->full._getters._head);
	assert_null(p->full._putters._head);
	assert_null(p->ev._waiters._tail);
	assert_null(p->lock._waiters._tail);
	assert_null(p->sem._waiters._tail);
	assert_null(p->cond._waiters._tail);
	assert_null(p->empty._getters._tail);
	assert_null(p->full._putters._tail);
	assert_null(green_lock_owner(&p->cond_lock));
	if (green_lock_owner(&p->lock) == green_current())
		assert_int_equal(green_lock_release(&p->lock), 0);
	green_queue_destroy(&p->empty);
	green_queue_destroy(&p->full);
}

static const void *prim_object(struct prims *p, enum prim k)
{
	switch (k) {
	case P_EVENT: return &p->ev;
	case P_LOCK: return &p->lock;
	case P_SEM: return &p->sem;
	case P_COND: return &p->cond;
	case P_GET: return &p->empty;
	case P_PUT: return &p->full;
	default: return NULL;
	}
}

static enum green_wait_kind prim_kind(enum prim k)
{
	static const enum green_wait_kind kinds[P_COUNT] = {
		GREEN_WAIT_EVENT, GREEN_WAIT_LOCK, GREEN_WAIT_SEM,
		GREEN_WAIT_COND, GREEN_WAIT_QUEUE, GREEN_WAIT_QUEUE
	};
	return kinds[k];
}

/*
 * Wait on k until the deadline; returns 0 or the errno.  What a successful
 * wait took is given back (a lock is released), except a semaphore unit and
 * a queue item, which count as consumed.  A condition wait takes its lock
 * first and must always come back holding it.
 */
static int blocked_wait(struct prims *p, enum prim k, int64_t deadline)
{
	void *item;
	bool held;
	int rc;

	switch (k) {
	case P_EVENT:
		return err_of(green_event_wait(&p->ev, deadline));
	case P_LOCK:
		rc = err_of(green_lock_acquire(&p->lock, deadline));
		if (rc == 0)
			green_lock_release(&p->lock);
		return rc;
	case P_SEM:
		return err_of(green_sem_acquire(&p->sem, deadline));
	case P_COND:
		if (green_lock_acquire(&p->cond_lock, GREEN_FOREVER) < 0)
			return NO_COND_LOCK;
		rc = err_of(green_cond_wait(&p->cond, &p->cond_lock, deadline));
		held = green_lock_owner(&p->cond_lock) == green_current();
		if (!held || green_lock_release(&p->cond_lock) < 0)
			return LOST_LOCK;
		return rc;
	case P_GET:
		return err_of(green_queue_get(&p->empty, &item, deadline));
	case P_PUT:
		return err_of(green_queue_put(&p->full, p, deadline));
	default:
		return -1;
	}
}

struct job {
	struct prims *p;
	enum prim k;
	int64_t deadline;
	int64_t outer, inner;       /* scoped timeouts (with_scopes) */
	int rc;                     /* the first wait */
	int64_t returned;           /* when it returned */
	int sleep_rc, now_rc;       /* the cleanup after it */
	bool outer_expired, inner_expired;
};

static void *job_wait(void *arg)
{
	struct job *j = arg;

	j->rc = blocked_wait(j->p, j->k, j->deadline);
	j->returned = green_now();
	return NULL;
}

/* The first wait is cancelled; the greenlet can still wait afterwards. */
static void *job_wait_then_clean_up(void *arg)
{
	struct job *j = arg;

	j->rc = blocked_wait(j->p, j->k, j->deadline);
	j->sleep_rc = err_of(green_sleep(green_now() + GREEN_MSEC));
	j->now_rc = blocked_wait(j->p, j->k, GREEN_NOW);
	return NULL;
}

static void *job_with_scopes(void *arg)
{
	struct job *j = arg;
	green_timeout_t outer, inner;

	green_timeout_enter(&outer, j->outer);
	green_timeout_enter(&inner, j->inner);
	j->rc = blocked_wait(j->p, j->k, j->deadline);
	j->returned = green_now();
	j->inner_expired = green_timeout_leave(&inner);
	j->outer_expired = green_timeout_leave(&outer);
	return NULL;
}

/* ---- every wait primitive, every way to end a wait ---------------------------- */

static void test_deadline_expires(void **state)
{
	struct prims p;
	struct job jobs[P_COUNT];
	green_t *gs[P_COUNT];
	struct green_stats before, after;

	prims_init(&p);
	green_stats(&before);
	for (int k = 0; k < P_COUNT; k++) {
		jobs[k] = (struct job){ .p = &p, .k = k };
		jobs[k].deadline = green_now() + SHORT;
		gs[k] = spawn(job_wait, &jobs[k]);
	}
	join_all(gs, P_COUNT);
	green_stats(&after);
	for (int k = 0; k < P_COUNT; k++) {
		print_message("%s\n", prim_name[k]);
		assert_int_equal(jobs[k].rc, ETIMEDOUT);
		assert_true(jobs[k].returned >= jobs[k].deadline);
	}
	assert_true(after.timeouts - before.timeouts >= P_COUNT);
	prims_fini(&p);
	assert_none_alive();
}

struct now_job {
	struct prims *p;
	int rc[P_COUNT];
	uint64_t switched[P_COUNT];
};

static void *now_main(void *arg)
{
	struct now_job *j = arg;

	for (int k = 0; k < P_COUNT; k++) {
		uint64_t before = switches();

		j->rc[k] = blocked_wait(j->p, k, GREEN_NOW);
		j->switched[k] = switches() - before;
	}
	return NULL;
}

static void test_now_never_blocks(void **state)
{
	struct prims p;
	struct now_job j = { .p = &p };
	void *item = NULL;

	prims_init(&p);
	join_release(spawn(now_main, &j));
	for (int k = 0; k < P_COUNT; k++) {
		print_message("%s\n", prim_name[k]);
		assert_int_equal(j.rc[k], ETIMEDOUT);
		assert_int_equal(j.switched[k], 0);
	}

	/* And GREEN_NOW succeeds, without switching, when nothing blocks. */
	uint64_t before = switches();
	green_event_set(&p.ev);
	assert_int_equal(green_event_wait(&p.ev, GREEN_NOW), 0);
	assert_int_equal(green_lock_acquire(&p.cond_lock, GREEN_NOW), 0);
	assert_int_equal(green_lock_release(&p.cond_lock), 0);
	assert_int_equal(green_sem_release(&p.sem), 0);
	assert_int_equal(green_sem_acquire(&p.sem, GREEN_NOW), 0);
	assert_int_equal(green_queue_get(&p.full, &item, GREEN_NOW), 0);
	assert_ptr_equal(item, &p);
	assert_int_equal(green_queue_put(&p.empty, &p, GREEN_NOW), 0);
	assert_int_equal(green_queue_get(&p.empty, &item, GREEN_NOW), 0);
	assert_int_equal(switches(), before);
	/* a passed deadline is as good as GREEN_NOW */
	assert_int_equal(green_sem_acquire(&p.sem, green_now() - GREEN_SEC), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_int_equal(switches(), before);
	prims_fini(&p);
	assert_none_alive();
}

static void test_kill_cancels_once(void **state)
{
	struct prims p;
	struct job jobs[P_COUNT];
	green_t *gs[P_COUNT];

	prims_init(&p);
	for (int k = 0; k < P_COUNT; k++) {
		jobs[k] = (struct job){ .p = &p, .k = k, .deadline = GREEN_FOREVER };
		gs[k] = spawn(job_wait_then_clean_up, &jobs[k]);
	}
	settle(gs, P_COUNT);
	for (int k = 0; k < P_COUNT; k++) {
		assert_waiting_on(gs[k], prim_kind(k), prim_object(&p, k));
		assert_int_equal(green_kill(gs[k]), 0);
	}
	join_all(gs, P_COUNT);
	for (int k = 0; k < P_COUNT; k++) {
		print_message("%s\n", prim_name[k]);
		assert_int_equal(jobs[k].rc, ECANCELED);
		assert_int_equal(jobs[k].sleep_rc, 0);
		assert_int_equal(jobs[k].now_rc, ETIMEDOUT);
	}
	prims_fini(&p);
	assert_none_alive();
}

/* A kill that arrives before the wait makes the wait fail at once. */
static void *kill_self_main(void *arg)
{
	struct job *j = arg;

	green_kill(green_current());
	j->rc = blocked_wait(j->p, j->k, GREEN_FOREVER);
	j->now_rc = blocked_wait(j->p, j->k, GREEN_NOW);
	return NULL;
}

static void test_kill_before_wait(void **state)
{
	struct prims p;
	struct job jobs[P_COUNT];
	green_t *gs[P_COUNT];

	prims_init(&p);
	for (int k = 0; k < P_COUNT; k++) {
		jobs[k] = (struct job){ .p = &p, .k = k };
		gs[k] = spawn(kill_self_main, &jobs[k]);
	}
	join_all(gs, P_COUNT);
	for (int k = 0; k < P_COUNT; k++) {
		print_message("%s\n", prim_name[k]);
		assert_int_equal(jobs[k].rc, ECANCELED);
		assert_int_equal(jobs[k].now_rc, ETIMEDOUT);
	}
	prims_fini(&p);
	assert_none_alive();
}

static int64_t earliest(int64_t a, int64_t b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

static void run_scopes(int64_t deadline, int64_t outer, int64_t inner,
                       bool outer_expires, bool inner_expires)
{
	struct prims p;
	struct job jobs[P_COUNT];
	green_t *gs[P_COUNT];
	int64_t first = earliest(deadline, earliest(outer, inner));

	prims_init(&p);
	for (int k = 0; k < P_COUNT; k++) {
		jobs[k] = (struct job){ .p = &p, .k = k, .deadline = deadline,
		                        .outer = outer, .inner = inner };
		gs[k] = spawn(job_with_scopes, &jobs[k]);
	}
	join_all(gs, P_COUNT);
	for (int k = 0; k < P_COUNT; k++) {
		print_message("%s\n", prim_name[k]);
		assert_int_equal(jobs[k].rc, ETIMEDOUT);
		assert_true(jobs[k].returned >= first);
		assert_int_equal(jobs[k].outer_expired, outer_expires);
		assert_int_equal(jobs[k].inner_expired, inner_expires);
	}
	prims_fini(&p);
	assert_none_alive();
}

static void test_scope_inner_expires(void **state)
{
	int64_t now = green_now();

	run_scopes(GREEN_FOREVER, now + LONG, now + SHORT, false, true);
}

static void test_scope_outer_expires(void **state)
{
	int64_t now = green_now();

	/* The inner scope's own deadline has not passed: it reports false. */
	run_scopes(GREEN_FOREVER, now + SHORT, now + LONG, true, false);
}

static void test_scope_own_deadline_first(void **state)
{
	int64_t now = green_now();

	run_scopes(now + SHORT, now + LONG, GREEN_FOREVER, false, false);
}

/* With nothing else able to run, the main greenlet's wait fails with
 * EDEADLK instead of hanging, and leaves the object clean. */
static void test_main_deadlock(void **state)
{
	struct prims p;

	prims_init(&p);
	for (int k = 0; k < P_COUNT; k++) {
		print_message("%s\n", prim_name[k]);
		/* (the lock: the caller holds it) */
		assert_int_equal(blocked_wait(&p, k, GREEN_FOREVER), EDEADLK);
	}
	prims_fini(&p);
	assert_none_alive();
}

/* ---- a waiter whose wait ended must not swallow a wake-up --------------------- */

static void wake_one_waiter(struct prims *p, enum prim k)
{
	void *item;

	switch (k) {
	case P_LOCK:
		assert_int_equal(green_lock_release(&p->lock), 0);
		break;
	case P_SEM:
		assert_int_equal(green_sem_release(&p->sem), 0);
		break;
	case P_COND:
		green_cond_signal(&p->cond);
		break;
	case P_GET:
		assert_int_equal(green_queue_put(&p->empty, p, GREEN_NOW), 0);
		break;
	case P_PUT:
		assert_int_equal(green_queue_get(&p->full, &item, GREEN_NOW), 0);
		break;
	default:
		fail();
	}
}

/*
 * Waiters A then B.  A's wait ends (killed, or its deadline passes) and,
 * before A runs, the object wakes one waiter: B must get it.
 */
static void run_no_swallow(enum prim k, bool by_kill)
{
	struct prims p;
	struct job a, b;
	green_t *ga, *gb;

	print_message("%s, %s\n", prim_name[k], by_kill ? "kill" : "timeout");
	prims_init(&p);
	a = (struct job){ .p = &p, .k = k };
	a.deadline = by_kill ? GREEN_FOREVER : green_now() + SHORT;
	b = (struct job){ .p = &p, .k = k, .deadline = GREEN_FOREVER };
	ga = spawn(job_wait, &a);
	gb = spawn(job_wait, &b);
	settle((green_t *[]){ ga, gb }, 2);
	if (by_kill)
		assert_int_equal(green_kill(ga), 0);
	else
		yield_until_ready(ga);
	assert_int_equal(green_state(ga), GREEN_READY);
	assert_int_equal(green_state(gb), GREEN_WAITING);

	wake_one_waiter(&p, k);
	assert_int_equal(green_state(gb), GREEN_READY);

	join_release(ga);
	join_release(gb);
	assert_int_equal(a.rc, by_kill ? ECANCELED : ETIMEDOUT);
	assert_int_equal(b.rc, 0);
	if (k == P_SEM)
		assert_int_equal(green_sem_value(&p.sem), 0);
	if (k == P_GET)
		assert_int_equal(green_queue_count(&p.empty), 0);
	if (k == P_PUT)
		assert_int_equal(green_queue_count(&p.full), 1);
	prims_fini(&p);
	assert_none_alive();
}

static void test_no_swallow_after_kill(void **state)
{
	for (int k = P_LOCK; k < P_COUNT; k++)
		run_no_swallow(k, true);
}

static void test_no_swallow_after_timeout(void **state)
{
	for (int k = P_LOCK; k < P_COUNT; k++)
		run_no_swallow(k, false);
}

/* ---- events ------------------------------------------------------------------ */

struct order {
	int seq[8];
	int n;
};

struct orderly {
	struct order *order;
	int index;
	int rc;
	void *item;
	void *shared;
};

static void *event_waiter(void *arg)
{
	struct orderly *o = arg;

	o->rc = err_of(green_event_wait(o->shared, GREEN_FOREVER));
	o->order->seq[o->order->n++] = o->index;
	return NULL;
}

static void test_event_basics(void **state)
{
	green_event_t ev = GREEN_EVENT_INIT;

	assert_false(green_event_is_set(&ev));
	green_event_set(&ev);
	assert_true(green_event_is_set(&ev));
	green_event_set(&ev);
	assert_int_equal(green_event_wait(&ev, GREEN_NOW), 0);
	assert_int_equal(green_event_wait(&ev, GREEN_FOREVER), 0);
	green_event_clear(&ev);
	assert_false(green_event_is_set(&ev));
	assert_int_equal(green_event_wait(&ev, GREEN_NOW), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_null(ev._waiters._head);
	assert_none_alive();
}

static void test_event_wakes_all_in_order(void **state)
{
	green_event_t ev;
	struct order order = {0};
	struct orderly os[3];
	green_t *gs[3];

	memset(&ev, 0, sizeof(ev));
	for (int i = 0; i < 3; i++) {
		os[i] = (struct orderly){ .order = &order, .index = i, .shared = &ev };
		gs[i] = spawn(event_waiter, &os[i]);
	}
	settle(gs, 3);
	assert_int_equal(order.n, 0);
	green_event_set(&ev);
	for (int i = 0; i < 3; i++)
		assert_int_equal(green_state(gs[i]), GREEN_READY);
	join_all(gs, 3);
	assert_int_equal(order.n, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(os[i].rc, 0);
		assert_int_equal(order.seq[i], i);
	}
	assert_null(ev._waiters._head);
	assert_none_alive();
}

/* A waiter woken by set returns 0 even if the event is cleared before it
 * runs (gevent's semantics): set is an edge the waiter has seen. */
static void test_event_set_then_clear(void **state)
{
	green_event_t ev = GREEN_EVENT_INIT;
	struct order order = {0};
	struct orderly o = { .order = &order, .shared = &ev };
	green_t *g = spawn(event_waiter, &o);

	settle(&g, 1);
	green_event_set(&ev);
	green_event_clear(&ev);
	join_release(g);
	assert_int_equal(o.rc, 0);
	assert_int_equal(order.n, 1);
	assert_none_alive();
}

/* The event lives on the setter's stack, which is gone by the time the
 * waiter runs: a woken waiter must not look at the event again. */
struct stack_event {
	green_event_t *ev;
	int rc;
};

static void *event_setter(void *arg)
{
	struct stack_event *se = arg;
	green_event_t ev = GREEN_EVENT_INIT;

	se->ev = &ev;
	green_yield(); /* the waiter parks */
	green_event_set(&ev);
	se->ev = NULL;
	return NULL;
}

static void *event_stack_waiter(void *arg)
{
	struct stack_event *se = arg;

	while (!se->ev)
		green_yield();
	se->rc = err_of(green_event_wait(se->ev, GREEN_FOREVER));
	return NULL;
}

static void test_event_owned_by_setter(void **state)
{
	struct stack_event se = { .rc = -1 };
	green_t *waiter = spawn(event_stack_waiter, &se);
	green_t *setter = spawn(event_setter, &se);

	join_release(setter);
	join_release(waiter);
	assert_int_equal(se.rc, 0);
	assert_none_alive();
}

/* ---- locks ------------------------------------------------------------------- */

static void *lock_waiter(void *arg)
{
	struct orderly *o = arg;
	green_lock_t *lock = o->shared;

	o->rc = err_of(green_lock_acquire(lock, GREEN_FOREVER));
	if (o->rc == 0) {
		o->order->seq[o->order->n++] = o->index;
		if (green_lock_owner(lock) != green_current())
			o->rc = -1;
		else
			o->rc = err_of(green_lock_release(lock));
	}
	return NULL;
}

static void *lock_release_foreign(void *arg)
{
	green_lock_t *lock = arg;

	return (void *)(intptr_t)err_of(green_lock_release(lock));
}

static void test_lock_errors(void **state)
{
	green_lock_t lock = GREEN_LOCK_INIT;
	green_t *g;
	void *res;

	assert_null(green_lock_owner(&lock));
	assert_int_equal(green_lock_release(&lock), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(green_lock_acquire(&lock, GREEN_FOREVER), 0);
	assert_ptr_equal(green_lock_owner(&lock), green_current());
	/* non-recursive: the owner deadlocks with itself, whatever the deadline */
	assert_int_equal(green_lock_acquire(&lock, GREEN_FOREVER), -1);
	assert_int_equal(errno, EDEADLK);
	assert_int_equal(green_lock_acquire(&lock, GREEN_NOW), -1);
	assert_int_equal(errno, EDEADLK);
	assert_int_equal(green_lock_try(&lock), -1);
	assert_int_equal(errno, EBUSY);

	/* another greenlet may not release it */
	g = spawn(lock_release_foreign, &lock);
	assert_int_equal(green_join(g, &res, GREEN_FOREVER), 0);
	green_release(g);
	assert_int_equal((int)(intptr_t)res, EPERM);
	assert_ptr_equal(green_lock_owner(&lock), green_current());

	assert_int_equal(green_lock_release(&lock), 0);
	assert_null(green_lock_owner(&lock));
	assert_int_equal(green_lock_release(&lock), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(green_lock_try(&lock), 0);
	assert_int_equal(green_lock_release(&lock), 0);
	assert_none_alive();
}

static void test_lock_fifo(void **state)
{
	green_lock_t lock = GREEN_LOCK_INIT;
	struct order order = {0};
	struct orderly os[4];
	green_t *gs[4];

	assert_int_equal(green_lock_acquire(&lock, GREEN_FOREVER), 0);
	for (int i = 0; i < 4; i++) {
		os[i] = (struct orderly){ .order = &order, .index = i, .shared = &lock };
		gs[i] = spawn(lock_waiter, &os[i]);
	}
	settle(gs, 4);
	assert_int_equal(green_lock_release(&lock), 0);
	/* one release wakes one waiter */
	assert_int_equal(green_state(gs[0]), GREEN_READY);
	for (int i = 1; i < 4; i++)
		assert_int_equal(green_state(gs[i]), GREEN_WAITING);
	join_all(gs, 4);
	assert_int_equal(order.n, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(os[i].rc, 0);
		assert_int_equal(order.seq[i], i);
	}
	assert_null(green_lock_owner(&lock));
	assert_null(lock._waiters._head);
	assert_none_alive();
}

/* Release only wakes: if the lock is taken again before the woken waiter
 * runs, it finds the lock held and waits again. */
static void test_lock_woken_waiter_rechecks(void **state)
{
	green_lock_t lock = GREEN_LOCK_INIT;
	struct order order = {0};
	struct orderly o = { .order = &order, .shared = &lock };
	green_t *g;

	assert_int_equal(green_lock_acquire(&lock, GREEN_FOREVER), 0);
	g = spawn(lock_waiter, &o);
	settle(&g, 1);
	assert_int_equal(green_lock_release(&lock), 0);
	assert_int_equal(green_state(g), GREEN_READY);
	assert_null(green_lock_owner(&lock)); /* not handed over */
	assert_int_equal(green_lock_acquire(&lock, GREEN_NOW), 0);
	settle(&g, 1);
	assert_waiting_on(g, GREEN_WAIT_LOCK, &lock);
	assert_int_equal(order.n, 0);
	assert_int_equal(green_lock_release(&lock), 0);
	join_release(g);
	assert_int_equal(o.rc, 0);
	assert_int_equal(order.n, 1);
	assert_none_alive();
}

struct exclusion {
	green_lock_t lock;
	bool inside;
	bool overlap;
	int count;
	int failures;
};

static void *exclusion_worker(void *arg)
{
	struct exclusion *x = arg;

	for (int i = 0; i < 50; i++) {
		if (green_lock_acquire(&x->lock, GREEN_FOREVER) < 0) {
			x->failures++;
			continue;
		}
		if (x->inside)
			x->overlap = true;
		x->inside = true;
		green_yield();
		x->count++;
		x->inside = false;
		if (green_lock_release(&x->lock) < 0)
			x->failures++;
		if (i % 3 == 0)
			green_yield();
	}
	return NULL;
}

static void test_lock_mutual_exclusion(void **state)
{
	struct exclusion x = {0};
	green_t *gs[5];

	for (int i = 0; i < 5; i++)
		gs[i] = spawn(exclusion_worker, &x);
	join_all(gs, 5);
	assert_false(x.overlap);
	assert_int_equal(x.failures, 0);
	assert_int_equal(x.count, 250);
	assert_null(green_lock_owner(&x.lock));
	assert_none_alive();
}

/* ---- semaphores -------------------------------------------------------------- */

static void *sem_waiter(void *arg)
{
	struct orderly *o = arg;

	o->rc = err_of(green_sem_acquire(o->shared, GREEN_FOREVER));
	o->order->seq[o->order->n++] = o->index;
	return NULL;
}

static void test_sem_basics(void **state)
{
	green_sem_t sem = GREEN_SEM_INIT(2);

	assert_int_equal(green_sem_value(&sem), 2);
	assert_int_equal(green_sem_try(&sem), 0);
	assert_int_equal(green_sem_acquire(&sem, GREEN_NOW), 0);
	assert_int_equal(green_sem_value(&sem), 0);
	assert_int_equal(green_sem_try(&sem), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(green_sem_release(&sem), 0);
	assert_int_equal(green_sem_value(&sem), 1);

	green_sem_init(&sem, 5);
	assert_int_equal(green_sem_value(&sem), 5);
	assert_null(sem._waiters._head);
	assert_none_alive();
}

static void test_sem_overflow(void **state)
{
	green_sem_t sem = GREEN_SEM_INIT(UINT_MAX - 1);

	assert_int_equal(green_sem_release(&sem), 0);
	assert_int_equal(green_sem_value(&sem), UINT_MAX);
	assert_int_equal(green_sem_release(&sem), -1);
	assert_int_equal(errno, EOVERFLOW);
	assert_int_equal(green_sem_value(&sem), UINT_MAX);
	assert_int_equal(green_sem_try(&sem), 0);
	assert_int_equal(green_sem_release(&sem), 0);
	assert_int_equal(green_sem_value(&sem), UINT_MAX);
	assert_none_alive();
}

static void test_sem_fifo(void **state)
{
	green_sem_t sem;
	struct order order = {0};
	struct orderly os[3];
	green_t *gs[3];

	green_sem_init(&sem, 0);
	for (int i = 0; i < 3; i++) {
		os[i] = (struct orderly){ .order = &order, .index = i, .shared = &sem };
		gs[i] = spawn(sem_waiter, &os[i]);
	}
	settle(gs, 3);
	for (int i = 0; i < 3; i++) {
		/* each release wakes exactly the next waiter */
		assert_int_equal(green_sem_release(&sem), 0);
		for (int j = 0; j < 3; j++)
			assert_int_equal(green_state(gs[j]),
			                 j <= i ? GREEN_READY : GREEN_WAITING);
	}
	join_all(gs, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(os[i].rc, 0);
		assert_int_equal(order.seq[i], i);
	}
	assert_int_equal(green_sem_value(&sem), 0);
	assert_none_alive();
}

static void test_sem_woken_waiter_rechecks(void **state)
{
	green_sem_t sem = GREEN_SEM_INIT(0);
	struct order order = {0};
	struct orderly o = { .order = &order, .shared = &sem };
	green_t *g = spawn(sem_waiter, &o);

	settle(&g, 1);
	assert_int_equal(green_sem_release(&sem), 0);
	assert_int_equal(green_state(g), GREEN_READY);
	assert_int_equal(green_sem_try(&sem), 0); /* taken before it runs */
	settle(&g, 1);
	assert_waiting_on(g, GREEN_WAIT_SEM, &sem);
	assert_int_equal(green_sem_release(&sem), 0);
	join_release(g);
	assert_int_equal(o.rc, 0);
	assert_int_equal(green_sem_value(&sem), 0);
	assert_none_alive();
}

/* ---- condition variables ----------------------------------------------------- */

struct cond_pair {
	green_lock_t lock;
	green_cond_t cond;
};

static void *cond_waiter(void *arg)
{
	struct orderly *o = arg;
	struct cond_pair *c = o->shared;

	if (green_lock_acquire(&c->lock, GREEN_FOREVER) < 0) {
		o->rc = NO_COND_LOCK;
		return NULL;
	}
	o->rc = err_of(green_cond_wait(&c->cond, &c->lock, GREEN_FOREVER));
	o->order->seq[o->order->n++] = o->index;
	if (green_lock_owner(&c->lock) != green_current())
		o->rc = LOST_LOCK;
	green_lock_release(&c->lock);
	return NULL;
}

struct holder {
	green_lock_t *lock;
	green_event_t done;
	int rc;
};

static void *lock_holder(void *arg)
{
	struct holder *h = arg;

	h->rc = err_of(green_lock_acquire(h->lock, GREEN_FOREVER));
	if (h->rc == 0) {
		h->rc = err_of(green_event_wait(&h->done, GREEN_FOREVER));
		green_lock_release(h->lock);
	}
	return NULL;
}

static void test_cond_needs_lock(void **state)
{
	struct cond_pair c = {0};
	struct holder h = { .lock = &c.lock };
	green_t *g;

	/* held by nobody */
	assert_int_equal(green_cond_wait(&c.cond, &c.lock, GREEN_FOREVER), -1);
	assert_int_equal(errno, EPERM);

	/* held by another greenlet */
	g = spawn(lock_holder, &h);
	settle(&g, 1);
	assert_ptr_equal(green_lock_owner(&c.lock), g);
	assert_int_equal(green_cond_wait(&c.cond, &c.lock, GREEN_FOREVER), -1);
	assert_int_equal(errno, EPERM);
	assert_ptr_equal(green_lock_owner(&c.lock), g);
	green_event_set(&h.done);
	join_release(g);
	assert_int_equal(h.rc, 0);
	assert_null(green_lock_owner(&c.lock));
	assert_null(c.cond._waiters._head);
	assert_none_alive();
}

/* Failed waits come back holding the lock too (pthread_cond_timedwait). */
static void test_cond_timeout_keeps_lock(void **state)
{
	struct cond_pair c = {0};
	int64_t deadline;

	assert_int_equal(green_lock_acquire(&c.lock, GREEN_FOREVER), 0);
	assert_int_equal(green_cond_wait(&c.cond, &c.lock, GREEN_NOW), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_ptr_equal(green_lock_owner(&c.lock), green_current());
	deadline = green_now() + SHORT;
	assert_int_equal(green_cond_wait(&c.cond, &c.lock, deadline), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_true(green_now() >= deadline);
	assert_ptr_equal(green_lock_owner(&c.lock), green_current());
	assert_int_equal(green_lock_release(&c.lock), 0);
	assert_null(c.cond._waiters._head);
	assert_none_alive();
}

static void test_cond_signal_fifo(void **state)
{
	struct cond_pair c = {0};
	struct order order = {0};
	struct orderly os[3];
	green_t *gs[3];

	for (int i = 0; i < 3; i++) {
		os[i] = (struct orderly){ .order = &order, .index = i, .shared = &c };
		gs[i] = spawn(cond_waiter, &os[i]);
	}
	settle(gs, 3);
	assert_null(green_lock_owner(&c.lock));
	for (int i = 0; i < 3; i++) {
		green_cond_signal(&c.cond);
		for (int j = 0; j < 3; j++)
			assert_int_equal(green_state(gs[j]),
			                 j <= i ? GREEN_READY : GREEN_WAITING);
	}
	green_cond_signal(&c.cond); /* nobody left: a no-op */
	join_all(gs, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(os[i].rc, 0);
		assert_int_equal(order.seq[i], i);
	}
	assert_none_alive();
}

/* Broadcast wakes everyone; they take the lock one at a time, in order,
 * while the broadcaster still holds it. */
static void test_cond_broadcast(void **state)
{
	struct cond_pair c = {0};
	struct order order = {0};
	struct orderly os[4];
	green_t *gs[4];

	for (int i = 0; i < 4; i++) {
		os[i] = (struct orderly){ .order = &order, .index = i, .shared = &c };
		gs[i] = spawn(cond_waiter, &os[i]);
	}
	settle(gs, 4);
	assert_int_equal(green_lock_acquire(&c.lock, GREEN_FOREVER), 0);
	green_cond_broadcast(&c.cond);
	settle(gs, 4); /* now parked on the lock */
	for (int i = 0; i < 4; i++)
		assert_waiting_on(gs[i], GREEN_WAIT_LOCK, &c.lock);
	assert_int_equal(order.n, 0);
	assert_int_equal(green_lock_release(&c.lock), 0);
	join_all(gs, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(os[i].rc, 0);
		assert_int_equal(order.seq[i], i);
	}
	assert_null(c.cond._waiters._head);
	assert_null(c.lock._waiters._head);
	assert_none_alive();
}

struct reacquire {
	struct cond_pair c;
	bool released;          /* set by the main greenlet as it lets go */
	int64_t inner_deadline;
	int rc;
	bool held, saw_release, inner_expired;
	int yield1, yield2;
};

/* The signal arrives; a kill arrives while taking the lock back.  The wait
 * still succeeds holding the lock, and the kill hits the next wait, once. */
static void *reacquire_killed(void *arg)
{
	struct reacquire *r = arg;

	green_lock_acquire(&r->c.lock, GREEN_FOREVER);
	r->rc = err_of(green_cond_wait(&r->c.cond, &r->c.lock, GREEN_FOREVER));
	r->held = green_lock_owner(&r->c.lock) == green_current();
	r->saw_release = r->released;
	green_lock_release(&r->c.lock);
	r->yield1 = err_of(green_yield());
	r->yield2 = err_of(green_yield());
	return NULL;
}

static void test_cond_reacquire_ignores_kill(void **state)
{
	struct reacquire r = {0};
	green_t *g = spawn(reacquire_killed, &r);

	settle(&g, 1);
	assert_waiting_on(g, GREEN_WAIT_COND, &r.c.cond);
	assert_int_equal(green_lock_acquire(&r.c.lock, GREEN_FOREVER), 0);
	green_cond_signal(&r.c.cond);
	settle(&g, 1);
	assert_waiting_on(g, GREEN_WAIT_LOCK, &r.c.lock);
	assert_int_equal(green_kill(g), 0);
	assert_int_equal(green_state(g), GREEN_WAITING);
	r.released = true;
	assert_int_equal(green_lock_release(&r.c.lock), 0);
	join_release(g);
	assert_int_equal(r.rc, 0);
	assert_true(r.held);
	assert_true(r.saw_release);
	assert_int_equal(r.yield1, ECANCELED);
	assert_int_equal(r.yield2, 0);
	assert_none_alive();
}

/* An enclosing scope expires during the wait; taking the lock back ignores
 * it and waits until the holder lets go. */
static void *reacquire_scoped(void *arg)
{
	struct reacquire *r = arg;
	green_timeout_t outer, inner;

	green_timeout_enter(&outer, green_now() + LONG);
	green_timeout_enter(&inner, r->inner_deadline);
	green_lock_acquire(&r->c.lock, GREEN_FOREVER);
	r->rc = err_of(green_cond_wait(&r->c.cond, &r->c.lock, GREEN_FOREVER));
	r->held = green_lock_owner(&r->c.lock) == green_current();
	r->saw_release = r->released;
	green_lock_release(&r->c.lock);
	r->inner_expired = green_timeout_leave(&inner);
	green_timeout_leave(&outer);
	return NULL;
}

static void test_cond_reacquire_ignores_scope(void **state)
{
	struct reacquire r = {0};
	green_t *g;

	r.inner_deadline = green_now() + SHORT;
	g = spawn(reacquire_scoped, &r);
	settle(&g, 1);
	assert_int_equal(green_lock_acquire(&r.c.lock, GREEN_FOREVER), 0);
	yield_until_ready(g); /* its scope expired */
	settle(&g, 1);        /* and it waits for the lock we hold */
	assert_waiting_on(g, GREEN_WAIT_LOCK, &r.c.lock);
	assert_true(green_now() >= r.inner_deadline);
	r.released = true;
	assert_int_equal(green_lock_release(&r.c.lock), 0);
	join_release(g);
	assert_int_equal(r.rc, ETIMEDOUT);
	assert_true(r.held);
	assert_true(r.saw_release);
	assert_true(r.inner_expired);
	assert_null(r.c.cond._waiters._head);
	assert_none_alive();
}

/* The one way out of green_cond_wait without the lock: the main greenlet
 * waits to take it back from a greenlet that can never run again.  The hub
 * fails that wait with EDEADLK rather than hang, and so do we. */
struct stuck_holder {
	struct cond_pair c;
	green_event_t never;
	int rc;
};

static void *signal_then_hold(void *arg)
{
	struct stuck_holder *s = arg;

	green_lock_acquire(&s->c.lock, GREEN_FOREVER);
	green_cond_signal(&s->c.cond);
	s->rc = err_of(green_event_wait(&s->never, GREEN_FOREVER));
	green_lock_release(&s->c.lock);
	return NULL;
}

static void test_cond_reacquire_deadlock(void **state)
{
	struct stuck_holder s = {0};
	green_t *g;

	assert_int_equal(green_lock_acquire(&s.c.lock, GREEN_FOREVER), 0);
	g = spawn(signal_then_hold, &s);
	assert_int_equal(green_cond_wait(&s.c.cond, &s.c.lock, GREEN_FOREVER), -1);
	assert_int_equal(errno, EDEADLK);
	assert_ptr_equal(green_lock_owner(&s.c.lock), g);
	assert_null(s.c.lock._waiters._head);
	assert_null(s.c.cond._waiters._head);
	green_event_set(&s.never);
	join_release(g);
	assert_int_equal(s.rc, 0);
	assert_null(green_lock_owner(&s.c.lock));
	assert_none_alive();
}

#define PC_SLOTS 4
#define PC_PRODUCERS 3
#define PC_CONSUMERS 3
#define PC_ITEMS 200

struct pc {
	green_lock_t lock;
	green_cond_t not_full, not_empty;
	int buf[PC_SLOTS];
	int head, count;
	int producers_left;
	int next[PC_PRODUCERS]; /* next item expected from each producer */
	long sum;
	int got;
	int errors;
};

struct pc_arg {
	struct pc *pc;
	int id;
};

static void *cond_producer(void *arg)
{
	struct pc_arg *a = arg;
	struct pc *pc = a->pc;

	for (int i = 0; i < PC_ITEMS; i++) {
		if (green_lock_acquire(&pc->lock, GREEN_FOREVER) < 0) {
			pc->errors++;
			return NULL;
		}
		while (pc->count == PC_SLOTS) {
			if (green_cond_wait(&pc->not_full, &pc->lock,
			                    GREEN_FOREVER) < 0) {
				pc->errors++;
				green_lock_release(&pc->lock);
				return NULL;
			}
		}
		pc->buf[(pc->head + pc->count) % PC_SLOTS] = a->id * 1000 + i;
		pc->count++;
		green_cond_signal(&pc->not_empty);
		green_lock_release(&pc->lock);
		if (i % (a->id + 2) == 0)
			green_yield();
	}
	green_lock_acquire(&pc->lock, GREEN_FOREVER);
	if (--pc->producers_left == 0)
		green_cond_broadcast(&pc->not_empty);
	green_lock_release(&pc->lock);
	return NULL;
}

static void *cond_consumer(void *arg)
{
	struct pc_arg *a = arg;
	struct pc *pc = a->pc;

	if (green_lock_acquire(&pc->lock, GREEN_FOREVER) < 0) {
		pc->errors++;
		return NULL;
	}
	for (;;) {
		int v;

		while (pc->count == 0 && pc->producers_left > 0) {
			if (green_cond_wait(&pc->not_empty, &pc->lock,
			                    GREEN_FOREVER) < 0) {
				pc->errors++;
				green_lock_release(&pc->lock);
				return NULL;
			}
		}
		if (pc->count == 0)
			break;
		v = pc->buf[pc->head];
		pc->head = (pc->head + 1) % PC_SLOTS;
		pc->count--;
		if (v % 1000 != pc->next[v / 1000]++)
			pc->errors++;
		pc->sum += v;
		pc->got++;
		green_cond_signal(&pc->not_full);
		if (pc->got % (a->id + 3) == 0) {
			green_lock_release(&pc->lock);
			green_yield();
			green_lock_acquire(&pc->lock, GREEN_FOREVER);
		}
	}
	green_lock_release(&pc->lock);
	return NULL;
}

static void test_cond_producer_consumer(void **state)
{
	struct pc pc = { .producers_left = PC_PRODUCERS };
	struct pc_arg args[PC_PRODUCERS + PC_CONSUMERS];
	green_t *gs[PC_PRODUCERS + PC_CONSUMERS];
	long want = 0;
	int n = 0;

	/* consumers first, so they start out waiting */
	for (int i = 0; i < PC_CONSUMERS; i++, n++) {
		args[n] = (struct pc_arg){ &pc, i };
		gs[n] = spawn(cond_consumer, &args[n]);
	}
	for (int i = 0; i < PC_PRODUCERS; i++, n++) {
		args[n] = (struct pc_arg){ &pc, i };
		gs[n] = spawn(cond_producer, &args[n]);
		for (int j = 0; j < PC_ITEMS; j++)
			want += i * 1000 + j;
	}
	join_all(gs, n);
	assert_int_equal(pc.errors, 0);
	assert_int_equal(pc.got, PC_PRODUCERS * PC_ITEMS);
	assert_int_equal(pc.sum, want);
	assert_int_equal(pc.count, 0);
	assert_null(green_lock_owner(&pc.lock));
	assert_null(pc.not_full._waiters._head);
	assert_null(pc.not_empty._waiters._head);
	assert_none_alive();
}

/* ---- queues ------------------------------------------------------------------ */

static void *getter(void *arg)
{
	struct orderly *o = arg;

	o->rc = err_of(green_queue_get(o->shared, &o->item, GREEN_FOREVER));
	o->order->seq[o->order->n++] = o->index;
	return NULL;
}

static void *putter(void *arg)
{
	struct orderly *o = arg;

	o->rc = err_of(green_queue_put(o->shared, o->item, GREEN_FOREVER));
	o->order->seq[o->order->n++] = o->index;
	return NULL;
}

static void test_queue_basics(void **state)
{
	green_queue_t q;
	int items[5];
	void *item;

	assert_int_equal(green_queue_init(&q, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(green_queue_init(&q, SIZE_MAX / 2), -1);
	assert_int_equal(errno, ENOMEM);

	assert_int_equal(green_queue_init(&q, 3), 0);
	assert_int_equal(green_queue_count(&q), 0);
	assert_int_equal(green_queue_get(&q, &item, GREEN_NOW), -1);
	assert_int_equal(errno, ETIMEDOUT);
	/* wrap around the ring a few times */
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 3; i++)
			assert_int_equal(green_queue_put(&q, &items[i + round % 3],
			                                 GREEN_NOW), 0);
		assert_int_equal(green_queue_count(&q), 3);
		assert_int_equal(green_queue_put(&q, &items[4], GREEN_NOW), -1);
		assert_int_equal(errno, ETIMEDOUT);
		for (int i = 0; i < 3; i++) {
			assert_int_equal(green_queue_get(&q, &item, GREEN_NOW), 0);
			assert_ptr_equal(item, &items[i + round % 3]);
		}
		assert_int_equal(green_queue_put(&q, NULL, GREEN_NOW), 0);
		assert_int_equal(green_queue_get(&q, NULL, GREEN_NOW), 0);
	}
	assert_int_equal(green_queue_count(&q), 0);
	green_queue_destroy(&q);
	assert_none_alive();
}

static void test_queue_getters_fifo(void **state)
{
	green_queue_t q;
	struct order order = {0};
	struct orderly os[3];
	green_t *gs[3];
	int items[3];

	assert_int_equal(green_queue_init(&q, 2), 0);
	for (int i = 0; i < 3; i++) {
		os[i] = (struct orderly){ .order = &order, .index = i, .shared = &q };
		gs[i] = spawn(getter, &os[i]);
	}
	settle(gs, 3);
	for (int i = 0; i < 3; i++)
		assert_waiting_on(gs[i], GREEN_WAIT_QUEUE, &q);
	for (int i = 0; i < 2; i++) {
		/* each put wakes exactly the next getter */
		assert_int_equal(green_queue_put(&q, &items[i], GREEN_NOW), 0);
		for (int j = 0; j < 3; j++)
			assert_int_equal(green_state(gs[j]),
			                 j <= i ? GREEN_READY : GREEN_WAITING);
	}
	assert_int_equal(green_queue_put(&q, &items[2], GREEN_FOREVER), 0);
	join_all(gs, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(os[i].rc, 0);
		assert_ptr_equal(os[i].item, &items[i]);
		assert_int_equal(order.seq[i], i);
	}
	assert_int_equal(green_queue_count(&q), 0);
	green_queue_destroy(&q);
	assert_none_alive();
}

static void test_queue_putters_fifo(void **state)
{
	green_queue_t q;
	struct order order = {0};
	struct orderly os[3];
	green_t *gs[3];
	int items[4];
	void *item;

	assert_int_equal(green_queue_init(&q, 1), 0);
	assert_int_equal(green_queue_put(&q, &items[3], GREEN_NOW), 0);
	for (int i = 0; i < 3; i++) {
		os[i] = (struct orderly){ .order = &order, .index = i, .shared = &q,
		                          .item = &items[i] };
		gs[i] = spawn(putter, &os[i]);
	}
	settle(gs, 3);
	for (int i = 0; i < 3; i++)
		assert_waiting_on(gs[i], GREEN_WAIT_QUEUE, &q);
	assert_int_equal(green_queue_get(&q, &item, GREEN_NOW), 0);
	assert_ptr_equal(item, &items[3]);
	/* one free slot wakes exactly one putter */
	assert_int_equal(green_state(gs[0]), GREEN_READY);
	assert_int_equal(green_state(gs[1]), GREEN_WAITING);
	assert_int_equal(green_state(gs[2]), GREEN_WAITING);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(green_queue_get(&q, &item, GREEN_FOREVER), 0);
		assert_ptr_equal(item, &items[i]);
	}
	join_all(gs, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(os[i].rc, 0);
		assert_int_equal(order.seq[i], i);
	}
	green_queue_destroy(&q);
	assert_none_alive();
}

static void test_queue_woken_getter_rechecks(void **state)
{
	green_queue_t q;
	struct order order = {0};
	struct orderly o = { .order = &order, .shared = &q };
	int x, y;
	void *item;
	green_t *g;

	assert_int_equal(green_queue_init(&q, 1), 0);
	g = spawn(getter, &o);
	settle(&g, 1);
	assert_int_equal(green_queue_put(&q, &x, GREEN_NOW), 0);
	assert_int_equal(green_state(g), GREEN_READY);
	assert_int_equal(green_queue_get(&q, &item, GREEN_NOW), 0);
	assert_ptr_equal(item, &x);
	settle(&g, 1);
	assert_waiting_on(g, GREEN_WAIT_QUEUE, &q);
	assert_int_equal(green_queue_put(&q, &y, GREEN_NOW), 0);
	join_release(g);
	assert_int_equal(o.rc, 0);
	assert_ptr_equal(o.item, &y);
	green_queue_destroy(&q);
	assert_none_alive();
}

static void test_queue_destroy_wakes_getters(void **state)
{
	green_queue_t q;
	struct order order = {0};
	struct orderly os[3];
	green_t *gs[3];

	assert_int_equal(green_queue_init(&q, 2), 0);
	for (int i = 0; i < 3; i++) {
		os[i] = (struct orderly){ .order = &order, .index = i, .shared = &q };
		gs[i] = spawn(getter, &os[i]);
	}
	settle(gs, 3);
	green_queue_destroy(&q);
	for (int i = 0; i < 3; i++)
		assert_int_equal(green_state(gs[i]), GREEN_READY);
	join_all(gs, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(os[i].rc, EPIPE);

	/* a destroyed queue stays closed, and may be destroyed again */
	assert_int_equal(green_queue_count(&q), 0);
	assert_int_equal(green_queue_put(&q, &q, GREEN_FOREVER), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(green_queue_get(&q, NULL, GREEN_FOREVER), -1);
	assert_int_equal(errno, EPIPE);
	green_queue_destroy(&q);
	/* and can be initialised anew */
	assert_int_equal(green_queue_init(&q, 1), 0);
	assert_int_equal(green_queue_put(&q, &q, GREEN_NOW), 0);
	green_queue_destroy(&q);
	assert_none_alive();
}

static void test_queue_destroy_wakes_putters(void **state)
{
	green_queue_t q;
	struct order order = {0};
	struct orderly os[2];
	green_t *gs[2];
	int full;

	assert_int_equal(green_queue_init(&q, 1), 0);
	assert_int_equal(green_queue_put(&q, &full, GREEN_NOW), 0);
	for (int i = 0; i < 2; i++) {
		os[i] = (struct orderly){ .order = &order, .index = i, .shared = &q,
		                          .item = &os[i] };
		gs[i] = spawn(putter, &os[i]);
	}
	settle(gs, 2);
	green_queue_destroy(&q);
	join_all(gs, 2);
	for (int i = 0; i < 2; i++)
		assert_int_equal(os[i].rc, EPIPE);
	assert_int_equal(order.n, 2);
	assert_none_alive();
}

/* Woken by a put, destroyed before it runs: the re-check sees EPIPE. */
static void test_queue_destroy_after_wake(void **state)
{
	green_queue_t q;
	struct order order = {0};
	struct orderly get = { .order = &order, .shared = &q };
	struct orderly put = { .order = &order, .index = 1, .shared = &q };
	green_t *g;
	void *item;
	int x;

	assert_int_equal(green_queue_init(&q, 1), 0);
	g = spawn(getter, &get);
	settle(&g, 1);
	assert_int_equal(green_queue_put(&q, &x, GREEN_NOW), 0);
	assert_int_equal(green_state(g), GREEN_READY);
	green_queue_destroy(&q);
	join_release(g);
	assert_int_equal(get.rc, EPIPE);

	assert_int_equal(green_queue_init(&q, 1), 0);
	assert_int_equal(green_queue_put(&q, &x, GREEN_NOW), 0);
	g = spawn(putter, &put);
	settle(&g, 1);
	assert_int_equal(green_queue_get(&q, &item, GREEN_NOW), 0);
	assert_int_equal(green_state(g), GREEN_READY);
	green_queue_destroy(&q);
	join_release(g);
	assert_int_equal(put.rc, EPIPE);
	assert_none_alive();
}

#define QP_PRODUCERS 3
#define QP_CONSUMERS 3
#define QP_ITEMS 200

struct qpc {
	green_queue_t q;
	int next[QP_PRODUCERS];
	long sum;
	int got;
	int errors;
};

struct qpc_arg {
	struct qpc *s;
	int id;
};

static void *queue_producer(void *arg)
{
	struct qpc_arg *a = arg;

	for (int i = 0; i < QP_ITEMS; i++) {
		intptr_t v = a->id * 1000 + i + 1; /* never NULL */

		if (green_queue_put(&a->s->q, (void *)v, GREEN_FOREVER) < 0)
			a->s->errors++;
		if (i % (a->id + 2) == 0)
			green_yield();
	}
	return NULL;
}

static void *queue_consumer(void *arg)
{
	struct qpc_arg *a = arg;
	struct qpc *s = a->s;

	for (;;) {
		void *item;
		intptr_t v;

		if (green_queue_get(&s->q, &item, GREEN_FOREVER) < 0) {
			s->errors++;
			return NULL;
		}
		if (!item)
			return NULL; /* end of stream */
		v = (intptr_t)item - 1;
		if (v % 1000 != s->next[v / 1000]++)
			s->errors++;
		s->sum += v;
		s->got++;
		if (s->got % (a->id + 3) == 0)
			green_yield();
	}
}

static void test_queue_producer_consumer(void **state)
{
	struct qpc s = {0};
	struct qpc_arg cargs[QP_CONSUMERS], pargs[QP_PRODUCERS];
	green_t *cs[QP_CONSUMERS], *ps[QP_PRODUCERS];
	long want = 0;

	assert_int_equal(green_queue_init(&s.q, 3), 0);
	for (int i = 0; i < QP_CONSUMERS; i++) {
		cargs[i] = (struct qpc_arg){ &s, i };
		cs[i] = spawn(queue_consumer, &cargs[i]);
	}
	for (int i = 0; i < QP_PRODUCERS; i++) {
		pargs[i] = (struct qpc_arg){ &s, i };
		ps[i] = spawn(queue_producer, &pargs[i]);
		for (int j = 0; j < QP_ITEMS; j++)
			want += i * 1000 + j;
	}
	join_all(ps, QP_PRODUCERS);
	for (int i = 0; i < QP_CONSUMERS; i++)
		assert_int_equal(green_queue_put(&s.q, NULL, GREEN_FOREVER), 0);
	join_all(cs, QP_CONSUMERS);
	assert_int_equal(s.errors, 0);
	assert_int_equal(s.got, QP_PRODUCERS * QP_ITEMS);
	assert_int_equal(s.sum, want);
	assert_int_equal(green_queue_count(&s.q), 0);
	assert_null(s.q._getters._head);
	assert_null(s.q._putters._head);
	green_queue_destroy(&s.q);
	assert_none_alive();
}

/* ---- zero-initialised objects ------------------------------------------------- */

struct zeroed {
	green_event_t ev;
	green_lock_t lock;
	green_sem_t sem;
	green_cond_t cond;
	green_queue_t q;
	int step;
	int rc[4];
};

static void *zeroed_partner(void *arg)
{
	struct zeroed *z = arg;

	z->rc[0] = err_of(green_event_wait(&z->ev, GREEN_FOREVER));
	z->rc[1] = err_of(green_sem_acquire(&z->sem, GREEN_FOREVER));
	z->rc[2] = err_of(green_lock_acquire(&z->lock, GREEN_FOREVER));
	z->step = 1;
	green_cond_signal(&z->cond);
	green_lock_release(&z->lock);
	z->rc[3] = err_of(green_queue_put(&z->q, z, GREEN_FOREVER));
	return NULL;
}

/* Zero bytes are a valid state for every object (the preload shim keeps
 * them inside pthread types); a zeroed queue has no ring and is closed. */
static void test_zero_initialised(void **state)
{
	static struct zeroed z; /* zero bytes, no initialiser ran */
	green_t *g;

	assert_false(green_event_is_set(&z.ev));
	assert_null(green_lock_owner(&z.lock));
	assert_int_equal(green_sem_value(&z.sem), 0);
	assert_int_equal(green_sem_try(&z.sem), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(green_queue_count(&z.q), 0);

	g = spawn(zeroed_partner, &z);
	settle(&g, 1);
	assert_waiting_on(g, GREEN_WAIT_EVENT, &z.ev);
	green_event_set(&z.ev);
	settle(&g, 1);
	assert_waiting_on(g, GREEN_WAIT_SEM, &z.sem);
	assert_int_equal(green_lock_acquire(&z.lock, GREEN_FOREVER), 0);
	assert_int_equal(green_sem_release(&z.sem), 0);
	settle(&g, 1);
	assert_waiting_on(g, GREEN_WAIT_LOCK, &z.lock);
	while (z.step == 0)
		assert_int_equal(green_cond_wait(&z.cond, &z.lock, GREEN_FOREVER), 0);
	assert_int_equal(green_lock_release(&z.lock), 0);
	join_release(g);
	for (int i = 0; i < 3; i++)
		assert_int_equal(z.rc[i], 0);
	assert_int_equal(z.rc[3], EPIPE);

	assert_int_equal(green_queue_get(&z.q, NULL, GREEN_NOW), -1);
	assert_int_equal(errno, EPIPE);
	green_queue_destroy(&z.q); /* a no-op */
	assert_null(z.ev._waiters._head);
	assert_null(z.lock._waiters._head);
	assert_null(z.sem._waiters._head);
	assert_null(z.cond._waiters._head);
	assert_none_alive();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deadline_expires),
		cmocka_unit_test(test_now_never_blocks),
		cmocka_unit_test(test_kill_cancels_once),
		cmocka_unit_test(test_kill_before_wait),
		cmocka_unit_test(test_scope_inner_expires),
		cmocka_unit_test(test_scope_outer_expires),
		cmocka_unit_test(test_scope_own_deadline_first),
		cmocka_unit_test(test_main_deadlock),
		cmocka_unit_test(test_no_swallow_after_kill),
		cmocka_unit_test(test_no_swallow_after_timeout),
		cmocka_unit_test(test_event_basics),
		cmocka_unit_test(test_event_wakes_all_in_order),
		cmocka_unit_test(test_event_set_then_clear),
		cmocka_unit_test(test_event_owned_by_setter),
		cmocka_unit_test(test_lock_errors),
		cmocka_unit_test(test_lock_fifo),
		cmocka_unit_test(test_lock_woken_waiter_rechecks),
		cmocka_unit_test(test_lock_mutual_exclusion),
		cmocka_unit_test(test_sem_basics),
		cmocka_unit_test(test_sem_overflow),
		cmocka_unit_test(test_sem_fifo),
		cmocka_unit_test(test_sem_woken_waiter_rechecks),
		cmocka_unit_test(test_cond_needs_lock),
		cmocka_unit_test(test_cond_timeout_keeps_lock),
		cmocka_unit_test(test_cond_signal_fifo),
		cmocka_unit_test(test_cond_broadcast),
		cmocka_unit_test(test_cond_reacquire_ignores_kill),
		cmocka_unit_test(test_cond_reacquire_ignores_scope),
		cmocka_unit_test(test_cond_reacquire_deadlock),
		cmocka_unit_test(test_cond_producer_consumer),
		cmocka_unit_test(test_queue_basics),
		cmocka_unit_test(test_queue_getters_fifo),
		cmocka_unit_test(test_queue_putters_fifo),
		cmocka_unit_test(test_queue_woken_getter_rechecks),
		cmocka_unit_test(test_queue_destroy_wakes_getters),
		cmocka_unit_test(test_queue_destroy_wakes_putters),
		cmocka_unit_test(test_queue_destroy_after_wake),
		cmocka_unit_test(test_queue_producer_consumer),
		cmocka_unit_test(test_zero_initialised),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
