/*
 * conf_socket_timeo - SO_RCVTIMEO/SO_SNDTIMEO: a blocking call gives up
 * with EAGAIN after the timeout (recv, read, accept), a send that filled
 * the buffer returns what it queued, and no timeout means none.
 */
#include "conf_common.h"

static void timed(const char *what, long rc, int err, double t0)
{
	double ms = now_ms() - t0;

	show(what, rc, err);
	printf("%s waited about 200 ms: %s\n", what, ms >= 150 && ms < 2000 ? "yes" : "no");
	printf("# %s took %.1f ms\n", what, ms);
}

/* Another thread sends after 300 ms: the timeout must not fire before. */
static void *late_sender(void *arg)
{
	int fd = *(int *)arg;

	usleep(100 * 1000);
	send(fd, "late", 4, 0);
	return NULL;
}

int main(void)
{
	struct timeval tv = {0, 200 * 1000}, got;
	socklen_t len = sizeof(got);
	struct sockaddr_in sa;
	int sv[2], lfd;
	char buf[64];
	char *big;
	double t0;
	ssize_t n;
	pthread_t t;

	setvbuf(stdout, NULL, _IOLBF, 0);
	companion_start();
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 1;
	setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &got, &len);
	printf("SO_RCVTIMEO reads back: %ld.%06ld\n", (long)got.tv_sec, (long)got.tv_usec);

	t0 = now_ms();
	n = recv(sv[0], buf, sizeof(buf), 0);
	timed("recv", n, errno, t0);
	t0 = now_ms();
	n = read(sv[0], buf, sizeof(buf));
	timed("read", n, errno, t0);

	/* data before the timeout: no error */
	pthread_create(&t, NULL, late_sender, &sv[1]);
	n = recv(sv[0], buf, sizeof(buf), 0);
	printf("recv with data in time: %ld\n", (long)n);
	pthread_join(t, NULL);

	/* accept with a timeout */
	lfd = listen_loopback(&sa, 4);
	setsockopt(lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	t0 = now_ms();
	n = accept(lfd, NULL, NULL);
	timed("accept", n, errno, t0);
	close(lfd);

	/* SO_SNDTIMEO: nobody reads, the buffer fills */
	setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	big = calloc(1, 8 << 20);
	t0 = now_ms();
	n = send(sv[1], big, 8 << 20, 0);
	printf("big send returned part of it: %s\n", n > 0 && n < (8 << 20) ? "yes" : "no");
	printf("# big send: %ld after %.1f ms\n", (long)n, now_ms() - t0);
	t0 = now_ms();
	n = send(sv[1], big, 4096, 0);
	timed("send on full buffer", n, errno, t0);

	/* no timeout set back: zero means none */
	tv.tv_usec = 0;
	setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recv(sv[0], buf, sizeof(buf), 0);
	printf("recv after clearing the timeout: %ld\n", (long)n);

	free(big);
	close(sv[0]);
	close(sv[1]);
	companion_stop();
	return 0;
}
