/*
 * thread_key.c - pthread keys for green threads: glibc makes and numbers
 * the keys, each green thread keeps its own values, and a finished thread's
 * destructors run as glibc runs them.
 *
 * Keys are glibc's (so the numbering, PTHREAD_KEYS_MAX and the values of
 * threads that are not green stay glibc's); this table adds what green
 * threads need: each key's destructor and a generation, bumped on create and
 * delete, so a value set under a deleted key reads as NULL.
 *
 * Every key is per green thread, also those made before the shim was
 * initialised.  ASan's runtime keeps its record of the current thread in
 * such a key (AsanTSDGet), and its pthread_create interceptor runs before
 * ours and sets that key in the new thread, whose start routine it wraps:
 * so each green thread is an ASan thread of its own, with its green stack
 * as the stack (ASan asks pthread_getattr_np(pthread_self())).  Its
 * allocator reads the key on every malloc and free, so the value must
 * never be read out of memory that is being freed (see tsd_drop).
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "thread_int.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static struct key_info {
	void (*dtor)(void *);
	unsigned int seq;
	bool used;
	bool early;          /* made before the thread module was set up */
	signed char runtime; /* the sanitizer's: 1, not: -1, not known yet: 0 */
} keys[PTHREAD_KEYS_MAX];

/* Weak: in a build without ASan it is there only when a sanitized program
 * brought the runtime along. */
extern void __asan_init(void) __attribute__((weak));

/*
 * A key of the sanitizer runtime: with ASan in the process, a key made
 * before the thread module was set up (ASan initialises before any
 * instrumented code runs, the shim's own constructor included) whose
 * destructor is in the object that holds ASan.  Looked up the first time
 * it is needed, not when the key is made: that happens in the middle of
 * ASan's initialisation.
 */
static bool runtime_key(unsigned int k)
{
	struct key_info *ki = &keys[k];
	signed char r = __atomic_load_n(&ki->runtime, __ATOMIC_RELAXED);

	if (r == 0) {
		void (*dtor)(void *) = __atomic_load_n(&ki->dtor, __ATOMIC_RELAXED);
		Dl_info mine, asan;

		r = -1;
		if (__asan_init && dtor && __atomic_load_n(&ki->early, __ATOMIC_RELAXED) &&
		    dladdr((void *)dtor, &mine) && dladdr((void *)__asan_init, &asan) &&
		    mine.dli_fbase == asan.dli_fbase)
			r = 1;
		__atomic_store_n(&ki->runtime, r, __ATOMIC_RELAXED);
	}
	return r > 0;
}

/*
 * Ending a green thread's ASan thread.  ASan's key destructor sets its
 * value again for PTHREAD_DESTRUCTOR_ITERATIONS - 1 rounds and in the last
 * one ends the ASan thread (AsanThread::Destroy): marks it finished (so
 * LeakSanitizer no longer scans its stack, which we are about to free),
 * returns its allocator caches and quarantine, and frees its record.  It
 * also ends what it takes for the calling OS thread's own state: disables
 * and unmaps its alternate signal stack, and marks its dynamic TLS record
 * destroyed, after which a second ASan thread ending on the same OS
 * thread crashes.  So the destructor runs on a short-lived OS thread of
 * its own, which has neither to lose, while the green thread's OS thread
 * waits for it: nothing else touches this ASan thread meanwhile, and no
 * fork from this OS thread can catch the helper half-way through ASan's
 * allocator.  If no thread can be had the ASan thread is left as it is,
 * a leak of about 56 KiB.
 */
struct runtime_end {
	pthread_key_t key;
	void (*dtor)(void *);
	void *value;
};

static void *runtime_end_main(void *arg)
{
	struct runtime_end *e = arg;
	void *v = e->value;

	/* glibc's protocol, for this one key. */
	for (int round = 0; v && round < PTHREAD_DESTRUCTOR_ITERATIONS; round++) {
		SHIM_REAL(pthread_setspecific)(e->key, NULL);
		e->dtor(v);
		v = SHIM_REAL(pthread_getspecific)(e->key);
	}
	SHIM_REAL(pthread_setspecific)(e->key, NULL);
	return NULL;
}

static void runtime_end(pthread_key_t key, void (*dtor)(void *), void *value)
{
	struct runtime_end e = {.key = key, .dtor = dtor, .value = value};
	pthread_t th;

	if (shim_helper_thread(&th, runtime_end_main, &e, 256 * 1024, false) == 0)
		SHIM_REAL(pthread_join)(th, NULL);
}

int pthread_key_create(pthread_key_t *key, void (*dtor)(void *))
{
	/* Not greened: a key is process-wide, and its destructor is
	 * recorded whoever creates it, so green threads can run it. */
	int rc = SHIM_REAL(pthread_key_create)(key, dtor);

	if (rc == 0 && *key < PTHREAD_KEYS_MAX) {
		struct key_info *k = &keys[*key];

		__atomic_store_n(&k->dtor, dtor, __ATOMIC_RELAXED);
		__atomic_store_n(&k->early, !shim_patched[SHIM_THREAD], __ATOMIC_RELAXED);
		__atomic_store_n(&k->runtime, 0, __ATOMIC_RELAXED);
		__atomic_add_fetch(&k->seq, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&k->used, true, __ATOMIC_RELEASE);
	}
	return rc;
}

