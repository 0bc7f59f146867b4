/*
 * hub.c - one hub per OS thread: the scheduler, the libev loop it polls,
 * parking and waking, and wake-ups posted from other threads.
 *
 * A greenlet that blocks switches straight to the next ready greenlet; only
 * when none is ready, or when the round is over, does it switch to the hub
 * greenlet, which runs one libev iteration on its own stack.  Watcher
 * callbacks never switch: they only move greenlets to the ready queue.
 *
 * A round is every greenlet that was ready when the loop was last polled
 * (and at least GREEN__POLL_EVERY dispatches), so a busy set of greenlets
 * cannot starve I/O and timers.  The round is not cut short by the clock:
 * what a poll in the middle found would be queued behind the rest of the
 * round anyway, and epoll reports a level-triggered fd again as long as its
 * greenlet has not run and read it.  With 10,000 connections ready at once,
 * a poll every 25 ms of a 100 ms round reported each socket 3.5 times per
 * message, and the kernel's sock_poll took three times libev's share.
 *
 * A greenlet that never blocks (a loop on a poll that always finds its fd
 * ready) would keep a round going for ever: its calls pass fair points
 * (green__fair_point), which send it behind the others and a poll of the
 * loop once it has had the hub for GREEN__FAIR_NS.
 */
#define _GNU_SOURCE /* gettid */
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

#ifdef GREEN__ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#define GREEN__POLL_EVERY 256
#define GREEN__HUB_STACK ((size_t)256 * 1024)

GREEN__HIDDEN struct green__hooks green__hooks;
GREEN__HIDDEN int64_t green__max_blocking_ns;

/* initial-exec: the hub lookup is on every switch path, and the general
 * dynamic model would make it a call to __tls_get_addr. */
static __thread struct green_hub *tls_hub __attribute__((tls_model("initial-exec")));
static uint64_t next_greenlet_id = 1;

#define ID_BLOCK 1024

/* Ids are unique in the process; each thread takes them a block at a time
 * so that a spawn costs no atomic operation. */
uint64_t green__new_id(void)
{
	static __thread uint64_t next, end __attribute__((tls_model("initial-exec")));

	if (unlikely(next == end)) {
		next = __atomic_fetch_add(&next_greenlet_id, ID_BLOCK, __ATOMIC_RELAXED);
		end = next + ID_BLOCK;
	}
	return next++;
}

/* Every hub, for green_stats_all; guarded by registry_lock. */
static struct green_hub *registry;
static int registry_lock;

static once_flag exit_key_once = ONCE_FLAG_INIT;
static tss_t exit_key;
static bool exit_key_ok;

int64_t green_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * GREEN_SEC + ts.tv_nsec;
}

void green__spin_lock(int *lock)
{
	unsigned int spins = 0;

	while (__atomic_exchange_n(lock, 1, __ATOMIC_ACQUIRE)) {
		while (__atomic_load_n(lock, __ATOMIC_RELAXED)) {
			if (++spins > 100)
				sched_yield();
		}
	}
}

void green__spin_unlock(int *lock)
{
	__atomic_store_n(lock, 0, __ATOMIC_RELEASE);
}

/* ---- wait queues ---------------------------------------------------------- */

void green__waitq_push(struct green__waitq *q, struct green__waiter *w, green_t *g)
{
	w->g = g;
	w->queue = q;
	w->next = NULL;
	w->prev = q->_tail;
	if (q->_tail)
		q->_tail->next = w;
	else
		q->_head = w;
	q->_tail = w;
}

void green__waitq_remove(struct green__waiter *w)
{
	struct green__waitq *q = w->queue;

	if (!q)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		q->_head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		q->_tail = w->prev;
	w->queue = NULL;
	w->next = w->prev = NULL;
}

struct green__waiter *green__waitq_pop(struct green__waitq *q)
{
	struct green__waiter *w = q->_head;

	if (w)
		green__waitq_remove(w);
	return w;
}

