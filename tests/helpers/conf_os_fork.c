/*
 * conf_os_fork - fork with a pipe between parent and child; the parent
 * reads what the child writes and reaps it with waitpid, wait, wait4 and
 * waitid; WNOHANG says 0 while the child runs; the child can use sockets
 * and poll itself (its hub is its own).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int comp_pipe[2];
static pthread_t comp;

static void *comp_main(void *arg)
{
	char c;

	(void)arg;
	while (read(comp_pipe[0], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static const char *en(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "?";
}

int main(void)
{
	int p[2], sv[2], status = 0;
	char buf[64];
	pid_t pid, r;
	ssize_t n;
	siginfo_t si;
	struct rusage ru;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (pipe(comp_pipe) < 0 || pthread_create(&comp, NULL, comp_main, NULL) != 0)
		return 1;

	/* child writes, parent reads, waitpid reaps */
	if (pipe(p) < 0)
		return 1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		usleep(50 * 1000);
		write(p[1], "hello from the child", 20);
		_exit(7);
	}
	close(p[1]);
	n = read(p[0], buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	printf("parent read: %s\n", buf);
	n = read(p[0], buf, sizeof(buf));
	printf("then EOF: %ld\n", (long)n);
	close(p[0]);
	r = waitpid(pid, &status, 0);
	printf("waitpid: %s, exited %d, status %d\n", r == pid ? "the child" : en(errno),
	       WIFEXITED(status), WEXITSTATUS(status));
	r = waitpid(pid, &status, 0);
	printf("waitpid again: %ld %s\n", (long)r, r < 0 ? en(errno) : "");

	/* WNOHANG while running, then wait() */
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		usleep(150 * 1000);
		_exit(3);
	}
	r = waitpid(pid, &status, WNOHANG);
	printf("WNOHANG while running: %ld\n", (long)r);
	r = wait(&status);
	printf("wait: %s, status %d\n", r == pid ? "the child" : en(errno), WEXITSTATUS(status));

	/* killed by a signal, reaped by wait4 with rusage */
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		pause();
		_exit(0);
	}
	usleep(50 * 1000);
	kill(pid, SIGTERM);
	r = wait4(pid, &status, 0, &ru);
	printf("wait4: %s, signaled %d, signal %d\n", r == pid ? "the child" : en(errno),
	       WIFSIGNALED(status), WTERMSIG(status));

	/* waitid P_PID, the child talking over a socketpair and polling */
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct pollfd pfd = {.fd = sv[1], .events = POLLIN};
		int rc;

		close(sv[0]);
		rc = poll(&pfd, 1, 5000);
		n = recv(sv[1], buf, sizeof(buf), 0);
		send(sv[1], buf, (size_t)(n > 0 ? n : 0), 0);
		_exit(rc == 1 ? 5 : 6);
	}
	close(sv[1]);
	usleep(50 * 1000);
	send(sv[0], "ping", 4, 0);
	n = recv(sv[0], buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	printf("child echoed: %s\n", buf);
	memset(&si, 0, sizeof(si));
	r = waitid(P_PID, (id_t)pid, &si, WEXITED);
	printf("waitid: %ld, si_pid is the child %d, code %s, status %d\n", (long)r,
	       si.si_pid == pid, si.si_code == CLD_EXITED ? "CLD_EXITED" : "?", si.si_status);
	close(sv[0]);

	/* any child, two of them */
	fflush(stdout);
	for (int i = 0; i < 2; i++) {
		if (fork() == 0) {
			usleep((unsigned)(30 + 40 * i) * 1000);
			_exit(10 + i);
		}
	}
	for (int i = 0; i < 2; i++) {
		r = waitpid(-1, &status, 0);
		printf("waitpid(-1): exit %d\n", r > 0 ? WEXITSTATUS(status) : -1);
	}
	r = wait(&status);
	printf("wait with no children: %ld %s\n", (long)r, r < 0 ? en(errno) : "");

	close(comp_pipe[1]);
	pthread_join(comp, NULL);
	return 0;
}
