/*
 * conf_socket_nonblock - O_NONBLOCK as the program sets it (fcntl, FIONBIO,
 * SOCK_NONBLOCK, accept4 flags, pipe2) gives EAGAIN at once, and F_GETFL
 * shows the program's own view, whatever the shim does in the kernel.
 */
#include "conf_common.h"

#include <fcntl.h>
#include <sys/ioctl.h>

static const char *nb(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return "error";
	return (fl & O_NONBLOCK) ? "nonblock" : "block";
}

int main(void)
{
	struct sockaddr_in sa;
	int sv[2], p[2], on, fd, lfd, c;
	char buf[16];
	ssize_t n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	companion_start();

	/* fcntl */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 1;
	printf("socketpair F_GETFL: %s\n", nb(sv[0]));
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	printf("after F_SETFL O_NONBLOCK: %s\n", nb(sv[0]));
	n = recv(sv[0], buf, sizeof(buf), 0);
	show("recv on empty", n, errno);
	n = read(sv[0], buf, sizeof(buf));
	show("read on empty", n, errno);
	fd = dup(sv[0]);
	printf("dup shares the flag: %s\n", nb(fd));
	close(fd);
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) & ~O_NONBLOCK);
	printf("after clearing: %s\n", nb(sv[0]));
	write(sv[1], "abc", 3);
	n = read(sv[0], buf, sizeof(buf));
	show("blocking read with data", n, errno);

	/* FIONBIO */
	on = 1;
	show("FIONBIO on", ioctl(sv[1], FIONBIO, &on), errno);
	printf("F_GETFL after FIONBIO: %s\n", nb(sv[1]));
	n = recv(sv[1], buf, sizeof(buf), 0);
	show("recv after FIONBIO", n, errno);
	on = 0;
	ioctl(sv[1], FIONBIO, &on);
	printf("F_GETFL after FIONBIO off: %s\n", nb(sv[1]));
	close(sv[0]);
	close(sv[1]);

	/* SOCK_NONBLOCK */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	printf("SOCK_NONBLOCK F_GETFL: %s\n", nb(fd));
	lfd = listen_loopback(&sa, 16);
	printf("plain listener F_GETFL: %s\n", nb(lfd));
	errno = 0;
	n = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	printf("nonblocking connect: %s\n",
	       n == 0 ? "0" : (errno == EINPROGRESS ? "EINPROGRESS" : en(errno)));
	c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
	printf("accept4 SOCK_NONBLOCK: %s, F_GETFL %s\n", c >= 0 ? "ok" : en(errno), nb(c));
	n = recv(c, buf, sizeof(buf), 0);
	show("recv on accepted nonblocking", n, errno);
	close(c);
	close(fd);
	fcntl(lfd, F_SETFL, O_NONBLOCK);
	n = accept(lfd, NULL, NULL);
	show("accept on nonblocking listener", n, errno);
	printf("listener F_GETFL: %s\n", nb(lfd));
	fcntl(lfd, F_SETFL, 0);
	printf("listener F_GETFL cleared: %s\n", nb(lfd));
	close(lfd);

	/* a datagram socket: created blocking */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	printf("udp F_GETFL: %s\n", nb(fd));
	close(fd);

	/* pipes */
	if (pipe2(p, O_NONBLOCK) < 0)
		return 1;
	printf("pipe2 O_NONBLOCK F_GETFL: %s\n", nb(p[0]));
	n = read(p[0], buf, sizeof(buf));
	show("read on empty nonblocking pipe", n, errno);
	close(p[0]);
	close(p[1]);
	if (pipe(p) < 0)
		return 1;
	printf("pipe F_GETFL: %s\n", nb(p[0]));
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	n = read(p[0], buf, sizeof(buf));
	show("read on pipe made nonblocking", n, errno);
	close(p[0]);
	close(p[1]);

	companion_stop();
	return 0;
}
