/*
 * conf_select_select - select and pselect: the timeout elapses (0, the sets
 * emptied, the timeval updated to what is left, as Linux does), another
 * thread's write wakes it with only the ready fd set, a closed fd is EBADF,
 * exceptfds, a writable socket.
 */
#include "conf_common.h"

#include <signal.h>
#include <sys/select.h>

int main(void)
{
	fd_set r, w, x;
	struct timeval tv;
	struct timespec ts = {0, 100 * 1000 * 1000};
	int p[2], q[2], sv[2], rc, nfds;
	pthread_t t;
	double t0;
	sigset_t mask;
	char c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	companion_start();
	if (pipe(p) < 0 || pipe(q) < 0)
		return 1;
	nfds = (p[0] > q[0] ? p[0] : q[0]) + 1;

	FD_ZERO(&r);
	FD_SET(p[0], &r);
	FD_SET(q[0], &r);
	tv.tv_sec = 0;
	tv.tv_usec = 100 * 1000;
	t0 = now_ms();
	rc = select(nfds, &r, NULL, NULL, &tv);
	printf("select timeout: %d, sets empty %d, timeval left %ld.%06ld\n", rc,
	       !FD_ISSET(p[0], &r) && !FD_ISSET(q[0], &r), (long)tv.tv_sec, (long)tv.tv_usec);
	waited("select timeout", t0, 90, 1500);

	/* readiness from another thread */
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	FD_SET(q[0], &r);
	pthread_create(&t, NULL, write_later, &q[1]);
	tv.tv_sec = 5;
	tv.tv_usec = 0;
	rc = select(nfds, &r, NULL, NULL, &tv);
	printf("select woken: %d, p set %d, q set %d, time left under 5 s %d\n", rc,
	       FD_ISSET(p[0], &r), FD_ISSET(q[0], &r), tv.tv_sec < 5);
	pthread_join(t, NULL);
	read(q[0], &c, 1);

	/* no timeout at all */
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	pthread_create(&t, NULL, write_later, &p[1]);
	rc = select(p[0] + 1, &r, NULL, NULL, NULL);
	printf("select without timeout: %d, p set %d\n", rc, FD_ISSET(p[0], &r));
	pthread_join(t, NULL);
	read(p[0], &c, 1);

	/* writable and exceptional */
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	FD_ZERO(&r);
	FD_ZERO(&w);
	FD_ZERO(&x);
	FD_SET(sv[0], &r);
	FD_SET(sv[0], &w);
	FD_SET(sv[0], &x);
	tv.tv_sec = 1;
	tv.tv_usec = 0;
	rc = select(sv[0] + 1, &r, &w, &x, &tv);
	printf("select writable: %d, r %d w %d x %d\n", rc, FD_ISSET(sv[0], &r),
	       FD_ISSET(sv[0], &w), FD_ISSET(sv[0], &x));
	close(sv[0]);
	close(sv[1]);

	/* a closed fd */
	{
		int bad = dup(p[0]);

		close(bad);
		FD_ZERO(&r);
		FD_SET(bad, &r);
		tv.tv_sec = 1;
		tv.tv_usec = 0;
		rc = select(bad + 1, &r, NULL, NULL, &tv);
	}
	printf("select closed fd: %d %s\n", rc, rc < 0 ? en(errno) : "");

	/* pselect: timeout, then woken */
	sigemptyset(&mask);
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	t0 = now_ms();
	rc = pselect(p[0] + 1, &r, NULL, NULL, &ts, &mask);
	printf("pselect timeout: %d, timespec untouched %d\n", rc,
	       ts.tv_sec == 0 && ts.tv_nsec == 100 * 1000 * 1000);
	waited("pselect timeout", t0, 90, 1500);
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	pthread_create(&t, NULL, write_later, &p[1]);
	rc = pselect(p[0] + 1, &r, NULL, NULL, NULL, NULL);
	printf("pselect woken: %d, p set %d\n", rc, FD_ISSET(p[0], &r));
	pthread_join(t, NULL);

	companion_stop();
	return 0;
}
