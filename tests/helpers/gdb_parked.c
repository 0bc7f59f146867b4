/*
 * gdb_parked - a program for tests/it_gdb.py: three threads block reading a
 * pipe (greenlets parked on its fd when greened), then the main thread
 * stops itself with SIGTRAP so that gdb can look at them.  After gdb lets
 * it go on, the pipe is written and closed and everyone exits.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#define READERS 3

static int pipe_fds[2];

static void *block_in_read(void *arg)
{
	char c;

	(void)arg;
	while (read(pipe_fds[0], &c, 1) == 1)
		;
	return NULL;
}

int main(void)
{
	pthread_t t[READERS];

	if (pipe(pipe_fds) < 0) {
		perror("pipe");
		return 1;
	}
	for (int i = 0; i < READERS; i++) {
		if (pthread_create(&t[i], NULL, block_in_read, NULL) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			return 1;
		}
	}
	/* Give the readers time to block: a green sleep runs them. */
	usleep(100 * 1000);
	raise(SIGTRAP);
	close(pipe_fds[1]);
	for (int i = 0; i < READERS; i++)
		pthread_join(t[i], NULL);
	puts("done");
	return 0;
}
