/*
 * conf_signal_sem - a signal handler without SA_RESTART ends a semaphore
 * wait with EINTR, and one with SA_RESTART lets it go on (Linux restarts
 * it, signal(7)); it never ends a mutex or condition wait (POSIX), though
 * it runs in the waiting thread.
 */
#include "conf_signal.h"

#include <semaphore.h>

static sem_t sem;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static pthread_t target;
static volatile sig_atomic_t ran_in_target;
static int wait_rc, wait_err;
static bool signalled;
static volatile pid_t target_tid;

static void on_usr1(int sig)
{
	(void)sig;
	conf_sig_hits++;
	ran_in_target = pthread_equal(pthread_self(), target);
}

static void *sem_waiter(void *arg)
{
	struct timespec ts = abs_after(CLOCK_REALTIME, 5000);

	target_tid = gettid();
	wait_rc = arg ? sem_timedwait(&sem, &ts) : sem_wait(&sem);
	wait_err = errno;
	return NULL;
}

static void *mutex_waiter(void *arg)
{
	(void)arg;
	target_tid = gettid();
	wait_rc = pthread_mutex_lock(&lock);
	pthread_mutex_unlock(&lock);
	return NULL;
}

static void *cond_waiter(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	target_tid = gettid();
	wait_rc = pthread_cond_wait(&cond, &lock);
	wait_err = signalled; /* 0 if it came back before the signal */
	pthread_mutex_unlock(&lock);
	return NULL;
}

/* Start fn, let it park, send SIGUSR1 to it, let the handler run. */
static void kick(void *(*fn)(void *), void *arg)
{
	ran_in_target = 0;
	conf_sig_hits = 0;
	target_tid = 0;
	if (pthread_create(&target, NULL, fn, arg) != 0)
		exit(1);
	conf_until_parked(&target_tid);
	pthread_kill(target, SIGUSR1);
	sleep_ms(50);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	conf_sig_set(SIGUSR1, on_usr1, NULL, 0);
	sem_init(&sem, 0, 0);

	kick(sem_waiter, NULL);
	pthread_join(target, NULL);
	printf("sem_wait, handler without SA_RESTART: %d %s, handler ran in it %s\n",
	       wait_rc, en(wait_err), ran_in_target ? "yes" : "no");
	kick(sem_waiter, (void *)1);
	pthread_join(target, NULL);
	printf("sem_timedwait, handler without SA_RESTART: %d %s\n", wait_rc, en(wait_err));
	conf_sig_set(SIGUSR1, on_usr1, NULL, SA_RESTART);
	kick(sem_waiter, NULL);
	printf("sem_wait, SA_RESTART handler: handler ran in it %s\n",
	       ran_in_target ? "yes" : "no");
	sem_post(&sem);
	pthread_join(target, NULL);
	printf("sem_wait went on and got the post: %d\n", wait_rc);

	pthread_mutex_lock(&lock);
	kick(mutex_waiter, NULL);
	printf("mutex wait: handler ran in it %s\n", ran_in_target ? "yes" : "no");
	pthread_mutex_unlock(&lock);
	pthread_join(target, NULL);
	printf("pthread_mutex_lock after the handler: %d\n", wait_rc);

	kick(cond_waiter, NULL);
	printf("cond wait: handler ran in it %s\n", ran_in_target ? "yes" : "no");
	pthread_mutex_lock(&lock);
	signalled = true;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
	pthread_join(target, NULL);
	printf("pthread_cond_wait: %d, only once signalled %s\n", wait_rc, wait_err ? "yes" : "no");

	return 0;
}
