/*
 * conf_signal_sempost - a handler may sem_post (async-signal-safe) as often
 * as it likes while the other threads wait, wake and switch: a timer fires
 * thousands of times, each handler posts once, and every post arrives
 * exactly once.  Under a shim whose sem_post touched the hub's queues from
 * the handler, this hangs or crashes within a few runs.
 */
#include "conf_signal.h"

#include <semaphore.h>
#include <sys/time.h>

static sem_t sem;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

#define TICKS 3000
static volatile sig_atomic_t posted;
static long received;
static volatile bool stop_churn;

static void on_alarm(int sig)
{
	(void)sig;
	if (posted < TICKS) {
		posted++;
		sem_post(&sem);
	}
}

/* Busy with the ready queue and wait queues meanwhile. */
static void *churn(void *arg)
{
	(void)arg;
	while (!stop_churn) {
		pthread_mutex_lock(&lock);
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
		sched_yield();
	}
	return NULL;
}

static void *consumer(void *arg)
{
	(void)arg;
	while (received < TICKS) {
		if (sem_wait(&sem) == 0)
			received++;
		else if (errno != EINTR)
			break;
	}
	return NULL;
}

int main(void)
{
	struct itimerval every = {{0, 200}, {0, 200}}, off = {{0, 0}, {0, 0}};
	pthread_t ch[2], co;
	double t0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	sem_init(&sem, 0, 0);
	conf_sig_set(SIGALRM, on_alarm, NULL, SA_RESTART);
	if (pthread_create(&co, NULL, consumer, NULL) != 0 ||
	    pthread_create(&ch[0], NULL, churn, NULL) != 0 ||
	    pthread_create(&ch[1], NULL, churn, NULL) != 0)
		return 1;
	t0 = now_ms();
	setitimer(ITIMER_REAL, &every, NULL);
	while (posted < TICKS && now_ms() - t0 < 20000)
		sleep_ms(5);
	setitimer(ITIMER_REAL, &off, NULL);
	printf("handler posted all %d: %s\n", TICKS, posted == TICKS ? "yes" : "no");
	pthread_join(co, NULL);
	stop_churn = true;
	pthread_join(ch[0], NULL);
	pthread_join(ch[1], NULL);
	printf("consumer received %ld\n", received);
	printf("# %.0f ms\n", now_ms() - t0);
	return 0;
}
