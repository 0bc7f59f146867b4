/*
 * conf_thread_mainexit.c - pthread_exit in main: the other threads go on,
 * and the process exits with 0 when the last one ends (atexit handlers
 * run); a thread that joins the main thread gets its exit value.
 */
#include "conf_thread.h"

#include <semaphore.h>

static pthread_t main_thread;
static pthread_key_t key;
/* The later thread prints after the earlier one whatever the machine's
 * load does to their sleeps: the order is the program's, not the clock's. */
static sem_t earlier_done;

static void bye(void)
{
	printf("atexit handler\n");
}

static void main_dtor(void *v)
{
	printf("main's key destructor: %ld\n", (long)v);
}

static void *joins_main(void *arg)
{
	void *res = NULL;
	int rc = pthread_join(main_thread, &res);

	printf("joined main: %s %ld\n", errname(rc), (long)res);
	return NULL;
}

static void *late(void *arg)
{
	sleep_ms((long)arg);
	if ((long)arg > 100)
		while (sem_wait(&earlier_done) < 0 && errno == EINTR)
			;
	printf("thread after %ld ms, main gone\n", (long)arg);
	if ((long)arg == 100)
		sem_post(&earlier_done);
	return NULL;
}

int main(void)
{
	pthread_t t;
	pthread_attr_t attr;

	setvbuf(stdout, NULL, _IOLBF, 0);
	atexit(bye);
	main_thread = pthread_self();
	sem_init(&earlier_done, 0, 0);
	pthread_key_create(&key, main_dtor);
	pthread_setspecific(key, (void *)77L);
	die_rc("pthread_create", pthread_create(&t, NULL, joins_main, NULL));
	die_rc("pthread_create", pthread_create(&t, NULL, late, (void *)100L));
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	die_rc("pthread_create", pthread_create(&t, &attr, late, (void *)200L));
	sleep_ms(20);
	printf("main exits\n");
	pthread_exit((void *)42L);
	printf("not reached\n");
	return 3;
}
