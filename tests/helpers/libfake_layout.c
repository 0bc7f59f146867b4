/*
 * libfake_layout.c - a stand-in for a glibc whose pthread_mutex_t is laid
 * out otherwise, for tests/it_thread_layout.py.  Preloaded after the shim,
 * its pthread_mutex_init is the one the shim takes for glibc's: it calls
 * glibc's and then moves the type to the next value in __kind's type bits
 * (a normal mutex becomes recursive, which a well-behaved program never
 * notices), so the thread module's layout check must refuse this "glibc".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>

int pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *attr)
{
	static int (*real)(pthread_mutex_t *, const pthread_mutexattr_t *);
	int rc;

	if (!real)
		real = (int (*)(pthread_mutex_t *, const pthread_mutexattr_t *))dlsym(
		    RTLD_NEXT, "pthread_mutex_init");
	if (!real)
		return ENOSYS;
	rc = real(m, attr);
	if (rc == 0 && (m->__data.__kind & 3) == PTHREAD_MUTEX_NORMAL)
		m->__data.__kind |= PTHREAD_MUTEX_RECURSIVE;
	return rc;
}
