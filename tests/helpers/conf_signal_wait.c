/*
 * conf_signal_wait - sigwait, sigwaitinfo, sigtimedwait and a read on a
 * signalfd wait in one thread while the others run: each waiter takes a
 * signal every thread blocks, sigqueue's value arrives, a timeout says
 * EAGAIN after about its time.
 */
#include "conf_signal.h"

#include <sys/signalfd.h>

static sigset_t usr1, rt;

static void *do_sigwait(void *arg)
{
	int sig = 0, rc = sigwait(&usr1, &sig);

	(void)arg;
	printf("sigwait: %d %s\n", rc, sig == SIGUSR1 ? "SIGUSR1" : "other");
	return NULL;
}

static void *do_sigwaitinfo(void *arg)
{
	siginfo_t info;
	int rc = sigwaitinfo(&rt, &info);

	(void)arg;
	printf("sigwaitinfo: %s value %d code %s\n", rc == SIGRTMIN ? "SIGRTMIN" : "other",
	       info.si_value.sival_int, info.si_code == SI_QUEUE ? "SI_QUEUE" : "other");
	return NULL;
}

static void *do_timeout(void *arg)
{
	struct timespec ts = {0, 150 * 1000000L};
	double t0 = now_ms();
	int rc = sigtimedwait(&usr1, NULL, &ts);

	(void)arg;
	show("sigtimedwait with nothing sent", rc, errno);
	waited("sigtimedwait", t0, 140, 2000);
	return NULL;
}

static void *do_timed_hit(void *arg)
{
	struct timespec ts = {5, 0};
	int rc = sigtimedwait(&usr1, NULL, &ts);

	(void)arg;
	printf("sigtimedwait: %s\n", rc == SIGUSR1 ? "SIGUSR1" : "other");
	return NULL;
}

static void *do_signalfd(void *arg)
{
	struct signalfd_siginfo si;
	int fd = signalfd(-1, &usr1, SFD_CLOEXEC);
	ssize_t n = read(fd, &si, sizeof(si));

	(void)arg;
	printf("signalfd read: %zd bytes, %s\n", n, si.ssi_signo == SIGUSR1 ? "SIGUSR1" : "other");
	close(fd);
	return NULL;
}

/* Start fn, let it wait, show the others run meanwhile, then send. */
static void around(void *(*fn)(void *), void (*send)(void))
{
	pthread_t th;

	if (pthread_create(&th, NULL, fn, NULL) != 0)
		exit(1);
	sleep_ms(30);
	printf("while it waits, other threads ran %d rounds\n", conf_pingpong(200));
	if (send)
		send();
	pthread_join(th, NULL);
}

static void send_usr1(void)
{
	kill(getpid(), SIGUSR1);
}

static void send_rt(void)
{
	union sigval v = {.sival_int = 42};

	sigqueue(getpid(), SIGRTMIN, v);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigemptyset(&rt);
	sigaddset(&rt, SIGRTMIN);
	/* Blocked before any thread exists: every thread inherits it. */
	conf_sig_block(SIG_BLOCK, SIGUSR1);
	conf_sig_block(SIG_BLOCK, SIGRTMIN);
	around(do_sigwait, send_usr1);
	around(do_sigwaitinfo, send_rt);
	around(do_timeout, NULL);
	around(do_timed_hit, send_usr1);
	around(do_signalfd, send_usr1);
	return 0;
}
