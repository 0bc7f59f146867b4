/*
 * chanworker.c - a stand-in for a patched program, speaking the worker side
 * of the greend channel from GREEN_CONTROL_FD, so greend can be tested
 * before (and independently of) the real shim.  Its misbehaviours are
 * chosen on the command line:
 *
 *   chanworker [--mode normal|flood|bigflood|empty|garbage|lie|close|silent]
 *              [--exit-after SECONDS] [--exit-code N] [--ignore-term]
 *              [--grandchild] [--env-file PATH] [--fds-file PATH]
 *              [--say TEXT]
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int chan = -1;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int say(const char *msg, size_t len)
{
	if (chan < 0)
		return -1;
	return (int)send(chan, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void says(const char *msg)
{
	say(msg, strlen(msg));
}

static void hello(void)
{
	char buf[256];

	snprintf(buf, sizeof(buf),
		 "{\"type\":\"hello\",\"version\":1,\"pid\":%d,\"patched\":[\"socket\",\"time\"]}",
		 (int)getpid());
	says(buf);
}

static void stats(long n)
{
	char buf[512];

	snprintf(buf, sizeof(buf),
		 "{\"type\":\"stats\",\"greenlets\":{\"alive\":7,\"spawned\":%ld,\"finished\":%ld},"
		 "\"switches\":%ld,\"timeouts\":3,\"hub\":{\"iterations\":%ld,\"blocked\":1,"
		 "\"max_blocking_ms\":0.5}}",
		 10 + n, 3 + n, 1000 * (n + 1), 50 * (n + 1));
	says(buf);
}

static void garbage(void)
{
	static char big[70 * 1024];

	says("not json at all");
	says("[1,2,3]");
	says("{\"type\":\"stats\"");
	says("{\"type\":42}");
	says("{\"type\":\"hello\",\"type\":\"hello\"}");
	memset(big, ' ', sizeof(big));
	big[0] = '{';
	big[sizeof(big) - 1] = '}';
	say(big, sizeof(big));
}

static void lies(void)
{
	says("{\"type\":\"stats\",\"greenlets\":{\"alive\":-5,\"spawned\":1,\"finished\":1},\"switches\":1,\"timeouts\":0}");
	says("{\"type\":\"stats\",\"greenlets\":{\"alive\":\"many\",\"spawned\":1,\"finished\":1},\"switches\":1,\"timeouts\":0}");
	says("{\"type\":\"stats\",\"greenlets\":{\"alive\":1,\"spawned\":1,\"finished\":1},\"switches\":1e300,\"timeouts\":0}");
	says("{\"type\":\"stats\",\"greenlets\":{\"alive\":1,\"spawned\":1,\"finished\":1},\"switches\":99999999999999999999999,\"timeouts\":0}");
	says("{\"type\":\"stats\",\"greenlets\":{\"alive\":1,\"spawned\":1,\"finished\":1},\"switches\":1,\"timeouts\":0,\"hub\":{\"iterations\":1,\"blocked\":0,\"max_blocking_ms\":1e300}}");
	says("{\"type\":\"hello\",\"version\":1,\"pid\":-1,\"patched\":[]}");
	says("{\"type\":\"hello\",\"version\":1,\"pid\":1,\"patched\":[\"rootkit\"]}");
	says("{\"type\":\"blocked\",\"greenlet\":\"x\",\"ms\":5}");
	says("{\"type\":\"dump\",\"greenlets\":[1,2]}");
}

/* A stats message padded to about 60 KiB: valid, under every size limit,
 * and costly to parse. */
static void big_stats(void)
{
	static char buf[60 * 1024];
	static int len;

	/* Built once: the flood should cost greend, not the flooder. */
	if (!len) {
		len = snprintf(buf, sizeof(buf),
			       "{\"type\":\"stats\",\"greenlets\":{\"alive\":7,\"spawned\":10,"
			       "\"finished\":3},\"switches\":1000,\"timeouts\":3,\"pad\":[");
		while (len + 8 < (int)sizeof(buf))
			len += snprintf(buf + len, sizeof(buf) - (size_t)len, "%s1.5",
					buf[len - 1] == '[' ? "" : ",");
		len += snprintf(buf + len, sizeof(buf) - (size_t)len, "]}");
	}
	say(buf, (size_t)len);
}

