/*
 * conf_thread_sem.c - POSIX unnamed semaphores between threads: wait/post
 * hand-off, a counting semaphore bounding concurrency, trywait EAGAIN,
 * timedwait/clockwait ETIMEDOUT and EINVAL, getvalue, EOVERFLOW.
 */
#include "conf_thread.h"

#include <limits.h>
#include <semaphore.h>

static sem_t items, slots, limit;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int inside, most_inside;
static long total;

static void *producer(void *arg)
{
	for (long i = 1; i <= 1000; i++) {
		sem_wait(&slots);
		pthread_mutex_lock(&lock);
		total += i;
		pthread_mutex_unlock(&lock);
		sem_post(&items);
	}
	return NULL;
}

static void *consumer(void *arg)
{
	for (int i = 0; i < 1000; i++) {
		sem_wait(&items);
		sem_post(&slots);
	}
	return NULL;
}

static void *limited(void *arg)
{
	sem_wait(&limit);
	pthread_mutex_lock(&lock);
	inside++;
	if (inside > most_inside)
		most_inside = inside;
	pthread_mutex_unlock(&lock);
	sleep_ms(20);
	pthread_mutex_lock(&lock);
	inside--;
	pthread_mutex_unlock(&lock);
	sem_post(&limit);
	return NULL;
}

static sem_t ping, pong;

static void *ponger(void *arg)
{
	for (int i = 0; i < 100; i++) {
		sem_wait(&ping);
		sem_post(&pong);
	}
	return NULL;
}

static void *late_post(void *arg)
{
	sleep_ms(40);
	sem_post(arg);
	return NULL;
}

#define T(what, call)                                                          \
	do {                                                                   \
		int rc_, err_;                                                 \
		errno = 0;                                                     \
		rc_ = (call);                                                  \
		err_ = errno;                                                  \
		printf("%s: %d %s\n", (what), rc_, rc_ ? errname(err_) : "");  \
	} while (0)

int main(void)
{
	pthread_t p[2], c[2], l[10], t;
	struct timespec ts;
	int v = -1;
	double t0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	sem_init(&items, 0, 0);
	sem_init(&slots, 0, 4);
	for (int i = 0; i < 2; i++) {
		die_rc("pthread_create", pthread_create(&c[i], NULL, consumer, NULL));
		die_rc("pthread_create", pthread_create(&p[i], NULL, producer, NULL));
	}
	for (int i = 0; i < 2; i++) {
		die_rc("pthread_join", pthread_join(p[i], NULL));
		die_rc("pthread_join", pthread_join(c[i], NULL));
	}
	sem_getvalue(&items, &v);
	printf("produced total %ld, items left %d\n", total, v);
	sem_getvalue(&slots, &v);
	printf("slots left %d\n", v);

	/* At most 3 inside. */
	sem_init(&limit, 0, 3);
	for (int i = 0; i < 10; i++)
		die_rc("pthread_create", pthread_create(&l[i], NULL, limited, NULL));
	for (int i = 0; i < 10; i++)
		die_rc("pthread_join", pthread_join(l[i], NULL));
	printf("most inside: %d\n", most_inside);

	/* Ping-pong. */
	sem_init(&ping, 0, 0);
	sem_init(&pong, 0, 0);
	die_rc("pthread_create", pthread_create(&t, NULL, ponger, NULL));
	for (int i = 0; i < 100; i++) {
		sem_post(&ping);
		sem_wait(&pong);
	}
	die_rc("pthread_join", pthread_join(t, NULL));
	printf("ping-pong: 100 rounds\n");

	/* Errors and timeouts. */
	T("trywait empty", sem_trywait(&ping));
	T("post", sem_post(&ping));
	T("trywait", sem_trywait(&ping));
	ts.tv_sec = 0;
	ts.tv_nsec = 1000000000L;
	T("post", sem_post(&ping));
	T("timedwait bad nsec, available", sem_timedwait(&ping, &ts));
	T("trywait", sem_trywait(&ping));
	T("timedwait bad nsec, empty", sem_timedwait(&ping, &ts));
	ts.tv_nsec = 0;
	T("timedwait in the past", sem_timedwait(&ping, &ts));
	ts.tv_sec = -1;
	T("timedwait negative", sem_timedwait(&ping, &ts));
	T("clockwait bad clock", sem_clockwait(&ping, CLOCK_PROCESS_CPUTIME_ID, &ts));
	t0 = now_ms();
	ts = abs_after(CLOCK_REALTIME, 80);
	T("timedwait expires", sem_timedwait(&ping, &ts));
	printf("# timedwait waited %.1f ms\n", now_ms() - t0);
	CHECK("  waited the full time", now_ms() - t0 >= 79);
	t0 = now_ms();
	ts = abs_after(CLOCK_MONOTONIC, 80);
	T("clockwait monotonic expires", sem_clockwait(&ping, CLOCK_MONOTONIC, &ts));
	printf("# clockwait waited %.1f ms\n", now_ms() - t0);
	CHECK("  waited the full time", now_ms() - t0 >= 79);
	die_rc("pthread_create", pthread_create(&t, NULL, late_post, &ping));
	ts = abs_after(CLOCK_MONOTONIC, 5000);
	T("clockwait posted in time", sem_clockwait(&ping, CLOCK_MONOTONIC, &ts));
	die_rc("pthread_join", pthread_join(t, NULL));
	die_rc("pthread_create", pthread_create(&t, NULL, late_post, &ping));
	ts = abs_after(CLOCK_REALTIME, 5000);
	T("timedwait posted in time", sem_timedwait(&ping, &ts));
	die_rc("pthread_join", pthread_join(t, NULL));

	T("init too big", sem_init(&pong, 0, (unsigned int)SEM_VALUE_MAX + 1));
	T("init max", sem_init(&pong, 0, SEM_VALUE_MAX));
	T("post at max", sem_post(&pong));
	sem_getvalue(&pong, &v);
	printf("value at max: %s\n", v == SEM_VALUE_MAX ? "SEM_VALUE_MAX" : "other");
	T("destroy", sem_destroy(&pong));
	return conf_failed;
}
