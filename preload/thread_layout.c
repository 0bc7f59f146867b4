/*
 * thread_layout.c - the check, once at start, that glibc's objects mean
 * what the thread module assumes (thread_int.h): the green state lies over
 * bytes glibc's initialisers must leave zero, and the module reads a few of
 * glibc's private fields (a mutex's __kind, a condition's __wrefs, an
 * rwlock's __flags and __shared, pthread_once_t's values).  Those are no
 * ABI: another glibc may lay them out otherwise.  So objects are made with
 * glibc's own init functions, of every kind the module tells apart, and
 * looked at; if one does not say what the module would read, the module is
 * left unpatched (its calls go straight to glibc) and the shim says why,
 * once on stderr and in the hello report to greend.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "thread_int.h"

#include <string.h>

/* true when the n bytes at p are all zero */
static bool zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* The green fields of a mutex (all but __kind and glibc's spin fields)
 * are zero: the unlocked state with no waiters. */
static bool mutex_green_zero(const pthread_mutex_t *pm)
{
	const struct gmutex *m = (const void *)pm;

	return !m->owner && !m->count && zero(&m->waiters, sizeof(m->waiters));
}

/*
 * What the module reads of a mutex of this type and attributes.  glibc
 * marks robust mutexes process-shared too (the kernel walks their list),
 * so the module takes them as such; a private one must not be marked.
 * Process-shared and priority-protected mutexes keep glibc's layout; any
 * other must be all zero where the green state goes.
 */
static bool mutex_means(const pthread_mutex_t *m, int type, bool pshared,
                        bool robust, int protocol)
{
	int kind = m->__data.__kind;
	bool marked = kind & KIND_PSHARED, pp = kind & KIND_PP;

	return (kind & KIND_TYPE_MASK) == type && (pshared ? marked : robust || !marked) &&
	       !!(kind & KIND_ROBUST) == robust &&
	       !!(kind & KIND_PI) == (protocol == PTHREAD_PRIO_INHERIT) &&
	       pp == (protocol == PTHREAD_PRIO_PROTECT) && (marked || pp || mutex_green_zero(m));
}

static const char *check_mutexes(void)
{
	static const int types[] = {PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_RECURSIVE,
	                            PTHREAD_MUTEX_ERRORCHECK, PTHREAD_MUTEX_ADAPTIVE_NP};
	static const pthread_mutex_t init_normal = PTHREAD_MUTEX_INITIALIZER,
	                             init_recursive = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP,
	                             init_errorcheck = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;

	if (!mutex_means(&init_normal, PTHREAD_MUTEX_NORMAL, false, false, PTHREAD_PRIO_NONE) ||
	    !mutex_means(&init_recursive, PTHREAD_MUTEX_RECURSIVE, false, false,
	                 PTHREAD_PRIO_NONE) ||
	    !mutex_means(&init_errorcheck, PTHREAD_MUTEX_ERRORCHECK, false, false,
	                 PTHREAD_PRIO_NONE))
		return "the __kind of a static pthread_mutex_t initialiser";
	for (unsigned int i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		/* private and shared, each plain, robust, PI and PP */
		for (int variant = 0; variant < 8; variant++) {
			bool pshared = variant & 1, robust = (variant >> 1) == 1;
			int protocol = (variant >> 1) == 2   ? PTHREAD_PRIO_INHERIT
			               : (variant >> 1) == 3 ? PTHREAD_PRIO_PROTECT
			                                     : PTHREAD_PRIO_NONE;
			pthread_mutexattr_t attr;
			pthread_mutex_t m;
			bool ok = true;

			if (pthread_mutexattr_init(&attr) != 0)
				return "pthread_mutexattr_init fails";
			pthread_mutexattr_settype(&attr, types[i]);
			if (pshared)
				pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
			if (robust)
				pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
			pthread_mutexattr_setprotocol(&attr, protocol);
			memset(&m, 0xa5, sizeof(m));
			/* A kind this glibc or kernel refuses (PI without PI
			 * futexes) is one no program can make: nothing to check. */
			if (SHIM_REAL(pthread_mutex_init)(&m, &attr) == 0) {
				ok = mutex_means(&m, types[i], pshared, robust, protocol);
				SHIM_REAL(pthread_mutex_destroy)(&m);
			}
			pthread_mutexattr_destroy(&attr);
			if (!ok)
				return "pthread_mutex_t's __kind (type, robust, PI, PP and "
				       "process-shared bits) or its zeroed fields";
		}
	}
	return NULL;
}

static const char *check_conds(void)
{
	static const pthread_cond_t init = PTHREAD_COND_INITIALIZER;

	if (!zero(&init, sizeof(init)))
		return "PTHREAD_COND_INITIALIZER is not all zero";
	for (int variant = 0; variant < 4; variant++) {
		bool pshared = variant & 1, monotonic = variant & 2;
		pthread_condattr_t attr;
		pthread_cond_t c;
		const struct gcond *g = (const void *)&c;
		bool ok;

		if (pthread_condattr_init(&attr) != 0)
			return "pthread_condattr_init fails";
		if (pshared)
			pthread_condattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
		if (monotonic)
			pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		memset(&c, 0xa5, sizeof(c));
		ok = SHIM_REAL(pthread_cond_init)(&c, &attr) == 0 &&
		     !!(c.__data.__wrefs & COND_SHARED) == pshared &&
		     !!(c.__data.__wrefs & COND_MONOTONIC) == monotonic &&
		     zero(&g->waiters, sizeof(g->waiters)) && zero(g->signals, sizeof(g->signals));
		pthread_condattr_destroy(&attr);
		if (!ok)
			return "pthread_cond_t's __wrefs (clock and process-shared bits) "
			       "or its zeroed fields";
		SHIM_REAL(pthread_cond_destroy)(&c);
	}
	return NULL;
}

static const char *check_rwlocks(void)
{
	static const int kinds[] = {PTHREAD_RWLOCK_PREFER_READER_NP,
	                            PTHREAD_RWLOCK_PREFER_WRITER_NP,
	                            PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP};
	static const pthread_rwlock_t init = PTHREAD_RWLOCK_INITIALIZER,
	                              init_writer =
	                                  PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

	if (!zero(&init, sizeof(init)) ||
	    init_writer.__data.__flags != PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP)
		return "the __flags of a static pthread_rwlock_t initialiser";
	for (unsigned int i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		for (int pshared = 0; pshared < 2; pshared++) {
			pthread_rwlockattr_t attr;
			pthread_rwlock_t rw;
			const struct grwlock *l = (const void *)&rw;
			bool ok;

			if (pthread_rwlockattr_init(&attr) != 0)
				return "pthread_rwlockattr_init fails";
			pthread_rwlockattr_setkind_np(&attr, kinds[i]);
			if (pshared)
				pthread_rwlockattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
			memset(&rw, 0xa5, sizeof(rw));
			ok = SHIM_REAL(pthread_rwlock_init)(&rw, &attr) == 0 &&
			     l->flags == (unsigned int)kinds[i] && (l->shared != 0) == pshared &&
			     zero(&l->readers_q, sizeof(l->readers_q)) && !l->writer &&
			     !l->readers && zero(&l->writers_q, sizeof(l->writers_q)) &&
			     !l->writers_waiting;
			pthread_rwlockattr_destroy(&attr);
			if (!ok)
				return "pthread_rwlock_t's __flags and __shared or its zeroed fields";
			SHIM_REAL(pthread_rwlock_destroy)(&rw);
		}
	}
	return NULL;
}

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int once_seen_running = -1;

static void once_probe(void)
{
	once_seen_running = __atomic_load_n(&probe_once, __ATOMIC_RELAXED);
}

static const char *check_once(void)
{
	int v;

	if (probe_once != 0)
		return "PTHREAD_ONCE_INIT is not 0";
	if (SHIM_REAL(pthread_once)(&probe_once, once_probe) != 0)
		return "pthread_once fails";
	v = __atomic_load_n(&probe_once, __ATOMIC_RELAXED);
	if (!(once_seen_running & ONCE_RUNNING) || (once_seen_running & ONCE_DONE) ||
	    !(v & ONCE_DONE))
		return "pthread_once_t's in-progress and done values";
	return NULL;
}

/* A semaphore or barrier glibc made never carries the module's magic. */
static const char *check_magic(void)
{
	for (int pshared = 0; pshared < 2; pshared++) {
		pthread_barrierattr_t attr;
		pthread_barrier_t b;
		sem_t s;

		if (SHIM_REAL(sem_init)(&s, pshared, 0) != 0 ||
		    ((struct gsem *)(void *)&s)->magic == GSEM_MAGIC)
			return "a sem_t glibc made carries the green magic";
		SHIM_REAL(sem_destroy)(&s);
		if (pthread_barrierattr_init(&attr) != 0)
			return "pthread_barrierattr_init fails";
		if (pshared)
			pthread_barrierattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
		if (SHIM_REAL(pthread_barrier_init)(&b, &attr, 2) != 0 ||
		    ((struct gbarrier *)(void *)&b)->magic == GBARRIER_MAGIC) {
			pthread_barrierattr_destroy(&attr);
			return "a pthread_barrier_t glibc made carries the green magic";
		}
		pthread_barrierattr_destroy(&attr);
		SHIM_REAL(pthread_barrier_destroy)(&b);
	}
	return NULL;
}

void shim_thread_check_layout(void)
{
	const char *(*const checks[])(void) = {check_mutexes, check_conds, check_rwlocks,
	                                       check_once, check_magic};
	const char *why = NULL;

	for (unsigned int i = 0; i < sizeof(checks) / sizeof(checks[0]) && !why; i++)
		why = checks[i]();
	if (!why) {
		SHIM_DEBUG("thread: glibc's mutex, condition, rwlock, once, semaphore "
		           "and barrier layouts are as the module assumes");
		return;
	}
	shim_patched[SHIM_THREAD] = false;
	shim_log("thread module left unpatched: glibc is not laid out as it assumes: %s", why);
	shim_report_warning("thread: left unpatched: glibc is not laid out as it assumes: %s",
	                    why);
}
