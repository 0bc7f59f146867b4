/*
 * conf_thread_fork.c - fork in a threaded program: in the child only the
 * thread that called fork goes on (POSIX); the others, busy in a loop in
 * the parent, never run there.  The child can still make and join new
 * threads, and lock a mutex no other thread held.  Fork once from main and
 * once from a thread (then the child ends when that thread ends).
 */
#include "conf_thread.h"

#include <sys/wait.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile long ticks;
static volatile int stop;

static void *ticker(void *arg)
{
	while (!stop) {
		pthread_mutex_lock(&lock);
		ticks++;
		pthread_mutex_unlock(&lock);
		sleep_ms(2);
	}
	return NULL;
}

static void *child_helper(void *arg)
{
	return (void *)((long)arg + 1);
}

/* In the child: 0 if all is as POSIX says. */
static int child_checks(void)
{
	long before, after;
	pthread_t t;
	void *res = NULL;

	pthread_mutex_lock(&lock);
	before = ticks;
	pthread_mutex_unlock(&lock);
	sleep_ms(60);
	pthread_mutex_lock(&lock);
	after = ticks;
	pthread_mutex_unlock(&lock);
	if (after != before)
		return 1; /* a ticker came along */
	if (pthread_create(&t, NULL, child_helper, (void *)41L) != 0)
		return 2;
	if (pthread_join(t, &res) != 0 || (long)res != 42)
		return 3;
	return 0;
}

static int wait_child(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

static void *forker(void *arg)
{
	pid_t pid;

	pthread_mutex_lock(&lock); /* not held across the fork */
	pthread_mutex_unlock(&lock);
	pid = fork();
	if (pid == 0) {
		int rc = child_checks();

		if (rc)
			_exit(rc);
		/* Returning ends the child's only thread: exit status 0. */
		return NULL;
	}
	return (void *)(long)wait_child(pid);
}

int main(void)
{
	pthread_t tick[3], f;
	pid_t pid;
	void *res;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 0; i < 3; i++)
		die_rc("pthread_create", pthread_create(&tick[i], NULL, ticker, NULL));
	sleep_ms(20);

	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(child_checks());
	printf("child of main: %d\n", wait_child(pid));

	die_rc("pthread_create", pthread_create(&f, NULL, forker, NULL));
	die_rc("pthread_join", pthread_join(f, &res));
	printf("child of a thread: %ld\n", (long)res);

	stop = 1;
	for (int i = 0; i < 3; i++)
		die_rc("pthread_join", pthread_join(tick[i], NULL));
	printf("parent's tickers ran: %s\n", ticks > 10 ? "yes" : "no");
	return 0;
}
