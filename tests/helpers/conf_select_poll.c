/*
 * conf_select_poll - poll and ppoll: the timeout elapses (0 returned), an fd
 * made ready by another thread wakes the call with the right revents, fd -1
 * is ignored, a closed fd gives POLLNVAL, hang-ups are reported unasked,
 * poll(NULL, 0, ms) sleeps.
 */
#include "conf_common.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>

struct later {
	int fd;
	int ms;
	int how; /* 0 write, 1 close */
};

static void *act_later(void *arg)
{
	struct later *l = arg;

	usleep((unsigned)l->ms * 1000);
	if (l->how == 0)
		write(l->fd, "x", 1);
	else
		close(l->fd);
	return NULL;
}

int main(void)
{
	struct pollfd pfd[3];
	struct timespec ts = {0, 100 * 1000 * 1000};
	struct later l;
	pthread_t t;
	int p[2], q[2], sv[2], rc;
	double t0;
	sigset_t mask;
	char c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	companion_start();
	if (pipe(p) < 0 || pipe(q) < 0)
		return 1;

	pfd[0].fd = p[0];
	pfd[0].events = POLLIN;
	t0 = now_ms();
	rc = poll(pfd, 1, 100);
	printf("poll timeout: %d revents %#x\n", rc, pfd[0].revents);
	waited("poll timeout", t0, 90, 1500);

	rc = poll(pfd, 1, 0);
	printf("poll zero timeout: %d\n", rc);

	/* readiness from another thread, among other fds */
	pfd[0].fd = q[0];
	pfd[0].events = POLLIN;
	pfd[1].fd = -1;
	pfd[1].events = POLLIN;
	pfd[2].fd = p[0];
	pfd[2].events = POLLIN | POLLPRI;
	l.fd = p[1];
	l.ms = 50;
	l.how = 0;
	pthread_create(&t, NULL, act_later, &l);
	t0 = now_ms();
	rc = poll(pfd, 3, 5000);
	printf("poll woken: %d revents %#x %#x %#x\n", rc, pfd[0].revents, pfd[1].revents,
	       pfd[2].revents);
	waited("poll woken", t0, 30, 2000);
	pthread_join(t, NULL);
	read(p[0], &c, 1);

	/* writable at once */
	pfd[0].fd = p[1];
	pfd[0].events = POLLOUT;
	rc = poll(pfd, 1, 1000);
	printf("poll writable: %d revents %#x\n", rc, pfd[0].revents);

	/* a closed fd */
	pfd[0].fd = 1000;
	pfd[0].events = POLLIN;
	rc = poll(pfd, 1, 1000);
	printf("poll closed fd: %d revents %#x\n", rc, pfd[0].revents);

	/* the writer closes: POLLHUP without asking */
	l.fd = q[1];
	l.ms = 50;
	l.how = 1;
	pthread_create(&t, NULL, act_later, &l);
	pfd[0].fd = q[0];
	pfd[0].events = POLLIN;
	rc = poll(pfd, 1, 5000);
	printf("poll hang-up: %d revents %#x\n", rc, pfd[0].revents);
	pthread_join(t, NULL);

	/* events 0: only errors and hang-ups count */
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	write(sv[1], "data", 4);
	pfd[0].fd = sv[0];
	pfd[0].events = 0;
	t0 = now_ms();
	rc = poll(pfd, 1, 100);
	printf("poll events 0 with data: %d revents %#x\n", rc, pfd[0].revents);
	waited("poll events 0", t0, 90, 1500);
	l.fd = sv[1];
	l.ms = 50;
	l.how = 1;
	pthread_create(&t, NULL, act_later, &l);
	rc = poll(pfd, 1, 5000);
	printf("poll events 0, peer closes: %d revents %#x\n", rc, pfd[0].revents);
	pthread_join(t, NULL);
	close(sv[0]);

	/* ppoll with a timeout and a mask */
	sigemptyset(&mask);
	pfd[0].fd = p[0];
	pfd[0].events = POLLIN;
	t0 = now_ms();
	rc = ppoll(pfd, 1, &ts, &mask);
	printf("ppoll timeout: %d\n", rc);
	waited("ppoll timeout", t0, 90, 1500);
	l.fd = p[1];
	l.ms = 50;
	l.how = 0;
	pthread_create(&t, NULL, act_later, &l);
	rc = ppoll(pfd, 1, NULL, NULL);
	printf("ppoll woken: %d revents %#x\n", rc, pfd[0].revents);
	pthread_join(t, NULL);

	/* a sleep */
	t0 = now_ms();
	rc = poll(NULL, 0, 100);
	printf("poll(NULL, 0, 100): %d %s\n", rc, rc < 0 ? en(errno) : "");
	waited("poll sleep", t0, 90, 1500);

	companion_stop();
	return 0;
}
