/*
 * conf_thread_create.c - threads: create and join with results, detach,
 * pthread_self distinct per thread and pthread_equal, the join errors
 * (EDEADLK, EINVAL, EBUSY, ETIMEDOUT), pthread_exit from a nested call,
 * names and attributes.
 */
#include "conf_thread.h"

#define N 20

static pthread_t selves[N];
static int ran[N];

static void *square(void *arg)
{
	long i = (long)arg;

	selves[i] = pthread_self();
	sched_yield();
	/* Still the same thread after a switch. */
	if (!pthread_equal(selves[i], pthread_self()))
		return (void *)-1L;
	ran[i] = 1;
	return (void *)(i * i);
}

/* Called through a pointer, so the compiler cannot see it never returns. */
static void (*volatile exit_fn)(void *) = pthread_exit;

static void deep_exit(int depth, long value)
{
	char frame[64];

	snprintf(frame, sizeof(frame), "%d", depth);
	if (depth > 0)
		deep_exit(depth - 1, value);
	else
		exit_fn((void *)value);
	printf("not reached after pthread_exit (%s)\n", frame);
}

static void *exits(void *arg)
{
	deep_exit(10, (long)arg);
	return (void *)0;
}

static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open;
static int detached_done;

static void *waits_for_gate(void *arg)
{
	pthread_mutex_lock(&gate);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate);
	pthread_mutex_unlock(&gate);
	return arg;
}

static void *detached_worker(void *arg)
{
	sleep_ms(20);
	pthread_mutex_lock(&gate);
	detached_done++;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate);
	return arg;
}

static void *join_self(void *arg)
{
	return (void *)(long)pthread_join(pthread_self(), NULL);
}

static void *names(void *arg)
{
	char buf[32];
	int rc;

	rc = pthread_setname_np(pthread_self(), "worker-7");
	SHOW("setname", rc);
	rc = pthread_getname_np(pthread_self(), buf, sizeof(buf));
	printf("getname: %d %s\n", rc, buf);
	SHOW("setname too long", pthread_setname_np(pthread_self(), "0123456789abcdefXYZ"));
	SHOW("getname small buffer", pthread_getname_np(pthread_self(), buf, 8));
	return NULL;
}

static void *stack_user(void *arg)
{
	pthread_attr_t attr;
	size_t size = 0;
	void *addr = NULL;
	char big[200 * 1024];
	char here;
	int ok;

	memset(big, 1, sizeof(big));
	__asm__ volatile("" : : "r"(big) : "memory");
	if (pthread_getattr_np(pthread_self(), &attr) != 0)
		return (void *)0L;
	pthread_attr_getstack(&attr, &addr, &size);
	pthread_attr_destroy(&attr);
	ok = (char *)addr <= &here && &here < (char *)addr + size &&
	     size >= 512 * 1024 && big[1000] == 1;
	return (void *)(long)ok;
}

int main(void)
{
	pthread_t th[N], t;
	pthread_attr_t attr;
	void *res;
	long sum = 0;
	bool distinct = true, results = true;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);

	/* Create and join, with results. */
	for (long i = 0; i < N; i++)
		die_rc("pthread_create", pthread_create(&th[i], NULL, square, (void *)i));
	for (int i = 0; i < N; i++) {
		die_rc("pthread_join", pthread_join(th[i], &res));
		if ((long)res != (long)i * i)
			results = false;
		sum += (long)res;
	}
	printf("sum of squares: %ld\n", sum);
	CHECK("results", results);
	for (int i = 0; i < N; i++) {
		if (!ran[i] || !pthread_equal(selves[i], th[i]))
			distinct = false;
		for (int j = 0; j < i; j++)
			if (pthread_equal(selves[i], selves[j]))
				distinct = false;
		if (pthread_equal(selves[i], pthread_self()))
			distinct = false;
	}
	CHECK("pthread_self distinct and equal to the creator's id", distinct);
	CHECK("pthread_equal(self, self)", pthread_equal(pthread_self(), pthread_self()));

	/* pthread_exit from deep inside. */
	die_rc("pthread_create", pthread_create(&t, NULL, exits, (void *)4242L));
	die_rc("pthread_join", pthread_join(t, &res));
	printf("pthread_exit value: %ld\n", (long)res);

	/* Join errors. */
	SHOW("join self", pthread_join(pthread_self(), NULL));
	die_rc("pthread_create", pthread_create(&t, NULL, join_self, NULL));
	die_rc("pthread_join", pthread_join(t, &res));
	SHOW("join self from a thread", (int)(long)res);

	die_rc("pthread_create", pthread_create(&t, NULL, waits_for_gate, (void *)7L));
	SHOW("tryjoin running", pthread_tryjoin_np(t, &res));
	{
		struct timespec ts = abs_after(CLOCK_REALTIME, 50);
		double t0 = now_ms();

		rc = pthread_timedjoin_np(t, &res, &ts);
		SHOW("timedjoin running", rc);
		printf("# timedjoin waited %.1f ms\n", now_ms() - t0);
		ts = abs_after(CLOCK_MONOTONIC, 30);
		SHOW("clockjoin running", pthread_clockjoin_np(t, &res, CLOCK_MONOTONIC, &ts));
		SHOW("clockjoin bad clock",
		     pthread_clockjoin_np(t, &res, CLOCK_PROCESS_CPUTIME_ID, &ts));
	}
	pthread_mutex_lock(&gate);
	gate_open = 1;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate);
	die_rc("pthread_join", pthread_join(t, &res));
	printf("joined after gate: %ld\n", (long)res);

	/* Detach: by attribute and by call; a detached thread is not joinable. */
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	die_rc("pthread_create", pthread_create(&t, &attr, detached_worker, NULL));
	SHOW("join detached", pthread_join(t, NULL));
	pthread_attr_destroy(&attr);
	die_rc("pthread_create", pthread_create(&t, NULL, detached_worker, NULL));
	SHOW("detach", pthread_detach(t));
	pthread_mutex_lock(&gate);
	while (detached_done < 2)
		pthread_cond_wait(&gate_cond, &gate);
	pthread_mutex_unlock(&gate);
	printf("detached threads ran: %d\n", detached_done);
	/* Detach after it finished: frees it. */
	die_rc("pthread_create", pthread_create(&t, NULL, square, (void *)3L));
	sleep_ms(20);
	SHOW("detach finished", pthread_detach(t));

	/* Names. */
	die_rc("pthread_create", pthread_create(&t, NULL, names, NULL));
	die_rc("pthread_join", pthread_join(t, NULL));

	/* Stack size from the attributes; getattr reports the stack. */
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 1024 * 1024);
	die_rc("pthread_create", pthread_create(&t, &attr, stack_user, NULL));
	pthread_attr_destroy(&attr);
	die_rc("pthread_join", pthread_join(t, &res));
	CHECK("stack size from attr, getattr_np", (long)res == 1);
	die_rc("pthread_create", pthread_create(&t, NULL, stack_user, NULL));
	die_rc("pthread_join", pthread_join(t, &res));
	CHECK("default stack holds 200 KiB of locals", (long)res == 1);

	printf("done\n");
	return conf_failed;
}
