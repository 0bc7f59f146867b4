/*
 * conf_socket_echo50 - the thread-per-connection echo server: an accept
 * loop starts a thread per connection, 50 client threads each send 20
 * lines and check the echo.  Under the shim (GREEN_CONFORMANCE=green) the
 * OS thread count is printed on a '#' line.
 */
#include "conf_common.h"

#include <stdint.h>

#define CLIENTS 50
#define ROUNDS 20

static struct sockaddr_in sa;
static int failures;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int max_threads;

static void *serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[256];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (write(fd, buf, (size_t)n) != n)
			break;
	}
	close(fd);
	return NULL;
}

static void *acceptor(void *arg)
{
	int lfd = (int)(intptr_t)arg;

	for (int i = 0; i < CLIENTS; i++) {
		int c = accept(lfd, NULL, NULL);
		pthread_t t;

		if (c < 0) {
			perror("accept");
			continue;
		}
		pthread_create(&t, NULL, serve, (void *)(intptr_t)c);
		pthread_detach(t);
	}
	return NULL;
}

/* Read one line ending in '\n'. */
static int read_line(int fd, char *buf, size_t cap)
{
	size_t len = 0;

	while (len + 1 < cap) {
		ssize_t n = read(fd, buf + len, 1);

		if (n <= 0)
			return -1;
		if (buf[len++] == '\n')
			break;
	}
	buf[len] = '\0';
	return (int)len;
}

static void *client(void *arg)
{
	int id = (int)(intptr_t)arg, bad = 0, fd, n;
	char line[64], back[64];

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		bad = ROUNDS;
	}
	for (int r = 0; r < ROUNDS && !bad; r++) {
		n = snprintf(line, sizeof(line), "client %d round %d\n", id, r);
		if (write(fd, line, (size_t)n) != n || read_line(fd, back, sizeof(back)) < 0 ||
		    strcmp(line, back) != 0)
			bad++;
		if (r == ROUNDS / 2) {
			int t = os_threads();

			pthread_mutex_lock(&lock);
			if (t > max_threads)
				max_threads = t;
			pthread_mutex_unlock(&lock);
		}
	}
	close(fd);
	pthread_mutex_lock(&lock);
	failures += bad;
	pthread_mutex_unlock(&lock);
	return NULL;
}

int main(void)
{
	pthread_t acc, clients[CLIENTS];
	int lfd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	lfd = listen_loopback(&sa, 128);
	pthread_create(&acc, NULL, acceptor, (void *)(intptr_t)lfd);
	for (int i = 0; i < CLIENTS; i++)
		pthread_create(&clients[i], NULL, client, (void *)(intptr_t)i);
	for (int i = 0; i < CLIENTS; i++)
		pthread_join(clients[i], NULL);
	pthread_join(acc, NULL);
	close(lfd);
	printf("%d clients x %d rounds, failures: %d\n", CLIENTS, ROUNDS, failures);
	printf("# most OS threads seen: %d\n", max_threads);
	return failures ? 1 : 0;
}
