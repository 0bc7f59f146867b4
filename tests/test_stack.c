/*
 * test_stack.c - greenlet stacks: an overflow reported by name and size
 * before the process dies (guarded stack: SIGSEGV on the guard page; compact
 * slab stack: the slab's guard page or the canary), stacks reused from the
 * cache and from slab slots, a cache that gives back what it does not keep
 * once the hub is quiet, the requested size honoured and GREEN_STACK_SIZE
 * (the size parser itself: test_parse.c).
 * Crashes happen in forked children whose stderr comes
 * back through a pipe; the parent waits for them with a bound.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "green.h"
#include "internal.h" /* the canary's place */
#include "test_util.h"

#define CHILD_LIMIT_MS 30000

static const char *self_exe;

/* ---- running a child ------------------------------------------------------------- */

struct child {
	int status;
	char err[4096]; /* what it wrote to stderr */
};

static int64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fork, run fn(arg) in the child with stderr on a pipe, and collect its
 * stderr and exit status within CHILD_LIMIT_MS (then it is killed). */
static void run_child(void (*fn)(void *), void *arg, struct child *c)
{
	int64_t give_up = ms_now() + CHILD_LIMIT_MS;
	size_t len = 0;
	int fds[2];
	pid_t pid;

	memset(c, 0, sizeof(*c));
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], 2);
		close(fds[1]);
		fn(arg);
		_exit(0);
	}
	close(fds[1]);
	for (;;) {
		struct pollfd p = {.fd = fds[0], .events = POLLIN};
		int64_t left = give_up - ms_now();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			kill(pid, SIGKILL);
			break;
		}
		n = read(fds[0], c->err + len, sizeof(c->err) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(c->err) - 1)
			break;
	}
	close(fds[0]);
	c->err[len] = '\0';
	while (waitpid(pid, &c->status, 0) < 0 && errno == EINTR)
		;
}

static bool died_of(const struct child *c, int sig)
{
	return WIFSIGNALED(c->status) && WTERMSIG(c->status) == sig;
}

/* ---- deep recursion ---------------------------------------------------------------- */

static volatile int depth_limit = 1 << 30;

__attribute__((noinline)) static int recurse(int depth)
{
	volatile char frame[512];
	int below;

	frame[0] = (char)depth;
	frame[sizeof(frame) - 1] = (char)depth;
	below = depth < depth_limit ? recurse(depth + 1) : depth;
	/* the frame stays live across the call: no tail call, no loop */
	__asm__ volatile("" : : "r"(frame) : "memory");
	return below + frame[0] - frame[sizeof(frame) - 1];
}

static void *recurse_entry(void *arg)
{
	return (void *)(intptr_t)recurse(0);
}

struct overflow_case {
	size_t stack_size;
	const char *name;
};

static void overflow_child(void *arg)
{
	const struct overflow_case *oc = arg;
	green_attr_t attr = {.name = oc->name, .stack_size = oc->stack_size};
	green_t *g = green_spawn(recurse_entry, NULL, &attr);

	if (!g) {
		fprintf(stderr, "spawn: %s\n", strerror(errno));
		_exit(3);
	}
	green_join(g, NULL, GREEN_FOREVER);
	fprintf(stderr, "survived\n");
	_exit(4);
}

static void test_overflow_guarded_stack(void **state)
{
	struct overflow_case oc = {64 * 1024, "deep"};
	struct child c;

	run_child(overflow_child, &oc, &c);
	if (!died_of(&c, SIGSEGV))
		fail_msg("child status %#x, stderr: %s", c.status, c.err);
	assert_non_null(strstr(c.err, "overflowed its 64 KiB stack"));
	assert_non_null(strstr(c.err, "'deep'"));
	assert_none_alive();
}

static void test_overflow_compact_stack(void **state)
{
	struct overflow_case oc = {8192, "shallow"};
	struct child c;

	run_child(overflow_child, &oc, &c);
	if (!died_of(&c, SIGSEGV) && !died_of(&c, SIGABRT))
		fail_msg("child status %#x, stderr: %s", c.status, c.err);
	assert_non_null(strstr(c.err, "overflowed its 8 KiB stack"));
	assert_non_null(strstr(c.err, "'shallow'"));
	assert_none_alive();
}

/* A compact stack has no guard page of its own: a write below it is found
 * by the canary when the greenlet next switches out. */
static void *smash_canary(void *arg)
{
	volatile uint64_t *canary = (volatile uint64_t *)green_current()->stack.lo;

	*canary = 0;
	green_yield();
	return NULL;
}

static void canary_child(void *arg)
{
	/* roomy enough for the switch and the report even under ASan */
	green_attr_t attr = {.name = "smasher", .stack_size = GREEN_STACK_COMPACT_MAX};
	green_t *g = green_spawn(smash_canary, NULL, &attr);

	green_join(g, NULL, GREEN_FOREVER);
	fprintf(stderr, "survived\n");
	_exit(4);
}

