/*
 * bench_tls.c - what per-green-thread TLS costs a switch (issue 13).  Two
 * green threads of a plain pthread program hand the OS thread to each other
 * with sched_yield, each switch a change of the thread whose TLS must be in
 * place; the program runs under libgreen-preload.so with no thread-local
 * data of its own (the bare switch: the shim's switch hook is not even
 * installed), then with a module of 8 bytes, 1 KiB and 16 KiB of it loaded
 * (tests/helpers/libtls_blob*.so), whose blocks the shim copies out and in
 * on every switch.  Each is reported in ns per switch and as a ratio to the
 * bare switch.  The other design, a thread control block per green thread
 * with the FS base switched, costs at least one FS base write per switch,
 * whatever the size of the TLS: that write is measured here too (wrfsbase
 * when AT_HWCAP2 says the kernel allows it, arch_prctl otherwise).
 *
 * Usage: bench_tls SHIM MODULE_DIR   (the driver: re-runs itself per case)
 *        bench_tls --case [MODULE]   (one case, under the shim)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <asm/prctl.h>
#endif

#define ROUNDS 5

static long iters;
static unsigned int (*touch)(unsigned int);

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *yielder(void *arg)
{
	unsigned int sum = 0;

	(void)arg;
	for (long i = 0; i < iters; i++) {
		if (touch)
			sum += touch((unsigned int)i);
		sched_yield();
	}
	return (void *)(uintptr_t)sum;
}

/* One case, under the shim: the best of ROUNDS, in ns per switch. */
static int run_case(const char *module)
{
	double best = 0;

	if (module) {
		void *h = dlopen(module, RTLD_NOW);

		if (!h || !(*(void **)&touch = dlsym(h, "tls_blob_touch"))) {
			fprintf(stderr, "bench_tls: %s: %s\n", module, dlerror());
			return 1;
		}
	}
	for (int r = 0; r < ROUNDS; r++) {
		pthread_t a, b;
		double t0 = now_ns(), ns;

		if (pthread_create(&a, NULL, yielder, NULL) != 0 ||
		    pthread_create(&b, NULL, yielder, NULL) != 0) {
			fprintf(stderr, "bench_tls: pthread_create failed\n");
			return 1;
		}
		pthread_join(a, NULL);
		pthread_join(b, NULL);
		ns = (now_ns() - t0) / (2.0 * (double)iters);
		if (r == 0 || ns < best)
			best = ns;
	}
	printf("%.2f\n", best);
	return 0;
}

/* The FS base write the other design needs on every switch, in ns; 0 when
 * this machine cannot tell. */
static double fsbase_write_ns(const char **how)
{
#if defined(__x86_64__)
	unsigned long base;
	long n = iters;
	double t0;

	*how = "arch_prctl(ARCH_SET_FS)";
	if (syscall(SYS_arch_prctl, ARCH_GET_FS, &base) != 0)
		return 0;
#ifndef HWCAP2_FSGSBASE
#define HWCAP2_FSGSBASE (1 << 1)
#endif
	if (getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE) {
		*how = "wrfsbase";
		t0 = now_ns();
		for (long i = 0; i < n; i++)
			__asm__ volatile("wrfsbase %0" : : "r"(base) : "memory");
		return (now_ns() - t0) / (double)n;
	}
	n = n / 10 + 1;
	t0 = now_ns();
	for (long i = 0; i < n; i++)
		syscall(SYS_arch_prctl, ARCH_SET_FS, base);
	return (now_ns() - t0) / (double)n;
#else
	*how = "(not measured on this architecture)";
	return 0;
#endif
}

/* Run this program for one case under the shim; its ns per switch, or -1. */
static double child_case(const char *self, const char *shim, const char *module)
{
	int pipefd[2];
	char buf[64] = "";
	pid_t pid;
	int status;
	ssize_t n;

	if (pipe(pipefd) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		setenv("LD_PRELOAD", shim, 1);
		setenv("GREEN_PATCH", "all", 1);
		execl(self, self, "--case", module, (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	n = read(pipefd[0], buf, sizeof(buf) - 1);
	close(pipefd[0]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    n <= 0)
		return -1;
	return strtod(buf, NULL);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *label, *file;
	} cases[] = {
	    {"no TLS of its own (bare)", NULL},
	    {"8 B of program TLS", "libtls_blob0.so"},
	    {"1 KiB of program TLS", "libtls_blob1k.so"},
	    {"16 KiB of program TLS", "libtls_blob16k.so"},
	};
	const char *quick = getenv("QUICK"), *how;
	char self[4096], path[4096 + 64];
	double bare = 0, fs;
	ssize_t len;

	iters = quick && *quick ? 20000 : 200000;
	if (argc >= 2 && strcmp(argv[1], "--case") == 0)
		return run_case(argc >= 3 ? argv[2] : NULL);
	if (argc != 3) {
		fprintf(stderr, "usage: bench_tls SHIM MODULE_DIR\n");
		return 2;
	}
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len < 0) {
		perror("bench_tls: /proc/self/exe");
		return 1;
	}
	self[len] = '\0';
	printf("green thread switches (sched_yield between two threads, greened), best of %d\n",
	       ROUNDS);
	printf("%-32s %10s %8s\n", "program", "ns/switch", "x bare");
	for (unsigned int i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double ns;

		if (cases[i].file)
			snprintf(path, sizeof(path), "%s/%s", argv[2], cases[i].file);
		ns = child_case(self, argv[1], cases[i].file ? path : NULL);
		if (ns < 0) {
			fprintf(stderr, "bench_tls: the case '%s' failed\n", cases[i].label);
			return 1;
		}
		if (!cases[i].file)
			bare = ns;
		printf("%-32s %10.1f %8.2f\n", cases[i].label, ns, bare > 0 ? ns / bare : 0);
	}
	fs = fsbase_write_ns(&how);
	printf("the FS-base design's floor: one %s per switch, %.1f ns (%.2f x bare)\n", how, fs,
	       bare > 0 ? fs / bare : 0);
	return 0;
}
