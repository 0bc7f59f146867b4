/*
 * conf_os_exec - what a program run by exec, posix_spawn, system and popen
 * sees of the sockets it inherits: O_NONBLOCK only where the parent set it
 * itself, natively and greened alike (the shim sets it on listening and
 * fresh sockets of its own; it must take it off first).  A failed exec or
 * spawn leaves the parent's fds as they were; after the children the
 * parent still accepts without holding its other threads.
 */
#include "conf_common.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

enum { LISTENER, CLIENT, ACCEPTED, FRESH, USER_NB, CLOEXEC_LISTENER, NFDS };
static const char *const names[NFDS] = {"listener", "client", "accepted", "fresh",
                                        "user non-blocking", "close-on-exec listener"};
static int fds[NFDS];
static char self[4096];
static char nums[NFDS][16];

/* The child: one line per fd number it was given. */
static int child_main(int argc, char **argv)
{
	for (int i = 2; i + 1 < argc; i += 2) {
		int fl = fcntl(atoi(argv[i + 1]), F_GETFL);

		if (fl < 0)
			printf("  %s: %s\n", argv[i], en(errno));
		else
			printf("  %s: O_NONBLOCK %d\n", argv[i], (fl & O_NONBLOCK) != 0);
	}
	return 0;
}

/* argv for the child: self "child" name fd name fd ... (names without
 * spaces, so that system and popen can pass them through a shell). */
static char *child_argv[2 + 2 * NFDS + 3];
static char argnames[NFDS + 1][32];

static void build_argv(int extra_fd)
{
	int n = 0;

	child_argv[n++] = self;
	child_argv[n++] = (char *)"child";
	for (int i = 0; i < NFDS; i++) {
		snprintf(argnames[i], sizeof(argnames[i]), "%s", names[i]);
		for (char *c = argnames[i]; *c; c++)
			if (*c == ' ')
				*c = '-';
		child_argv[n++] = argnames[i];
		child_argv[n++] = nums[i];
	}
	if (extra_fd >= 0) {
		static char num[16];

		snprintf(argnames[NFDS], sizeof(argnames[NFDS]), "dup2-of-close-on-exec");
		snprintf(num, sizeof(num), "%d", extra_fd);
		child_argv[n++] = argnames[NFDS];
		child_argv[n++] = num;
	}
	child_argv[n] = NULL;
}

/* The environment without LD_PRELOAD: a child that runs without the shim. */
static char **bare_env(void)
{
	static char *env[256];
	int n = 0;

	for (char **e = environ; *e && n < 255; e++)
		if (strncmp(*e, "LD_PRELOAD=", 11) != 0)
			env[n++] = *e;
	env[n] = NULL;
	return env;
}

static void reap(const char *what, pid_t pid)
{
	int status = 0;

	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		printf("%s: no child (%s)\n", what, en(errno));
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		printf("%s: child failed, status %d\n", what, status);
}

typedef void (*exec_fn)(void);

static void via_execv(void) { execv(self, child_argv); }
static void via_execve_bare(void) { execve(self, child_argv, bare_env()); }
static void via_execvp(void) { execvp(self, child_argv); }
static void via_execle_bare(void)
{
	execle(self, self, "child", "listener", nums[LISTENER], "fresh", nums[FRESH],
	       "client", nums[CLIENT], (char *)NULL, bare_env());
}
static void via_execlp(void)
{
	execlp(self, self, "child", "listener", nums[LISTENER], "fresh", nums[FRESH],
	       (char *)NULL);
}

static void fork_exec(const char *what, exec_fn fn)
{
	pid_t pid;

	printf("%s:\n", what);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		fn();
		_exit(127);
	}
	reap(what, pid);
}

/* The kernel's own flags (fdinfo), which F_GETFL under the shim does not show. */
static long kernel_flags(int fd)
{
	char path[64], line[128];
	long fl = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "flags:", 6) == 0)
			fl = strtol(line + 6, NULL, 8);
	fclose(f);
	return fl;
}

static void *accept_one(void *arg)
{
	int c = accept(fds[LISTENER], NULL, NULL);

	*(int *)arg = c >= 0 ? 0 : errno;
	if (c >= 0)
		close(c);
	return NULL;
}

/* A green thread in accept while this one connects: an accept that
 * blocked the whole hub would never see the connection come. */
static void accept_still_green(const char *what, const struct sockaddr_in *sa)
{
	pthread_t t;
	int err = -1, c;

	if (pthread_create(&t, NULL, accept_one, &err) != 0)
		exit(1);
	usleep(50 * 1000);
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(c, (const struct sockaddr *)sa, sizeof(*sa)) < 0)
		printf("%s: connect %s\n", what, en(errno));
	pthread_join(t, NULL);
	close(c);
	printf("%s: accept %s\n", what, err == 0 ? "ok" : en(err));
}

/* A fresh set of sockets for each case, so that each starts with the
 * shim's O_NONBLOCK on the listener and the fresh socket. */
static struct sockaddr_in sa;

