/*
 * test_pool.c - groups and pools: membership that ends with death, a pool's
 * size bounding how many members run at once, spawn waiting (with deadline)
 * while the pool is full, group_join and group_kill of started and
 * unstarted members.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "green.h"
#include "test_util.h"

/* Sleeps forever; counts how it was woken. */
struct sleepers {
	int started;
	int canceled;
	int other;
};

static void *sleep_counted(void *arg)
{
	struct sleepers *s = arg;

	s->started++;
	if (green_sleep(GREEN_FOREVER) < 0 && errno == ECANCELED)
		s->canceled++;
	else
		s->other++;
	return NULL;
}

/* ---- groups ------------------------------------------------------------------- */

static void test_group_membership(void **state)
{
	green_group_t group = GREEN_GROUP_INIT;
	green_group_t other;
	green_t *g, *kept;

	green_group_init(&other);
	assert_int_equal(green_group_count(&group), 0);
	assert_int_equal(green_pool_free_count(&group), SIZE_MAX);
	assert_int_equal(green_group_count(&other), 0);

	g = green_group_spawn(&group, return_arg, (void *)1, NULL, GREEN_FOREVER);
	assert_non_null(g);
	kept = green_ref(g); /* the group's handle is borrowed */
	assert_non_null(green_group_spawn(&group, return_arg, NULL, NULL, GREEN_NOW));
	assert_int_equal(green_group_count(&group), 2);
	assert_int_equal(green_group_join(&group, GREEN_FOREVER), 0);
	assert_int_equal(green_group_count(&group), 0);
	assert_int_equal(green_state(kept), GREEN_DEAD);
	assert_ptr_equal(green_result(kept), (void *)1);
	green_release(kept);

	/* An empty group joins at once, whatever the deadline. */
	assert_int_equal(green_group_join(&group, GREEN_NOW), 0);

	errno = 0;
	assert_null(green_group_spawn(&group, NULL, NULL, NULL, GREEN_FOREVER));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(green_group_count(&group), 0);
	assert_none_alive();
}

