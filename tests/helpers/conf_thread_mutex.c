/*
 * conf_thread_mutex.c - mutex types and their errors: recursive relock and
 * count, errorcheck EDEADLK and EPERM, trylock EBUSY against another
 * holder, timedlock/clocklock ETIMEDOUT and EINVAL; a mutex held across a
 * sleep (the waiter blocks, then gets it); many threads incrementing a
 * counter; lock/sleep/unlock loops that must not starve a waiter.
 */
#include "conf_thread.h"

static pthread_mutex_t plain = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t recursive = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static pthread_mutex_t errcheck;

struct probe {
	pthread_mutex_t *m;
	int trylock, timedlock, unlock, clocklock;
};

/* From another thread: what the holder's mutex looks like. */
static void *probe(void *arg)
{
	struct probe *p = arg;
	struct timespec ts = abs_after(CLOCK_REALTIME, 40);

	p->trylock = pthread_mutex_trylock(p->m);
	p->timedlock = pthread_mutex_timedlock(p->m, &ts);
	ts = abs_after(CLOCK_MONOTONIC, 20);
	p->clocklock = pthread_mutex_clocklock(p->m, CLOCK_MONOTONIC, &ts);
	p->unlock = pthread_mutex_unlock(p->m);
	return NULL;
}

static void probe_from_other(const char *name, pthread_mutex_t *m)
{
	struct probe p = {.m = m};
	pthread_t t;
	char what[96];

	die_rc("pthread_create", pthread_create(&t, NULL, probe, &p));
	die_rc("pthread_join", pthread_join(t, NULL));
	snprintf(what, sizeof(what), "%s: other trylock", name);
	SHOW(what, p.trylock);
	snprintf(what, sizeof(what), "%s: other timedlock", name);
	SHOW(what, p.timedlock);
	snprintf(what, sizeof(what), "%s: other clocklock", name);
	SHOW(what, p.clocklock);
	if (m != &plain) { /* a normal mutex lets anyone unlock it */
		snprintf(what, sizeof(what), "%s: other unlock", name);
		SHOW(what, p.unlock);
	}
}

/* ---- held across a sleep -------------------------------------------------- */

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static double got_at, released_at;
static int order[4], norder;

static void *holder(void *arg)
{
	pthread_mutex_lock(&held);
	order[norder++] = 1;
	sleep_ms(150);
	released_at = now_ms();
	order[norder++] = 2;
	pthread_mutex_unlock(&held);
	return NULL;
}

static void *waiter(void *arg)
{
	sleep_ms(30); /* the holder has it by now */
	pthread_mutex_lock(&held);
	got_at = now_ms();
	order[norder++] = 3;
	pthread_mutex_unlock(&held);
	return NULL;
}

/* ---- counter ------------------------------------------------------------- */

static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *incrementer(void *arg)
{
	for (int i = 0; i < 10000; i++) {
		pthread_mutex_lock(&counter_lock);
		long v = counter;
		if (i % 1000 == 0)
			sched_yield(); /* would lose updates without the lock */
		counter = v + 1;
		pthread_mutex_unlock(&counter_lock);
	}
	return NULL;
}

/* ---- no starvation ------------------------------------------------------- */

static pthread_mutex_t hot = PTHREAD_MUTEX_INITIALIZER;
static volatile int hot_stop;

static void *hogger(void *arg)
{
	while (!hot_stop) {
		pthread_mutex_lock(&hot);
		sleep_ms(5);
		pthread_mutex_unlock(&hot);
	}
	return NULL;
}

