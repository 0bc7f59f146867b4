/*
 * test_tree.c - which processes belong to an instance (greend/tree.c): the
 * live leader's descendants, and greend's orphans by group, session or
 * environment, with theirs; never another instance's, never strangers.
 * The marking runs on made-up snapshots with pids no kernel hands out, so
 * nothing real is looked at; the scan and the environment check run on
 * this process.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <unistd.h>

#include "../greend/tree.h"

/* Above any pid_max, so no /proc entry exists for them. */
#define P(n) ((pid_t)(5000000 + (n)))

static bool other_leader(pid_t pid, void *arg)
{
	return pid == P(400);
}

static const struct gd_proc snap[] = {
	{ P(100), 1, P(100), P(100) },          /* greend */
	{ P(200), P(100), P(200), P(200) },     /* the leader */
	{ P(201), P(200), P(200), P(200) },     /* its child */
	{ P(202), P(201), P(202), P(202) },     /* a setsid grandchild */
	{ P(300), P(100), P(200), P(200) },     /* orphan in the leader's group */
	{ P(301), P(100), P(301), P(301) },     /* orphan with no mark */
	{ P(302), P(300), P(302), P(302) },     /* the orphan's setsid child */
	{ P(303), P(100), P(303), P(200) },     /* orphan in the leader's session */
	{ P(400), P(100), P(400), P(400) },     /* another instance's leader */
	{ P(401), P(400), P(400), P(400) },     /* and its child */
	{ P(402), P(100), P(402), P(400) },     /* and its orphan */
	{ P(500), 1, P(500), P(500) },          /* a stranger */
};
#define N (sizeof(snap) / sizeof(snap[0]))

static void expect(const bool *mark, const pid_t *want, size_t nwant)
{
	for (size_t i = 0; i < N; i++) {
		bool wanted = false;

		for (size_t j = 0; j < nwant; j++)
			wanted |= snap[i].pid == want[j];
		if (mark[i] != wanted)
			fail_msg("pid %d: marked %d, wanted %d", (int)(snap[i].pid - P(0)),
				 mark[i], wanted);
	}
}

static void test_live_leader(void **state)
{
	static const pid_t want[] = { P(201), P(202), P(300), P(302), P(303) };
	bool mark[N];

	assert_int_equal(gd_tree_mark(snap, N, P(100), P(200), true, "w:0", other_leader,
				      NULL, mark), 5);
	expect(mark, want, 5);
}

static void test_dead_leader(void **state)
{
	/* Its pid may be reused by now: its former children are found only as
	 * greend's orphans (which they are, once it is gone). */
	static const pid_t want[] = { P(300), P(302), P(303) };
	bool mark[N];

	assert_int_equal(gd_tree_mark(snap, N, P(100), P(200), false, "w:0", other_leader,
				      NULL, mark), 3);
	expect(mark, want, 3);
}

static void test_scan_and_env(void **state)
{
	struct gd_proc *p = NULL;
	ssize_t n = gd_proc_scan(&p);
	bool found = false;

	assert_true(n > 0);
	for (ssize_t i = 0; i < n; i++) {
		if (p[i].pid == getpid()) {
			found = true;
			assert_int_equal(p[i].ppid, getppid());
			assert_int_equal(p[i].pgid, getpgrp());
			assert_int_equal(p[i].sid, getsid(0));
		}
	}
	free(p);
	assert_true(found);
	/* What this process started with, not what it set later. */
	assert_true(gd_proc_env_has(getpid(), "TEST_TREE_MARK=yes"));
	assert_false(gd_proc_env_has(getpid(), "TEST_TREE_MARK=ye"));
	assert_false(gd_proc_env_has(getpid(), "TEST_TREE_MARK"));
	assert_false(gd_proc_env_has(P(1), "TEST_TREE_MARK=yes"));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_live_leader),
		cmocka_unit_test(test_dead_leader),
		cmocka_unit_test(test_scan_and_env),
	};

	/* The environment check needs a variable this process was exec'd with. */
	if (!getenv("TEST_TREE_MARK")) {
		setenv("TEST_TREE_MARK", "yes", 1);
		execv("/proc/self/exe", argv);
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
