/*
 * conf_socket_stdio - stdio on sockets (fdopen + fgets/fputs) goes through
 * glibc's internal read and write, which the shim never sees: it must still
 * work (the peer here is another process, since a green thread blocked in
 * stdio holds its whole hub).  And an fd closed behind the shim's back
 * (fclose) whose number comes back as a regular file reads as a file.
 */
#include "conf_common.h"

#include <fcntl.h>
#include <sys/wait.h>

int main(void)
{
	char line[128], head[4];
	int sv[2], s, fd, status;
	FILE *f;
	pid_t pid;
	ssize_t n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	companion_start();
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		FILE *cf = fdopen(sv[1], "r+");

		close(sv[0]);
		while (fgets(line, sizeof(line), cf)) {
			fprintf(cf, "echo: %s", line);
			fflush(cf);
		}
		fclose(cf);
		_exit(0);
	}
	close(sv[1]);
	f = fdopen(sv[0], "r+");
	for (int i = 0; i < 3; i++) {
		fprintf(f, "line %d\n", i);
		fflush(f);
		if (!fgets(line, sizeof(line), f))
			break;
		printf("stdio got: %s", line);
	}
	shutdown(sv[0], SHUT_WR);
	printf("stdio EOF: %s\n", fgets(line, sizeof(line), f) ? "no" : "yes");
	fclose(f);
	waitpid(pid, &status, 0);
	printf("child exit: %d\n", WEXITSTATUS(status));

	/* a socket closed by fclose, its number reused by open() */
	s = socket(AF_INET, SOCK_STREAM, 0);
	f = fdopen(s, "r+");
	fclose(f);
	fd = open("/proc/self/exe", O_RDONLY);
	printf("open reused the number: %s\n", fd == s ? "yes" : "no");
	n = read(fd, head, sizeof(head));
	printf("read from the file: %ld %s\n", (long)n,
	       n == 4 && memcmp(head, "\177ELF", 4) == 0 ? "ELF" : "?");
	close(fd);

	companion_stop();
	return 0;
}
