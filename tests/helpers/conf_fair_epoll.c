/*
 * conf_fair_epoll - an event loop whose epoll set holds an always-writable
 * socket (level-triggered EPOLLOUT, as redis-benchmark --threads has) gets
 * an answer at once from every epoll_wait; the program's other threads
 * must still run.
 */
#include "conf_fair.h"

#include <sys/epoll.h>

static int ep;

static int wait_forever(void *arg)
{
	struct epoll_event ev[4];

	(void)arg;
	return epoll_wait(ep, ev, 4, -1);
}

static int wait_zero(void *arg)
{
	struct epoll_event ev[4];

	(void)arg;
	return epoll_wait(ep, ev, 4, 0);
}

static int pwait_long(void *arg)
{
	struct epoll_event ev[4];

	(void)arg;
	return epoll_pwait(ep, ev, 4, 5000, NULL);
}

static int pwait2_forever(void *arg)
{
	struct epoll_event ev[4];

	(void)arg;
	return epoll_pwait2(ep, ev, 4, NULL, NULL);
}

int main(void)
{
	struct epoll_event ev = {.events = EPOLLOUT};
	int sv[2];

	setvbuf(stdout, NULL, _IOLBF, 0);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 1;
	ev.data.fd = sv[0];
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev) < 0)
		return 1;
	fair_spin("epoll_wait on EPOLLOUT, no timeout", wait_forever, NULL);
	fair_spin("epoll_wait, zero timeout", wait_zero, NULL);
	fair_spin("epoll_pwait on EPOLLOUT, 5 s", pwait_long, NULL);
	fair_spin("epoll_pwait2 on EPOLLOUT, no timeout", pwait2_forever, NULL);
	return 0;
}
