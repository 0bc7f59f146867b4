/*
 * conf_thread_names.c - thread names set and read across threads
 * (pthread_setname_np/pthread_getname_np on another thread's handle and on
 * one's own), the creator's name inherited, ERANGE, pthread_getattr_np on
 * another thread, and what a joined thread's handle answers.
 */
#include "conf_thread.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int step;
static char inherited[16], renamed[16], main_name[16];
static pthread_t main_thread;

static void wait_step(int n)
{
	pthread_mutex_lock(&lock);
	while (step < n)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
}

static void set_step(int n)
{
	pthread_mutex_lock(&lock);
	step = n;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

static void *named(void *arg)
{
	pthread_getname_np(pthread_self(), inherited, sizeof(inherited));
	pthread_getname_np(main_thread, main_name, sizeof(main_name));
	pthread_setname_np(pthread_self(), "self-named");
	set_step(1);
	wait_step(2); /* main renames us */
	pthread_getname_np(pthread_self(), renamed, sizeof(renamed));
	set_step(3);
	return NULL;
}

int main(void)
{
	pthread_t th;
	pthread_attr_t attr;
	char buf[64];
	int detach = -1;

	main_thread = pthread_self();
	SHOW("setname main", pthread_setname_np(pthread_self(), "conf-main"));
	die_rc("pthread_create", pthread_create(&th, NULL, named, NULL));
	wait_step(1);
	printf("new thread's name: %s\n", inherited);
	printf("main's name seen by the thread: %s\n", main_name);
	SHOW("getname other", pthread_getname_np(th, buf, sizeof(buf)));
	printf("the thread named itself: %s\n", buf);
	SHOW("setname other", pthread_setname_np(th, "by-main"));
	SHOW("setname too long", pthread_setname_np(th, "a-name-of-sixteen"));
	SHOW("getname small buffer", pthread_getname_np(th, buf, 8));
	set_step(2);
	wait_step(3);
	printf("the thread reads its new name: %s\n", renamed);

	SHOW("getattr other", pthread_getattr_np(th, &attr));
	pthread_attr_getdetachstate(&attr, &detach);
	printf("detach state: %s\n", detach == PTHREAD_CREATE_JOINABLE ? "joinable" : "detached");
	pthread_attr_destroy(&attr);
	SHOW("equal self", pthread_equal(pthread_self(), main_thread) ? 0 : EINVAL);
	SHOW("equal other", pthread_equal(th, main_thread) ? 0 : EINVAL);

	die_rc("pthread_join", pthread_join(th, NULL));
	/* glibc reads a name in /proc/self/task/TID/comm: gone with the task. */
	printf("joined: getname: %s\n", strerror(pthread_getname_np(th, buf, sizeof(buf))));
	printf("joined: setname: %s\n", strerror(pthread_setname_np(th, "late")));
	SHOW("joined: getname small buffer", pthread_getname_np(th, buf, 8));
	SHOW("joined: setname too long", pthread_setname_np(th, "a-name-of-sixteen"));
	return conf_failed;
}
