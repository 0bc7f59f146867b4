/*
 * conf_thread_osthread.c - the pthread calls about a thread's OS thread,
 * made on another thread's handle: scheduling policy and priority, CPU
 * affinity, the CPU-time clock; and ESRCH from each once that thread is
 * joined.
 */
#include "conf_thread.h"

#include <sched.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool done;
static pthread_t main_thread;
static int main_policy = -1;

static const char *policy_name(int policy)
{
	switch (policy) {
	case SCHED_OTHER: return "SCHED_OTHER";
	case SCHED_BATCH: return "SCHED_BATCH";
	case SCHED_IDLE: return "SCHED_IDLE";
	case SCHED_FIFO: return "SCHED_FIFO";
	case SCHED_RR: return "SCHED_RR";
	default: return "unknown";
	}
}

static void *parked(void *arg)
{
	struct sched_param sp;

	if (pthread_getschedparam(main_thread, &main_policy, &sp) != 0)
		main_policy = -2;
	pthread_mutex_lock(&lock);
	while (!done)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	return NULL;
}

static void burn(void)
{
	volatile unsigned long x = 0;

	for (unsigned long i = 0; i < 20000000UL; i++)
		x += i;
}

int main(void)
{
	pthread_t th;
	struct sched_param sp = {0};
	cpu_set_t mine, set;
	clockid_t clk;
	struct timespec t0, t1;
	int policy = -1, first = -1;

	main_thread = pthread_self();
	die_rc("pthread_create", pthread_create(&th, NULL, parked, NULL));
	sleep_ms(10);
	printf("main's policy seen by the thread: %s\n", policy_name(main_policy));

	SHOW("getschedparam", pthread_getschedparam(th, &policy, &sp));
	printf("policy %s priority %d\n", policy_name(policy), sp.sched_priority);
	sp.sched_priority = 0;
	SHOW("setschedparam SCHED_BATCH", pthread_setschedparam(th, SCHED_BATCH, &sp));
	SHOW("getschedparam", pthread_getschedparam(th, &policy, &sp));
	printf("policy now %s\n", policy_name(policy));
	SHOW("setschedparam bad policy", pthread_setschedparam(th, 12345, &sp));
	SHOW("setschedparam SCHED_OTHER", pthread_setschedparam(th, SCHED_OTHER, &sp));
	SHOW("setschedprio 0", pthread_setschedprio(th, 0));
	SHOW("setschedprio 50", pthread_setschedprio(th, 50));
	SHOW("getschedparam", pthread_getschedparam(th, &policy, &sp));
	printf("policy back to %s\n", policy_name(policy));

	die_rc("sched_getaffinity", sched_getaffinity(0, sizeof(mine), &mine) ? errno : 0);
	SHOW("getaffinity", pthread_getaffinity_np(th, sizeof(set), &set));
	printf("thread's CPUs are the process's: %s\n", CPU_EQUAL(&set, &mine) ? "yes" : "no");
	for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
		if (CPU_ISSET(c, &mine))
			first = c;
	CPU_ZERO(&set);
	CPU_SET(first, &set);
	SHOW("setaffinity one CPU", pthread_setaffinity_np(th, sizeof(set), &set));
	CPU_ZERO(&set);
	SHOW("getaffinity", pthread_getaffinity_np(th, sizeof(set), &set));
	printf("CPUs now %d, the first: %s\n", CPU_COUNT(&set), CPU_ISSET(first, &set) ? "yes" : "no");
	SHOW("setaffinity back", pthread_setaffinity_np(th, sizeof(mine), &mine));

	SHOW("getcpuclockid", pthread_getcpuclockid(th, &clk));
	SHOW("clock_gettime on it", clock_gettime(clk, &t0) ? errno : 0);
	SHOW("getcpuclockid self", pthread_getcpuclockid(pthread_self(), &clk));
	clock_gettime(clk, &t0);
	burn();
	clock_gettime(clk, &t1);
	printf("own CPU clock advanced: %s\n",
	       (t1.tv_sec > t0.tv_sec || (t1.tv_sec == t0.tv_sec && t1.tv_nsec > t0.tv_nsec))
	               ? "yes" : "no");

	pthread_mutex_lock(&lock);
	done = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	die_rc("pthread_join", pthread_join(th, NULL));

	/* glibc: a joined thread has no task any more. */
	SHOW("joined: getschedparam", pthread_getschedparam(th, &policy, &sp));
	SHOW("joined: setschedparam", pthread_setschedparam(th, SCHED_OTHER, &sp));
	SHOW("joined: setschedprio", pthread_setschedprio(th, 0));
	SHOW("joined: getaffinity", pthread_getaffinity_np(th, sizeof(set), &set));
	SHOW("joined: setaffinity", pthread_setaffinity_np(th, sizeof(mine), &mine));
	SHOW("joined: getcpuclockid", pthread_getcpuclockid(th, &clk));
	return conf_failed;
}
