/*
 * conf_dns_sigwait: every thread of the program blocks SIGUSR1 and one of
 * them takes it with sigwait().  A name lookup made before they blocked it
 * must not leave a thread behind that lets the signal in (under the shim, a
 * resolver pool thread), or the process-directed signal lands there and
 * its default action ends the process.
 */
#include "conf_thread.h"

#include <netdb.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>

static void *waiter(void *arg)
{
	sigset_t *set = arg;
	int sig = 0;

	for (int i = 0; i < 3; i++) {
		int rc = sigwait(set, &sig);

		printf("sigwait %d: %s, %s\n", i, errname(rc), sig == SIGUSR1 ? "SIGUSR1" : "other");
	}
	return NULL;
}

int main(void)
{
	struct addrinfo hints, *res = NULL;
	sigset_t set;
	pthread_t t;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST;
	rc = getaddrinfo("127.0.0.1", "80", &hints, &res);
	printf("getaddrinfo: %s\n", rc == 0 ? "ok" : gai_strerror(rc));
	if (res)
		freeaddrinfo(res);

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	die_rc("pthread_sigmask", pthread_sigmask(SIG_BLOCK, &set, NULL));
	die_rc("pthread_create", pthread_create(&t, NULL, waiter, &set));

	for (int i = 0; i < 3; i++) {
		kill(getpid(), SIGUSR1);
		sleep_ms(50);
	}
	die_rc("pthread_join", pthread_join(t, NULL));
	printf("done\n");
	return 0;
}
