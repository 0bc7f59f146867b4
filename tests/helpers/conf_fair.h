/*
 * conf_fair.h - what the conf_fair_* programs share: one thread spins on a
 * call that finds its answer ready (a zero timeout, an always-ready fd)
 * until another thread, which needs to run only a little, sets a flag.
 * Natively the other thread runs on another core or when the scheduler's
 * slice ends; greened, the spinning call must give it a turn.  The spin
 * gives up after SPIN_LIMIT_MS so that a starved thread is a "no", not a
 * hang.
 */
#ifndef CONF_FAIR_H
#define CONF_FAIR_H

#include "conf_common.h"

#include <semaphore.h>

#define SPIN_LIMIT_MS 2000

static volatile int fair_flag;
static sem_t fair_go;

/* Sets the flag after a sleep: it needs the hub to poll its timer. */
static inline void *fair_after_sleep(void *arg)
{
	(void)arg;
	sleep_ms(5);
	fair_flag = 1;
	return NULL;
}

/* Sets the flag once posted: it needs only a place in the ready queue. */
static inline void *fair_after_post(void *arg)
{
	(void)arg;
	while (sem_wait(&fair_go) < 0 && errno == EINTR)
		;
	fair_flag = 1;
	return NULL;
}

/* Spin on call(arg) until the other thread has set the flag, both ways. */
static inline void fair_spin(const char *what, int (*call)(void *), void *arg)
{
	for (int way = 0; way < 2; way++) {
		pthread_t th;
		double t0;
		long n = 0;

		fair_flag = 0;
		if (way == 1)
			sem_init(&fair_go, 0, 0);
		die_rc("pthread_create",
		       pthread_create(&th, NULL, way == 0 ? fair_after_sleep : fair_after_post, NULL));
		if (way == 1)
			sem_post(&fair_go);
		t0 = now_ms();
		while (!fair_flag && now_ms() - t0 < SPIN_LIMIT_MS) {
			if (call(arg) < 0) {
				printf("%s: failed: %s\n", what, en(errno));
				break;
			}
			n++;
		}
		printf("%s: a thread %s ran: %s\n", what,
		       way == 0 ? "woken by its timer" : "made ready", fair_flag ? "yes" : "no");
		printf("# %s: %ld calls, %.1f ms\n", what, n, now_ms() - t0);
		if (!fair_flag)
			fair_flag = 1; /* it may still be waiting to be let run */
		pthread_join(th, NULL);
		if (way == 1)
			sem_destroy(&fair_go);
	}
}

#endif
