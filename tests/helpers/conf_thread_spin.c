/*
 * conf_thread_spin.c - pthread spin locks: mutual exclusion under contention
 * (with holders that sleep while they hold the lock), a waiter spinning
 * while the holder is parked in a sleep, trylock EBUSY, and a process-shared
 * spin lock.
 */
#include "conf_thread.h"

#define N 4
#define ROUNDS 2000

static pthread_spinlock_t spin;
static long counter;
static int inside, overlaps;

static void *contender(void *arg)
{
	for (int i = 0; i < ROUNDS; i++) {
		pthread_spin_lock(&spin);
		if (inside++)
			overlaps++;
		counter++;
		/* Now and then the holder sleeps, so the others must wait
		 * for a holder that is not running. */
		if (i % 500 == (long)arg)
			usleep(1000);
		inside--;
		pthread_spin_unlock(&spin);
	}
	return NULL;
}

static volatile int got_it;

static void *waiter(void *arg)
{
	pthread_spin_lock(&spin);
	got_it = 1;
	pthread_spin_unlock(&spin);
	return NULL;
}

int main(void)
{
	pthread_t th[N];
	pthread_spinlock_t shared;

	die_rc("pthread_spin_init", pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE));
	for (long i = 0; i < N; i++)
		die_rc("pthread_create", pthread_create(&th[i], NULL, contender, (void *)i));
	for (int i = 0; i < N; i++)
		die_rc("pthread_join", pthread_join(th[i], NULL));
	printf("%d threads x %d: counter %ld, overlaps %d\n", N, ROUNDS, counter, overlaps);

	/* The holder (this thread) parks in a sleep while the other spins. */
	pthread_spin_lock(&spin);
	SHOW("trylock held", pthread_spin_trylock(&spin));
	die_rc("pthread_create", pthread_create(&th[0], NULL, waiter, NULL));
	sleep_ms(50);
	printf("waiter got it while held: %s\n", got_it ? "yes" : "no");
	pthread_spin_unlock(&spin);
	die_rc("pthread_join", pthread_join(th[0], NULL));
	printf("waiter got it after unlock: %s\n", got_it ? "yes" : "no");
	SHOW("trylock free", pthread_spin_trylock(&spin));
	SHOW("unlock", pthread_spin_unlock(&spin));
	SHOW("destroy", pthread_spin_destroy(&spin));

	SHOW("init shared", pthread_spin_init(&shared, PTHREAD_PROCESS_SHARED));
	SHOW("lock shared", pthread_spin_lock(&shared));
	SHOW("trylock shared held", pthread_spin_trylock(&shared));
	SHOW("unlock shared", pthread_spin_unlock(&shared));
	SHOW("destroy shared", pthread_spin_destroy(&shared));
	return conf_failed;
}