struct green__waiter *green__waitq_wake_one(struct green__waitq *q, int code)
{
	struct green__waiter *w;

	while ((w = green__waitq_pop(q)) != NULL) {
		if (green__wake(w->g, code))
			return w;
	}
	return NULL;
}

unsigned int green__waitq_wake_all(struct green__waitq *q, int code)
{
	struct green__waiter *w;
	unsigned int n = 0;

	while ((w = green__waitq_pop(q)) != NULL)
		n += green__wake(w->g, code);
	return n;
}

/* ---- ready queue and switching ------------------------------------------- */

void green__ready(struct green_hub *h, green_t *g)
{
	g->state = GREEN_READY;
	g->run_next = NULL;
	g->in_runq = true;
	h->run_len++;
	if (h->run_tail)
		h->run_tail->run_next = g;
	else
		h->run_head = g;
	h->run_tail = g;
}

/* Next greenlet to run; greenlets killed before they started are dropped. */
static green_t *runq_pop(struct green_hub *h)
{
	green_t *g;

	while ((g = h->run_head) != NULL) {
		h->run_head = g->run_next;
		if (!h->run_head)
			h->run_tail = NULL;
		h->run_len--;
		g->in_runq = false;
		if (likely(g->state != GREEN_DEAD))
			return g;
		if (--g->refs == 0)
			green__greenlet_free(h, g);
	}
	return NULL;
}

static void green__reap_deferred(struct green_hub *h)
{
	while (h->reap_later) {
		green_t *dead = h->reap_later;

		h->reap_later = dead->run_next;
		green__greenlet_reap(h, dead);
	}
}

void green__after_switch(struct green_hub *h, green_t *self)
{
#ifdef GREEN__ASAN
	/* Left unset when ASan has not met the stack we left yet (a new
	 * greenlet's first run): then there is nothing to learn. */
	const void *from_bottom = NULL;
	size_t from_size = 0;

	__sanitizer_finish_switch_fiber(self->asan_fake_stack, &from_bottom,
	                                &from_size);
	/* The thread's own stack has no bounds we chose: learn them the first
	 * time we leave it. */
	if (!h->main.asan_bottom && from_bottom && h->main.state != GREEN_RUNNING) {
		h->main.asan_bottom = from_bottom;
		h->main.asan_size = from_size;
	}
#endif
	if (h->reap) {
		green_t *dead = h->reap;

		h->reap = NULL;
		/* Freeing may unmap (and resolve munmap lazily, which saves
		 * the whole vector state): too deep for a compact stack. */
		if (self->stack.kind == GREEN__STACK_SLAB) {
			dead->run_next = h->reap_later;
			h->reap_later = dead;
		} else {
			green__greenlet_reap(h, dead);
		}
	}
	if (unlikely(h->reap_later != NULL) && self->stack.kind != GREEN__STACK_SLAB)
		green__reap_deferred(h);
	if (unlikely(green__hooks.switched_in != NULL))
		green__hooks.switched_in(h, self);
	*h->errno_loc = self->saved_errno;
}

void green__switch(struct green_hub *h, green_t *from, green_t *to)
{
	from->saved_errno = *h->errno_loc;
	if (from->stack.kind == GREEN__STACK_SLAB)
		green__stack_check(from);
	h->current = to;
	to->state = GREEN_RUNNING;
	GREEN__STORE(h->current_id, to->id);
	GREEN__BUMP(h->stats.switches);
#ifdef GREEN__ASAN
	__sanitizer_start_switch_fiber(
	    from->state == GREEN_DEAD ? NULL : &from->asan_fake_stack,
	    to->asan_bottom, to->asan_size);
#endif
	green__ctx_switch(&from->ctx, &to->ctx);
	green__after_switch(h, from);
}

static void note_busy(struct green_hub *h, int64_t start);

