/*
 * conf_signal_suspend - sigsuspend and pause wait in one thread while the
 * others run, and return -1/EINTR once the handler has run in that thread:
 * the signal is blocked everywhere else, so the kernel can give it to no
 * other thread.
 */
#include "conf_signal.h"

static void *do_sigsuspend(void *arg)
{
	sigset_t none;
	int rc;

	(void)arg;
	sigemptyset(&none);
	rc = sigsuspend(&none);
	printf("sigsuspend: %d %s, handler ran %d\n", rc, en(errno), (int)conf_sig_hits);
	conf_sig_hits = 0;
	return NULL;
}

static void *do_pause(void *arg)
{
	int rc;

	(void)arg;
	conf_sig_block(SIG_UNBLOCK, SIGUSR2);
	rc = pause();
	printf("pause: %d %s, handler ran %d\n", rc, en(errno), (int)conf_sig_hits);
	conf_sig_hits = 0;
	return NULL;
}

static void around(void *(*fn)(void *), int sig)
{
	pthread_t th;

	if (pthread_create(&th, NULL, fn, NULL) != 0)
		exit(1);
	sleep_ms(100);
	printf("while it waits, other threads ran %d rounds\n", conf_pingpong(200));
	kill(getpid(), sig);
	pthread_join(th, NULL);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	conf_sig_install(SIGUSR1, 0);
	conf_sig_install(SIGUSR2, SA_RESTART);
	conf_sig_block(SIG_BLOCK, SIGUSR1);
	conf_sig_block(SIG_BLOCK, SIGUSR2);
	around(do_sigsuspend, SIGUSR1);
	around(do_pause, SIGUSR2);
	return 0;
}