static void test_group_join_timeout(void **state)
{
	green_group_t group = GREEN_GROUP_INIT;
	struct sleepers s = {0, 0, 0};
	int64_t deadline;

	for (int i = 0; i < 3; i++)
		green_group_spawn(&group, sleep_counted, &s, NULL, GREEN_FOREVER);
	errno = 0;
	assert_int_equal(green_group_join(&group, GREEN_NOW), -1);
	assert_int_equal(errno, ETIMEDOUT);
	deadline = green_now() + 10 * GREEN_MSEC;
	assert_int_equal(green_group_join(&group, deadline), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_true(green_now() >= deadline);
	assert_int_equal(green_group_count(&group), 3);
	assert_int_equal(s.started, 3);

	assert_int_equal(green_group_kill(&group, GREEN_FOREVER), 0);
	assert_int_equal(green_group_count(&group), 0);
	assert_int_equal(s.canceled, 3);
	assert_int_equal(s.other, 0);
	assert_none_alive();
}

static void test_group_kill_started_and_unstarted(void **state)
{
	green_group_t group = GREEN_GROUP_INIT;
	struct sleepers s = {0, 0, 0};

	for (int i = 0; i < 4; i++)
		green_group_spawn(&group, sleep_counted, &s, NULL, GREEN_FOREVER);
	assert_int_equal(green_yield(), 0); /* these four park */
	for (int i = 0; i < 3; i++)
		green_group_spawn(&group, sleep_counted, &s, NULL, GREEN_FOREVER);
	assert_int_equal(green_group_count(&group), 7);

	/* GREEN_NOW: ask and do not wait.  The unstarted leave at once. */
	assert_int_equal(green_group_kill(&group, GREEN_NOW), 0);
	assert_int_equal(green_group_count(&group), 4);
	assert_int_equal(green_group_join(&group, GREEN_FOREVER), 0);
	assert_int_equal(green_group_count(&group), 0);
	assert_int_equal(s.started, 4);
	assert_int_equal(s.canceled, 4);
	assert_int_equal(s.other, 0);
	/* a kill of an empty group is fine */
	assert_int_equal(green_group_kill(&group, GREEN_FOREVER), 0);
	assert_int_equal(green_yield(), 0);
	assert_none_alive();
}

static int member_join_err;

static void *join_own_group(void *arg)
{
	member_join_err = green_group_join(arg, GREEN_FOREVER) < 0 ? errno : 0;
	return NULL;
}

static void test_member_joining_its_group(void **state)
{
	green_group_t group = GREEN_GROUP_INIT;

	member_join_err = -1;
	green_group_spawn(&group, join_own_group, &group, NULL, GREEN_FOREVER);
	assert_int_equal(green_group_join(&group, GREEN_FOREVER), 0);
	assert_int_equal(member_join_err, EDEADLK);
	assert_none_alive();
}

/* ---- pools ------------------------------------------------------------------------ */

struct concurrency {
	int running;
	int max_running;
	int done;
};

static void *busy_member(void *arg)
{
	struct concurrency *c = arg;

	if (++c->running > c->max_running)
		c->max_running = c->running;
	green_sleep(green_now() + GREEN_MSEC);
	green_yield();
	c->running--;
	c->done++;
	return NULL;
}

static void test_pool_limits_concurrency(void **state)
{
	green_pool_t pool = GREEN_POOL_INIT(3);
	struct concurrency c = {0, 0, 0};

	assert_int_equal(green_pool_free_count(&pool), 3);
	for (int i = 0; i < 20; i++) {
		assert_non_null(green_group_spawn(&pool, busy_member, &c, NULL,
		                                  GREEN_FOREVER));
		assert_true(green_group_count(&pool) <= 3);
	}
	assert_int_equal(green_group_join(&pool, GREEN_FOREVER), 0);
	assert_int_equal(c.done, 20);
	assert_int_equal(c.max_running, 3);
	assert_int_equal(c.running, 0);
	assert_int_equal(green_pool_free_count(&pool), 3);
	assert_none_alive();
}

static void test_pool_spawn_waits_with_deadline(void **state)
{
	green_pool_t pool;
	struct sleepers s = {0, 0, 0};
	int64_t deadline;

	green_pool_init(&pool, 2);
	assert_non_null(green_group_spawn(&pool, sleep_counted, &s, NULL, GREEN_NOW));
	assert_non_null(green_group_spawn(&pool, sleep_counted, &s, NULL, GREEN_NOW));
	assert_int_equal(green_pool_free_count(&pool), 0);

	errno = 0;
	assert_null(green_group_spawn(&pool, sleep_counted, &s, NULL, GREEN_NOW));
	assert_int_equal(errno, ETIMEDOUT);
	deadline = green_now() + 10 * GREEN_MSEC;
	errno = 0;
	assert_null(green_group_spawn(&pool, sleep_counted, &s, NULL, deadline));
	assert_int_equal(errno, ETIMEDOUT);
	assert_true(green_now() >= deadline);
	assert_int_equal(green_group_count(&pool), 2);
	assert_int_equal(s.started, 2);

	assert_int_equal(green_group_kill(&pool, GREEN_FOREVER), 0);
	assert_int_equal(s.canceled, 2);
	assert_int_equal(green_pool_free_count(&pool), 2);
	assert_none_alive();
}

/* A spawner parked on a full pool gets the slot a dying member frees. */
struct spawner_run {
	green_pool_t *pool;
	int rc;
	int err;
	green_t *spawned;
};

static void *spawn_into_pool(void *arg)
{
	struct spawner_run *r = arg;

	r->spawned = green_group_spawn(r->pool, return_arg, (void *)2, NULL,
	                               GREEN_FOREVER);
	r->err = r->spawned ? 0 : errno;
	if (r->spawned)
		green_ref(r->spawned);
	return NULL;
}

static void test_pool_spawn_wakes_when_slot_frees(void **state)
{
	green_pool_t pool = GREEN_POOL_INIT(1);
	struct sleepers s = {0, 0, 0};
	struct spawner_run r = {&pool, 0, -1, NULL};
	green_t *first, *spawner;

	first = green_group_spawn(&pool, sleep_counted, &s, NULL, GREEN_FOREVER);
	spawner = green_spawn(spawn_into_pool, &r, NULL);
	assert_int_equal(green_yield(), 0);
	assert_int_equal(green_state(spawner), GREEN_WAITING);
	assert_null(r.spawned);

	assert_int_equal(green_kill(first), 0);
	assert_int_equal(green_join(spawner, NULL, GREEN_FOREVER), 0);
	green_release(spawner);
	assert_int_equal(r.err, 0);
	assert_non_null(r.spawned);
	assert_int_equal(green_join(r.spawned, NULL, GREEN_FOREVER), 0);
	assert_ptr_equal(green_result(r.spawned), (void *)2);
	green_release(r.spawned);
	assert_int_equal(green_group_join(&pool, GREEN_FOREVER), 0);
	assert_none_alive();
}

static void *spawn_and_get_killed(void *arg)
{
	struct spawner_run *r = arg;

	r->spawned = green_group_spawn(r->pool, return_arg, NULL, NULL, GREEN_FOREVER);
	r->err = r->spawned ? 0 : errno;
	return NULL;
}

static void test_pool_spawn_killed_while_waiting(void **state)
{
	green_pool_t pool = GREEN_POOL_INIT(1);
	struct sleepers s = {0, 0, 0};
	struct spawner_run r = {&pool, 0, -1, NULL};
	green_t *spawner;

	green_group_spawn(&pool, sleep_counted, &s, NULL, GREEN_FOREVER);
	spawner = green_spawn(spawn_and_get_killed, &r, NULL);
	assert_int_equal(green_yield(), 0);
	assert_int_equal(green_kill(spawner), 0);
	assert_int_equal(green_join(spawner, NULL, GREEN_FOREVER), 0);
	green_release(spawner);
	assert_null(r.spawned);
	assert_int_equal(r.err, ECANCELED);
	assert_int_equal(green_group_count(&pool), 1);
	assert_int_equal(green_group_kill(&pool, GREEN_FOREVER), 0);
	assert_none_alive();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_group_membership),
		cmocka_unit_test(test_group_join_timeout),
		cmocka_unit_test(test_group_kill_started_and_unstarted),
		cmocka_unit_test(test_member_joining_its_group),
		cmocka_unit_test(test_pool_limits_concurrency),
		cmocka_unit_test(test_pool_spawn_waits_with_deadline),
		cmocka_unit_test(test_pool_spawn_wakes_when_slot_frees),
		cmocka_unit_test(test_pool_spawn_killed_while_waiting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
