/*
 * conf_futex_outside - a futex wait ends on wakes that never pass through
 * the shim: another process waking a shared futex in shared memory, and
 * the kernel clearing the tid of a thread made with a bare clone() (no
 * TLS, no libc, nothing the shim manages) when it exits, as pthread_join
 * waits for it; and wakes both ways between a green thread and a real OS
 * thread that libc's own pthread_create made, which the shim gives a hub
 * of its own.  A ticking thread shows that the waits park only their
 * own thread.
 */
#include "conf_futex.h"

#include <dlfcn.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>

/* The cloned thread shares the caller's TLS pointer: it may only run code
 * that touches neither TLS nor the shim.  It spins (clock_gettime is the
 * vDSO) so that the waiter is surely parked when it exits. */
__attribute__((no_sanitize("address", "undefined")))
static int bare_thread(void *arg)
{
	struct timespec t0, t;
	double ms;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		clock_gettime(CLOCK_MONOTONIC, &t);
		ms = (double)(t.tv_sec - t0.tv_sec) * 1e3 + (double)(t.tv_nsec - t0.tv_nsec) / 1e6;
	} while (ms < 100);
	return 0;
}

static volatile int ticks, stop_ticking;

static void *ticker(void *arg)
{
	(void)arg;
	while (!stop_ticking) {
		sleep_ms(10);
		ticks++;
	}
	return NULL;
}

static void ticked(const char *what)
{
	printf("the ticking thread ran during %s: %s\n", what, ticks >= 3 ? "yes" : "no");
	printf("# %d ticks\n", ticks);
}

static void from_another_process(void)
{
	uint32_t *word = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct timespec ts = {5, 0};
	double t0;
	pid_t pid;
	long rc;
	int status;

	if (word == MAP_FAILED)
		exit(1);
	*word = 0;
	pid = fork();
	if (pid < 0)
		exit(1);
	if (pid == 0) {
		sleep_ms(100);
		__atomic_store_n(word, 1, __ATOMIC_RELEASE);
		futex(word, FUTEX_WAKE, 1, NULL, NULL, 0);
		_exit(0);
	}
	t0 = now_ms();
	ticks = 0;
	rc = futex(word, FUTEX_WAIT, 0, &ts, NULL, 0);
	ticked("the wait for another process");
	show("shared futex woken by another process", rc, errno);
	waited("another process's wake", t0, 50, 1000);
	waitpid(pid, &status, 0);
	printf("the other process exited with %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	munmap(word, 4096);
}

static void from_a_bare_thread(void)
{
	static uint32_t tid;
	size_t size = 256 * 1024;
	char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct timespec ts = {5, 0};
	uint32_t seen;
	double t0;
	long rc;
	int child;

	if (stack == MAP_FAILED)
		exit(1);
	child = clone(bare_thread, stack + size,
	              CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
	                  CLONE_SYSVSEM | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID,
	              NULL, &tid, NULL, &tid);
	if (child < 0) {
		printf("clone failed: %s\n", en(errno));
		exit(1);
	}
	t0 = now_ms();
	ticks = 0;
	/* The kernel's wake at the thread's exit is a shared one. */
	while ((seen = __atomic_load_n(&tid, __ATOMIC_ACQUIRE)) != 0) {
		rc = futex(&tid, FUTEX_WAIT, seen, &ts, NULL, 0);
		if (rc < 0 && errno != EAGAIN && errno != EINTR) {
			show("wait for the bare thread", rc, errno);
			break;
		}
	}
	ticked("the wait for the bare thread");
	printf("the bare thread's tid was cleared: %s\n", tid == 0 ? "yes" : "no");
	waited("the bare thread's exit", t0, 50, 1000);
	munmap(stack, size);
}

static uint32_t real_word;
static long real_rc[2];
static int real_err[2];

/* On the real thread: wake the green waiter, then wait for its wake.  The
 * main thread prints the results, in order. */
static void *real_thread(void *arg)
{
	struct timespec ts = {5, 0};

	(void)arg;
	sleep_ms(100);
	__atomic_store_n(&real_word, 1, __ATOMIC_RELEASE);
	real_rc[0] = futex(&real_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	real_err[0] = errno;
	real_rc[1] = futex(&real_word, FUTEX_WAIT_PRIVATE, 1, &ts, NULL, 0);
	real_err[1] = errno;
	return NULL;
}

static void with_a_real_thread(void)
{
	typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
	typedef int (*join_fn)(pthread_t, void **);
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	create_fn create = libc ? (create_fn)dlsym(libc, "pthread_create") : NULL;
	join_fn join = libc ? (join_fn)dlsym(libc, "pthread_join") : NULL;
	struct timespec ts = {5, 0};
	pthread_t th;
	long rc;

	if (!create || !join || create(&th, NULL, real_thread, NULL) != 0) {
		printf("no real thread: %s\n", dlerror());
		exit(1);
	}
	ticks = 0;
	rc = futex(&real_word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
	show("green wait woken by the real thread", rc, errno);
	ticked("the wait for the real thread");
	sleep_ms(50);
	__atomic_store_n(&real_word, 2, __ATOMIC_RELEASE);
	show("green wake of the real thread",
	     futex(&real_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0), errno);
	join(th, NULL);
	show("the real thread's wake", real_rc[0], real_err[0]);
	show("the real thread's wait", real_rc[1], real_err[1]);
	if (libc)
		dlclose(libc);
}

int main(void)
{
	pthread_t tick;

	setvbuf(stdout, NULL, _IOLBF, 0);
	die_rc("pthread_create", pthread_create(&tick, NULL, ticker, NULL));
	from_another_process();
	from_a_bare_thread();
	with_a_real_thread();
	stop_ticking = 1;
	pthread_join(tick, NULL);
	return 0;
}
