/*
 * conf_tls.h - what the conf_tls_* programs share: compiler thread-local
 * data (__thread) must be per thread, natively and greened alike, so each
 * program has threads set their own values, meet at a barrier (under the
 * shim that is a switch to every other green thread in between) and check
 * they still see their own.  Output is deterministic.
 */
#ifndef CONF_TLS_H
#define CONF_TLS_H

#include "conf_thread.h"

#define TLS_THREADS 8

static pthread_barrier_t tls_meet;

/* Run fn in TLS_THREADS threads (arg: 0..n-1), all at once; exit 2 if a
 * thread cannot be made. */
static inline void tls_run_all(void *(*fn)(void *), void *results[TLS_THREADS])
{
	pthread_t th[TLS_THREADS];

	die_rc("pthread_barrier_init", pthread_barrier_init(&tls_meet, NULL, TLS_THREADS));
	for (long i = 0; i < TLS_THREADS; i++)
		die_rc("pthread_create", pthread_create(&th[i], NULL, fn, (void *)i));
	for (int i = 0; i < TLS_THREADS; i++)
		die_rc("pthread_join", pthread_join(th[i], &results[i]));
	pthread_barrier_destroy(&tls_meet);
}

/* Greened, all the threads ran on one OS thread (and maybe a helper). */
static inline void tls_check_os_threads(int seen)
{
	if (greened())
		CHECK("threads shared few OS threads", seen >= 1 && seen <= 4);
	else
		CHECK("threads shared few OS threads", seen >= 1);
	printf("# OS threads while all ran: %d\n", seen);
}

#endif
