/*
 * stack.c - greenlet stacks.
 *
 * Two kinds, because the kernel caps a process at vm.max_map_count mappings
 * (65530 here) and a stack with its own guard page costs two of them:
 *
 *  - guarded: its own mmap with a PROT_NONE page below it; an overflow faults
 *    at once and the SIGSEGV handler (on an alternate stack) names the
 *    greenlet.  Used for stacks above GREEN_STACK_COMPACT_MAX while fewer
 *    than a quarter of max_map_count worth of them are alive.
 *  - slab: carved side by side from 4 MiB slabs with one guard page per slab
 *    and a canary word at the low end of every slot, checked whenever the
 *    greenlet switches out and when the stack is freed.  An overflow into the
 *    neighbour is caught late (at the next switch) but a million small
 *    stacks cost ~500 mappings instead of two million.
 *
 * Memory is MAP_NORESERVE: a stack costs only the pages it has touched.
 *
 * Freed guarded stacks are cached per hub and reused without a syscall.
 * The cache takes every freed stack up to STACK_CACHE_BYTES and gives the
 * ones beyond STACK_CACHE_KEEP back only once the hub has neither spawned
 * nor ended a greenlet for STACK_TRIM_QUIET, a few at a time (stack_trim_cb).
 * The reason is the price of munmap in a process with more than one OS
 * thread: each call is a TLB shootdown, an IPI the caller waits for, some
 * 50 us on a VM.  When 10,000 connections closed at the end of a burst,
 * unmapping their stacks as they exited held the hub for half a second
 * while the last connections still waited for their echoes.
 */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <threads.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define GREEN__VALGRIND 1
#endif
#endif
#ifdef GREEN__ASAN
#include <sanitizer/asan_interface.h>
#endif

#define DEFAULT_STACK_SIZE ((size_t)256 * 1024)
#define SLAB_BYTES ((size_t)4 * 1024 * 1024)
#define STACK_CACHE_KEEP 128 /* kept however long the hub idles */
#define STACK_CACHE_BYTES ((size_t)1024 * 1024 * 1024) /* of address space */
#define STACK_TRIM_QUIET 1.0  /* s without a put or take before trimming */
#define STACK_TRIM_BATCH 16   /* unmapped per turn ... */
#define STACK_TRIM_GAP 0.002  /* ... and this long between turns */
#define ALTSTACK_SIZE ((size_t)64 * 1024)

struct green__slab {
	struct green__slab *next, *prev; /* in its class; slabs with room first */
	struct green__slab_class *cls;
	char *map;
	size_t map_size;
	char *slots; /* first slot, just above the guard page */
	unsigned int nslots, nfree;
	unsigned int *free_idx;
};

struct green__slab_class {
	struct green__slab_class *next;
	size_t slot_size;
	struct green__slab *head, *tail;
};

static size_t page_size;
static size_t default_size = DEFAULT_STACK_SIZE;
static size_t guarded_max;
static size_t guarded_live; /* process-wide, atomically updated */
static once_flag config_once = ONCE_FLAG_INIT;

static void read_config(void)
{
	const char *env = getenv("GREEN_STACK_SIZE");
	size_t size;
	FILE *f;
	unsigned long max_maps = 65530;

	page_size = (size_t)sysconf(_SC_PAGESIZE);
	/* A bad GREEN_STACK_SIZE keeps the default; the shim reports it. */
	if (env && green__parse_size(env, &size) == 0 && size >= GREEN_STACK_MIN)
		default_size = size;
	f = fopen("/proc/sys/vm/max_map_count", "re");
	if (f) {
		if (fscanf(f, "%lu", &max_maps) != 1)
			max_maps = 65530;
		fclose(f);
	}
	guarded_max = max_maps / 4; /* two mappings each: half the budget */
}

size_t green__stack_default_size(void)
{
	call_once(&config_once, read_config);
	return default_size;
}

static inline size_t round_up(size_t n, size_t to)
{
	return (n + to - 1) / to * to;
}

static void stack_register(struct green__stack *s)
{
#ifdef GREEN__VALGRIND
	s->vg_id = VALGRIND_STACK_REGISTER(s->lo, (char *)s->lo + s->size);
#else
	(void)s;
#endif
}

static void stack_deregister(struct green__stack *s)
{
#ifdef GREEN__VALGRIND
	VALGRIND_STACK_DEREGISTER(s->vg_id);
#else
	(void)s;
#endif
}

/* ---- canaries ------------------------------------------------------------- */

