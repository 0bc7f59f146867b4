/*
 * conf_socket_fortify - built with _FORTIFY_SOURCE=2 (defined here, before
 * any header, since the Makefile builds helpers with -O2 but no fortify):
 * read, recv, recvfrom, poll, ppoll and pread become __read_chk,
 * __recv_chk, __recvfrom_chk, __poll_chk, __ppoll_chk, __pread_chk, which
 * the shim greens too (check with nm -u).  Another thread's data wakes each.
 */
#undef _FORTIFY_SOURCE
#define _FORTIFY_SOURCE 2
#include "conf_common.h"

#include <fcntl.h>
#include <poll.h>

static int writer_fd;

static void *send_later(void *arg)
{
	(void)arg;
	usleep(50 * 1000);
	send(writer_fd, "fortified", 9, 0);
	return NULL;
}

/* The length comes from outside so the compiler cannot prove it fits and
 * keeps the checking call. */
static size_t want(const char *arg)
{
	return arg ? strtoul(arg, NULL, 10) : 9;
}

int main(int argc, char **argv)
{
	char buf[32];
	size_t n = want(argc > 1 ? argv[1] : NULL);
	struct pollfd pfd[2];
	struct timespec ts = {5, 0};
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	pthread_t t;
	int sv[2], fd, rc;
	ssize_t got;

	setvbuf(stdout, NULL, _IOLBF, 0);
	companion_start();
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	writer_fd = sv[1];

	pthread_create(&t, NULL, send_later, NULL);
	got = read(sv[0], buf, n);
	printf("__read_chk: %ld %.*s\n", (long)got, (int)(got > 0 ? got : 0), buf);
	pthread_join(t, NULL);

	pthread_create(&t, NULL, send_later, NULL);
	got = recv(sv[0], buf, n, 0);
	printf("__recv_chk: %ld\n", (long)got);
	pthread_join(t, NULL);

	pthread_create(&t, NULL, send_later, NULL);
	got = recvfrom(sv[0], buf, n, 0, (struct sockaddr *)&from, &flen);
	printf("__recvfrom_chk: %ld\n", (long)got);
	pthread_join(t, NULL);

	memset(pfd, 0, sizeof(pfd));
	pfd[0].fd = sv[0];
	pfd[0].events = POLLIN;
	pthread_create(&t, NULL, send_later, NULL);
	rc = poll(pfd, (nfds_t)(n - 8), 5000);
	printf("__poll_chk: %d revents %#x\n", rc, pfd[0].revents);
	pthread_join(t, NULL);
	recv(sv[0], buf, sizeof(buf), 0);

	pthread_create(&t, NULL, send_later, NULL);
	rc = ppoll(pfd, (nfds_t)(n - 8), &ts, NULL);
	printf("__ppoll_chk: %d revents %#x\n", rc, pfd[0].revents);
	pthread_join(t, NULL);
	recv(sv[0], buf, sizeof(buf), 0);

	fd = open("/proc/self/exe", O_RDONLY);
	got = pread(fd, buf, n - 5, 0);
	printf("__pread_chk: %ld %s\n", (long)got, got == 4 && memcmp(buf, "\177ELF", 4) == 0 ? "ELF" : "?");
	close(fd);

	close(sv[0]);
	close(sv[1]);
	companion_stop();
	return 0;
}