/*
 * Past the first GREEN__POLL_EVERY dispatches: is the round still on?  It
 * is until every greenlet that was ready at the poll has had its turn.
 * Every GREEN__POLL_EVERY dispatches the hub marks its progress instead, so
 * that a long round of short turns is not taken for one greenlet holding
 * the hub (note_busy here, check_blocking in the shim's monitor).
 */
static bool round_goes_on(struct green_hub *h)
{
	int64_t now;

	if (h->since_poll >= h->round_len)
		return false;
	if (h->since_poll % GREEN__POLL_EVERY != 0)
		return true;
	now = green_now();
	note_busy(h, now);
	GREEN__STORE(h->poll_end_ns, now);
	return true;
}

void green__schedule(struct green_hub *h)
{
	green_t *self = h->current;
	green_t *next = NULL;

	/* Polling with nothing to poll for costs a syscall (~1 us on a VM)
	 * and can find nothing: skip it then. */
	if (h->since_poll < GREEN__POLL_EVERY || round_goes_on(h) ||
	    (h->watchers == 0 && h->remote_pending == 0)) {
		next = runq_pop(h);
		if (next)
			h->since_poll++;
	}
	if (!next)
		next = h->hub_g;
	if (next == self) {
		self->state = GREEN_RUNNING;
		return;
	}
	green__switch(h, self, next);
}

/*
 * A turn for the others (green__fair_point).  When the loop has anything to
 * report (fds, timers, remote wake-ups), it is polled first and the caller
 * queued after what it finds: queued before the poll, the caller would be
 * dispatched again ahead of every greenlet the poll woke.
 */
void green__fair_yield(struct green_hub *h)
{
	green_t *self = h->current;

	if (self->is_hub || self->dying)
		return;
	h->turn_ns = green_now();
	if (h->watchers || h->remote_pending || __atomic_load_n(&green__hooks.due, __ATOMIC_RELAXED)) {
		self->state = GREEN_READY;
		h->after_poll = self;
		green__switch(h, self, h->hub_g);
	} else if (h->run_head) {
		green__ready(h, self);
		green__schedule(h);
	}
}

/* ---- parking --------------------------------------------------------------- */

int64_t green__scope_deadline(const green_t *g)
{
	return g->timeouts ? g->timeouts->_effective : GREEN_FOREVER;
}

static void park_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	green_t *g = (green_t *)((char *)w - offsetof(green_t, timer));
	int64_t now = green_now();
	int code;

	/* libev measures from the loop's cached time, which may be older than
	 * the moment we armed the timer; never wake early. */
	if (now < g->wait_deadline) {
		ev_timer_set(w, (double)(g->wait_deadline - now) / 1e9, 0.);
		ev_timer_start(loop, w);
		return;
	}
	if (g->wait_kind == GREEN_WAIT_TIMER &&
	    g->wait_deadline == g->wait_own_deadline)
		code = 0;
	else
		code = ETIMEDOUT;
	/* Count only a wait this timer ends: one already woken (killed, say)
	 * but not yet resumed stops its timer itself. */
	if (green__wake(g, code) && code == ETIMEDOUT)
		GREEN__BUMP(g->hub->stats.timeouts);
}

void green__park_timer_init(green_t *g)
{
	ev_timer_init(&g->timer, park_timer_cb, 0., 0.);
}