static inline uint64_t canary_for(const void *lo)
{
	return 0x677265656e6c6574ULL ^ (uint64_t)(uintptr_t)lo;
}

static void report_overflow(const green_t *g, const char *how)
{
	char msg[160];
	int n;

	n = snprintf(msg, sizeof(msg),
	             "libgreen: greenlet %llu '%s' overflowed its %zu KiB stack%s\n",
	             (unsigned long long)g->id, g->name[0] ? g->name : "(unnamed)",
	             g->stack.size / 1024, how);
	if (n > 0)
		syscall(SYS_write, 2, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
}

void green__stack_check(const green_t *g)
{
	const uint64_t *canary = g->stack.lo;

	if (unlikely(*canary != canary_for(g->stack.lo))) {
		report_overflow(g, " (canary overwritten)");
		abort();
	}
}

/* ---- slabs ---------------------------------------------------------------- */

static struct green__slab *slab_new(struct green__slab_class *cls)
{
	struct green__slab *s = calloc(1, sizeof(*s));
	size_t nslots = SLAB_BYTES / cls->slot_size;

	if (!s)
		return NULL;
	if (nslots < 16)
		nslots = 16;
	s->free_idx = malloc(nslots * sizeof(*s->free_idx));
	if (!s->free_idx)
		goto out_free_slab;
	s->map_size = page_size + nslots * cls->slot_size;
	/* Every compact slot gets its canary and first frame written, so
	 * each page will be touched anyway: faulting them in with one call is
	 * far cheaper than a fault per page (~10 us each on a VM). */
	s->map = mmap(NULL, s->map_size, PROT_READ | PROT_WRITE,
	              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK |
	                  (cls->slot_size <= GREEN_STACK_COMPACT_MAX ? MAP_POPULATE : 0),
	              -1, 0);
	if (s->map == MAP_FAILED)
		goto out_free_idx;
	if (mprotect(s->map, page_size, PROT_NONE) < 0)
		goto out_unmap;
	s->slots = s->map + page_size;
	s->nslots = s->nfree = (unsigned int)nslots;
	for (unsigned int i = 0; i < nslots; i++)
		s->free_idx[i] = (unsigned int)nslots - 1 - i;
	s->cls = cls;
	return s;

out_unmap:
	munmap(s->map, s->map_size);
out_free_idx:
	free(s->free_idx);
out_free_slab:
	free(s);
	errno = ENOMEM;
	return NULL;
}

static void class_unlink(struct green__slab_class *c, struct green__slab *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		c->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		c->tail = s->prev;
	s->next = s->prev = NULL;
}

static void class_push_front(struct green__slab_class *c, struct green__slab *s)
{
	s->prev = NULL;
	s->next = c->head;
	if (c->head)
		c->head->prev = s;
	else
		c->tail = s;
	c->head = s;
}

static void class_push_back(struct green__slab_class *c, struct green__slab *s)
{
	s->next = NULL;
	s->prev = c->tail;
	if (c->tail)
		c->tail->next = s;
	else
		c->head = s;
	c->tail = s;
}

static int slab_alloc(struct green_hub *h, struct green__stack *st, size_t size)
{
	size_t slot = round_up(size, 64);
	struct green__slab_class *c;
	struct green__slab *s;
	unsigned int idx;

	for (c = h->slab_classes; c && c->slot_size != slot; c = c->next)
		;
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return -1;
		c->slot_size = slot;
		c->next = h->slab_classes;
		h->slab_classes = c;
	}
	s = c->head;
	if (!s || s->nfree == 0) {
		s = slab_new(c);
		if (!s)
			return -1;
		class_push_front(c, s);
	}
	idx = s->free_idx[--s->nfree];
	if (s->nfree == 0 && s != c->tail) {
		class_unlink(c, s);
		class_push_back(c, s); /* full slabs go last */
	}
	st->kind = GREEN__STACK_SLAB;
	st->slab = s;
	st->lo = s->slots + (size_t)idx * slot;
	st->size = slot;
#ifdef GREEN__ASAN
	__asan_unpoison_memory_region(st->lo, st->size);
#endif
	*(uint64_t *)st->lo = canary_for(st->lo);
	return 0;
}

