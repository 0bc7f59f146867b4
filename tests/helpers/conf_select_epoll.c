/*
 * conf_select_epoll - epoll_wait, epoll_pwait and epoll_pwait2 time out
 * with 0, wake with the event another thread causes, report several ready
 * fds, honour maxevents, and refuse a bad epoll fd.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

static int comp_pipe[2];
static pthread_t comp;

static void *comp_main(void *arg)
{
	char c;

	(void)arg;
	while (read(comp_pipe[0], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char *en(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "?";
}

static int writer_fd;

static void *write_later(void *arg)
{
	(void)arg;
	usleep(50 * 1000);
	write(writer_fd, "x", 1);
	return NULL;
}

static void expect_time(const char *what, double t0)
{
	double ms = now_ms() - t0;

	printf("%s took the expected time: %s\n", what, ms >= 90 && ms < 1500 ? "yes" : "no");
	printf("# %s %.1f ms\n", what, ms);
}

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
	if (pipe(comp_pipe) < 0 || pthread_create(&comp, NULL, comp_main, NULL) != 0)
		return 1;
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
	expect_time("epoll_wait timeout", t0);

	writer_fd = q[1];
	pthread_create(&t, NULL, write_later, NULL);
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
	writer_fd = p[1];
	pthread_create(&t, NULL, write_later, NULL);
	rc = epoll_wait(ep, out, 4, -1);
	printf("epoll_wait forever woken: %d, data %u\n", rc, out[0].data.u32);
	pthread_join(t, NULL);
	read(p[0], &c, 1);

	/* epoll_pwait with a mask */
	sigemptyset(&mask);
	t0 = now_ms();
	rc = epoll_pwait(ep, out, 4, 100, &mask);
	printf("epoll_pwait timeout: %d\n", rc);
	expect_time("epoll_pwait timeout", t0);
	writer_fd = q[1];
	pthread_create(&t, NULL, write_later, NULL);
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
		expect_time("epoll_pwait2 timeout", t0);
	}

	/* errors */
	rc = epoll_wait(p[0], out, 4, 100);
	printf("epoll_wait on a pipe: %d %s\n", rc, rc < 0 ? en(errno) : "");
	rc = epoll_wait(ep, out, 0, 100);
	printf("epoll_wait maxevents 0: %d %s\n", rc, rc < 0 ? en(errno) : "");
	rc = epoll_wait(999, out, 4, 100);
	printf("epoll_wait closed fd: %d %s\n", rc, rc < 0 ? en(errno) : "");

	close(ep);
	close(comp_pipe[1]);
	pthread_join(comp, NULL);
	return 0;
}