int green__park(struct green_hub *h, enum green_wait_kind kind,
                const void *obj, int64_t deadline, int flags)
{
	green_t *self = h->current;
	int64_t eff = deadline;
	int code;

	if (unlikely(self->is_hub || self->dying)) {
		errno = EDEADLK;
		return -1;
	}
	if (deadline < 0)
		deadline = GREEN_FOREVER; /* any negative value means no deadline */
	eff = deadline;
	if (!(flags & GREEN__PARK_NOCANCEL)) {
		if (unlikely(self->kill_pending)) {
			self->kill_pending = false;
			errno = ECANCELED;
			return -1;
		}
		eff = green__earlier(deadline, green__scope_deadline(self));
	}
	if (eff != GREEN_FOREVER) {
		int64_t now = eff == 0 ? 0 : green_now();

		if (eff <= now) {
			/* A sleep whose own deadline has passed succeeds, but
			 * not inside a scope that has expired as well: every
			 * wait there fails (green_sleep(GREEN_NOW) included). */
			if (kind == GREEN_WAIT_TIMER && eff == deadline) {
				int64_t scope = flags & GREEN__PARK_NOCANCEL
				                    ? GREEN_FOREVER
				                    : green__scope_deadline(self);

				if (scope < 0 || (scope > 0 && scope > green_now()))
					return 0;
			}
			GREEN__BUMP(h->stats.timeouts);
			errno = ETIMEDOUT;
			return -1;
		}
		ev_timer_set(&self->timer, (double)(eff - now) / 1e9, 0.);
		ev_timer_start(h->loop, &self->timer);
		green__watch_begin(h);
	}
	self->wait_kind = kind;
	self->wait_obj = obj;
	self->wait_deadline = eff;
	self->wait_own_deadline = deadline;
	self->wake_code = 0;
	self->park_nocancel = (flags & GREEN__PARK_NOCANCEL) != 0;
	self->state = kind == GREEN_WAIT_TIMER ? GREEN_SLEEPING : GREEN_WAITING;

	green__schedule(h);

	if (eff != GREEN_FOREVER) {
		ev_timer_stop(h->loop, &self->timer);
		green__watch_end(h);
	}
	self->wait_kind = GREEN_WAIT_NONE;
	self->wait_obj = NULL;
	self->park_nocancel = false;
	code = self->wake_code;
	if (code == 0)
		return 0;
	if (code == ECANCELED)
		self->kill_pending = false;
	errno = code;
	return -1;
}

bool green__wake(green_t *g, int code)
{
	if (g->state != GREEN_WAITING && g->state != GREEN_SLEEPING)
		return false;
	g->wake_code = code;
	green__ready(g->hub, g);
	return true;
}

/* ---- the hub greenlet ------------------------------------------------------ */

static void note_busy(struct green_hub *h, int64_t start)
{
	int64_t busy;

	if (!h->poll_end_ns)
		return;
	/* Calls since the last poll found nobody else who could use the hub
	 * (internal.h): that time is not the hub being held. */
	if (h->alone_calls != h->alone_calls_polled) {
		h->alone_calls_polled = h->alone_calls;
		return;
	}
	busy = start - h->poll_end_ns;
	if (busy > h->stats.max_blocking_ns)
		GREEN__STORE(h->stats.max_blocking_ns, busy);
	if (green__max_blocking_ns > 0 && busy > green__max_blocking_ns)
		GREEN__BUMP(h->stats.blocked);
}

static void hub_main(void *arg)
{
	struct green_hub *h = arg;
	green_t *self = h->hub_g;

	green__after_switch(h, self);
	for (;;) {
		green_t *next;
		int active;

		green__reap_deferred(h);
		note_busy(h, green_now());
		if (green__hooks.before_poll)
			green__hooks.before_poll(h);
		active = ev_run(h->loop, h->run_head || h->after_poll ? EVRUN_NOWAIT
		                                                     : EVRUN_ONCE);
		GREEN__BUMP(h->stats.iterations);
		GREEN__STORE(h->poll_end_ns, green_now());
		h->turn_ns = h->poll_end_ns;
		h->since_poll = 0;
		if (h->after_poll) {
			/* Behind what the poll just made ready: see green__fair_yield. */
			green__ready(h, h->after_poll);
			h->after_poll = NULL;
		}
		h->round_len = h->run_len;
		next = runq_pop(h);
		if (!next) {
			/* Nothing is ready and no watcher can ever fire: every
			 * greenlet waits on another.  Like gevent's LoopExit, the
			 * main greenlet's wait fails instead of hanging. */
			if (!active)
				green__wake(&h->main, EDEADLK);
			continue;
		}
		green__switch(h, self, next);
	}
}

