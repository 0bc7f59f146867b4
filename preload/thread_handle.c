/*
 * thread_handle.c - where the records of green threads live, and how a
 * pthread_t is told to be one.
 *
 * A pthread_t reaches the module from the program, which may hold the
 * handle of a thread long joined, or glibc's handle of a thread the module
 * never made.  Reading through it to find out (a magic word) would read
 * freed memory in the first case.  So records are carved from mappings the
 * module owns and never unmaps: a handle inside them is ours (its magic
 * then says whether it is still valid), one outside is glibc's.  A freed
 * record goes to the end of a free list and is reused only after
 * REUSE_AFTER others, so a stale handle keeps answering ESRCH for a while
 * (glibc reuses its thread descriptors too, so no program may rely on it
 * for ever).
 *
 * Chunks double in size, so a few of them hold any number of threads and a
 * lookup tests a few ranges; they are only ever added, published with a
 * release store of their count, so lookups take no lock.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "thread_int.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define THREAD_GONE 0x676f6e6574687264ull /* "gonethrd" */
#define SLOT_SIZE ((sizeof(struct gthread) + 63) & ~(size_t)63)
#define FIRST_SLOTS 64
#define MAX_CHUNKS 26
#define REUSE_AFTER 16

struct chunk {
	char *base;
	size_t slots;
	size_t used; /* slots handed out so far (under lock) */
};

static struct chunk chunks[MAX_CHUNKS];
static unsigned int nchunks;
static int lock;
static struct gthread *free_head, *free_tail;
static size_t nfree;

/* Under lock: a slot never used, from the last chunk or a new one. */
static struct gthread *fresh_slot(void)
{
	unsigned int n = nchunks;
	struct chunk *c = n ? &chunks[n - 1] : NULL;
	void *base;
	size_t slots;

	if (c && c->used < c->slots)
		return (struct gthread *)(void *)(c->base + SLOT_SIZE * c->used++);
	if (n == MAX_CHUNKS)
		return NULL;
	slots = (size_t)FIRST_SLOTS << n;
	base = mmap(NULL, slots * SLOT_SIZE, PROT_READ | PROT_WRITE,
	            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return NULL;
	c = &chunks[n];
	c->base = base;
	c->slots = slots;
	c->used = 1;
	__atomic_store_n(&nchunks, n + 1, __ATOMIC_RELEASE);
	return base;
}

struct gthread *shim_thread_alloc(void)
{
	struct gthread *t;

	green__spin_lock(&lock);
	if (nfree > REUSE_AFTER) {
		t = free_head;
		free_head = t->free_next;
		if (!free_head)
			free_tail = NULL;
		nfree--;
	} else {
		t = fresh_slot();
	}
	green__spin_unlock(&lock);
	if (!t) {
		errno = EAGAIN;
		return NULL;
	}
	memset(t, 0, sizeof(*t));
	t->os_thread = SHIM_REAL(pthread_self)();
	t->os_tid = gettid();
	__atomic_store_n(&t->magic, THREAD_MAGIC, __ATOMIC_RELEASE);
	return t;
}

void shim_thread_release(struct gthread *t)
{
	__atomic_store_n(&t->magic, THREAD_GONE, __ATOMIC_RELEASE);
	shim_tsd_drop(t);
	shim_tls_thread_exit(t);
	green__spin_lock(&lock);
	t->free_next = NULL;
	if (free_tail)
		free_tail->free_next = t;
	else
		free_head = t;
	free_tail = t;
	nfree++;
	green__spin_unlock(&lock);
}

int shim_thread_find(pthread_t th, struct gthread **out)
{
	unsigned int n = __atomic_load_n(&nchunks, __ATOMIC_ACQUIRE);
	uintptr_t p = (uintptr_t)th;

	*out = NULL;
	for (unsigned int i = 0; i < n; i++) {
		uintptr_t base = (uintptr_t)chunks[i].base;
		struct gthread *t;

		if (p < base || p - base >= chunks[i].slots * SLOT_SIZE)
			continue;
		if ((p - base) % SLOT_SIZE)
			return ESRCH; /* inside a record: no handle we gave out */
		t = (struct gthread *)p;
		if (__atomic_load_n(&t->magic, __ATOMIC_ACQUIRE) != THREAD_MAGIC)
			return ESRCH;
		*out = t;
		return 0;
	}
	return 0;
}

struct gthread *shim_thread_lookup(pthread_t th)
{
	struct gthread *t;

	return shim_thread_find(th, &t) == 0 ? t : NULL;
}

void shim_thread_handles_after_fork(struct gthread *mine, bool only_mine_left)
{
	/* Another OS thread may have held it: it did not come along. */
	lock = 0;
	if (!only_mine_left)
		return;
	for (unsigned int i = 0; i < nchunks; i++) {
		for (size_t k = 0; k < chunks[i].used; k++) {
			struct gthread *t = (struct gthread *)(void *)(chunks[i].base +
			                                               SLOT_SIZE * k);

			if (t != mine && t->magic == THREAD_MAGIC)
				t->exited = true;
		}
	}
}
