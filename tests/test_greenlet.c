/*
 * test_greenlet.c - a greenlet's life: spawn arguments, state, names,
 * handles, join (dead, twice, timeout, self), joinall (count, timeout),
 * kill (before start, while sleeping, waiting, ready, itself, dead) and link
 * callbacks.  Greenlets record what they saw; the main greenlet asserts.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "green.h"
#include "test_util.h"

static void *sleep_ms(void *arg)
{
	int64_t ms = (int64_t)(intptr_t)arg;

	return green_sleep(green_now() + ms * GREEN_MSEC) < 0 ? (void *)(intptr_t)errno
	                                                       : NULL;
}

/* ---- spawn ------------------------------------------------------------------------ */

static void test_spawn_rejects_bad_arguments(void **state)
{
	green_attr_t tiny = {.stack_size = GREEN_STACK_MIN - 1};
	struct green_stats before, after;

	green_stats(&before);
	errno = 0;
	assert_null(green_spawn(NULL, NULL, NULL));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(green_spawn(return_arg, NULL, &tiny));
	assert_int_equal(errno, EINVAL);
	green_stats(&after);
	assert_int_equal(after.spawned, before.spawned);
	assert_none_alive();
}

static green_t *seen_current;
static enum green_state seen_state;

static void *look_at_self(void *arg)
{
	seen_current = green_current();
	seen_state = green_state(seen_current);
	return arg;
}

static void test_state_result_and_current(void **state)
{
	int value;
	void *result = NULL;
	green_t *g = green_spawn(look_at_self, &value, NULL);

	assert_non_null(g);
	assert_int_equal(green_state(g), GREEN_READY);
	assert_false(green_is_main(g));
	assert_null(green_result(g)); /* not dead yet */
	assert_int_equal(green_join(g, &result, GREEN_FOREVER), 0);
	assert_ptr_equal(result, &value);
	assert_ptr_equal(green_result(g), &value);
	assert_ptr_equal(seen_current, g);
	assert_int_equal(seen_state, GREEN_RUNNING);
	assert_int_equal(green_state(g), GREEN_DEAD);
	green_release(g);
	assert_none_alive();
}

static void test_names_and_ids(void **state)
{
	green_attr_t named = {.name = "worker", .stack_size = 0};
	green_attr_t longname = {
	    .name = "a-name-that-is-much-longer-than-thirty-one-bytes"};
	green_t *a = green_spawn(return_arg, NULL, NULL);
	green_t *b = green_spawn(return_arg, NULL, &named);
	green_t *c = green_spawn(return_arg, NULL, &longname);
	char want[64];

	assert_true(green_id(b) > green_id(a));
	assert_true(green_id(c) > green_id(b));
	snprintf(want, sizeof(want), "greenlet-%llu", (unsigned long long)green_id(a));
	assert_string_equal(green_name(a), want);
	assert_string_equal(green_name(b), "worker");
	assert_int_equal(strlen(green_name(c)), 31);
	assert_memory_equal(green_name(c), longname.name, 31);
	assert_string_equal(green_state_name(GREEN_READY), "ready");
	assert_string_equal(green_state_name(GREEN_RUNNING), "running");
	assert_string_equal(green_state_name(GREEN_WAITING), "waiting");
	assert_string_equal(green_state_name(GREEN_SLEEPING), "sleeping");
	assert_string_equal(green_state_name(GREEN_DEAD), "dead");
	join_release(a);
	join_release(b);
	join_release(c);
	assert_none_alive();
}

static void test_ref_keeps_handle_valid(void **state)
{
	green_t *g = green_spawn(return_arg, (void *)0x5a, NULL);
	green_t *extra = green_ref(g);

	assert_ptr_equal(extra, g);
	green_release(g); /* the spawn handle; extra still holds it */
	assert_int_equal(green_join(extra, NULL, GREEN_FOREVER), 0);
	assert_ptr_equal(green_result(extra), (void *)0x5a);
	green_release(extra);
	assert_none_alive();
}

/* ---- join ---------------------------------------------------------------------------- */