/* ---- remote wake-ups -------------------------------------------------------- */

static void remote_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct green_hub *h = ev_userdata(loop);
	struct green__remote *r, *next;

	green__spin_lock(&h->remote_lock);
	r = h->remote_head;
	h->remote_head = NULL;
	for (; r; r = next) {
		next = r->next;
		r->next = NULL;
		if (r->g && r->g->wait_obj == r)
			green__wake(r->g, 0);
		r->queued = false;
		if (--r->refs == 0)
			free(r);
	}
	green__spin_unlock(&h->remote_lock);
}

int green__remote_begin(struct green_hub *h, struct green__remote **out)
{
	struct green__remote *r = calloc(1, sizeof(*r));

	if (!r)
		return -1;
	r->hub = h;
	r->g = h->current;
	r->refs = 2; /* the waiting greenlet and the posting thread */
	h->remote_pending++;
	ev_ref(h->loop);
	*out = r;
	return 0;
}

void green__remote_post(struct green__remote *r, int code)
{
	struct green_hub *h = r->hub;
	bool send = false;

	green__spin_lock(&h->remote_lock);
	r->code = code;
	r->posted = true;
	if (r->g) {
		r->queued = true;
		r->next = h->remote_head;
		h->remote_head = r;
		send = true;
	} else if (--r->refs == 0) {
		free(r);
	}
	green__spin_unlock(&h->remote_lock);
	if (send)
		ev_async_send(h->loop, &h->async);
}

void green__remote_end(struct green_hub *h, struct green__remote *r)
{
	green__spin_lock(&h->remote_lock);
	r->g = NULL; /* a post still in flight must not wake us any more */
	if (--r->refs == 0)
		free(r);
	green__spin_unlock(&h->remote_lock);
	h->remote_pending--;
	ev_unref(h->loop);
}

void green__remote_abandon(struct green_hub *h, struct green__remote *r)
{
	green__spin_lock(&h->remote_lock);
	r->refs--; /* the poster's, which nobody will use */
	green__spin_unlock(&h->remote_lock);
	green__remote_end(h, r);
}

/* ---- hub life -------------------------------------------------------------- */

static void hub_destroy(struct green_hub *h)
{
	green_t *g, *next;

	green__spin_lock(&registry_lock);
	if (h->reg_prev)
		h->reg_prev->reg_next = h->reg_next;
	else
		registry = h->reg_next;
	if (h->reg_next)
		h->reg_next->reg_prev = h->reg_prev;
	green__spin_unlock(&registry_lock);

	ev_async_stop(h->loop, &h->async);
	for (g = h->all_head; g; g = next) {
		next = g->all_next;
		if (g->is_main)
			continue;
		green__stack_free(h, &g->stack);
	}
	if (h->hub_g)
		green__stack_free(h, &h->hub_g->stack);
	green__stack_hub_destroy(h);
	ev_loop_destroy(h->loop);
	for (size_t i = 0; i < h->n_struct_chunks; i++)
		free(h->struct_chunks[i]);
	free(h->struct_chunks);
	free(h->fdwaits);
	free(h);
}

/* A thread that ends with its greenlets all finished takes its hub along.
 * One that leaves greenlets parked abandons them; they are never resumed,
 * so their memory is freed with the hub as well. */
static void hub_thread_exit(void *arg)
{
	struct green_hub *h = arg;

	if (h != tls_hub || h->current != &h->main || h->remote_pending)
		return; /* exiting from inside a greenlet: leave it be */
	tls_hub = NULL;
	hub_destroy(h);
}

/* tss_create says thrd_error, not necessarily with errno set; without the
 * key, a thread that ends leaves its hub behind (a leak, nothing worse),
 * and no one else's key is ever written in its place. */
static void make_exit_key(void)
{
	exit_key_ok = tss_create(&exit_key, hub_thread_exit) == thrd_success;
}

/* Out of line: inlined, it would make every green__hub call (one per
 * switch) save and restore the registers creation needs. */
