/*
 * conf_socket_connect - connect refused on a closed loopback port, connect
 * and accept on loopback (blocking: never EINPROGRESS), a non-blocking
 * connect finished with poll + SO_ERROR, AF_UNIX errors, getpeername.
 */
#include "conf_common.h"

#include <poll.h>
#include <sys/un.h>

static struct sockaddr_in sa;

static void *client(void *arg)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char buf[32];
	ssize_t n;

	(void)arg;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		printf("client connect: %s\n", en(errno));
		return NULL;
	}
	write(fd, "hello", 5);
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	printf("client got: %s\n", buf);
	close(fd);
	return NULL;
}

int main(void)
{
	struct sockaddr_in peer, closed;
	struct sockaddr_un un;
	socklen_t len;
	struct pollfd pfd;
	int lfd, fd, c, soerr, rc;
	pthread_t t;
	char buf[32];
	ssize_t n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	companion_start();

	/* a port nobody listens on: bind one, note it, close it */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&closed, 0, sizeof(closed));
	closed.sin_family = AF_INET;
	closed.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&closed, sizeof(closed));
	len = sizeof(closed);
	getsockname(fd, (struct sockaddr *)&closed, &len);
	close(fd);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	rc = connect(fd, (struct sockaddr *)&closed, sizeof(closed));
	printf("connect to a closed port: %d %s\n", rc, rc < 0 ? en(errno) : "");
	rc = connect(fd, (struct sockaddr *)&closed, sizeof(closed));
	printf("connect again: %d %s\n", rc, rc < 0 ? en(errno) : "");
	close(fd);

	/* loopback connect + accept */
	lfd = listen_loopback(&sa, 8);
	pthread_create(&t, NULL, client, NULL);
	len = sizeof(peer);
	c = accept(lfd, (struct sockaddr *)&peer, &len);
	printf("accept: %s, peer family %s, peer addr %s\n", c >= 0 ? "ok" : en(errno),
	       peer.sin_family == AF_INET ? "AF_INET" : "?", inet_ntoa(peer.sin_addr));
	n = read(c, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	printf("server got: %s\n", buf);
	write(c, "world", 5);
	pthread_join(t, NULL);
	n = read(c, buf, sizeof(buf));
	printf("server read after client close: %ld\n", (long)n);
	close(c);

	/* blocking connect from this thread, accept after it */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	printf("blocking connect: %d\n", rc);
	len = sizeof(peer);
	printf("getpeername: %d\n", getpeername(fd, (struct sockaddr *)&peer, &len));
	c = accept(lfd, NULL, NULL);
	printf("accept after connect: %s\n", c >= 0 ? "ok" : en(errno));
	close(c);
	close(fd);

	/* non-blocking connect, finished by poll and SO_ERROR */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	rc = connect(fd, (struct sockaddr *)&closed, sizeof(closed));
	printf("nonblocking connect to a closed port: %s\n",
	       rc == 0 ? "0" : en(errno));
	pfd.fd = fd;
	pfd.events = POLLOUT;
	rc = poll(&pfd, 1, 2000);
	len = sizeof(soerr);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
	printf("poll %d, SO_ERROR %s\n", rc, soerr ? en(soerr) : "0");
	close(fd);
	close(lfd);

	/* AF_UNIX */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	strcpy(un.sun_path, "/nonexistent/conf-socket");
	rc = connect(fd, (struct sockaddr *)&un, sizeof(un));
	printf("unix connect to a missing path: %d %s\n", rc, rc < 0 ? en(errno) : "");
	close(fd);

	companion_stop();
	return 0;
}
