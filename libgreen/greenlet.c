/*
 * greenlet.c - greenlet life: spawn, run, die, join, kill, link, release.
 *
 * A greenlet holds one reference for being alive ("life"), dropped when its
 * stack has been reclaimed after its last switch, plus one per handle.  The
 * structs come from per-hub chunks and go back to a free list, never to
 * malloc, while the hub lives: spawning costs no allocation in the steady
 * state, and another thread's monitor may read a struct without racing free().
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STRUCTS_PER_CHUNK 64

green_t *green__greenlet_alloc(struct green_hub *h)
{
	green_t *g = h->free_structs;

	if (unlikely(!g)) {
		green_t *chunk;

		if (h->n_struct_chunks == h->cap_struct_chunks) {
			size_t cap = h->cap_struct_chunks ? h->cap_struct_chunks * 2 : 16;
			void **grown = realloc(h->struct_chunks, cap * sizeof(*grown));

			if (!grown)
				return NULL;
			h->struct_chunks = grown;
			h->cap_struct_chunks = cap;
		}
		chunk = calloc(STRUCTS_PER_CHUNK, sizeof(*chunk));
		if (!chunk)
			return NULL;
		h->struct_chunks[h->n_struct_chunks++] = chunk;
		for (size_t i = STRUCTS_PER_CHUNK; i-- > 0;) {
			chunk[i].free_next = h->free_structs;
			h->free_structs = &chunk[i];
		}
		g = h->free_structs;
	}
	h->free_structs = g->free_next;
	memset(g, 0, sizeof(*g));
	g->hub = h;
	return g;
}

void green__greenlet_free(struct green_hub *h, green_t *g)
{
	g->state = GREEN_DEAD;
	g->free_next = h->free_structs;
	h->free_structs = g;
}

static void all_unlink(struct green_hub *h, green_t *g)
{
	if (g->all_prev)
		g->all_prev->all_next = g->all_next;
	else
		h->all_head = g->all_next;
	if (g->all_next)
		g->all_next->all_prev = g->all_prev;
	else
		h->all_tail = g->all_prev;
	g->all_next = g->all_prev = NULL;
}

void green__greenlet_reap(struct green_hub *h, green_t *g)
{
	green__stack_free(h, &g->stack);
	all_unlink(h, g);
	if (--g->refs == 0)
		green__greenlet_free(h, g);
}

green_t *green_spawn(void *(*fn)(void *), void *arg, const green_attr_t *attr)
{
	struct green_hub *h = green__hub();
	size_t size;
	green_t *g;

	if (!h)
		return NULL;
	if (!fn) {
		errno = EINVAL;
		return NULL;
	}
	size = attr && attr->stack_size ? attr->stack_size
	                                : green__stack_default_size();
	if (size < GREEN_STACK_MIN) {
		errno = EINVAL;
		return NULL;
	}
	g = green__greenlet_alloc(h);
	if (!g) {
		errno = ENOMEM;
		return NULL;
	}
	if (green__stack_alloc(h, &g->stack, size) < 0) {
		int err = errno;

		green__greenlet_free(h, g);
		errno = err;
		return NULL;
	}
	g->refs = 2; /* the caller's handle and life */
	g->fn = fn;
	g->arg = arg;
	g->wait_fd = -1;
	g->id = green__new_id();
	g->born_ns = h->poll_end_ns ? h->poll_end_ns : green_now();
	if (attr && attr->name) {
		strncpy(g->name, attr->name, sizeof(g->name) - 1);
		g->name[sizeof(g->name) - 1] = '\0';
	}
	green__park_timer_init(g);
#ifdef GREEN__ASAN
	g->asan_bottom = g->stack.lo;
	g->asan_size = g->stack.size;
#endif
	green__ctx_init(&g->ctx, g->stack.lo, g->stack.size,
	                green__greenlet_start, g);

	g->all_prev = h->all_tail;
	h->all_tail->all_next = g;
	h->all_tail = g;
	GREEN__BUMP(h->alive);
	GREEN__BUMP(h->stats.spawned);
	green__ready(h, g);
	return g;
}

green_t *green_ref(green_t *g)
{
	if (g && !g->is_main)
		g->refs++;
	return g;
}

void green_release(green_t *g)
{
	if (!g || g->is_main)
		return;
	if (--g->refs == 0)
		green__greenlet_free(g->hub, g);
}

/* Everything that happens when a greenlet is dead, except freeing its
 * stack, which must wait until nothing runs on it. */
static void die(struct green_hub *h, green_t *g)
{
	struct green__waiter *w;
	struct green__link *l;

	g->dying = true;
	g->state = GREEN_DEAD;
	while ((l = g->links) != NULL) {
		g->links = l->next;
		l->cb(g, l->arg);
		free(l);
	}
	while ((w = green__waitq_pop(&g->joiners)) != NULL) {
		if (w->data) /* green_joinall counts deaths without rescanning */
			(*(size_t *)w->data)++;
		green__wake(w->g, 0);
	}
	if (g->member.group)
		green__group_leave(g);
	GREEN__STORE(h->alive, GREEN__LOAD(h->alive) - 1);
	GREEN__BUMP(h->stats.finished);
}

void green__greenlet_start(void *arg)
{
	green_t *self = arg;
	struct green_hub *h = self->hub;

	green__after_switch(h, self);
	self->started = true;
	errno = 0;
	self->result = self->fn(self->arg);
	die(h, self);
	h->reap = self;
	green__schedule(h);
	abort(); /* a dead greenlet is never resumed */
}