__attribute__((noinline, cold)) static struct green_hub *hub_create(void)
{
	struct green_hub *h = calloc(1, sizeof(*h));
	green_t *hg;
	int err;

	if (!h)
		return NULL;
	h->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
	if (!h->loop) {
		err = ENOMEM;
		goto out_free_hub;
	}
	ev_set_userdata(h->loop, h);
	ev_async_init(&h->async, remote_cb);
	ev_async_start(h->loop, &h->async);
	ev_unref(h->loop); /* only pending remote work keeps the loop alive */
	green__stack_hub_init(h);

	h->tid = gettid();
	h->errno_loc = &errno;
	h->main.hub = h;
	h->main.is_main = true;
	h->main.state = GREEN_RUNNING;
	h->main.started = true;
	h->main.refs = 1;
	h->main.wait_fd = -1;
	h->main.id = green__new_id();
	h->main.born_ns = green_now();
	strcpy(h->main.name, "main");
	green__park_timer_init(&h->main);
	h->all_head = h->all_tail = &h->main;
	h->current = &h->main;
	h->current_id = h->main.id;

	hg = green__greenlet_alloc(h);
	if (!hg) {
		err = ENOMEM;
		goto out_destroy_loop;
	}
	if (green__stack_alloc(h, &hg->stack, GREEN__HUB_STACK) < 0) {
		err = errno;
		green__greenlet_free(h, hg);
		goto out_destroy_loop;
	}
	hg->is_hub = true;
	hg->refs = 1;
	hg->started = true;
	hg->state = GREEN_READY;
	hg->wait_fd = -1;
	strcpy(hg->name, "hub");
#ifdef GREEN__ASAN
	hg->asan_bottom = hg->stack.lo;
	hg->asan_size = hg->stack.size;
#endif
	green__ctx_init(&hg->ctx, hg->stack.lo, hg->stack.size, hub_main, h);
	h->hub_g = hg;

	green__stack_install_overflow_handler(h);

	green__spin_lock(&registry_lock);
	h->reg_next = registry;
	if (registry)
		registry->reg_prev = h;
	registry = h;
	green__spin_unlock(&registry_lock);

	call_once(&exit_key_once, make_exit_key);
	tls_hub = h;
	if (exit_key_ok)
		tss_set(exit_key, h);
	return h;

out_destroy_loop:
	ev_loop_destroy(h->loop);
	for (size_t i = 0; i < h->n_struct_chunks; i++)
		free(h->struct_chunks[i]);
	free(h->struct_chunks);
out_free_hub:
	free(h);
	errno = err;
	return NULL;
}

struct green_hub *green__hub(void)
{
	if (likely(tls_hub != NULL))
		return tls_hub;
	return hub_create();
}

struct green_hub *green__hub_peek(void)
{
	return tls_hub;
}

void green__hub_snapshot(struct green_hub *h, uint64_t *current_id,
                         int64_t *poll_end_ns, uint64_t *switches)
{
	*current_id = GREEN__LOAD(h->current_id);
	*poll_end_ns = GREEN__LOAD(h->poll_end_ns);
	*switches = GREEN__LOAD(h->stats.switches);
}

void green__fork_child(void)
{
	struct green_hub *h = tls_hub;

	/* Only the forking thread lives on in the child: a lock another
	 * thread held at the fork (the reporter summing stats, a DNS worker
	 * posting a wake-up) would never be released. */
	registry_lock = 0;
	if (h) {
		h->tid = gettid();
		h->remote_lock = 0;
		ev_loop_fork(h->loop);
	}
}

/* Sum of every hub's counters (green_stats_all). */
void green__registry_sum(struct green_stats *out, void (*add)(struct green_stats *,
                                                                struct green_hub *))
{
	struct green_hub *h;

	green__spin_lock(&registry_lock);
	for (h = registry; h; h = h->reg_next)
		add(out, h);
	green__spin_unlock(&registry_lock);
}
