/*
 * conf_os_waitpid_pidfd - one thread waits for a child in waitpid while
 * another closes the lowest free fd number (close_range, as a program
 * tidying its fds does) and opens a file, which natively takes that
 * number.  Greened, the waiter's pidfd sat there: waitpid must still
 * report the child, not EBADF, and the shim must not close the file that
 * now has the number when its wait ends.
 */
#include "conf_common.h"

#include <fcntl.h>
#include <sys/wait.h>

#include <linux/close_range.h>

static pid_t child;
static int wait_rc = -2, wait_err, wait_status;

static pid_t spawn_child(int ms, int code)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		usleep((useconds_t)ms * 1000);
		_exit(code);
	}
	return pid;
}

static void *waiter(void *arg)
{
	(void)arg;
	wait_rc = (int)waitpid(child, &wait_status, 0);
	wait_err = errno;
	return NULL;
}

static int lowest_free_fd(void)
{
	int fd = dup(0);

	if (fd >= 0)
		close(fd);
	return fd;
}

int main(void)
{
	pthread_t t;
	int probe, mine, status = 0;
	pid_t r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	companion_start();
	/* A first wait, so that whatever the shim sets up once is set up. */
	child = spawn_child(20, 3);
	r = waitpid(child, &status, 0);
	printf("first waitpid: %s, exit %d\n", r == child ? "the child" : en(errno),
	       WEXITSTATUS(status));

	probe = lowest_free_fd();
	child = spawn_child(300, 7);
	if (pthread_create(&t, NULL, waiter, NULL) != 0)
		return 1;
	usleep(100 * 1000); /* the waiter is in waitpid by now */
	close_range((unsigned)probe, (unsigned)probe, 0);
	mine = open("/dev/null", O_RDONLY | O_CLOEXEC);
	printf("the file took the number that was free: %s\n", mine == probe ? "yes" : "no");
	pthread_join(t, NULL);
	printf("waitpid: %s, exit %d\n", wait_rc == child ? "the child" : en(wait_err),
	       WEXITSTATUS(wait_status));
	printf("the file is still open: %s\n", fcntl(mine, F_GETFD) >= 0 ? "yes" : en(errno));
	close(mine);
	companion_stop();
	return 0;
}