static void test_join_dead_twice(void **state)
{
	green_t *g = green_spawn(return_arg, (void *)0x77, NULL);
	void *r1 = NULL, *r2 = NULL;

	assert_int_equal(green_join(g, &r1, GREEN_FOREVER), 0);
	assert_int_equal(green_join(g, &r2, GREEN_FOREVER), 0);
	/* and without waiting at all once it is dead */
	assert_int_equal(green_join(g, NULL, GREEN_NOW), 0);
	assert_ptr_equal(r1, (void *)0x77);
	assert_ptr_equal(r2, (void *)0x77);
	green_release(g);
	assert_none_alive();
}

static void test_join_timeout(void **state)
{
	green_t *g = green_spawn(sleep_forever, NULL, NULL);
	int64_t deadline;

	errno = 0;
	assert_int_equal(green_join(g, NULL, GREEN_NOW), -1);
	assert_int_equal(errno, ETIMEDOUT);

	deadline = green_now() + 20 * GREEN_MSEC;
	assert_int_equal(green_join(g, NULL, deadline), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_true(green_now() >= deadline);
	assert_int_equal(green_state(g), GREEN_SLEEPING);

	/* A past deadline fails at once, too. */
	assert_int_equal(green_join(g, NULL, deadline), -1);
	assert_int_equal(errno, ETIMEDOUT);

	assert_int_equal(green_kill(g), 0);
	join_release(g);
	assert_int_equal((intptr_t)green_result(g), ECANCELED);
	assert_none_alive();
}

static int self_join_err;

static void *join_self(void *arg)
{
	self_join_err = green_join(green_current(), NULL, GREEN_FOREVER) < 0 ? errno : 0;
	return NULL;
}

static void test_join_self_is_edeadlk(void **state)
{
	green_t *g;

	/* main joining itself */
	errno = 0;
	assert_int_equal(green_join(green_current(), NULL, GREEN_FOREVER), -1);
	assert_int_equal(errno, EDEADLK);

	/* a greenlet joining itself */
	self_join_err = 0;
	g = green_spawn(join_self, NULL, NULL);
	join_release(g);
	assert_int_equal(self_join_err, EDEADLK);

	/* joinall with the caller among the greenlets */
	{
		green_t *gs[1] = {green_current()};

		errno = 0;
		assert_int_equal(green_joinall(gs, 1, 0, GREEN_FOREVER), -1);
		assert_int_equal(errno, EDEADLK);
	}
	errno = 0;
	assert_int_equal(green_join(NULL, NULL, GREEN_FOREVER), -1);
	assert_int_equal(errno, EINVAL);
	assert_none_alive();
}

/* ---- joinall --------------------------------------------------------------------------- */

static int count_dead(green_t *const *gs, size_t n)
{
	int dead = 0;

	for (size_t i = 0; i < n; i++)
		dead += green_state(gs[i]) == GREEN_DEAD;
	return dead;
}

static void test_joinall_count(void **state)
{
	green_t *gs[5];
	int n;

	/* Two finish at once, three sleep until killed. */
	gs[0] = green_spawn(sleep_forever, NULL, NULL);
	gs[1] = green_spawn(return_arg, NULL, NULL);
	gs[2] = green_spawn(sleep_forever, NULL, NULL);
	gs[3] = green_spawn(sleep_ms, (void *)(intptr_t)1, NULL);
	gs[4] = green_spawn(sleep_forever, NULL, NULL);

	n = green_joinall(gs, 5, 2, GREEN_FOREVER);
	assert_int_equal(n, 2);
	assert_int_equal(count_dead(gs, 5), 2);
	assert_int_equal(green_state(gs[1]), GREEN_DEAD);
	assert_int_equal(green_state(gs[3]), GREEN_DEAD);

	/* Already satisfied: returns without waiting, with the dead count. */
	assert_int_equal(green_joinall(gs, 5, 1, GREEN_NOW), 2);

	/* count 0 means all; it cannot be met before the deadline. */
	errno = 0;
	assert_int_equal(green_joinall(gs, 5, 0, GREEN_NOW), -1);
	assert_int_equal(errno, ETIMEDOUT);

	green_kill(gs[0]);
	green_kill(gs[2]);
	green_kill(gs[4]);
	/* count larger than n also means all */
	assert_int_equal(green_joinall(gs, 5, 99, GREEN_FOREVER), 5);
	for (int i = 0; i < 5; i++)
		green_release(gs[i]);
	/* nothing to wait for */
	assert_int_equal(green_joinall(NULL, 0, 0, GREEN_FOREVER), 0);
	assert_none_alive();
}

static void test_joinall_timeout(void **state)
{
	enum { N = 40 }; /* more than joinall's on-stack waiters */
	green_t *gs[N];
	int64_t deadline;

	for (int i = 0; i < N; i++)
		gs[i] = green_spawn(i == 7 ? return_arg : sleep_forever, NULL, NULL);
	deadline = green_now() + 20 * GREEN_MSEC;
	errno = 0;
	assert_int_equal(green_joinall(gs, N, 2, deadline), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_true(green_now() >= deadline);
	assert_int_equal(count_dead(gs, N), 1);
	/* one is dead: count 1 is met at once */
	assert_int_equal(green_joinall(gs, N, 1, GREEN_FOREVER), 1);

	for (int i = 0; i < N; i++)
		green_kill(gs[i]);
	assert_int_equal(green_joinall(gs, N, 0, GREEN_FOREVER), N);
	for (int i = 0; i < N; i++) {
		if (i != 7)
			assert_int_equal((intptr_t)green_result(gs[i]), ECANCELED);
		green_release(gs[i]);
	}
	assert_none_alive();
}

/* ---- kill -------------------------------------------------------------------------------- */

static int ran_count;

static void *mark_ran(void *arg)
{
	ran_count++;
	return (void *)1;
}

struct link_log {
	char text[32];
	size_t len;
	green_t *current[8]; /* green_current() inside each callback */
	green_t *g[8];
};

static struct link_log links;

static void link_note(green_t *g, void *arg)
{
	if (links.len < 8) {
		links.current[links.len] = green_current();
		links.g[links.len] = g;
	}
	if (links.len < sizeof(links.text) - 1)
		links.text[links.len++] = *(char *)arg;
}

static void test_kill_before_start(void **state)
{
	static char one[] = "1", two[] = "2";
	struct green_stats before, after;
	green_t *g;
	void *result = (void *)0xdead;

	memset(&links, 0, sizeof(links));
	ran_count = 0;
	green_stats(&before);
	g = green_spawn(mark_ran, NULL, NULL);
	assert_int_equal(green_link(g, link_note, one), 0);
	assert_int_equal(green_link(g, link_note, two), 0);
	assert_int_equal(green_kill(g), 0);
	/* Dead at once, its links called, without ever running. */
	assert_int_equal(green_state(g), GREEN_DEAD);
	assert_string_equal(links.text, "12");
	assert_ptr_equal(links.g[0], g);
	green_stats(&after);
	assert_int_equal(after.alive, before.alive);
	assert_int_equal(after.finished, before.finished + 1);

	assert_int_equal(green_join(g, &result, GREEN_FOREVER), 0);
	assert_null(result);
	assert_int_equal(green_yield(), 0); /* the scheduler drops it */
	assert_int_equal(ran_count, 0);
	errno = 0;
	assert_int_equal(green_kill(g), -1);
	assert_int_equal(errno, ESRCH);
	green_release(g);
	assert_none_alive();
}

/* Sleeps forever, then (after the kill) once more for a short while. */
struct kill_run {
	int first_err;   /* from the wait that was killed */
	int second_rc;   /* the next wait */
	int second_err;
};

static void *sleep_then_sleep_again(void *arg)
{
	struct kill_run *r = arg;

	r->first_err = green_sleep(GREEN_FOREVER) < 0 ? errno : 0;
	r->second_rc = green_sleep(green_now() + 2 * GREEN_MSEC);
	r->second_err = r->second_rc < 0 ? errno : 0;
	return NULL;
}

static void test_kill_while_sleeping(void **state)
{
	struct kill_run r = {-1, -1, -1};
	green_t *g = green_spawn(sleep_then_sleep_again, &r, NULL);

	assert_int_equal(green_yield(), 0);
	assert_int_equal(green_state(g), GREEN_SLEEPING);
	assert_int_equal(green_kill(g), 0);
	/* kill only asks: it is woken, not dead yet */
	assert_int_equal(green_state(g), GREEN_READY);
	join_release(g);
	assert_int_equal(r.first_err, ECANCELED);
	assert_int_equal(r.second_rc, 0); /* ECANCELED is delivered once */
	assert_int_equal(r.second_err, 0);
	assert_none_alive();
}

struct join_kill_run {
	green_t *target;
	int first_err;
	int second_rc;
};

static void *join_then_join_again(void *arg)
{
	struct join_kill_run *r = arg;

	r->first_err = green_join(r->target, NULL, GREEN_FOREVER) < 0 ? errno : 0;
	r->second_rc = green_join(r->target, NULL, GREEN_FOREVER);
	return NULL;
}

static void test_kill_while_waiting(void **state)
{
	struct join_kill_run r = {NULL, -1, -1};
	green_t *g;

	r.target = green_spawn(sleep_ms, (void *)(intptr_t)5, NULL);
	g = green_spawn(join_then_join_again, &r, NULL);
	assert_int_equal(green_yield(), 0);
	assert_int_equal(green_state(g), GREEN_WAITING);
	assert_int_equal(green_kill(g), 0);
	join_release(g);
	assert_int_equal(r.first_err, ECANCELED);
	assert_int_equal(r.second_rc, 0); /* waited for the target properly */
	assert_int_equal(green_state(r.target), GREEN_DEAD);
	join_release(r.target);
	assert_none_alive();
}

/* Killed inside green_joinall: its waiters (on its own stack for a few
 * greenlets, allocated for many) must be off every target before it dies,
 * or the targets' later deaths would write into freed memory. */
struct joinall_run {
	green_t **targets;
	size_t n;
	int err;
};

static void *joinall_targets(void *arg)
{
	struct joinall_run *r = arg;

	r->err = green_joinall(r->targets, r->n, 0, GREEN_FOREVER) < 0 ? errno : 0;
	return NULL;
}

static void test_kill_while_in_joinall(void **state)
{
	enum { MANY = 20 };
	green_t *targets[MANY];
	size_t sizes[2] = {2, MANY};

	for (int k = 0; k < 2; k++) {
		size_t n = sizes[k];
		struct joinall_run r = {targets, n, -1};
		green_t *g;

		for (size_t i = 0; i < n; i++)
			targets[i] = green_spawn(sleep_ms, (void *)(intptr_t)2, NULL);
		g = green_spawn(joinall_targets, &r, NULL);
		assert_int_equal(green_yield(), 0);
		assert_int_equal(green_state(g), GREEN_WAITING);
		assert_int_equal(green_kill(g), 0);
		join_release(g); /* its stack is gone now */
		assert_int_equal(r.err, ECANCELED);
		assert_int_equal(green_joinall(targets, n, 0, GREEN_FOREVER), (int)n);
		for (size_t i = 0; i < n; i++)
			green_release(targets[i]);
	}
	assert_none_alive();
}

static void *yield_twice(void *arg)
{
	int *errs = arg;

	errs[0] = green_yield() < 0 ? errno : 0;
	errs[1] = green_yield() < 0 ? errno : 0;
	return NULL;
}

static void test_kill_while_ready(void **state)
{
	int errs[2] = {-1, -1};
	green_t *g = green_spawn(yield_twice, errs, NULL);

	assert_int_equal(green_yield(), 0); /* g started and yielded */
	assert_int_equal(green_state(g), GREEN_READY);
	assert_int_equal(green_kill(g), 0);
	join_release(g);
	assert_int_equal(errs[0], ECANCELED);
	assert_int_equal(errs[1], 0);
	assert_none_alive();
}

static void *kill_self(void *arg)
{
	int *errs = arg;

	errs[0] = green_kill(green_current());
	errs[1] = green_sleep(green_now() + GREEN_MSEC) < 0 ? errno : 0;
	errs[2] = green_sleep(green_now() + GREEN_MSEC) < 0 ? errno : 0;
	return NULL;
}

static void test_kill_self(void **state)
{
	int errs[3] = {-1, -1, -1};
	green_t *g = green_spawn(kill_self, errs, NULL);

	join_release(g);
	assert_int_equal(errs[0], 0);
	assert_int_equal(errs[1], ECANCELED); /* its next wait fails */
	assert_int_equal(errs[2], 0);         /* and only that one */
	assert_none_alive();
}

static void test_kill_main_cancels_its_next_wait(void **state)
{
	assert_int_equal(green_kill(green_current()), 0);
	errno = 0;
	assert_int_equal(green_sleep(green_now() + GREEN_MSEC), -1);
	assert_int_equal(errno, ECANCELED);
	assert_int_equal(green_sleep(green_now() + GREEN_MSEC), 0);
	assert_none_alive();
}

/* ---- links --------------------------------------------------------------------------------- */

static bool joiner_saw_links;

static void *join_and_check_links(void *arg)
{
	green_join(arg, NULL, GREEN_FOREVER);
	/* links run before joiners wake */
	joiner_saw_links = strcmp(links.text, "abc") == 0;
	return NULL;
}

static void test_link_order_and_context(void **state)
{
	static char a[] = "a", b[] = "b", c[] = "c";
	green_t *g, *joiner;

	memset(&links, 0, sizeof(links));
	joiner_saw_links = false;
	g = green_spawn(sleep_ms, (void *)(intptr_t)1, NULL);
	joiner = green_spawn(join_and_check_links, g, NULL);
	assert_int_equal(green_link(g, link_note, a), 0);
	assert_int_equal(green_link(g, link_note, b), 0);
	assert_int_equal(green_link(g, link_note, c), 0);
	join_release(joiner);
	assert_string_equal(links.text, "abc");
	for (int i = 0; i < 3; i++) {
		assert_ptr_equal(links.g[i], g);
		assert_ptr_equal(links.current[i], g); /* in the dying greenlet */
	}
	assert_true(joiner_saw_links);

	/* Linking to a dead greenlet calls back at once, in the caller. */
	assert_int_equal(green_link(g, link_note, a), 0);
	assert_string_equal(links.text, "abca");
	assert_ptr_equal(links.current[3], green_current());

	errno = 0;
	assert_int_equal(green_link(g, NULL, NULL), -1);
	assert_int_equal(errno, EINVAL);
	join_release(g);
	assert_none_alive();
}

static void spawn_from_link(green_t *g, void *arg)
{
	/* A callback may start new work; the greenlet runs later. */
	green_t **out = arg;

	*out = green_spawn(return_arg, (void *)0x11, NULL);
}

static void test_link_may_spawn(void **state)
{
	green_t *child = NULL;
	green_t *g = green_spawn(return_arg, NULL, NULL);

	assert_int_equal(green_link(g, spawn_from_link, &child), 0);
	join_release(g);
	assert_non_null(child);
	assert_int_equal(green_join(child, NULL, GREEN_FOREVER), 0);
	assert_ptr_equal(green_result(child), (void *)0x11);
	green_release(child);
	assert_none_alive();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spawn_rejects_bad_arguments),
		cmocka_unit_test(test_state_result_and_current),
		cmocka_unit_test(test_names_and_ids),
		cmocka_unit_test(test_ref_keeps_handle_valid),
		cmocka_unit_test(test_join_dead_twice),
		cmocka_unit_test(test_join_timeout),
		cmocka_unit_test(test_join_self_is_edeadlk),
		cmocka_unit_test(test_joinall_count),
		cmocka_unit_test(test_joinall_timeout),
		cmocka_unit_test(test_kill_before_start),
		cmocka_unit_test(test_kill_while_sleeping),
		cmocka_unit_test(test_kill_while_waiting),
		cmocka_unit_test(test_kill_while_in_joinall),
		cmocka_unit_test(test_kill_while_ready),
		cmocka_unit_test(test_kill_self),
		cmocka_unit_test(test_kill_main_cancels_its_next_wait),
		cmocka_unit_test(test_link_order_and_context),
		cmocka_unit_test(test_link_may_spawn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
