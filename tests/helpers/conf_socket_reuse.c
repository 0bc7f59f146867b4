/*
 * conf_socket_reuse - an fd number closed and handed out again must be
 * waited on afresh.  The shim keeps a greenlet's watcher as it was when the
 * next wait is on the same fd for the same events; that is only right while
 * the fd is the same open file.  Each round a socket pair takes the same
 * numbers, a blocked read on it is woken by a writer thread, and the pair
 * is then closed in one of the ways a program does it: close, fclose on an
 * fdopen'd stream (glibc closes the fd internally), dup2 over it, shutdown
 * then close, or close_range.  A stale watcher would leave a read blocked
 * forever; the test harness would then time out.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/close_range.h>

#define ROUNDS 200

struct writer {
	int fd;
	char byte;
};

static void *write_later(void *arg)
{
	struct writer *w = arg;

	usleep(500);
	while (write(w->fd, &w->byte, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static int close_one(int fd, int how)
{
	FILE *f;
	int spare;

	switch (how) {
	case 0:
		return close(fd);
	case 1:
		f = fdopen(fd, "r");
		return f ? fclose(f) : -1;
	case 2:
		/* dup2 onto fd closes what was there; then close the copy. */
		spare = socket(AF_UNIX, SOCK_STREAM, 0);
		if (spare < 0 || dup2(spare, fd) < 0)
			return -1;
		close(spare);
		return close(fd);
	case 3:
		shutdown(fd, SHUT_RDWR);
		return close(fd);
	default:
		return close_range((unsigned int)fd, (unsigned int)fd, 0);
	}
}

int main(void)
{
	int first[2] = {-1, -1}, moved = 0, good = 0;

	for (int i = 0; i < ROUNDS; i++) {
		int sv[2];
		struct writer w;
		pthread_t t;
		char got = 0;
		ssize_t n;

		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
			printf("socketpair: %s\n", strerror(errno));
			return 1;
		}
		if (i == 0) {
			first[0] = sv[0];
			first[1] = sv[1];
		} else if (sv[0] != first[0] || sv[1] != first[1]) {
			moved++;
		}
		w.fd = sv[1];
		w.byte = (char)('a' + i % 26);
		if (pthread_create(&t, NULL, write_later, &w) != 0) {
			printf("pthread_create failed\n");
			return 1;
		}
		do
			n = read(sv[0], &got, 1);
		while (n < 0 && errno == EINTR);
		pthread_join(t, NULL);
		if (n == 1 && got == w.byte)
			good++;
		else
			printf("round %d: read %zd %s\n", i, n, n < 0 ? strerror(errno) : "");
		if (close_one(sv[0], i % 5) < 0 || close(sv[1]) < 0)
			printf("round %d: close: %s\n", i, strerror(errno));
	}
	/* The rounds only test reuse if the numbers came back. */
	printf("numbers reused: %s\n", moved == 0 ? "yes" : "no");
	printf("rounds read: %d of %d\n", good, ROUNDS);
	return good == ROUNDS ? 0 : 1;
}