static void dump_answer(void)
{
	char buf[1024];

	snprintf(buf, sizeof(buf),
		 "{\"type\":\"dump\",\"greenlets\":["
		 "{\"id\":1,\"name\":\"main\",\"state\":\"running\",\"age_ms\":1500.0},"
		 "{\"id\":2,\"name\":\"acceptor\",\"state\":\"waiting\",\"parent\":1,"
		 "\"wait\":{\"fd\":5,\"events\":\"r\"},\"age_ms\":1400.0},"
		 "{\"id\":3,\"name\":\"sleeper\",\"state\":\"sleeping\",\"parent\":1,"
		 "\"wait\":{\"timer_ms\":250.0},\"age_ms\":900.0}]}");
	says(buf);
}

static void write_env(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return;
	for (char **e = environ; *e; e++)
		fprintf(f, "%s\n", *e);
	fclose(f);
}

static void write_fds(const char *path)
{
	DIR *d = opendir("/proc/self/fd");
	FILE *f = fopen(path, "w");
	struct dirent *de;

	if (!d || !f) {
		if (d)
			closedir(d);
		if (f)
			fclose(f);
		return;
	}
	while ((de = readdir(d))) {
		char link[512], target[512];
		ssize_t n;

		if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(d))
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		if (atoi(de->d_name) == fileno(f))
			continue;
		fprintf(f, "%s %s\n", de->d_name, target);
	}
	closedir(d);
	fclose(f);
}

int main(int argc, char **argv)
{
	const char *mode = "normal", *env = getenv("GREEN_CONTROL_FD"), *iv;
	double exit_after = -1, interval = 1.0, next, start = now();
	int exit_code = 0;
	long n = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc)
			mode = argv[++i];
		else if (strcmp(argv[i], "--exit-after") == 0 && i + 1 < argc)
			exit_after = atof(argv[++i]);
		else if (strcmp(argv[i], "--exit-code") == 0 && i + 1 < argc)
			exit_code = atoi(argv[++i]);
		else if (strcmp(argv[i], "--ignore-term") == 0)
			signal(SIGTERM, SIG_IGN);
		else if (strcmp(argv[i], "--grandchild") == 0) {
			if (fork() == 0) {
				execlp("sleep", "sleep", "300", (char *)NULL);
				_exit(127);
			}
		} else if (strcmp(argv[i], "--env-file") == 0 && i + 1 < argc)
			write_env(argv[++i]);
		else if (strcmp(argv[i], "--fds-file") == 0 && i + 1 < argc)
			write_fds(argv[++i]);
		else if (strcmp(argv[i], "--say") == 0 && i + 1 < argc) {
			printf("%s\n", argv[++i]);
			fflush(stdout);
		} else {
			fprintf(stderr, "chanworker: unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	if (env)
		chan = atoi(env);
	iv = getenv("GREEN_STATS_INTERVAL_MS");
	if (iv && atol(iv) > 0)
		interval = atol(iv) / 1000.0;
	if (strcmp(mode, "close") == 0 && chan >= 0) {
		close(chan);
		chan = -1;
	}
	if (strcmp(mode, "silent") != 0)
		hello();
	if (strcmp(mode, "garbage") == 0)
		garbage();
	if (strcmp(mode, "empty") == 0)
		say("", 0);
	next = now();
	for (;;) {
		struct pollfd pfd = { .fd = chan, .events = POLLIN };
		double t = now(), wait = next - t;
		char buf[65536];

		if (exit_after >= 0 && t - start >= exit_after)
			return exit_code;
		if (strcmp(mode, "bigflood") == 0) {
			/* 100 messages a second: under the message-count limit */
			big_stats();
			usleep(10000);
			continue;
		}
		if (strcmp(mode, "flood") == 0) {
			for (int k = 0; k < 1000; k++)
				stats(n++);
			usleep(1000);
			continue;
		}
		if (wait <= 0) {
			if (strcmp(mode, "lie") == 0)
				lies();
			if (strcmp(mode, "silent") != 0)
				stats(n++);
			if (n == 2 && strcmp(mode, "normal") == 0)
				says("{\"type\":\"blocked\",\"greenlet\":2,\"name\":\"acceptor\",\"ms\":250.5}");
			next = t + interval;
			wait = interval;
		}
		if (exit_after >= 0 && exit_after - (t - start) < wait)
			wait = exit_after - (t - start);
		if (wait < 0)
			wait = 0;
		if (poll(&pfd, chan >= 0 ? 1 : 0, (int)(wait * 1000) + 1) > 0) {
			ssize_t r = recv(chan, buf, sizeof(buf) - 1, MSG_DONTWAIT);

			if (r == 0) {
				close(chan);
				chan = -1;
			} else if (r > 0) {
				buf[r] = '\0';
				if (strstr(buf, "\"dump\"") && strcmp(mode, "silent") != 0)
					dump_answer();
			}
		}
	}
}
