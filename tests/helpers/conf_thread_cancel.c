/*
 * conf_thread_cancel - pthread_cancel of threads parked at cancellation
 * points (read on a pipe, recv, sleep, pthread_cond_wait, pthread_join): each
 * runs its cleanup handlers newest first, a condition wait's with the
 * mutex taken back, and its join returns PTHREAD_CANCELED; a thread with
 * cancellation disabled goes on until it enables it and reaches
 * pthread_testcancel.
 */
#include "conf_thread.h"

#include <sys/socket.h>

static int fds[2], sv[2];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static pthread_t parked;
static char trail[256];

static void note(const char *what)
{
	strncat(trail, what, sizeof(trail) - strlen(trail) - 1);
	strncat(trail, " ", sizeof(trail) - strlen(trail) - 1);
}

static void cleanup(void *arg)
{
	note(arg);
}

static void unlock_cleanup(void *arg)
{
	(void)arg;
	note(pthread_mutex_trylock(&lock) == EBUSY ? "mutex-held" : "mutex-free");
	pthread_mutex_unlock(&lock);
}

static void *in_read(void *arg)
{
	char c;

	(void)arg;
	pthread_cleanup_push(cleanup, "read-outer");
	pthread_cleanup_push(cleanup, "read-inner");
	read(fds[0], &c, 1);
	note("read-returned");
	pthread_cleanup_pop(0);
	pthread_cleanup_pop(0);
	return NULL;
}

static void *in_recv(void *arg)
{
	char c;

	(void)arg;
	pthread_cleanup_push(cleanup, "recv-handler");
	recv(sv[0], &c, 1, 0);
	note("recv-returned");
	pthread_cleanup_pop(0);
	return NULL;
}

static void *in_sleep(void *arg)
{
	(void)arg;
	pthread_cleanup_push(cleanup, "sleep-handler");
	sleep(10);
	note("sleep-returned");
	pthread_cleanup_pop(0);
	return NULL;
}

static void *in_cond(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	pthread_cleanup_push(unlock_cleanup, NULL);
	for (;;)
		pthread_cond_wait(&cond, &lock);
	pthread_cleanup_pop(0);
	return NULL;
}

static void *in_join(void *arg)
{
	(void)arg;
	pthread_cleanup_push(cleanup, "join-handler");
	pthread_join(parked, NULL);
	note("join-returned");
	pthread_cleanup_pop(0);
	return NULL;
}

static void *disabled(void *arg)
{
	int old;

	(void)arg;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	pthread_cleanup_push(cleanup, "disabled-handler");
	sleep_ms(100); /* cancelled meanwhile: goes on */
	note("still-running");
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
	note(old == PTHREAD_CANCEL_DISABLE ? "was-disabled" : "was-enabled");
	pthread_testcancel();
	note("after-testcancel");
	pthread_cleanup_pop(0);
	return NULL;
}

static void cancel_one(const char *what, void *(*fn)(void *))
{
	pthread_t th;
	void *res = NULL;
	int rc;

	trail[0] = '\0';
	if (pthread_create(&th, NULL, fn, NULL) != 0)
		exit(1);
	sleep_ms(50);
	rc = pthread_cancel(th);
	pthread_join(th, &res);
	printf("%s: cancel %d, joined %s, trail: %s\n", what, rc,
	       res == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "a value", trail);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (pipe(fds) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 1;
	cancel_one("read", in_read);
	cancel_one("recv", in_recv);
	cancel_one("sleep", in_sleep);
	cancel_one("cond_wait", in_cond);
	printf("mutex free after: %s\n", pthread_mutex_trylock(&lock) == 0 ? "yes" : "no");
	pthread_mutex_unlock(&lock);
	if (pthread_create(&parked, NULL, in_read, NULL) != 0)
		return 1;
	cancel_one("join", in_join);
	pthread_cancel(parked);
	pthread_join(parked, NULL);
	cancel_one("disabled", disabled);
	return 0;
}
