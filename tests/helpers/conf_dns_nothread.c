/*
 * conf_dns_nothread - the dns module's pool thread cannot be created: in a
 * child running as an unprivileged user with RLIMIT_NPROC 1 (so that the
 * kernel refuses every new thread or process with EAGAIN), lookups from
 * the main thread and from threads that existed before the limit still
 * answer, because the caller then resolves itself.  Without that, the
 * greened child parked for ever and the alarm below ended it.
 */
#include "conf_dns.h"

#include <sys/resource.h>

#define N 3

static int gate[N][2];

static void lookup(const char *who)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	struct hostent *he;
	int rc = getaddrinfo("localhost", "80", &hints, &res);

	printf("%s getaddrinfo: %s%s\n", who, eai_name(rc),
	       rc == 0 && res && ((struct sockaddr_in *)res->ai_addr)->sin_addr.s_addr ==
	                              htonl(INADDR_LOOPBACK)
	           ? " 127.0.0.1"
	           : "");
	if (res)
		freeaddrinfo(res);
	he = gethostbyname("one");
	printf("%s gethostbyname: %s\n", who, he ? he->h_name : herr_name(h_errno));
}

static void *thread_main(void *arg)
{
	char c, who[32];

	while (read(gate[(intptr_t)arg][0], &c, 1) < 0 && errno == EINTR)
		;
	snprintf(who, sizeof(who), "thread %ld", (long)(intptr_t)arg);
	lookup(who);
	return NULL;
}

static int child(void)
{
	struct rlimit one = {1, 1};
	pthread_t th[N];
	uid_t nobody = 0x7ff00000u + (uid_t)(getpid() & 0xffff);
	pid_t pid;

	alarm(10);
	for (long i = 0; i < N; i++)
		if (pipe(gate[i]) < 0)
			return 2;
	for (long i = 0; i < N; i++)
		die_rc("pthread_create", pthread_create(&th[i], NULL, thread_main, (void *)i));
	if (setrlimit(RLIMIT_NPROC, &one) < 0 || setgid(nobody) < 0 || setuid(nobody) < 0) {
		printf("cannot drop to an unprivileged user: %s\n", en(errno));
		return 2;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(0);
	printf("fork under the limit: %s\n", pid < 0 ? en(errno) : "it worked");
	if (pid > 0)
		waitpid(pid, NULL, 0);
	lookup("main");
	/* One at a time, so the lines come in the same order both ways. */
	for (long i = 0; i < N; i++) {
		write(gate[i][1], "x", 1);
		die_rc("pthread_join", pthread_join(th[i], NULL));
	}
	return 0;
}

int main(void)
{
	int status = 0;
	pid_t pid;

	dns_hermetic();
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(child());
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return 1;
	if (WIFEXITED(status))
		printf("child: exit %d\n", WEXITSTATUS(status));
	else
		printf("child: killed by signal %d\n", WTERMSIG(status));
	dns_hermetic_end();
	return 0;
}
