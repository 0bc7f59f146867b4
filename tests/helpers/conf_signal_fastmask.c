/*
 * conf_signal_fastmask - the calls that swap in a signal mask for their
 * wait (sigsuspend, ppoll, pselect, epoll_pwait), made by a program with
 * one thread and nothing else to wait for, as nginx's master sleeps in
 * sigsuspend with every signal blocked outside it.  The signal comes from
 * another process while the call waits; the handler must run and the call
 * end with EINTR.  Greened, these go straight to the kernel (the fast
 * path), and the shim's record of the thread's mask once kept the handler
 * from running.
 */
#include "conf_signal.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/wait.h>

/* A child that sends SIGUSR1 to us once, after 200 ms. */
static pid_t sender(void)
{
	pid_t parent = getpid(), pid = fork();

	if (pid == 0) {
		usleep(200 * 1000);
		kill(parent, SIGUSR1);
		_exit(0);
	}
	return pid;
}

static void report(const char *what, int rc, int err, pid_t child)
{
	waitpid(child, NULL, 0);
	printf("%s: %d %s, handler ran %d\n", what, rc, rc < 0 ? en(err) : "-", (int)conf_sig_hits);
	conf_sig_hits = 0;
}

int main(void)
{
	struct timespec five = {5, 0};
	struct epoll_event ev;
	sigset_t none;
	pid_t child;
	int rc, epfd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* A program that has done some I/O and slept has a hub by now. */
	conf_pingpong(10);
	sleep_ms(1);
	conf_sig_install(SIGUSR1, 0);
	conf_sig_block(SIG_BLOCK, SIGUSR1);
	sigemptyset(&none);

	child = sender();
	rc = sigsuspend(&none);
	report("sigsuspend", rc, errno, child);

	child = sender();
	rc = ppoll(NULL, 0, &five, &none);
	report("ppoll", rc, errno, child);

	child = sender();
	rc = pselect(0, NULL, NULL, NULL, &five, &none);
	report("pselect", rc, errno, child);

	epfd = epoll_create1(EPOLL_CLOEXEC);
	child = sender();
	rc = epoll_pwait(epfd, &ev, 1, 5000, &none);
	report("epoll_pwait", rc, errno, child);
	close(epfd);

	/* Still blocked outside the calls: a signal sent now stays pending. */
	kill(getpid(), SIGUSR1);
	printf("outside the calls: handler ran %d\n", (int)conf_sig_hits);
	return 0;
}
