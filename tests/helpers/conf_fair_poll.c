/*
 * conf_fair_poll - poll, ppoll, select and pselect that return at once
 * (a zero timeout, or a pipe that is always writable) do not starve the
 * other threads of a program that loops on them, as libuv and node do.
 */
#include "conf_fair.h"

#include <poll.h>
#include <sys/select.h>

static int wfd;

static int poll_zero(void *arg)
{
	(void)arg;
	return poll(NULL, 0, 0);
}

static int poll_writable(void *arg)
{
	struct pollfd p = {.fd = wfd, .events = POLLOUT};

	(void)arg;
	return poll(&p, 1, -1);
}

static int ppoll_zero(void *arg)
{
	struct pollfd p = {.fd = wfd, .events = POLLIN};
	struct timespec ts = {0, 0};

	(void)arg;
	return ppoll(&p, 1, &ts, NULL);
}

static int select_zero(void *arg)
{
	struct timeval tv = {0, 0};

	(void)arg;
	return select(0, NULL, NULL, NULL, &tv);
}

static int select_writable(void *arg)
{
	fd_set w;

	(void)arg;
	FD_ZERO(&w);
	FD_SET(wfd, &w);
	return select(wfd + 1, NULL, &w, NULL, NULL);
}

static int pselect_writable(void *arg)
{
	struct timespec ts = {5, 0};
	fd_set w;

	(void)arg;
	FD_ZERO(&w);
	FD_SET(wfd, &w);
	return pselect(wfd + 1, NULL, &w, NULL, &ts, NULL);
}

int main(void)
{
	int p[2];

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (pipe(p) < 0)
		return 1;
	wfd = p[1];
	fair_spin("poll with a zero timeout", poll_zero, NULL);
	fair_spin("poll on a writable pipe", poll_writable, NULL);
	fair_spin("ppoll with a zero timeout", ppoll_zero, NULL);
	fair_spin("select with a zero timeout", select_zero, NULL);
	fair_spin("select on a writable pipe", select_writable, NULL);
	fair_spin("pselect on a writable pipe", pselect_writable, NULL);
	return 0;
}
