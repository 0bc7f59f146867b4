/*
 * conf_tls_values.c - __thread values are per thread: each of eight threads
 * sets its own, switches away many times (sleeps, a barrier, a mutex), and
 * still sees its own; an address of its TLS taken before a switch reads its
 * own value after it (code keeps such addresses in registers); the main
 * thread's values are untouched by the others.
 */
#include "conf_tls.h"

static __thread long mine;
static __thread char label[32];
static __thread long *mine_addr;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int max_os_threads;

static void *worker(void *arg)
{
	long id = (long)arg, bad = 0;
	char want[32];

	mine = id * 1000;
	mine_addr = &mine;
	snprintf(label, sizeof(label), "thread %ld", id);
	snprintf(want, sizeof(want), "thread %ld", id);
	pthread_barrier_wait(&tls_meet); /* every thread has set its values */
	for (int i = 0; i < 20; i++) {
		long *p = &mine;

		usleep(200);
		if (*p != id * 1000 + i || mine_addr != &mine || strcmp(label, want) != 0)
			bad++;
		pthread_mutex_lock(&lock);
		mine++;
		if (os_threads() > max_os_threads)
			max_os_threads = os_threads();
		pthread_mutex_unlock(&lock);
		sched_yield();
	}
	pthread_barrier_wait(&tls_meet);
	if (mine != id * 1000 + 20)
		bad++;
	return (void *)bad;
}

int main(void)
{
	void *bad[TLS_THREADS];
	long total = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	mine = -7;
	snprintf(label, sizeof(label), "main");
	tls_run_all(worker, bad);
	for (int i = 0; i < TLS_THREADS; i++) {
		printf("thread %d saw only its own __thread values: %s\n", i,
		       bad[i] ? "no" : "yes");
		total += (long)bad[i];
	}
	CHECK("main's __thread values kept", mine == -7 && strcmp(label, "main") == 0);
	CHECK("every thread saw its own", total == 0);
	tls_check_os_threads(max_os_threads);
	return conf_failed;
}
