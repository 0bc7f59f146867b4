/*
 * conf_fastpath_crowd - blocking calls of the main thread while other
 * threads wait on a condition only it can signal (redis's background
 * threads, node's pool): the shim may send these calls straight to the
 * kernel, and everything must come out as natively: every round trip's
 * byte, a signal handler's run on a blocked read, and the waiters woken
 * at the end.
 *
 * With the argument "hold" the waiters are never woken: the program says
 * "calls done" and keeps making short sleeps, for a test that reads the
 * hub's counters from outside.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WAITERS 3
#define CALLS 3000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int go, woken;
static volatile sig_atomic_t handled;

static void *waiter(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	while (!go)
		pthread_cond_wait(&cond, &lock);
	woken++;
	pthread_mutex_unlock(&lock);
	return NULL;
}

static void on_alarm(int sig)
{
	(void)sig;
	handled = 1;
}

static void nap_us(long us)
{
	struct timespec ts = {0, us * 1000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	pthread_t th[WAITERS];
	struct sigaction sa;
	int sv[2], bad = 0;
	char c;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
		perror("socketpair");
		return 1;
	}
	for (int i = 0; i < WAITERS; i++)
		pthread_create(&th[i], NULL, waiter, NULL);
	nap_us(20000); /* let them reach their wait */
	for (int i = 0; i < CALLS; i++) {
		char out = (char)('a' + i % 26), in = 0;

		nap_us(100);
		if (write(sv[0], &out, 1) != 1 || read(sv[1], &in, 1) != 1 || in != out)
			bad++;
	}
	printf("calls done, %d bad\n", bad);
	if (argc > 1 && strcmp(argv[1], "hold") == 0)
		for (;;)
			nap_us(50000);
	/* A read with nothing to read, ended by a handler without SA_RESTART. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	alarm(1);
	errno = 0;
	if (read(sv[1], &c, 1) < 0)
		printf("blocked read: %s, handler ran: %d\n", strerror(errno), (int)handled);
	pthread_mutex_lock(&lock);
	go = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < WAITERS; i++)
		pthread_join(th[i], NULL);
	printf("woken %d\n", woken);
	return 0;
}
