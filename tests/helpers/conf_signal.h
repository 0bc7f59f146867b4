/*
 * conf_signal.h - what the conf_signal_* conformance programs share on top
 * of conf_common.h: a ping-pong between two threads that shows the other
 * threads keep running while one waits for a signal, and a handler that
 * counts.
 */
#ifndef CONF_SIGNAL_H
#define CONF_SIGNAL_H

#include "conf_common.h"

#include <signal.h>

static volatile sig_atomic_t conf_sig_hits __attribute__((unused));
static volatile sig_atomic_t conf_sig_last __attribute__((unused));

static inline void conf_sig_count(int sig)
{
	conf_sig_hits++;
	conf_sig_last = sig;
}

/* Install fn (or, if fn is NULL, the SA_SIGINFO handler info_fn) for sig
 * with flags (SA_RESTART or 0). */
static inline void conf_sig_set(int sig, void (*fn)(int),
                                void (*info_fn)(int, siginfo_t *, void *), int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	if (fn)
		sa.sa_handler = fn;
	else
		sa.sa_sigaction = info_fn;
	sa.sa_flags = flags | (fn ? 0 : SA_SIGINFO);
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

/* Install conf_sig_count for sig with flags (SA_RESTART or 0). */
static inline void conf_sig_install(int sig, int flags)
{
	conf_sig_set(sig, conf_sig_count, NULL, flags);
}

static inline void conf_sig_block(int how, int sig)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(how, &set, NULL);
}

/*
 * Until the thread whose kernel thread id is in *TID (stored by it just
 * before it blocks) sleeps in the kernel, at most 5 s.  A signal sent
 * sooner would find it not yet waiting, and only run the handler; a
 * loaded machine can take longer than any fixed nap to get it there.  A
 * green thread shares its OS thread with the caller: it parked at the
 * caller's first switch, which the nap gives it.
 */
static inline void conf_until_parked(const volatile pid_t *tid)
{
	char path[64], buf[256], *state;

	sleep_ms(50);
	for (int i = 0; i < 500 && *tid && *tid != gettid(); i++) {
		FILE *f;
		size_t n;

		snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)*tid);
		f = fopen(path, "r");
		if (!f)
			return;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		state = strrchr(buf, ')');
		if (state && state[1] == ' ' && state[2] == 'S')
			return;
		sleep_ms(10);
	}
}

struct conf_pingpong {
	int to[2], from[2];
	int rounds;
};

static inline void *conf_pong(void *arg)
{
	struct conf_pingpong *p = arg;
	char c;

	while (read(p->to[0], &c, 1) == 1)
		write(p->from[1], &c, 1);
	return NULL;
}

/* rounds trips to a second thread and back: the count that came back. */
static inline int conf_pingpong(int rounds)
{
	struct conf_pingpong p = {.rounds = rounds};
	pthread_t th;
	int done = 0;
	char c = 'p';

	if (pipe(p.to) < 0 || pipe(p.from) < 0 ||
	    pthread_create(&th, NULL, conf_pong, &p) != 0)
		exit(1);
	for (int i = 0; i < rounds; i++) {
		if (write(p.to[1], &c, 1) != 1 || read(p.from[0], &c, 1) != 1)
			break;
		done++;
	}
	close(p.to[1]);
	pthread_join(th, NULL);
	close(p.to[0]);
	close(p.from[0]);
	close(p.from[1]);
	return done;
}

#endif
