/*
 * greenlet_crowd.c - a program with many threads that all wait, for the
 * tests of what greend shows of a worker too big to dump in one message:
 * under the shim each thread is a greenlet.
 *
 *   greenlet_crowd N
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;

static void *wait_forever(void *arg)
{
	pthread_mutex_lock(&lock);
	for (;;)
		pthread_cond_wait(&never, &lock);
	return arg;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10;
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (long i = 0; i < n; i++) {
		pthread_t t;

		if (pthread_create(&t, &attr, wait_forever, NULL) != 0) {
			fprintf(stderr, "greenlet_crowd: thread %ld: cannot create\n", i);
			return 1;
		}
	}
	printf("greenlet_crowd: %ld threads waiting\n", n);
	fflush(stdout);
	for (;;)
		sleep(1);
}