green_t *green_current(void)
{
	struct green_hub *h = green__hub();

	return h ? h->current : NULL;
}

bool green_is_main(const green_t *g)
{
	return g && g->is_main;
}

int green_join(green_t *g, void **result, int64_t deadline)
{
	struct green_hub *h = green__hub();

	if (!h)
		return -1;
	if (!g || g->hub != h) {
		errno = EINVAL;
		return -1;
	}
	if (g == h->current) {
		errno = EDEADLK;
		return -1;
	}
	while (g->state != GREEN_DEAD) {
		struct green__waiter w = {0};

		green__waitq_push(&g->joiners, &w, h->current);
		if (green__park(h, GREEN_WAIT_JOIN, g, deadline, 0) < 0) {
			green__waitq_remove(&w);
			return -1;
		}
	}
	if (result)
		*result = g->result;
	return 0;
}

int green_joinall(green_t *const *gs, size_t n, size_t count, int64_t deadline)
{
	struct green_hub *h = green__hub();
	struct green__waiter local[16], *ws = local;
	size_t dead = 0, died = 0;
	int rc = 0, err = 0;

	if (!h)
		return -1;
	if (n && !gs) {
		errno = EINVAL;
		return -1;
	}
	if (count == 0 || count > n)
		count = n;
	for (size_t i = 0; i < n; i++) {
		if (!gs[i] || gs[i]->hub != h || gs[i] == h->current) {
			errno = gs[i] == h->current ? EDEADLK : EINVAL;
			return -1;
		}
		if (gs[i]->state == GREEN_DEAD)
			dead++;
	}
	if (dead >= count)
		return (int)dead;
	if (n > sizeof(local) / sizeof(local[0])) {
		ws = calloc(n, sizeof(*ws));
		if (!ws)
			return -1;
	} else {
		memset(local, 0, sizeof(local));
	}
	for (size_t i = 0; i < n; i++) {
		if (gs[i]->state == GREEN_DEAD)
			continue;
		ws[i].data = &died;
		green__waitq_push(&gs[i]->joiners, &ws[i], h->current);
	}
	while (dead + died < count) {
		if (green__park(h, GREEN_WAIT_JOIN, gs[0], deadline, 0) < 0) {
			err = errno;
			rc = -1;
			break;
		}
	}
	for (size_t i = 0; i < n; i++)
		green__waitq_remove(&ws[i]);
	if (ws != local)
		free(ws);
	if (rc < 0 && dead + died < count) {
		errno = err;
		return -1;
	}
	return (int)(dead + died);
}

int green_kill(green_t *g)
{
	struct green_hub *h = green__hub();

	if (!h)
		return -1;
	if (!g || g->hub != h || g->is_hub) {
		errno = EINVAL;
		return -1;
	}
	if (g->state == GREEN_DEAD) {
		errno = ESRCH;
		return -1;
	}
	if (!g->started) {
		/* It never ran: nothing to clean up, so it dies right here.  It
		 * stays in the ready queue until the scheduler drops it. */
		die(h, g);
		green__stack_free(h, &g->stack);
		all_unlink(h, g);
		return 0; /* runq_pop drops the life reference */
	}
	g->kill_pending = true;
	if ((g->state == GREEN_WAITING || g->state == GREEN_SLEEPING) &&
	    !g->park_nocancel)
		green__wake(g, ECANCELED);
	return 0;
}

int green_yield(void)
{
	struct green_hub *h = green__hub();
	green_t *self;

	if (!h)
		return -1;
	self = h->current;
	if (self->is_hub) {
		errno = EDEADLK;
		return -1;
	}
	green__ready(h, self);
	green__schedule(h);
	if (self->kill_pending) {
		self->kill_pending = false;
		errno = ECANCELED;
		return -1;
	}
	return 0;
}

enum green_state green_state(const green_t *g)
{
	return g->state;
}

const char *green_state_name(enum green_state state)
{
	switch (state) {
	case GREEN_READY: return "ready";
	case GREEN_RUNNING: return "running";
	case GREEN_WAITING: return "waiting";
	case GREEN_SLEEPING: return "sleeping";
	case GREEN_DEAD: return "dead";
	}
	return "unknown";
}

uint64_t green_id(const green_t *g)
{
	return g->id;
}

const char *green_name(const green_t *g)
{
	green_t *mut = (green_t *)(uintptr_t)g;

	/* Formatting a default name on every spawn would cost more than the
	 * spawn itself; do it on first request. */
	if (!mut->name[0])
		snprintf(mut->name, sizeof(mut->name), "greenlet-%llu",
		         (unsigned long long)g->id);
	return g->name;
}

void *green_result(const green_t *g)
{
	return g->state == GREEN_DEAD ? g->result : NULL;
}

int green_link(green_t *g, void (*cb)(green_t *g, void *arg), void *arg)
{
	struct green__link *l, **tail;

	if (!g || !cb) {
		errno = EINVAL;
		return -1;
	}
	if (g->state == GREEN_DEAD) {
		cb(g, arg);
		return 0;
	}
	l = malloc(sizeof(*l));
	if (!l)
		return -1;
	l->cb = cb;
	l->arg = arg;
	l->next = NULL;
	for (tail = &g->links; *tail; tail = &(*tail)->next)
		;
	*tail = l;
	return 0;
}
