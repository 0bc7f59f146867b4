/*
 * conf_thread_condtimed.c - pthread_cond_timedwait expiring on the clock
 * the condition was made with (CLOCK_REALTIME by default, CLOCK_MONOTONIC
 * via pthread_condattr_setclock), pthread_cond_clockwait, a signal that
 * beats the deadline, a deadline in the past and a bad timespec.
 */
#include "conf_thread.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond_rt = PTHREAD_COND_INITIALIZER;
static pthread_cond_t cond_mono;
static int flag;

static void timed(const char *what, pthread_cond_t *c, clockid_t clock, long ms)
{
	struct timespec ts = abs_after(clock, ms);
	double t0 = now_ms(), waited;
	int rc;

	pthread_mutex_lock(&lock);
	do
		rc = pthread_cond_timedwait(c, &lock, &ts);
	while (rc == 0);
	/* The mutex is ours again, even after a timeout. */
	SHOW(what, rc);
	CHECK("  mutex held after the wait", pthread_mutex_trylock(&lock) == EBUSY);
	pthread_mutex_unlock(&lock);
	waited = now_ms() - t0;
	printf("# %s waited %.1f ms for %ld\n", what, waited, ms);
	CHECK("  waited the full time", waited >= ms - 1 && waited < ms + 1000);
}

static void *signaller(void *arg)
{
	sleep_ms(30);
	pthread_mutex_lock(&lock);
	flag = 1;
	pthread_cond_signal(&cond_mono);
	pthread_mutex_unlock(&lock);
	return NULL;
}

int main(void)
{
	pthread_condattr_t attr;
	clockid_t clock = -1;
	pthread_t t;
	struct timespec ts;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_condattr_getclock(&attr, &clock);
	printf("condattr clock monotonic: %s\n", clock == CLOCK_MONOTONIC ? "yes" : "no");
	die_rc("pthread_cond_init", pthread_cond_init(&cond_mono, &attr));
	pthread_condattr_destroy(&attr);

	timed("realtime timedwait", &cond_rt, CLOCK_REALTIME, 120);
	timed("monotonic timedwait", &cond_mono, CLOCK_MONOTONIC, 120);

	/* clockwait names its clock, whatever the condition's. */
	pthread_mutex_lock(&lock);
	ts = abs_after(CLOCK_MONOTONIC, 60);
	do
		rc = pthread_cond_clockwait(&cond_rt, &lock, CLOCK_MONOTONIC, &ts);
	while (rc == 0);
	SHOW("clockwait monotonic", rc);
	ts = abs_after(CLOCK_REALTIME, 60);
	do
		rc = pthread_cond_clockwait(&cond_mono, &lock, CLOCK_REALTIME, &ts);
	while (rc == 0);
	SHOW("clockwait realtime", rc);
	SHOW("clockwait bad clock",
	     pthread_cond_clockwait(&cond_rt, &lock, CLOCK_PROCESS_CPUTIME_ID, &ts));

	/* Past deadline and bad timespecs. */
	ts.tv_sec = 0;
	ts.tv_nsec = 0;
	SHOW("timedwait in the past", pthread_cond_timedwait(&cond_rt, &lock, &ts));
	ts.tv_sec = -1;
	SHOW("timedwait negative", pthread_cond_timedwait(&cond_mono, &lock, &ts));
	ts.tv_sec = 0;
	ts.tv_nsec = 1000000000L;
	SHOW("timedwait bad nsec", pthread_cond_timedwait(&cond_rt, &lock, &ts));
	pthread_mutex_unlock(&lock);

	/* A signal beats a long deadline. */
	die_rc("pthread_create", pthread_create(&t, NULL, signaller, NULL));
	{
		double t0 = now_ms();

		pthread_mutex_lock(&lock);
		ts = abs_after(CLOCK_MONOTONIC, 5000);
		rc = 0;
		while (!flag && rc == 0)
			rc = pthread_cond_timedwait(&cond_mono, &lock, &ts);
		pthread_mutex_unlock(&lock);
		SHOW("signalled before the deadline", rc);
		printf("# woken after %.1f ms\n", now_ms() - t0);
		CHECK("  woken early", now_ms() - t0 < 2500);
	}
	die_rc("pthread_join", pthread_join(t, NULL));
	SHOW("destroy", pthread_cond_destroy(&cond_mono));
	return conf_failed;
}
