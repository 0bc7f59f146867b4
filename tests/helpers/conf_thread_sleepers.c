/*
 * conf_thread_sleepers.c - 200 threads that each sleep 100 ms finish in
 * about 100 ms, not 20 s; greened, the process keeps at most 4 OS threads.
 */
#include "conf_thread.h"

#define N 200

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int started, finished;
/* Every thread is alive (and about to sleep) when main counts them. */
static pthread_barrier_t all_started;

static void *sleeper(void *arg)
{
	pthread_mutex_lock(&lock);
	started++;
	pthread_mutex_unlock(&lock);
	pthread_barrier_wait(&all_started);
	sleep_ms(100);
	pthread_mutex_lock(&lock);
	finished++;
	pthread_mutex_unlock(&lock);
	return arg;
}

int main(void)
{
	pthread_t th[N];
	long sum = 0;
	int most;
	double t0, elapsed;

	setvbuf(stdout, NULL, _IOLBF, 0);
	die_rc("pthread_barrier_init", pthread_barrier_init(&all_started, NULL, N + 1));
	t0 = now_ms();
	for (long i = 0; i < N; i++)
		die_rc("pthread_create", pthread_create(&th[i], NULL, sleeper, (void *)i));
	pthread_barrier_wait(&all_started);
	most = os_threads();
	for (int i = 0; i < N; i++) {
		void *r;

		die_rc("pthread_join", pthread_join(th[i], &r));
		sum += (long)r;
	}
	elapsed = now_ms() - t0;
	printf("# %d threads slept 100 ms in %.1f ms; %d OS threads\n", N, elapsed, most);
	printf("started %d finished %d sum %ld\n", started, finished, sum);
	CHECK("all slept at once (under 2 s)", elapsed >= 95 && elapsed < 2000);
	if (greened())
		CHECK("OS threads", most >= 1 && most <= 4);
	else
		CHECK("OS threads", most > N / 2);
	return conf_failed;
}