static void test_canary_checked_on_switch(void **state)
{
	struct child c;

	run_child(canary_child, NULL, &c);
	if (!died_of(&c, SIGABRT))
		fail_msg("child status %#x, stderr: %s", c.status, c.err);
	assert_non_null(strstr(c.err, "'smasher' overflowed its 16 KiB stack"));
	assert_non_null(strstr(c.err, "canary"));
	assert_none_alive();
}

/* ---- reuse ---------------------------------------------------------------------------- */

/* Where a greenlet's first local variable lives: the same for two greenlets
 * exactly when they got the same stack. */
static void *local_address(void *arg)
{
	volatile int local = 0;
	uintptr_t where = (uintptr_t)&local;

	/* hide the provenance, or the compiler returns NULL for "the address
	 * of a local" */
	__asm__("" : "+r"(where));
	green_yield();
	return (void *)where;
}

static void spawn_batch(size_t stack_size, int n, void **where)
{
	green_attr_t attr = {.name = NULL, .stack_size = stack_size};
	green_t *gs[8] = {NULL};

	assert_true(n > 0 && n <= 8);
	for (int i = 0; i < n; i++) {
		gs[i] = green_spawn(local_address, NULL, &attr);
		assert_non_null(gs[i]);
	}
	assert_int_equal(green_joinall(gs, (size_t)n, 0, GREEN_FOREVER), n);
	for (int i = 0; i < n; i++) {
		where[i] = green_result(gs[i]);
		green_release(gs[i]);
	}
}

static bool same_set(void **a, void **b, int n)
{
	for (int i = 0; i < n; i++) {
		bool found = false;

		for (int j = 0; j < n && !found; j++)
			found = a[i] == b[j];
		if (!found)
			return false;
	}
	return true;
}

static void test_guarded_stacks_reused_from_cache(void **state)
{
	void *first[4], *second[4], *other[1];

	spawn_batch(128 * 1024, 4, first);
	for (int i = 1; i < 4; i++)
		assert_ptr_not_equal(first[i], first[0]); /* four live at once */
	spawn_batch(128 * 1024, 4, second);
	assert_true(same_set(first, second, 4));
	/* a stack of another size does not come out of that cache */
	spawn_batch(192 * 1024, 1, other);
	for (int i = 0; i < 4; i++)
		assert_ptr_not_equal(other[0], first[i]);
	assert_none_alive();
}

/* More stacks than the cache keeps: the rest are unmapped, and new ones
 * mapped later (often at the same addresses) must start clean. */
static void *yield_once(void *arg)
{
	green_yield();
	return arg;
}

static void test_stacks_beyond_the_cache(void **state)
{
	enum { N = 300 };
	static green_t *gs[N];

	for (int round = 0; round < 4; round++) {
		size_t size = (round % 2 ? 64 : 96) * 1024;
		green_attr_t attr = {.name = NULL, .stack_size = size};

		for (int i = 0; i < N; i++) {
			gs[i] = green_spawn(yield_once, (void *)(intptr_t)i, &attr);
			assert_non_null(gs[i]);
		}
		assert_int_equal(green_joinall(gs, N, 0, GREEN_FOREVER), N);
		for (int i = 0; i < N; i++) {
			assert_ptr_equal(green_result(gs[i]), (void *)(intptr_t)i);
			green_release(gs[i]);
		}
	}
	assert_none_alive();
}

/* Where the greenlet's stack is: its frame, real even under ASan's fake
 * stacks. */
static void *frame_then_yield(void *arg)
{
	void *frame = __builtin_frame_address(0);

	green_yield();
	return frame;
}

static bool page_mapped(void *addr)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned char vec;
	void *base = (void *)((uintptr_t)addr & ~(uintptr_t)(page - 1));

	if (mincore(base, (size_t)page, &vec) == 0)
		return true;
	assert_int_equal(errno, ENOMEM);
	return false;
}

static int still_mapped(void *const *frames, int n)
{
	int mapped = 0;

	for (int i = 0; i < n; i++)
		mapped += page_mapped(frames[i]);
	return mapped;
}

/* A burst of exits fills the cache past what it keeps; once the hub has
 * been quiet the rest goes back to the kernel. */
static void test_cache_gives_back_when_quiet(void **state)
{
	enum { N = 600, KEPT = 128 };
	static green_t *gs[N];
	static void *frames[N];
	green_attr_t attr = {.name = NULL, .stack_size = 80 * 1024};
	int mapped = N;

	for (int i = 0; i < N; i++) {
		gs[i] = green_spawn(frame_then_yield, NULL, &attr);
		assert_non_null(gs[i]);
	}
	assert_int_equal(green_joinall(gs, N, 0, GREEN_FOREVER), N);
	for (int i = 0; i < N; i++) {
		frames[i] = green_result(gs[i]);
		green_release(gs[i]);
	}
	for (int waited_ms = 0; waited_ms < 10000; waited_ms += 100) {
		mapped = still_mapped(frames, N);
		if (mapped <= KEPT)
			break;
		green_sleep(green_now() + 100 * GREEN_MSEC);
	}
	print_message("stacks still mapped after the burst: %d of %d\n", mapped, N);
	assert_true(mapped <= KEPT);
	/* What it keeps, it keeps: the next burst reuses them. */
	assert_true(mapped >= KEPT / 2);
	assert_none_alive();
}

