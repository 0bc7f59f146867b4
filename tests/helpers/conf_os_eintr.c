/*
 * conf_os_eintr - a signal handler interrupts blocking calls as the kernel
 * says: without SA_RESTART read/recv fail with EINTR; with SA_RESTART (and
 * signal(), which sets it) they go on; poll and a socket with SO_RCVTIMEO
 * are interrupted even with SA_RESTART.  sigaction reports the program's
 * own handler and flags.
 */
#include "conf_common.h"

#include <poll.h>
#include <signal.h>
#include <sys/time.h>

static volatile sig_atomic_t hits;
static int feed_fd = -1;

static void on_alarm(int sig)
{
	(void)sig;
	hits++;
	if (feed_fd >= 0) {
		int saved = errno;

		write(feed_fd, "x", 1);
		errno = saved;
	}
}

static void on_alarm_info(int sig, siginfo_t *info, void *uctx)
{
	(void)info;
	(void)uctx;
	on_alarm(sig);
}

/* conf_common.h's show(), plus how often the handler ran since the last call. */
static void show_hits(const char *what, long rc, int err)
{
	if (rc < 0)
		printf("%s: -1 %s (handler ran %d)\n", what, en(err), (int)hits);
	else
		printf("%s: %ld (handler ran %d)\n", what, rc, (int)hits);
	hits = 0;
}

static void arm(int ms)
{
	struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};

	setitimer(ITIMER_REAL, &it, NULL);
}

static void install(int flags, bool info)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	if (info)
		sa.sa_sigaction = on_alarm_info;
	else
		sa.sa_handler = on_alarm;
	sa.sa_flags = flags | (info ? SA_SIGINFO : 0);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
}

int main(void)
{
	struct sigaction old;
	struct pollfd pfd;
	struct timeval tv = {5, 0};
	int p[2], sv[2];
	char buf[8];
	ssize_t n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	companion_start();
	if (pipe(p) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 1;

	/* no SA_RESTART: EINTR */
	install(0, false);
	sigaction(SIGALRM, NULL, &old);
	printf("sigaction shows our handler: %s, SA_RESTART %s, SA_SIGINFO %s\n",
	       old.sa_handler == on_alarm ? "yes" : "no",
	       (old.sa_flags & SA_RESTART) ? "set" : "clear",
	       (old.sa_flags & SA_SIGINFO) ? "set" : "clear");
	arm(100);
	n = read(p[0], buf, sizeof(buf));
	show_hits("pipe read, no SA_RESTART", n, errno);
	arm(100);
	n = recv(sv[0], buf, sizeof(buf), 0);
	show_hits("recv, no SA_RESTART", n, errno);
	arm(100);
	n = accept(sv[0], NULL, NULL); /* not a listener: EINVAL at once */
	show_hits("accept on a non-listener", n, errno);
	setitimer(ITIMER_REAL, &(struct itimerval){{0, 0}, {0, 0}}, NULL);
	hits = 0;

	/* SA_RESTART: the handler feeds the pipe, the read restarts and gets it */
	install(SA_RESTART, true);
	sigaction(SIGALRM, NULL, &old);
	printf("sigaction shows our SA_SIGINFO handler: %s, SA_RESTART %s\n",
	       old.sa_sigaction == on_alarm_info ? "yes" : "no",
	       (old.sa_flags & SA_RESTART) ? "set" : "clear");
	feed_fd = p[1];
	arm(100);
	n = read(p[0], buf, sizeof(buf));
	show_hits("pipe read, SA_RESTART", n, errno);
	feed_fd = sv[1];
	arm(100);
	n = recv(sv[0], buf, sizeof(buf), 0);
	show_hits("recv, SA_RESTART", n, errno);
	feed_fd = -1;

	/* poll is never restarted */
	pfd.fd = p[0];
	pfd.events = POLLIN;
	arm(100);
	n = poll(&pfd, 1, 5000);
	show_hits("poll, SA_RESTART", n, errno);

	/* nor is a socket call with a timeout */
	setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	arm(100);
	n = recv(sv[0], buf, sizeof(buf), 0);
	show_hits("recv with SO_RCVTIMEO, SA_RESTART", n, errno);

	/* signal(): BSD semantics, restarted */
	signal(SIGALRM, on_alarm);
	sigaction(SIGALRM, NULL, &old);
	printf("signal() sets SA_RESTART: %s\n", (old.sa_flags & SA_RESTART) ? "yes" : "no");
	printf("signal() returns the handler: %s\n",
	       signal(SIGALRM, on_alarm) == on_alarm ? "yes" : "no");
	feed_fd = p[1];
	arm(100);
	n = read(p[0], buf, sizeof(buf));
	show_hits("pipe read after signal()", n, errno);
	feed_fd = -1;

	/* SIG_IGN: nothing interrupts, the data written later is read */
	signal(SIGALRM, SIG_IGN);
	printf("SIG_IGN reads back: %s\n", signal(SIGALRM, SIG_IGN) == SIG_IGN ? "yes" : "no");

	companion_stop();
	return 0;
}
