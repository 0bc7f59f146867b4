/*
 * conf_common.h - what the conf_select_*, conf_socket_* and conf_os_eintr
 * conformance programs share, on top of conf_thread.h (now_ms, greened,
 * os_threads).  Like the conf_thread_* programs they must print the same
 * lines natively and under libgreen-preload.so; lines starting with '#' are
 * not compared.
 */
#ifndef CONF_COMMON_H
#define CONF_COMMON_H

#include "conf_thread.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static int conf_comp_pipe[2] __attribute__((unused));
static pthread_t conf_comp __attribute__((unused));

static inline void *conf_comp_main(void *arg)
{
	char c;

	(void)arg;
	while (read(conf_comp_pipe[0], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

/*
 * A second thread parked until companion_stop(), so that under the shim
 * the main thread is never alone on its hub and takes the greened paths.
 * Without it there is nothing worth comparing: exit 1.
 */
static inline void companion_start(void)
{
	if (pipe(conf_comp_pipe) < 0 ||
	    pthread_create(&conf_comp, NULL, conf_comp_main, NULL) != 0)
		exit(1);
}

static inline void companion_stop(void)
{
	close(conf_comp_pipe[1]);
	pthread_join(conf_comp, NULL);
}

/* Unlike conf_thread.h's errname, names every errno the kernel can give. */
static inline const char *en(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "?";
}

static inline void show(const char *what, long rc, int err)
{
	if (rc < 0)
		printf("%s: -1 %s\n", what, en(err));
	else
		printf("%s: %ld\n", what, rc);
}

/* Only the verdict is compared; the time itself varies run to run. */
static inline void waited(const char *what, double t0, double lo, double hi)
{
	double ms = now_ms() - t0;

	printf("%s took the expected time: %s\n", what, ms >= lo && ms < hi ? "yes" : "no");
	printf("# %s: %.1f ms\n", what, ms);
}

/* Writes a byte to *(int *)arg late enough that the caller waiting for it
 * has blocked by then. */
static inline void *write_later(void *arg)
{
	usleep(50 * 1000);
	write(*(int *)arg, "x", 1);
	return NULL;
}

/* Port 0, so that parallel runs never collide; *sa gets the port chosen. */
static inline int listen_loopback(struct sockaddr_in *sa, int backlog)
{
	socklen_t len = sizeof(*sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)sa, sizeof(*sa)) < 0 ||
	    listen(fd, backlog) < 0 || getsockname(fd, (struct sockaddr *)sa, &len) < 0) {
		perror("listener");
		exit(1);
	}
	return fd;
}

#endif
