/*
 * conf_thread_keys.c - thread-specific data: values per thread (the main
 * thread's untouched), destructors run at thread exit with each thread's
 * value (also after pthread_exit), a destructor that sets a new value gets
 * another round, a deleted key's destructor does not run, EINVAL for a
 * deleted key.
 */
#include "conf_thread.h"

#define N 10

static pthread_key_t key, key2, key_again, key_deleted;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long dtor_sum, dtor_calls, again_calls, deleted_calls;
static int wrong;
static pthread_barrier_t values_set, key_gone;

static void dtor(void *v)
{
	pthread_mutex_lock(&lock);
	dtor_sum += (long)v;
	dtor_calls++;
	pthread_mutex_unlock(&lock);
}

static void dtor_again(void *v)
{
	long n = (long)v;

	pthread_mutex_lock(&lock);
	again_calls++;
	pthread_mutex_unlock(&lock);
	/* Set it again twice: three rounds in all. */
	if (n < 3)
		pthread_setspecific(key_again, (void *)(n + 1));
}

static void dtor_deleted(void *v)
{
	deleted_calls++;
}

static void *worker(void *arg)
{
	long i = (long)arg;

	if (pthread_getspecific(key) != NULL)
		wrong++;
	pthread_setspecific(key, (void *)(i + 1));
	pthread_setspecific(key2, (void *)1000L);
	pthread_setspecific(key_again, (void *)1L);
	pthread_setspecific(key_deleted, (void *)1L);
	/* Every thread has set its values; main deletes key_deleted. */
	pthread_barrier_wait(&values_set);
	pthread_barrier_wait(&key_gone);
	if (pthread_getspecific(key) != (void *)(i + 1))
		wrong++;
	if (i == 3)
		pthread_exit(NULL); /* destructors run after pthread_exit too */
	return NULL;
}

int main(void)
{
	pthread_t th[N];
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	die_rc("key_create", pthread_key_create(&key, dtor));
	die_rc("key_create", pthread_key_create(&key2, dtor));
	die_rc("key_create", pthread_key_create(&key_again, dtor_again));
	die_rc("key_create", pthread_key_create(&key_deleted, dtor_deleted));
	pthread_setspecific(key, (void *)12345L);
	die_rc("barrier_init", pthread_barrier_init(&values_set, NULL, N + 1));
	die_rc("barrier_init", pthread_barrier_init(&key_gone, NULL, N + 1));

	for (long i = 0; i < N; i++)
		die_rc("pthread_create", pthread_create(&th[i], NULL, worker, (void *)i));
	pthread_barrier_wait(&values_set);
	die_rc("key_delete", pthread_key_delete(key_deleted));
	pthread_barrier_wait(&key_gone);
	for (int i = 0; i < N; i++)
		die_rc("pthread_join", pthread_join(th[i], NULL));

	printf("main's value: %ld\n", (long)pthread_getspecific(key));
	printf("wrong values seen: %d\n", wrong);
	printf("destructor calls %ld, sum %ld\n", dtor_calls, dtor_sum);
	printf("re-set destructor calls: %ld (3 rounds x %d threads)\n", again_calls, N);
	printf("deleted key's destructor calls: %ld\n", deleted_calls);
	rc = pthread_setspecific(key_deleted, (void *)1L);
	SHOW("setspecific on a deleted key", rc);
	printf("getspecific on a deleted key: %p\n", pthread_getspecific(key_deleted));
	/* A recreated key starts empty everywhere. */
	die_rc("key_create", pthread_key_create(&key_deleted, NULL));
	printf("recreated key in main: %p\n", pthread_getspecific(key_deleted));
	return 0;
}
