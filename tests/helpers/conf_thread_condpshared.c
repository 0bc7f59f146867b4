/*
 * conf_thread_condpshared.c - process-shared condition variables (and
 * mutexes) in shared memory: a waiter woken by another thread's signal,
 * broadcast to several waiters, ETIMEDOUT and EINVAL from a timed wait,
 * and a child process woken by its parent.  Greened, a waiting thread must
 * not keep the signalling thread of the same OS thread from running.
 */
#include "conf_thread.h"

#include <sys/mman.h>
#include <sys/wait.h>

struct shared {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int flag;
	int woken;
};

static struct shared *sh;

static void *waiter(void *arg)
{
	pthread_mutex_lock(&sh->lock);
	while (!sh->flag)
		pthread_cond_wait(&sh->cond, &sh->lock);
	sh->woken++;
	pthread_mutex_unlock(&sh->lock);
	return NULL;
}

static void set_flag(int how)
{
	pthread_mutex_lock(&sh->lock);
	sh->flag = 1;
	if (how == 1)
		pthread_cond_broadcast(&sh->cond);
	else
		pthread_cond_signal(&sh->cond);
	pthread_mutex_unlock(&sh->lock);
}

int main(void)
{
	pthread_mutexattr_t ma;
	pthread_condattr_t ca;
	pthread_t th[3];
	struct timespec ts;
	int status;
	pid_t pid;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 2;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_condattr_init(&ca);
	pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
	die_rc("mutex_init", pthread_mutex_init(&sh->lock, &ma));
	die_rc("cond_init", pthread_cond_init(&sh->cond, &ca));

	die_rc("pthread_create", pthread_create(&th[0], NULL, waiter, NULL));
	sleep_ms(20);
	set_flag(0);
	die_rc("pthread_join", pthread_join(th[0], NULL));
	printf("signal: woken %d\n", sh->woken);

	sh->flag = sh->woken = 0;
	for (int i = 0; i < 3; i++)
		die_rc("pthread_create", pthread_create(&th[i], NULL, waiter, NULL));
	sleep_ms(20);
	set_flag(1);
	for (int i = 0; i < 3; i++)
		die_rc("pthread_join", pthread_join(th[i], NULL));
	printf("broadcast: woken %d\n", sh->woken);

	pthread_mutex_lock(&sh->lock);
	ts = abs_after(CLOCK_REALTIME, 50);
	SHOW("timedwait, no signal", pthread_cond_timedwait(&sh->cond, &sh->lock, &ts));
	ts.tv_nsec = 2000000000L;
	SHOW("timedwait, bad time", pthread_cond_timedwait(&sh->cond, &sh->lock, &ts));
	ts = abs_after(CLOCK_MONOTONIC, 30);
	SHOW("clockwait, no signal",
	     pthread_cond_clockwait(&sh->cond, &sh->lock, CLOCK_MONOTONIC, &ts));
	SHOW("unlock after the timed waits", pthread_mutex_unlock(&sh->lock));

	sh->flag = sh->woken = 0;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		waiter(NULL);
		_exit(0);
	}
	sleep_ms(30);
	set_flag(0);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		printf("child did not exit cleanly\n");
	printf("child woken by its parent: %d\n", sh->woken);
	SHOW("cond_destroy", pthread_cond_destroy(&sh->cond));
	SHOW("mutex_destroy", pthread_mutex_destroy(&sh->lock));
	return conf_failed;
}
