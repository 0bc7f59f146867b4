/*
 * conf_thread_prodcons.c - several producers and consumers on a bounded
 * buffer guarded by a mutex and two condition variables; every item is
 * consumed exactly once, the buffer never over- or underflows.
 */
#include "conf_thread.h"

#define PRODUCERS 4
#define CONSUMERS 3
#define PER_PRODUCER 2000
#define CAP 8

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static long ring[CAP];
static int head, count, producers_left = PRODUCERS;
static int bad;
static unsigned char seen[PRODUCERS * PER_PRODUCER];

static void *producer(void *arg)
{
	long base = (long)arg * PER_PRODUCER;

	for (long i = 0; i < PER_PRODUCER; i++) {
		pthread_mutex_lock(&lock);
		while (count == CAP)
			pthread_cond_wait(&not_full, &lock);
		ring[(head + count) % CAP] = base + i;
		count++;
		if (count > CAP)
			bad = 1;
		pthread_cond_signal(&not_empty);
		pthread_mutex_unlock(&lock);
		if (i % 500 == 0)
			sleep_ms(1); /* vary the interleaving a little */
	}
	pthread_mutex_lock(&lock);
	producers_left--;
	pthread_cond_broadcast(&not_empty);
	pthread_mutex_unlock(&lock);
	return NULL;
}

static void *consumer(void *arg)
{
	long got = 0;

	for (;;) {
		long item;

		pthread_mutex_lock(&lock);
		while (count == 0 && producers_left > 0)
			pthread_cond_wait(&not_empty, &lock);
		if (count == 0) {
			pthread_mutex_unlock(&lock);
			break;
		}
		item = ring[head];
		head = (head + 1) % CAP;
		count--;
		if (count < 0)
			bad = 1;
		if (seen[item]++)
			bad = 1;
		pthread_cond_signal(&not_full);
		pthread_mutex_unlock(&lock);
		got++;
	}
	return (void *)got;
}

int main(void)
{
	pthread_t p[PRODUCERS], c[CONSUMERS];
	long total = 0;
	int missing = 0;
	bool all_busy = true;
	double t0 = now_ms();

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (long i = 0; i < CONSUMERS; i++)
		die_rc("pthread_create", pthread_create(&c[i], NULL, consumer, NULL));
	for (long i = 0; i < PRODUCERS; i++)
		die_rc("pthread_create", pthread_create(&p[i], NULL, producer, (void *)i));
	for (int i = 0; i < PRODUCERS; i++)
		die_rc("pthread_join", pthread_join(p[i], NULL));
	for (int i = 0; i < CONSUMERS; i++) {
		void *r;

		die_rc("pthread_join", pthread_join(c[i], &r));
		printf("# consumer %d got %ld\n", i, (long)r);
		total += (long)r;
		if ((long)r == 0)
			all_busy = false;
	}
	for (int i = 0; i < PRODUCERS * PER_PRODUCER; i++)
		missing += seen[i] != 1;
	printf("# %.1f ms\n", now_ms() - t0);
	printf("consumed %ld of %d\n", total, PRODUCERS * PER_PRODUCER);
	CHECK("each item once", missing == 0 && !bad);
	printf("# every consumer took some: %s\n", all_busy ? "yes" : "no");
	return conf_failed;
}
