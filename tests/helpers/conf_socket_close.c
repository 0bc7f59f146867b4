/*
 * conf_socket_close - waking a thread blocked in recv: shutdown() does it
 * natively (recv returns 0).  close() from another thread does not wake a
 * blocked reader on Linux; under the shim it wakes it with EBADF (checked
 * only when GREEN_CONFORMANCE=green, on '#' lines, and in the exit code).
 */
#include "conf_common.h"

struct reader {
	int fd;
	ssize_t rc;
	int err;
	volatile int done;
};

static void *reader(void *arg)
{
	struct reader *r = arg;
	char buf[16];

	r->rc = recv(r->fd, buf, sizeof(buf), 0);
	r->err = errno;
	r->done = 1;
	return NULL;
}

int main(void)
{
	struct reader r = {0};
	pthread_t t;
	int sv[2];

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 1;
	r.fd = sv[0];
	pthread_create(&t, NULL, reader, &r);
	usleep(100 * 1000);
	printf("reader still blocked: %s\n", r.done ? "no" : "yes");
	shutdown(sv[0], SHUT_RDWR);
	pthread_join(t, NULL);
	if (r.rc < 0)
		printf("after shutdown: -1 %s\n", en(r.err));
	else
		printf("after shutdown: %ld\n", (long)r.rc);
	close(sv[0]);
	close(sv[1]);

	if (greened()) {
		struct reader r2 = {0};
		int i;

		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
			return 1;
		r2.fd = sv[0];
		pthread_create(&t, NULL, reader, &r2);
		usleep(100 * 1000);
		close(sv[0]);
		for (i = 0; i < 200 && !r2.done; i++)
			usleep(10 * 1000);
		if (!r2.done) {
			printf("# close did not wake the reader\n");
			return 2;
		}
		pthread_join(t, NULL);
		printf("# after close: %ld %s\n", (long)r2.rc, r2.rc < 0 ? en(r2.err) : "");
		close(sv[1]);
		if (!(r2.rc < 0 && r2.err == EBADF))
			return 3;

		/* dup2 onto the fd a reader waits on is a close too */
		{
			struct reader r3 = {0};
			int other = dup(1);

			if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
				return 1;
			r3.fd = sv[0];
			pthread_create(&t, NULL, reader, &r3);
			usleep(100 * 1000);
			dup2(other, sv[0]);
			for (i = 0; i < 200 && !r3.done; i++)
				usleep(10 * 1000);
			if (!r3.done) {
				printf("# dup2 did not wake the reader\n");
				return 4;
			}
			pthread_join(t, NULL);
			printf("# after dup2: %ld %s\n", (long)r3.rc, r3.rc < 0 ? en(r3.err) : "");
			close(sv[0]);
			close(sv[1]);
			close(other);
			if (!(r3.rc < 0 && r3.err == EBADF))
				return 5;
		}
	}
	return 0;
}
