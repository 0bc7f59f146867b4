/*
 * conf_signal_rtqueue - real-time signals queue, standard ones do not.
 * Every thread blocks SIGUSR1, SIGRTMIN and SIGRTMIN+1; the main thread
 * sigqueue()s several of each to the process and pthread_sigqueue()s more
 * to one thread, and each takes them with sigtimedwait: each RT instance
 * comes once with its own value, the lower-numbered signal first and one
 * signal's instances in the order sent; two SIGUSR1 give one.  A last
 * sigtimedwait with a zero timeout says EAGAIN: nothing is left over.  A
 * handler runs once per instance; past RLIMIT_SIGPENDING a sender gets
 * EAGAIN.  A signal a thread sends itself while it blocks it is there for
 * its sigwait, with no other thread to run.
 */
#include "conf_signal.h"

#include <sys/resource.h>

static sigset_t waited_for;
static int go[2];

/* Take and print (when who is not NULL) what is pending: how many. */
static int take_all(const char *who)
{
	struct timespec zero = {0, 0};
	siginfo_t info;
	int sig, n = 0;

	while ((sig = sigtimedwait(&waited_for, &info, &zero)) > 0) {
		n++;
		if (!who)
			continue;
		if (sig == SIGUSR1)
			printf("%s: SIGUSR1\n", who);
		else
			printf("%s: SIGRTMIN+%d value %d %s\n", who, sig - SIGRTMIN,
			       info.si_value.sival_int, info.si_code == SI_QUEUE ? "SI_QUEUE" : "other");
	}
	show("then sigtimedwait", sig, errno);
	return n;
}

static void queue_to_process(int sig, int value)
{
	union sigval v = {.sival_int = value};

	if (sigqueue(getpid(), sig, v) != 0)
		printf("sigqueue %d: %s\n", value, en(errno));
}

static void *thread_takes(void *arg)
{
	char c;

	(void)arg;
	/* Takes nothing until all four of its own are pending. */
	if (read(go[0], &c, 1) != 1)
		return NULL;
	take_all("thread");
	return NULL;
}

static volatile sig_atomic_t seen[8], nseen;

static void on_rt(int sig, siginfo_t *info, void *uctx)
{
	(void)sig;
	(void)uctx;
	if (nseen < 8)
		seen[nseen++] = info->si_value.sival_int;
}

/* A handler runs once per instance, in order, when the mask lets them in. */
static void handler_runs(void)
{
	sigset_t one;
	union sigval v;

	conf_sig_set(SIGRTMIN + 2, NULL, on_rt, 0);
	sigemptyset(&one);
	sigaddset(&one, SIGRTMIN + 2);
	pthread_sigmask(SIG_BLOCK, &one, NULL);
	for (int i = 0; i < 3; i++) {
		v.sival_int = 20 + i;
		sigqueue(getpid(), SIGRTMIN + 2, v);
	}
	/* and three to this thread itself */
	for (int i = 0; i < 3; i++) {
		v.sival_int = 30 + i;
		pthread_sigqueue(pthread_self(), SIGRTMIN + 2, v);
	}
	printf("handler while blocked: %d runs\n", (int)nseen);
	pthread_sigmask(SIG_UNBLOCK, &one, NULL);
	/* Each sender's in the order sent.  (Which come first, the thread's
	 * own or the process's, is the kernel's choice: not compared.) */
	printf("handler after unblocking: %d runs; the thread's:", (int)nseen);
	for (int i = 0; i < nseen; i++)
		if (seen[i] >= 30)
			printf(" %d", (int)seen[i]);
	printf("; the process's:");
	for (int i = 0; i < nseen; i++)
		if (seen[i] < 30)
			printf(" %d", (int)seen[i]);
	printf("\n");
}

static void *blocks_and_reads(void *arg)
{
	char c;

	(void)arg;
	if (read(go[0], &c, 1) != 1)
		return NULL;
	printf("# the thread took %d\n", take_all(NULL));
	return NULL;
}

/* With RLIMIT_SIGPENDING low, queuing to a thread is refused with EAGAIN
 * past the bound (the number taken is the user's, so not printed). */
static void limited(void)
{
	struct rlimit rl = {8, 8}, old;
	union sigval v = {.sival_int = 0};
	pthread_t th;
	int refused = 0, rc = 0;

	getrlimit(RLIMIT_SIGPENDING, &old);
	rl.rlim_max = old.rlim_max;
	setrlimit(RLIMIT_SIGPENDING, &rl);
	if (pthread_create(&th, NULL, blocks_and_reads, NULL) != 0)
		exit(1);
	for (int i = 0; i < 40; i++) {
		rc = pthread_sigqueue(th, SIGRTMIN, v);
		if (rc == EAGAIN)
			refused++;
		else if (rc != 0)
			printf("pthread_sigqueue: %s\n", en(rc));
	}
	printf("past the limit: %s\n", refused ? "EAGAIN" : "all queued");
	printf("# refused %d of 40\n", refused);
	if (write(go[1], "x", 1) != 1)
		exit(1);
	pthread_join(th, NULL);
	setrlimit(RLIMIT_SIGPENDING, &old);
}

/* Sent to itself while blocked, then waited for with nothing else to run. */
static void self_then_sigwait(void)
{
	sigset_t one;
	int sig = 0, rc;

	sigemptyset(&one);
	sigaddset(&one, SIGUSR1);
	pthread_kill(pthread_self(), SIGUSR1);
	rc = sigwait(&one, &sig);
	printf("sigwait after pthread_kill to itself: %d %s\n", rc,
	       sig == SIGUSR1 ? "SIGUSR1" : "other");
}

int main(void)
{
	pthread_t th;
	union sigval v;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("modules: signal thread\n");
	sigemptyset(&waited_for);
	sigaddset(&waited_for, SIGUSR1);
	sigaddset(&waited_for, SIGRTMIN);
	sigaddset(&waited_for, SIGRTMIN + 1);
	pthread_sigmask(SIG_BLOCK, &waited_for, NULL);

	/* To the process, while no thread waits: all stay pending. */
	queue_to_process(SIGRTMIN + 1, 10);
	queue_to_process(SIGRTMIN, 1);
	queue_to_process(SIGRTMIN, 2);
	kill(getpid(), SIGUSR1);
	kill(getpid(), SIGUSR1);
	queue_to_process(SIGRTMIN, 3);
	queue_to_process(SIGRTMIN + 1, 11);
	take_all("main");

	/* To one thread, while it waits in a read. */
	if (pipe(go) != 0 || pthread_create(&th, NULL, thread_takes, NULL) != 0)
		return 1;
	sleep_ms(30);
	for (int i = 0; i < 4; i++) {
		v.sival_int = 100 + i;
		if (pthread_sigqueue(th, i % 2 ? SIGRTMIN + 1 : SIGRTMIN, v) != 0)
			printf("pthread_sigqueue: %s\n", en(errno));
	}
	if (write(go[1], "x", 1) != 1)
		return 1;
	pthread_join(th, NULL);
	take_all("main, after");
	handler_runs();
	limited();
	self_then_sigwait();
	printf("done\n");
	return 0;
}
