/*
 * conf_socket_timeo - SO_RCVTIMEO/SO_SNDTIMEO: a blocking call gives up
 * with EAGAIN after the timeout (recv, read, accept), a send that filled
 * the buffer returns what it queued, and no timeout means none.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

static void timed(const char *what, long rc, int err, double t0)
{
	double ms = now_ms() - t0;

	if (rc < 0)
		printf("%s: -1 %s\n", what, en(err));
	else
		printf("%s: %ld\n", what, rc);
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
	if (pipe(comp_pipe) < 0 || pthread_create(&comp, NULL, comp_main, NULL) != 0)
		return 1;
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
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(lfd, (struct sockaddr *)&sa, sizeof(sa));
	listen(lfd, 4);
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
	close(comp_pipe[1]);
	pthread_join(comp, NULL);
	return 0;
}