int main(void)
{
	pthread_mutexattr_t attr;
	pthread_t a, b, th[8];
	struct timespec ts;
	int rc, type = -1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutexattr_gettype(&attr, &type);
	printf("errorcheck type set: %s\n", type == PTHREAD_MUTEX_ERRORCHECK ? "yes" : "no");
	die_rc("pthread_mutex_init", pthread_mutex_init(&errcheck, &attr));
	pthread_mutexattr_destroy(&attr);

	/* Recursive. */
	SHOW("recursive unlock unlocked", pthread_mutex_unlock(&recursive));
	SHOW("recursive lock", pthread_mutex_lock(&recursive));
	SHOW("recursive relock", pthread_mutex_lock(&recursive));
	SHOW("recursive trylock own", pthread_mutex_trylock(&recursive));
	ts = abs_after(CLOCK_REALTIME, 10);
	SHOW("recursive timedlock own", pthread_mutex_timedlock(&recursive, &ts));
	probe_from_other("recursive held 4 times", &recursive);
	for (int i = 0; i < 3; i++)
		SHOW("recursive unlock", pthread_mutex_unlock(&recursive));
	probe_from_other("recursive held once", &recursive);
	SHOW("recursive last unlock", pthread_mutex_unlock(&recursive));
	SHOW("recursive unlock again", pthread_mutex_unlock(&recursive));
	SHOW("recursive trylock free", pthread_mutex_trylock(&recursive));
	SHOW("recursive unlock", pthread_mutex_unlock(&recursive));

	/* Errorcheck. */
	SHOW("errorcheck unlock unlocked", pthread_mutex_unlock(&errcheck));
	SHOW("errorcheck lock", pthread_mutex_lock(&errcheck));
	SHOW("errorcheck relock", pthread_mutex_lock(&errcheck));
	SHOW("errorcheck trylock own", pthread_mutex_trylock(&errcheck));
	ts = abs_after(CLOCK_REALTIME, 10);
	SHOW("errorcheck timedlock own", pthread_mutex_timedlock(&errcheck, &ts));
	probe_from_other("errorcheck", &errcheck);
	SHOW("errorcheck destroy locked", pthread_mutex_destroy(&errcheck));
	SHOW("errorcheck unlock", pthread_mutex_unlock(&errcheck));
	SHOW("errorcheck destroy", pthread_mutex_destroy(&errcheck));

	/* Normal. */
	SHOW("normal lock", pthread_mutex_lock(&plain));
	SHOW("normal trylock own", pthread_mutex_trylock(&plain));
	ts = abs_after(CLOCK_REALTIME, 30);
	SHOW("normal timedlock own (self-deadlock, times out)", pthread_mutex_timedlock(&plain, &ts));
	ts.tv_sec = 0;
	ts.tv_nsec = 2000000000L;
	SHOW("normal timedlock bad nsec", pthread_mutex_timedlock(&plain, &ts));
	ts.tv_nsec = 0;
	SHOW("normal timedlock in the past", pthread_mutex_timedlock(&plain, &ts));
	ts.tv_sec = -5;
	SHOW("normal timedlock negative", pthread_mutex_timedlock(&plain, &ts));
	SHOW("clocklock bad clock", pthread_mutex_clocklock(&plain, CLOCK_PROCESS_CPUTIME_ID, &ts));
	probe_from_other("normal", &plain);
	ts.tv_sec = 0;
	ts.tv_nsec = 2000000000L;
	SHOW("normal timedlock free, bad nsec (not checked)", pthread_mutex_timedlock(&plain, &ts));
	SHOW("normal unlock", pthread_mutex_unlock(&plain));

	/* Held across a sleep. */
	die_rc("pthread_create", pthread_create(&a, NULL, holder, NULL));
	die_rc("pthread_create", pthread_create(&b, NULL, waiter, NULL));
	die_rc("pthread_join", pthread_join(a, NULL));
	die_rc("pthread_join", pthread_join(b, NULL));
	printf("order: %d %d %d\n", order[0], order[1], order[2]);
	printf("# waiter got it %.2f ms after the release\n", got_at - released_at);
	CHECK("waiter got it after the holder's sleep", got_at >= released_at);

	/* Many threads, one counter. */
	for (int i = 0; i < 8; i++)
		die_rc("pthread_create", pthread_create(&th[i], NULL, incrementer, NULL));
	for (int i = 0; i < 8; i++)
		die_rc("pthread_join", pthread_join(th[i], NULL));
	printf("counter: %ld\n", counter);

	/* A waiter is not starved by a lock; sleep; unlock loop. */
	die_rc("pthread_create", pthread_create(&a, NULL, hogger, NULL));
	sleep_ms(20);
	{
		double t0 = now_ms();

		ts = abs_after(CLOCK_MONOTONIC, 20000); /* glibc is unfair here: seconds at times */
		rc = pthread_mutex_clocklock(&hot, CLOCK_MONOTONIC, &ts);
		SHOW("lock against a lock/sleep/unlock loop", rc);
		printf("# got it in %.1f ms\n", now_ms() - t0);
		if (rc == 0)
			pthread_mutex_unlock(&hot);
	}
	hot_stop = 1;
	die_rc("pthread_join", pthread_join(a, NULL));
	return conf_failed;
}
