/*
 * conf_thread_mutexpp.c - priority-protected mutexes (PTHREAD_PRIO_PROTECT),
 * whose lock word glibc's init sets to the ceiling: lock and unlock,
 * trylock EBUSY while another thread holds one, a waiter while the holder
 * sleeps, and the ceiling read back and changed.
 */
#include "conf_thread.h"

#include <sched.h>

static pthread_mutex_t pp;
static int counter;

static void *holder(void *arg)
{
	int rc = pthread_mutex_lock(&pp);

	if (rc == 0) {
		sleep_ms(30);
		counter++;
		pthread_mutex_unlock(&pp);
	}
	return (void *)(long)rc;
}

int main(void)
{
	pthread_mutexattr_t attr;
	pthread_t th;
	void *r;
	int ceiling = sched_get_priority_min(SCHED_FIFO), old = -1, now = -1, rc;

	die_rc("mutexattr_init", pthread_mutexattr_init(&attr));
	die_rc("setprotocol", pthread_mutexattr_setprotocol(&attr, PTHREAD_PRIO_PROTECT));
	die_rc("setprioceiling", pthread_mutexattr_setprioceiling(&attr, ceiling));
	die_rc("mutex_init", pthread_mutex_init(&pp, &attr));
	pthread_mutexattr_destroy(&attr);

	rc = pthread_mutex_lock(&pp);
	SHOW("lock", rc);
	if (rc != 0) {
		/* Not allowed to raise this thread's priority: the same answer
		 * natively and greened, nothing more to compare. */
		return conf_failed;
	}
	SHOW("unlock", pthread_mutex_unlock(&pp));

	die_rc("pthread_create", pthread_create(&th, NULL, holder, NULL));
	sleep_ms(10);
	SHOW("trylock while held", pthread_mutex_trylock(&pp));
	SHOW("lock after the holder", pthread_mutex_lock(&pp));
	printf("holder was done first: %s\n", counter == 1 ? "yes" : "no");
	SHOW("unlock", pthread_mutex_unlock(&pp));
	die_rc("pthread_join", pthread_join(th, &r));
	SHOW("holder's lock", (int)(long)r);

	SHOW("getprioceiling", pthread_mutex_getprioceiling(&pp, &now));
	printf("ceiling is the one set: %s\n", now == ceiling ? "yes" : "no");
	SHOW("setprioceiling", pthread_mutex_setprioceiling(&pp, ceiling + 1, &old));
	pthread_mutex_getprioceiling(&pp, &now);
	printf("old ceiling %s, new %s\n", old == ceiling ? "right" : "wrong",
	       now == ceiling + 1 ? "right" : "wrong");
	SHOW("lock again", pthread_mutex_lock(&pp));
	SHOW("unlock", pthread_mutex_unlock(&pp));
	SHOW("destroy", pthread_mutex_destroy(&pp));
	return conf_failed;
}
