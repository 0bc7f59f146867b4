/*
 * conf_thread_once.c - pthread_once called by many threads at once: the
 * routine runs exactly once, and every caller returns only after it has
 * finished (it sleeps, so the others must wait for it).
 */
#include "conf_thread.h"

#define N 50

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_once_t once2 = PTHREAD_ONCE_INIT;
static int runs, runs2, saw_unfinished;
static volatile int finished;

static void init(void)
{
	runs++;
	sleep_ms(50);
	finished = 1;
}

static void init2(void)
{
	runs2++;
}

static void *caller(void *arg)
{
	pthread_once(&once, init);
	if (!finished)
		saw_unfinished++;
	pthread_once(&once2, init2);
	return NULL;
}

int main(void)
{
	pthread_t th[N];

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 0; i < N; i++)
		die_rc("pthread_create", pthread_create(&th[i], NULL, caller, NULL));
	for (int i = 0; i < N; i++)
		die_rc("pthread_join", pthread_join(th[i], NULL));
	printf("init ran %d time(s), callers that returned early: %d\n", runs, saw_unfinished);
	SHOW("once again from main", pthread_once(&once, init));
	printf("init ran %d time(s), init2 ran %d time(s)\n", runs, runs2);
	return 0;
}
