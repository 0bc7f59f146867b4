/*
 * conf_socket_eof - end of file: a blocked read, recv, readv wakes with 0
 * when the peer closes or shuts down its side; writing to a closed peer
 * gives EPIPE (SIGPIPE ignored); a pipe whose writer closes reads 0.
 */
#include "conf_common.h"

#include <signal.h>
#include <sys/uio.h>

struct later {
	int fd;
	int how; /* 0 close, 1 shutdown(SHUT_WR), 2 write then close */
};

static void *act_later(void *arg)
{
	struct later *l = arg;

	usleep(50 * 1000);
	if (l->how == 2)
		write(l->fd, "bye", 3);
	if (l->how == 1)
		shutdown(l->fd, SHUT_WR);
	else
		close(l->fd);
	return NULL;
}

int main(void)
{
	struct later l;
	struct iovec iov;
	pthread_t t;
	int sv[2], p[2];
	char buf[16];
	ssize_t n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	companion_start();

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	l.fd = sv[1];
	l.how = 0;
	pthread_create(&t, NULL, act_later, &l);
	n = read(sv[0], buf, sizeof(buf));
	show("read when the peer closes", n, errno);
	pthread_join(t, NULL);
	n = write(sv[0], "x", 1);
	show("write to the closed peer", n, errno);
	n = send(sv[0], "x", 1, 0);
	show("send to the closed peer", n, errno);
	close(sv[0]);

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	l.fd = sv[1];
	l.how = 1;
	pthread_create(&t, NULL, act_later, &l);
	n = recv(sv[0], buf, sizeof(buf), 0);
	show("recv when the peer shuts down writing", n, errno);
	pthread_join(t, NULL);
	n = write(sv[0], "ok", 2);
	show("write back over the half-open pair", n, errno);
	n = read(sv[1], buf, sizeof(buf));
	show("peer reads it", n, errno);
	close(sv[0]);
	close(sv[1]);

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	l.fd = sv[1];
	l.how = 2;
	pthread_create(&t, NULL, act_later, &l);
	iov.iov_base = buf;
	iov.iov_len = sizeof(buf);
	n = readv(sv[0], &iov, 1);
	show("readv gets the last data", n, errno);
	pthread_join(t, NULL);
	n = readv(sv[0], &iov, 1);
	show("readv then EOF", n, errno);
	close(sv[0]);

	if (pipe(p) < 0)
		return 1;
	l.fd = p[1];
	l.how = 2;
	pthread_create(&t, NULL, act_later, &l);
	n = read(p[0], buf, sizeof(buf));
	show("pipe read gets the last data", n, errno);
	pthread_join(t, NULL);
	n = read(p[0], buf, sizeof(buf));
	show("pipe read then EOF", n, errno);
	close(p[0]);

	if (pipe(p) < 0)
		return 1;
	close(p[0]);
	n = write(p[1], "x", 1);
	show("pipe write with no reader", n, errno);
	close(p[1]);

	companion_stop();
	return 0;
}
