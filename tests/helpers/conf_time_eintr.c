/*
 * conf_time_eintr.c - a signal handler that runs during nanosleep or sleep
 * ends the sleep early: nanosleep fails with EINTR and reports what was
 * left, sleep returns the seconds it did not sleep.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static void on_alarm(int sig)
{
	(void)sig;
}

int main(void)
{
	struct sigaction sa = {0};
	struct timespec req = {3, 0}, rem = {0, 0};
	int rc;

	sa.sa_handler = on_alarm; /* no SA_RESTART; sleeps never restart anyway */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);

	alarm(1);
	rc = nanosleep(&req, &rem);
	printf("nanosleep: %d %s\n", rc, rc < 0 && errno == EINTR ? "EINTR" : "other");
	printf("nanosleep left more than a second: %s\n", rem.tv_sec >= 1 ? "yes" : "no");

	alarm(1);
	printf("sleep returned the unslept seconds: %s\n", sleep(3) >= 1 ? "yes" : "no");
	return 0;
}
