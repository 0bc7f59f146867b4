/*
 * conf_cxx.h - what the C++ conformance programs (tests/helpers/conf_cxx_*.cc)
 * share.  Like the C ones (conf_thread.h) they print the same lines natively
 * and under libgreen-preload.so; '#' lines (timings) are not compared.  A
 * C++ header of its own because conf_thread.h is C (and defines _GNU_SOURCE,
 * which g++ already does).
 *
 * Every program arms a watchdog first: a wait the shim does not green blocks
 * the only OS thread of the hub, and then nothing but a signal handler runs
 * again.  The handler names the step that never finished and exits 3, so
 * such a failure reads as a reason instead of a runner's timeout.
 */
#ifndef CONF_CXX_H
#define CONF_CXX_H

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <unistd.h>

namespace conf {

inline double now_ms()
{
	using namespace std::chrono;
	return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

inline void sleep_ms(int ms)
{
	std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

/* The kernel's count of this process's threads ("Threads:" in status). */
inline int os_threads()
{
	char line[256];
	int n = -1;
	FILE *f = std::fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (std::fgets(line, sizeof(line), f)) {
		if (std::strncmp(line, "Threads:", 8) == 0) {
			n = std::atoi(line + 8);
			break;
		}
	}
	std::fclose(f);
	return n;
}

inline bool greened()
{
	const char *v = std::getenv("GREEN_CONFORMANCE");

	return v && std::strcmp(v, "green") == 0;
}

inline int failed;

/* Print "what: ok|FAILED" and remember a failure (exit status 1). */
inline void check(const char *what, bool ok)
{
	std::printf("%s: %s\n", what, ok ? "ok" : "FAILED");
	if (!ok)
		failed = 1;
}

/*
 * Natively each of n threads is an OS thread (n + 1 with main); greened they
 * share the hub's one, with perhaps a helper thread of the shim beside it.
 */
inline void check_os_threads(const char *what, int seen, int n)
{
	if (greened())
		check(what, seen >= 1 && seen <= 4);
	else
		check(what, seen >= n + 1);
	std::printf("# %s: %d\n", what, seen);
}

/* The step the program is in, for the watchdog's message. */
inline const char *volatile step = "start";

inline void watchdog_fired(int)
{
	static const char head[] = "watchdog: still in step '";
	static const char tail[] = "' after the time limit: a wait was not woken\n";
	const char *s = step;

	/* Async-signal-safe only: write and _exit. */
	(void)!write(1, head, sizeof(head) - 1);
	(void)!write(1, s, std::strlen(s));
	(void)!write(1, tail, sizeof(tail) - 1);
	_exit(3);
}

inline void watchdog(unsigned seconds)
{
	/* Lines written before the watchdog fires must not die in a buffer. */
	std::setvbuf(stdout, nullptr, _IOLBF, 0);
	std::signal(SIGALRM, watchdog_fired);
	alarm(seconds);
}

inline void enter(const char *what)
{
	step = what;
}

} // namespace conf

#endif