static void test_compact_slots_reused(void **state)
{
	void *first[4], *second[4];

	spawn_batch(12 * 1024, 4, first);
	spawn_batch(12 * 1024, 4, second);
	assert_true(same_set(first, second, 4));
	assert_none_alive();
}

/* ---- size -------------------------------------------------------------------------------- */

/* Uses about `arg` bytes of stack and comes back. */
static void *use_stack(void *arg)
{
	int frames = (int)((intptr_t)arg / 600);

	depth_limit = frames;
	recurse(0);
	depth_limit = 1 << 30;
	return (void *)1;
}

static int stack_size_of(const struct green_info *info, void *arg)
{
	size_t *out = arg;

	if (!info->main && info->state == GREEN_READY)
		*out = info->stack_size;
	return 0;
}

static void test_requested_size_is_honoured(void **state)
{
	green_attr_t attr = {.name = "big", .stack_size = 1024 * 1024};
	size_t seen = 0;
	green_t *g = green_spawn(use_stack, (void *)(intptr_t)(700 * 1024), &attr);

	assert_non_null(g);
	green_walk(stack_size_of, &seen);
	assert_int_equal(seen, 1024 * 1024);
	assert_int_equal(green_join(g, NULL, GREEN_FOREVER), 0);
	assert_ptr_equal(green_result(g), (void *)1);
	green_release(g);

	/* sizes are rounded up, never down */
	attr.stack_size = 10000;
	g = green_spawn(use_stack, (void *)(intptr_t)(4 * 1024), &attr);
	seen = 0;
	green_walk(stack_size_of, &seen);
	assert_true(seen >= 10000);
	assert_int_equal(green_join(g, NULL, GREEN_FOREVER), 0);
	green_release(g);

	/* the smallest accepted size works */
	attr.stack_size = GREEN_STACK_MIN;
	g = green_spawn(local_address, NULL, &attr);
	assert_non_null(g);
	assert_int_equal(green_join(g, NULL, GREEN_FOREVER), 0);
	green_release(g);
	assert_none_alive();
}

/* The test binary re-runs itself with GREEN_STACK_SIZE set and this flag. */
#define PRINT_DEFAULT_FLAG "--print-default-stack-size"

static int print_default_stack_size(void)
{
	size_t seen = 0;
	green_t *g = green_spawn(local_address, NULL, NULL);

	green_walk(stack_size_of, &seen);
	green_join(g, NULL, GREEN_FOREVER);
	green_release(g);
	printf("%zu\n", seen);
	return 0;
}

static size_t default_size_with_env(const char *value)
{
	char cmd[512], out[64] = "";
	FILE *p;

	snprintf(cmd, sizeof(cmd), "GREEN_STACK_SIZE='%s' '%s' " PRINT_DEFAULT_FLAG,
	         value, self_exe);
	p = popen(cmd, "r");
	assert_non_null(p);
	if (!fgets(out, sizeof(out), p))
		out[0] = '\0';
	assert_int_equal(pclose(p), 0);
	return (size_t)strtoull(out, NULL, 10);
}

static void test_green_stack_size_env(void **state)
{
	assert_int_equal(default_size_with_env("96K"), 96 * 1024);
	assert_int_equal(default_size_with_env("1MiB"), 1024 * 1024);
	assert_int_equal(default_size_with_env("8192"), 8192);
	/* junk or too small keeps the 256 KiB default */
	assert_int_equal(default_size_with_env("lots"), 256 * 1024);
	assert_int_equal(default_size_with_env("100"), 256 * 1024);
	assert_none_alive();
}

int main(int argc, char **argv)
{
	/* The overflow tests come first: the compact one should get the first
	 * slot of a fresh slab, right above its guard page. */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overflow_guarded_stack),
		cmocka_unit_test(test_overflow_compact_stack),
		cmocka_unit_test(test_canary_checked_on_switch),
		/* Here: the ones above fork before this process has a hub (its
		 * overflow handler goes in once, and cmocka puts its own back
		 * after each test); the ones below leave stacks in the cache. */
		cmocka_unit_test(test_cache_gives_back_when_quiet),
		cmocka_unit_test(test_guarded_stacks_reused_from_cache),
		cmocka_unit_test(test_stacks_beyond_the_cache),
		cmocka_unit_test(test_compact_slots_reused),
		cmocka_unit_test(test_requested_size_is_honoured),
		cmocka_unit_test(test_green_stack_size_env),
	};

	static char exe[4096];
	ssize_t n;

	if (argc > 1 && strcmp(argv[1], PRINT_DEFAULT_FLAG) == 0)
		return print_default_stack_size();
	/* a path the shell of popen() can run */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	self_exe = n > 0 ? exe : argv[0];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