static void slab_free(struct green_hub *h, struct green__stack *st)
{
	struct green__slab *s = st->slab;
	struct green__slab_class *c = s->cls;
	unsigned int idx = (unsigned int)(((char *)st->lo - s->slots) / c->slot_size);

	s->free_idx[s->nfree++] = idx;
	if (s->nfree == s->nslots && (c->head != s || s->next)) {
		/* Give an empty slab back unless it is the class's only one. */
		class_unlink(c, s);
		munmap(s->map, s->map_size);
		free(s->free_idx);
		free(s);
		return;
	}
	if (s->nfree == 1 && c->head != s) {
		class_unlink(c, s);
		class_push_front(c, s);
	}
}

/* ---- guarded stacks ------------------------------------------------------- */

static int guarded_alloc(struct green__stack *st, size_t size)
{
	size_t usable = round_up(size, page_size);
	char *map;

	map = mmap(NULL, usable + page_size, PROT_READ | PROT_WRITE,
	           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (map == MAP_FAILED)
		return -1;
	if (mprotect(map, page_size, PROT_NONE) < 0) {
		munmap(map, usable + page_size);
		errno = ENOMEM;
		return -1;
	}
	st->kind = GREEN__STACK_GUARDED;
	st->lo = map + page_size;
	st->size = usable;
	__atomic_add_fetch(&guarded_live, 1, __ATOMIC_RELAXED);
	return 0;
}

static void guarded_unmap(struct green__stack *st)
{
	munmap((char *)st->lo - page_size, st->size + page_size);
	__atomic_sub_fetch(&guarded_live, 1, __ATOMIC_RELAXED);
}

static bool stack_cache_excess(const struct green_hub *h)
{
	return h->stack_cache_count > STACK_CACHE_KEEP;
}

/* Housekeeping must not keep the loop alive (a deadlock is still seen at
 * once), so the timer runs unreferenced: ev_unref after each start, ev_ref
 * before each stop, as libev asks. */
static void stack_trim_arm(struct green_hub *h, ev_tstamp after)
{
	bool was_active = ev_is_active(&h->stack_trim);

	h->stack_trim.repeat = after;
	ev_timer_again(h->loop, &h->stack_trim);
	if (!was_active)
		ev_unref(h->loop);
}

static void stack_trim_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct green_hub *h = ev_userdata(loop);
	ev_tstamp quiet = ev_now(loop) - h->stack_cache_used;

	(void)w;
	(void)revents;
	if (quiet < STACK_TRIM_QUIET) {
		stack_trim_arm(h, STACK_TRIM_QUIET - quiet);
		return;
	}
	for (int i = 0; i < STACK_TRIM_BATCH && stack_cache_excess(h); i++) {
		struct green__stack *st = &h->stack_cache[--h->stack_cache_count];

		h->stack_cache_bytes -= st->size;
		stack_deregister(st);
		guarded_unmap(st);
	}
	if (stack_cache_excess(h)) {
		stack_trim_arm(h, STACK_TRIM_GAP);
		return;
	}
	ev_ref(loop);
	ev_timer_stop(loop, &h->stack_trim);
}

void green__stack_hub_init(struct green_hub *h)
{
	ev_init(&h->stack_trim, stack_trim_cb);
}

/* Keeps a freed guarded stack for reuse; -1 when the cache is full. */
static int stack_cache_put(struct green_hub *h, struct green__stack *st)
{
	if (h->stack_cache_bytes + st->size > STACK_CACHE_BYTES)
		return -1;
	if (h->stack_cache_count == h->stack_cache_cap) {
		size_t cap = h->stack_cache_cap ? h->stack_cache_cap * 2 : STACK_CACHE_KEEP;
		struct green__stack *grown = realloc(h->stack_cache, cap * sizeof(*grown));

		if (!grown)
			return -1;
		h->stack_cache = grown;
		h->stack_cache_cap = cap;
	}
	h->stack_cache[h->stack_cache_count++] = *st;
	h->stack_cache_bytes += st->size;
	h->stack_cache_used = ev_now(h->loop);
	if (stack_cache_excess(h) && !ev_is_active(&h->stack_trim))
		stack_trim_arm(h, STACK_TRIM_QUIET);
	return 0;
}

