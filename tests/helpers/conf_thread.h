/*
 * conf_thread.h - what the conf_thread_* conformance programs share.  They
 * are plain pthread programs: run natively and under libgreen-preload.so
 * (tests/it_preload.py) they must print the same lines; lines starting with
 * '#' (timings) are not compared.  With GREEN_CONFORMANCE=green a program
 * may check what only holds when greened (few OS threads) and still prints
 * the same visible line.
 */
#ifndef CONF_THREAD_H
#define CONF_THREAD_H

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static inline void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* An absolute time ms from now on clock. */
static inline struct timespec abs_after(clockid_t clock, long ms)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	} else if (ts.tv_nsec < 0) { /* a past time, ms < 0 */
		ts.tv_sec--;
		ts.tv_nsec += 1000000000L;
	}
	return ts;
}

/* The kernel's count of this process's threads ("Threads:" in status). */
static inline int os_threads(void)
{
	char line[256];
	int n = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Threads:", 8) == 0) {
			n = atoi(line + 8);
			break;
		}
	}
	fclose(f);
	return n;
}

static inline bool greened(void)
{
	const char *v = getenv("GREEN_CONFORMANCE");

	return v && strcmp(v, "green") == 0;
}

static inline const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EBUSY: return "EBUSY";
	case EDEADLK: return "EDEADLK";
	case EPERM: return "EPERM";
	case EINVAL: return "EINVAL";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EAGAIN: return "EAGAIN";
	case EOVERFLOW: return "EOVERFLOW";
	case ERANGE: return "ERANGE";
	case ESRCH: return "ESRCH";
	default: return "other";
	}
}

/* Print "what: value" and remember a failure (exit status 1 at the end). */
static int conf_failed __attribute__((unused));
#define SHOW(what, value) printf("%s: %s\n", (what), errname(value))
#define CHECK(what, cond)                                                      \
	do {                                                                   \
		bool ok_ = (cond);                                             \
		printf("%s: %s\n", (what), ok_ ? "ok" : "FAILED");             \
		if (!ok_)                                                      \
			conf_failed = 1;                                       \
	} while (0)

static inline void die_rc(const char *what, int rc)
{
	if (rc) {
		printf("%s failed: %s\n", what, strerror(rc));
		exit(2);
	}
}

#endif
