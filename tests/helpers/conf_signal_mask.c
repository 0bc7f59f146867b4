/*
 * conf_signal_mask - masks are per thread: a signal sent to a thread that
 * blocks it stays pending there (sigpending shows it) and runs in that
 * thread as soon as it unblocks it, before pthread_sigmask returns; a
 * signal sent to the process goes to the one thread that does not block
 * it; a new thread inherits its creator's mask.
 */
#include "conf_signal.h"

static pthread_t blocker, taker;
static volatile sig_atomic_t ran_in_blocker, ran_in_taker, taker_ready, blocker_done;
static int go[2], stop[2];

static void on_usr2(int sig)
{
	(void)sig;
	conf_sig_hits++;
	if (pthread_equal(pthread_self(), blocker))
		ran_in_blocker++;
	if (pthread_equal(pthread_self(), taker))
		ran_in_taker++;
}

static void *blocking(void *arg)
{
	sigset_t pend, cur;
	char c;

	(void)arg;
	/* inherited from main, which blocks SIGUSR2 */
	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	printf("blocker inherited the mask: %s\n", sigismember(&cur, SIGUSR2) ? "yes" : "no");
	read(go[0], &c, 1); /* main has sent SIGUSR2 to us */
	sigpending(&pend);
	printf("blocker: SIGUSR2 pending %s, handler ran %d\n",
	       sigismember(&pend, SIGUSR2) ? "yes" : "no", (int)ran_in_blocker);
	conf_sig_block(SIG_UNBLOCK, SIGUSR2);
	printf("blocker: after unblocking, handler ran %d\n", (int)ran_in_blocker);
	conf_sig_block(SIG_BLOCK, SIGUSR2);
	blocker_done = 1;
	return NULL;
}

static void *taking(void *arg)
{
	char c;

	(void)arg;
	conf_sig_block(SIG_UNBLOCK, SIGUSR2);
	taker_ready = 1;
	while (read(stop[0], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

/* Naps, not a fixed one: a loaded machine may take longer to get there. */
static void until_set(volatile sig_atomic_t *flag)
{
	for (int i = 0; i < 500 && !*flag; i++)
		sleep_ms(10);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (pipe(go) < 0 || pipe(stop) < 0)
		return 1;
	conf_sig_set(SIGUSR2, on_usr2, NULL, SA_RESTART);
	conf_sig_block(SIG_BLOCK, SIGUSR2);
	if (pthread_create(&blocker, NULL, blocking, NULL) != 0 ||
	    pthread_create(&taker, NULL, taking, NULL) != 0)
		return 1;
	sleep_ms(50);
	pthread_kill(blocker, SIGUSR2);
	sleep_ms(20);
	write(go[1], "g", 1);
	until_set(&blocker_done);
	printf("main: handler ran %d times, in the blocker %d\n", (int)conf_sig_hits,
	       (int)ran_in_blocker);
	/* To the process: only the taker lets it in. */
	until_set(&taker_ready);
	kill(getpid(), SIGUSR2);
	until_set(&ran_in_taker);
	printf("process-directed: ran in the taker %d, in the blocker %d, total %d\n",
	       (int)ran_in_taker, (int)ran_in_blocker, (int)conf_sig_hits);
	write(stop[1], "s", 1);
	pthread_join(blocker, NULL);
	pthread_join(taker, NULL);
	return 0;
}