int green__stack_alloc(struct green_hub *h, struct green__stack *st, size_t size)
{
	size_t want;

	call_once(&config_once, read_config);
	want = round_up(size, page_size);
	/* The newest few only: a cache of another size must not make every
	 * spawn a walk over thousands of entries. */
	for (size_t i = h->stack_cache_count, looked = 0; i-- > 0 && looked++ < 64;) {
		if (h->stack_cache[i].size == want) {
			*st = h->stack_cache[i];
			h->stack_cache[i] = h->stack_cache[--h->stack_cache_count];
			h->stack_cache_bytes -= st->size;
			h->stack_cache_used = ev_now(h->loop);
#ifdef GREEN__ASAN
			/* The last greenlet on it may have left redzones. */
			__asan_unpoison_memory_region(st->lo, st->size);
#endif
			return 0;
		}
	}
	if (size > GREEN_STACK_COMPACT_MAX &&
	    __atomic_load_n(&guarded_live, __ATOMIC_RELAXED) < guarded_max) {
		if (guarded_alloc(st, size) == 0) {
			stack_register(st);
			return 0;
		}
	}
	if (slab_alloc(h, st, size) < 0)
		return -1;
	stack_register(st);
	return 0;
}

void green__stack_free(struct green_hub *h, struct green__stack *st)
{
	switch (st->kind) {
	case GREEN__STACK_NONE:
		return;
	case GREEN__STACK_SLAB:
		green__stack_check((const green_t *)((const char *)st -
		                                     offsetof(green_t, stack)));
		stack_deregister(st);
		slab_free(h, st);
		break;
	case GREEN__STACK_GUARDED:
		if (stack_cache_put(h, st) == 0)
			break;
		stack_deregister(st);
		guarded_unmap(st);
		break;
	}
	st->kind = GREEN__STACK_NONE;
	st->lo = NULL;
}

void green__stack_hub_destroy(struct green_hub *h)
{
	struct green__slab_class *c, *cn;
	struct green__slab *s, *sn;

	if (ev_is_active(&h->stack_trim)) {
		ev_ref(h->loop);
		ev_timer_stop(h->loop, &h->stack_trim);
	}

	for (size_t i = 0; i < h->stack_cache_count; i++) {
		stack_deregister(&h->stack_cache[i]);
		guarded_unmap(&h->stack_cache[i]);
	}
	free(h->stack_cache);
	for (c = h->slab_classes; c; c = cn) {
		cn = c->next;
		for (s = c->head; s; s = sn) {
			sn = s->next;
			munmap(s->map, s->map_size);
			free(s->free_idx);
			free(s);
		}
		free(c);
	}
	if (h->altstack) {
		stack_t none = {.ss_flags = SS_DISABLE};

		sigaltstack(&none, NULL);
		munmap(h->altstack, ALTSTACK_SIZE);
	}
}

/* ---- overflow report --------------------------------------------------------- */

static struct sigaction previous_segv;
static once_flag handler_once = ONCE_FLAG_INIT;

static bool in_guard(const green_t *g, const char *addr)
{
	const char *lo;

	if (!g)
		return false;
	if (g->stack.kind == GREEN__STACK_GUARDED)
		lo = g->stack.lo;
	else if (g->stack.kind == GREEN__STACK_SLAB)
		lo = g->stack.slab->slots; /* the slab's own guard page */
	else
		return false;
	return addr >= lo - page_size && addr < lo + 256;
}

static void on_segv(int sig, siginfo_t *info, void *uctx)
{
	struct green_hub *h = green__hub_peek();

	if (h && in_guard(h->current, info->si_addr)) {
		report_overflow(h->current, "");
		signal(SIGSEGV, SIG_DFL);
		return; /* the faulting access repeats and kills us */
	}
	if (previous_segv.sa_flags & SA_SIGINFO) {
		if (previous_segv.sa_sigaction) {
			previous_segv.sa_sigaction(sig, info, uctx);
			return;
		}
	} else if (previous_segv.sa_handler != SIG_DFL &&
	           previous_segv.sa_handler != SIG_IGN) {
		previous_segv.sa_handler(sig);
		return;
	}
	signal(SIGSEGV, SIG_DFL);
}

static void install_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	/* A program that installed its own handler keeps it; ours chains. */
	if (sigaction(SIGSEGV, NULL, &previous_segv) == 0)
		sigaction(SIGSEGV, &sa, NULL);
}

void green__stack_install_overflow_handler(struct green_hub *h)
{
	stack_t cur, alt;

	call_once(&handler_once, install_handler);
	/* The handler must run somewhere other than the overflowed stack. */
	if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
		return;
	h->altstack = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
	                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (h->altstack == MAP_FAILED) {
		h->altstack = NULL;
		return;
	}
	alt.ss_sp = h->altstack;
	alt.ss_size = ALTSTACK_SIZE;
	alt.ss_flags = 0;
	if (sigaltstack(&alt, NULL) < 0) {
		munmap(h->altstack, ALTSTACK_SIZE);
		h->altstack = NULL;
	}
}