static void open_set(void)
{
	struct sockaddr_in sa2;

	fds[LISTENER] = listen_loopback(&sa, 16);
	fds[CLIENT] = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fds[CLIENT], (struct sockaddr *)&sa, sizeof(sa)) < 0)
		exit(1);
	fds[ACCEPTED] = accept(fds[LISTENER], NULL, NULL);
	fds[FRESH] = socket(AF_INET, SOCK_STREAM, 0);
	fds[USER_NB] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	fds[CLOEXEC_LISTENER] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sa2, 0, sizeof(sa2));
	sa2.sin_family = AF_INET;
	sa2.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fds[CLOEXEC_LISTENER], (struct sockaddr *)&sa2, sizeof(sa2)) < 0 ||
	    listen(fds[CLOEXEC_LISTENER], 4) < 0)
		exit(1);
	for (int i = 0; i < NFDS; i++) {
		if (fds[i] < 0)
			exit(1);
		snprintf(nums[i], sizeof(nums[i]), "%d", fds[i]);
	}
	build_argv(-1);
}

static void close_set(void)
{
	for (int i = 0; i < NFDS; i++)
		close(fds[i]);
}

static void show_parent(void)
{
	for (int i = 0; i < NFDS; i++) {
		int fl = fcntl(fds[i], F_GETFL);

		printf("  parent's %s: O_NONBLOCK %d\n", names[i], fl >= 0 && (fl & O_NONBLOCK));
	}
}

static void failed_exec(void)
{
	long before[NFDS];
	bool same = true;
	pid_t pid;
	int rc;

	open_set();
	for (int i = 0; i < NFDS; i++)
		before[i] = kernel_flags(fds[i]);
	rc = execv("/nonexistent/conf_os_exec", child_argv);
	printf("execv of a missing file: %d %s\n", rc, en(errno));
	rc = execlp("conf-os-exec-nowhere", "x", (char *)NULL);
	printf("execlp of a missing file: %d %s\n", rc, en(errno));
	rc = posix_spawn(&pid, "/nonexistent/conf_os_exec", NULL, NULL, child_argv, environ);
	printf("posix_spawn of a missing file: %s\n", rc ? en(rc) : "0");
	for (int i = 0; i < NFDS; i++)
		same = same && kernel_flags(fds[i]) == before[i];
	printf("the kernel's flags are as they were: %s\n", same ? "yes" : "no");
	close_set();
}

static void spawn(const char *what, const posix_spawn_file_actions_t *fa, char **env,
                  bool search)
{
	pid_t pid;
	int rc;

	printf("%s:\n", what);
	fflush(stdout);
	rc = (search ? posix_spawnp : posix_spawn)(&pid, self, fa, NULL, child_argv, env);
	if (rc)
		printf("%s: %s\n", what, en(rc));
	else
		reap(what, pid);
}

static void shell_command(char *cmd, size_t len)
{
	snprintf(cmd, len, "exec");
	for (int i = 0; child_argv[i]; i++)
		snprintf(cmd + strlen(cmd), len - strlen(cmd), " %s", child_argv[i]);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *what;
		exec_fn fn;
	} execs[] = {
		{"fork, execv", via_execv},
		{"fork, execve without the shim", via_execve_bare},
		{"fork, execvp", via_execvp},
		{"fork, execle without the shim", via_execle_bare},
		{"fork, execlp", via_execlp},
	};
	posix_spawn_file_actions_t fa;
	char cmd[8192], line[256];
	int rc;
	FILE *p;

	if (argc > 1 && strcmp(argv[1], "child") == 0)
		return child_main(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(30); /* an accept that holds the hub would hang the run */
	if (readlink("/proc/self/exe", self, sizeof(self) - 1) < 0)
		return 1;
	companion_start();

	failed_exec();
	for (size_t i = 0; i < sizeof(execs) / sizeof(execs[0]); i++) {
		open_set();
		fork_exec(execs[i].what, execs[i].fn);
		accept_still_green("  then in the parent", &sa);
		close_set();
	}

	open_set();
	spawn("posix_spawn without the shim", NULL, bare_env(), false);
	accept_still_green("  then in the parent", &sa);
	show_parent();
	close_set();

	/* A file action may hand the child even a close-on-exec socket. */
	open_set();
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[CLOEXEC_LISTENER], 60);
	build_argv(60);
	spawn("posix_spawnp with a dup2 file action", &fa, environ, true);
	posix_spawn_file_actions_destroy(&fa);
	close_set();

	open_set();
	shell_command(cmd, sizeof(cmd));
	printf("system:\n");
	fflush(stdout);
	rc = system(cmd);
	if (rc != 0)
		printf("system: %d\n", rc);
	accept_still_green("  then in the parent", &sa);
	close_set();

	open_set();
	shell_command(cmd, sizeof(cmd));
	printf("popen:\n");
	fflush(stdout);
	p = popen(cmd + 5, "r");
	if (!p) {
		printf("popen: %s\n", en(errno));
	} else {
		while (fgets(line, sizeof(line), p))
			fputs(line, stdout);
		printf("pclose: %d\n", pclose(p));
	}
	show_parent();
	close_set();

	companion_stop();
	return 0;
}
