/*
 * echo_threads.c - TCP echo server, one POSIX thread per connection and
 * blocking I/O: the "unmodified program" that the benchmarks run natively and
 * under the preload shim. It knows nothing of libgreen.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>

#include "echo_common.h"

/* Small enough that 10,000 native threads fit; the 16 KiB buffer is on it. */
#define CONN_STACK_SIZE	(64 * 1024)

static bool quiet;

static void
on_stop_signal(int sig)
{
	(void)sig;
	_exit(0);
}

static void
pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static int
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void *
serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[ECHO_BUF_SIZE];
	ssize_t n;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n == 0)
			break;
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (!quiet)
				fprintf(stderr, "read: %s\n", strerror(errno));
			break;
		}
		if (write_all(fd, buf, (size_t)n) == -1) {
			if (!quiet)
				fprintf(stderr, "write: %s\n", strerror(errno));
			break;
		}
	}
	close(fd);
	return NULL;
}

int
main(int argc, char **argv)
{
	struct echo_opts opts;
	struct sigaction sa;
	pthread_attr_t attr;
	pthread_t tid;
	int lfd, fd, err;

	echo_parse_args(argc, argv, &opts);
	quiet = opts.quiet;
	echo_raise_nofile(quiet);

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	if ((err = pthread_attr_init(&attr)) != 0 ||
	    (err = pthread_attr_setdetachstate(&attr,
	    PTHREAD_CREATE_DETACHED)) != 0 ||
	    (err = pthread_attr_setstacksize(&attr, CONN_STACK_SIZE)) != 0) {
		fprintf(stderr, "pthread_attr: %s\n", strerror(err));
		return 1;
	}

	lfd = echo_listen(&opts);
	for (;;) {
		fd = accept(lfd, NULL, NULL);
		if (fd == -1) {
			switch (errno) {
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
				continue;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				/* Out of fds or memory: let connections end. */
				if (!quiet)
					fprintf(stderr, "accept: %s\n",
					    strerror(errno));
				pause_ms(10);
				continue;
			default:
				fprintf(stderr, "accept: %s\n", strerror(errno));
				return 1;
			}
		}
		echo_nodelay(fd);
		err = pthread_create(&tid, &attr, serve_conn,
		    (void *)(intptr_t)fd);
		if (err != 0) {
			if (!quiet)
				fprintf(stderr, "pthread_create: %s\n",
				    strerror(err));
			close(fd);
			pause_ms(10);
		}
	}
}
