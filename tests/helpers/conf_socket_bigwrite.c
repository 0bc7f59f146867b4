/*
 * conf_socket_bigwrite - a blocking write (write, send, writev) of many
 * megabytes to a slow reader returns only when all of it is written, on a
 * TCP connection, a Unix socket pair and a pipe; recv with MSG_WAITALL
 * gathers a whole buffer.
 */
#include "conf_common.h"

#include <stdint.h>
#include <sys/uio.h>

#define BIG (6u << 20)

struct slow {
	int fd;
	size_t total;
	uint32_t sum;
};

static uint32_t sum_add(uint32_t s, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		s = s * 31 + p[i];
	return s;
}

/* Reads in small bites, pausing now and then, until EOF. */
static void *slow_reader(void *arg)
{
	struct slow *s = arg;
	unsigned char buf[4096];
	int bites = 0;

	for (;;) {
		ssize_t n = read(s->fd, buf, sizeof(buf));

		if (n <= 0)
			break;
		s->sum = sum_add(s->sum, buf, (size_t)n);
		s->total += (size_t)n;
		if (++bites % 256 == 0)
			usleep(2000);
	}
	return NULL;
}

static unsigned char *pattern(size_t n, unsigned seed)
{
	unsigned char *p = malloc(n);

	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 7 + seed + i / 4096);
	return p;
}

static void run(const char *what, int wfd, int rfd, int how)
{
	struct slow s = {.fd = rfd};
	unsigned char *data = pattern(BIG, (unsigned)how);
	pthread_t t;
	ssize_t n;

	pthread_create(&t, NULL, slow_reader, &s);
	if (how == 0) {
		n = write(wfd, data, BIG);
	} else if (how == 1) {
		n = send(wfd, data, BIG, 0);
	} else {
		struct iovec iov[3] = {
		    {data, BIG / 3}, {data + BIG / 3, BIG / 3}, {data + 2 * (BIG / 3), BIG - 2 * (BIG / 3)}};
		n = writev(wfd, iov, 3);
	}
	close(wfd);
	pthread_join(t, NULL);
	printf("%s: wrote %ld of %u, reader got %zu, same bytes: %s\n", what, (long)n, BIG,
	       s.total, s.sum == sum_add(0, data, BIG) ? "yes" : "no");
	close(rfd);
	free(data);
}

static void tcp_pair(int *a, int *b)
{
	struct sockaddr_in sa;
	int lfd = listen_loopback(&sa, 1);

	*a = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(*a, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		exit(1);
	*b = accept(lfd, NULL, NULL);
	close(lfd);
}

struct feeder {
	int fd;
	const unsigned char *data;
	size_t n;
};

static void *feeder(void *arg)
{
	struct feeder *f = arg;

	for (size_t off = 0; off < f->n; off += 1000) {
		size_t k = f->n - off < 1000 ? f->n - off : 1000;

		write(f->fd, f->data + off, k);
		if (off % 50000 == 0)
			usleep(1000);
	}
	return NULL;
}

int main(void)
{
	int a, b, sv[2], p[2];
	unsigned char *data, *got;
	struct feeder f;
	pthread_t t;
	ssize_t n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	tcp_pair(&a, &b);
	run("tcp write", a, b, 0);
	tcp_pair(&a, &b);
	run("tcp writev", a, b, 2);
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	run("unix send", sv[0], sv[1], 1);
	if (pipe(p) < 0)
		return 1;
	run("pipe write", p[1], p[0], 0);
	if (pipe(p) < 0)
		return 1;
	run("pipe writev", p[1], p[0], 2);

	/* MSG_WAITALL gathers the whole buffer from many small writes */
	tcp_pair(&a, &b);
	data = pattern(300000, 9);
	got = calloc(1, 300000);
	f.fd = a;
	f.data = data;
	f.n = 300000;
	pthread_create(&t, NULL, feeder, &f);
	n = recv(b, got, 300000, MSG_WAITALL);
	pthread_join(t, NULL);
	printf("recv MSG_WAITALL: %ld, same bytes: %s\n", (long)n,
	       memcmp(data, got, 300000) == 0 ? "yes" : "no");
	close(a);
	n = recv(b, got, 10, MSG_WAITALL);
	printf("recv MSG_WAITALL at EOF: %ld\n", (long)n);
	close(b);
	free(data);
	free(got);
	return 0;
}