int pthread_key_delete(pthread_key_t key)
{
	int rc = SHIM_REAL(pthread_key_delete)(key);

	if (rc == 0 && key < PTHREAD_KEYS_MAX) {
		__atomic_store_n(&keys[key].used, false, __ATOMIC_RELEASE);
		__atomic_add_fetch(&keys[key].seq, 1, __ATOMIC_RELAXED);
	}
	return rc;
}

void *pthread_getspecific(pthread_key_t key)
{
	green_t *g;
	struct gthread *t;

	if (key >= PTHREAD_KEYS_MAX || !(g = green_self()) || g->is_main)
		return SHIM_REAL(pthread_getspecific)(key);
	t = g->local;
	if (!t || key >= t->ntsd)
		return NULL;
	if (t->tsd[key].seq != __atomic_load_n(&keys[key].seq, __ATOMIC_RELAXED))
		return NULL;
	return t->tsd[key].value;
}

int pthread_setspecific(pthread_key_t key, const void *value)
{
	green_t *g;
	struct gthread *t;

	if (!(g = green_self()) || g->is_main)
		return SHIM_REAL(pthread_setspecific)(key, value);
	if (key >= PTHREAD_KEYS_MAX || !__atomic_load_n(&keys[key].used, __ATOMIC_ACQUIRE))
		return EINVAL;
	t = shim_thread_of(g);
	if (!t)
		return ENOMEM;
	if (key >= t->ntsd) {
		unsigned int n = t->ntsd ? t->ntsd : 8;
		struct tsd_slot *grown, *old;

		while (n <= key)
			n *= 2;
		if (n > PTHREAD_KEYS_MAX)
			n = PTHREAD_KEYS_MAX;
		/* Not realloc: the old array must stay readable until the new
		 * one is in place (see tsd_drop). */
		grown = malloc(n * sizeof(*grown));
		if (!grown)
			return ENOMEM;
		if (t->ntsd)
			memcpy(grown, t->tsd, t->ntsd * sizeof(*grown));
		memset(grown + t->ntsd, 0, (n - t->ntsd) * sizeof(*grown));
		old = t->tsd;
		t->tsd = grown;
		t->ntsd = n;
		free(old);
	}
	t->tsd[key].value = (void *)(uintptr_t)value;
	t->tsd[key].seq = __atomic_load_n(&keys[key].seq, __ATOMIC_RELAXED);
	return 0;
}

/*
 * Free a thread's key values.  The array is unhooked first: free() asks
 * for the calling thread's key values (ASan's allocator does, through
 * pthread_getspecific), and when the caller is this very thread they
 * would be read out of the block being freed.
 */
void shim_tsd_drop(struct gthread *t)
{
	struct tsd_slot *old = t->tsd;

	t->tsd = NULL;
	t->ntsd = 0;
	free(old);
}

/* Take the value of key k out of t; its destructor if it is to run. */
static void (*tsd_take(struct gthread *t, unsigned int k, void **v))(void *)
{
	*v = t->tsd[k].value;
	if (!*v)
		return NULL;
	t->tsd[k].value = NULL;
	if (t->tsd[k].seq != __atomic_load_n(&keys[k].seq, __ATOMIC_RELAXED) ||
	    !__atomic_load_n(&keys[k].used, __ATOMIC_ACQUIRE))
		return NULL;
	return __atomic_load_n(&keys[k].dtor, __ATOMIC_RELAXED);
}

/*
 * POSIX: up to PTHREAD_DESTRUCTOR_ITERATIONS rounds while values remain.
 * The runtime's keys come last, so that the program's destructors still
 * run in the ASan thread they belong to.
 */
void shim_tsd_run_destructors(struct gthread *t)
{
	void (*dtor)(void *);
	void *v;

	for (int round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS; round++) {
		bool called = false;

		/* A destructor may set values (and grow t->tsd): re-read. */
		for (unsigned int k = 0; k < t->ntsd; k++) {
			if (runtime_key(k))
				continue;
			dtor = tsd_take(t, k, &v);
			if (dtor) {
				called = true;
				dtor(v);
			}
		}
		if (!called)
			break;
	}
	for (unsigned int k = 0; k < t->ntsd; k++) {
		if (runtime_key(k) && (dtor = tsd_take(t, k, &v)) != NULL)
			runtime_end(k, dtor, v);
	}
	shim_tsd_drop(t);
}

/* The main thread's values are glibc's; run its destructors the same way. */
void shim_tsd_run_main_destructors(void)
{
	for (int round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS; round++) {
		bool called = false;

		for (unsigned int k = 0; k < PTHREAD_KEYS_MAX; k++) {
			void (*dtor)(void *);
			void *v;

			/* The runtime's value here is the OS thread's, which
			 * goes on running greenlets: ending it would end ASan's
			 * record of this thread under their feet. */
			if (!__atomic_load_n(&keys[k].used, __ATOMIC_ACQUIRE) || runtime_key(k))
				continue;
			dtor = __atomic_load_n(&keys[k].dtor, __ATOMIC_RELAXED);
			if (!dtor || !(v = SHIM_REAL(pthread_getspecific)(k)))
				continue;
			SHIM_REAL(pthread_setspecific)(k, NULL);
			called = true;
			dtor(v);
		}
		if (!called)
			break;
	}
}

