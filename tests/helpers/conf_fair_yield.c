/*
 * conf_fair_yield - sched_yield lets the other threads run: two threads
 * pass a turn back and forth with nothing but sched_yield between, and a
 * thread spinning on sched_yield sees a flag set by one that sleeps or is
 * made ready.
 */
#include "conf_fair.h"

#include <sched.h>

#define ROUNDS 1000
/* A bound, not a goal: natively the turns take some 40 ms. */
#define PINGPONG_LIMIT_MS 10000

static volatile int turn;

static void *pong(void *arg)
{
	double t0 = now_ms();

	(void)arg;
	for (int i = 0; i < ROUNDS; i++) {
		while (turn != 1 && now_ms() - t0 < PINGPONG_LIMIT_MS)
			sched_yield();
		turn = 0;
	}
	return NULL;
}

static int yield(void *arg)
{
	(void)arg;
	return sched_yield();
}

int main(void)
{
	pthread_t th;
	double t0;
	int done = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	die_rc("pthread_create", pthread_create(&th, NULL, pong, NULL));
	t0 = now_ms();
	for (int i = 0; i < ROUNDS; i++) {
		while (turn != 0 && now_ms() - t0 < PINGPONG_LIMIT_MS)
			sched_yield();
		if (turn == 0)
			done++;
		turn = 1;
	}
	pthread_join(th, NULL);
	printf("sched_yield ping-pong: %d of %d turns passed\n", done, ROUNDS);
	printf("# ping-pong: %.1f ms\n", now_ms() - t0);
	fair_spin("sched_yield", yield, NULL);
	return 0;
}
