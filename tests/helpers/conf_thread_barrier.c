/*
 * conf_thread_barrier.c - pthread barriers: N threads x M rounds, each round
 * sees every thread's work of that round and exactly one serial thread;
 * init errors; a count-1 barrier; a process-shared barrier between threads
 * and between a parent and its child (glibc's own barrier, waited for
 * without stopping the other threads).
 */
#include "conf_thread.h"

#include <sys/mman.h>
#include <sys/wait.h>

#define N 8
#define M 50

static pthread_barrier_t barrier;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int work[M];
static int serials[M];
static int short_rounds;
static int most_os_threads;

static void *party(void *arg)
{
	for (int r = 0; r < M; r++) {
		int rc;

		pthread_mutex_lock(&lock);
		work[r]++;
		pthread_mutex_unlock(&lock);
		rc = pthread_barrier_wait(&barrier);
		pthread_mutex_lock(&lock);
		if (work[r] != N)
			short_rounds++;
		if (rc == PTHREAD_BARRIER_SERIAL_THREAD)
			serials[r]++;
		else if (rc != 0)
			printf("pthread_barrier_wait: %s\n", errname(rc));
		if (r == M / 2 && os_threads() > most_os_threads)
			most_os_threads = os_threads();
		pthread_mutex_unlock(&lock);
		/* The serial thread and the others leave in any order; the
		 * next round must wait for all of them again. */
		if (((long)arg + r) % 5 == 0)
			sleep_ms(1);
	}
	return NULL;
}

static pthread_barrier_t *shared_barrier;
static int shared_serials;

static void *shared_party(void *arg)
{
	for (int r = 0; r < 10; r++) {
		int rc = pthread_barrier_wait(shared_barrier);

		pthread_mutex_lock(&lock);
		if (rc == PTHREAD_BARRIER_SERIAL_THREAD)
			shared_serials++;
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

static pthread_barrier_t *make_shared(unsigned int count)
{
	pthread_barrierattr_t attr;
	pthread_barrier_t *b = mmap(NULL, sizeof(*b), PROT_READ | PROT_WRITE,
	                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (b == MAP_FAILED) {
		printf("mmap failed\n");
		exit(2);
	}
	die_rc("pthread_barrierattr_init", pthread_barrierattr_init(&attr));
	die_rc("pthread_barrierattr_setpshared",
	       pthread_barrierattr_setpshared(&attr, PTHREAD_PROCESS_SHARED));
	die_rc("pthread_barrier_init shared", pthread_barrier_init(b, &attr, count));
	pthread_barrierattr_destroy(&attr);
	return b;
}

int main(void)
{
	pthread_t th[N];
	pthread_barrier_t one;
	int total_serials = 0, bad_serials = 0, rc;

	SHOW("init count 0", pthread_barrier_init(&one, NULL, 0));
	SHOW("init count 2^31-1", pthread_barrier_init(&one, NULL, 0x7fffffffu));
	die_rc("init count 1", pthread_barrier_init(&one, NULL, 1));
	rc = pthread_barrier_wait(&one);
	printf("count 1 wait serial: %s\n", rc == PTHREAD_BARRIER_SERIAL_THREAD ? "yes" : "no");
	rc = pthread_barrier_wait(&one);
	printf("count 1 again serial: %s\n", rc == PTHREAD_BARRIER_SERIAL_THREAD ? "yes" : "no");
	SHOW("destroy", pthread_barrier_destroy(&one));

	die_rc("pthread_barrier_init", pthread_barrier_init(&barrier, NULL, N));
	for (long i = 0; i < N; i++)
		die_rc("pthread_create", pthread_create(&th[i], NULL, party, (void *)i));
	for (int i = 0; i < N; i++)
		die_rc("pthread_join", pthread_join(th[i], NULL));
	for (int r = 0; r < M; r++) {
		total_serials += serials[r];
		if (serials[r] != 1)
			bad_serials++;
	}
	printf("%d threads x %d rounds: rounds with a missing party %d\n", N, M, short_rounds);
	printf("serial threads %d, rounds without exactly one %d\n", total_serials, bad_serials);
	printf("# OS threads mid-way: %d\n", most_os_threads);
	if (greened())
		CHECK("OS threads", most_os_threads >= 1 && most_os_threads <= 4);
	else
		CHECK("OS threads", most_os_threads > N);
	SHOW("destroy after use", pthread_barrier_destroy(&barrier));

	/* Process-shared, between three threads of this process. */
	shared_barrier = make_shared(3);
	for (int i = 0; i < 3; i++)
		die_rc("pthread_create", pthread_create(&th[i], NULL, shared_party, NULL));
	for (int i = 0; i < 3; i++)
		die_rc("pthread_join", pthread_join(th[i], NULL));
	printf("process-shared, 3 threads x 10 rounds: serial threads %d\n", shared_serials);
	SHOW("destroy shared", pthread_barrier_destroy(shared_barrier));

	/* Process-shared, between a parent and its child, while another
	 * thread of the parent keeps running. */
	shared_barrier = make_shared(2);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		printf("fork failed\n");
		return 2;
	}
	if (pid == 0) {
		int serial = 0;

		for (int r = 0; r < 5; r++)
			serial += pthread_barrier_wait(shared_barrier) == PTHREAD_BARRIER_SERIAL_THREAD;
		_exit(serial);
	}
	int parent_serial = 0, status;
	for (int r = 0; r < 5; r++) {
		sleep_ms(2);
		parent_serial += pthread_barrier_wait(shared_barrier) == PTHREAD_BARRIER_SERIAL_THREAD;
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
		printf("child did not exit\n");
		return 2;
	}
	printf("parent and child x 5 rounds: serial threads %d\n",
	       parent_serial + WEXITSTATUS(status));
	return conf_failed;
}
