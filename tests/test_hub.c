/*
 * test_hub.c - the scheduler: FIFO start order, round-robin yields, polling
 * that a yielding loop cannot starve, fair turns for a loop that never
 * blocks, errno kept per greenlet, deadlock detection, 100,000 greenlets,
 * and a second hub in another OS thread.
 * Checks are made from the main greenlet: a failed cmocka assertion inside a
 * greenlet would longjmp off its stack.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "green.h"
#include "internal.h"
#include "test_util.h"

/* ---- ordering ---------------------------------------------------------------- */

static char order[128];
static size_t order_len;

static void note(char c)
{
	if (order_len < sizeof(order) - 1)
		order[order_len++] = c;
	order[order_len] = '\0';
}

static void order_reset(void)
{
	order_len = 0;
	order[0] = '\0';
}

static void *note_once(void *arg)
{
	note(*(char *)arg);
	return NULL;
}

static void test_spawn_order_is_fifo(void **state)
{
	static char names[] = "abcde";
	green_t *gs[5];

	order_reset();
	for (int i = 0; i < 5; i++) {
		gs[i] = green_spawn(note_once, &names[i], NULL);
		assert_non_null(gs[i]);
		assert_int_equal(green_state(gs[i]), GREEN_READY);
	}
	/* Nothing runs until the spawner waits or yields. */
	assert_string_equal(order, "");
	assert_int_equal(green_joinall(gs, 5, 0, GREEN_FOREVER), 5);
	assert_string_equal(order, "abcde");
	for (int i = 0; i < 5; i++)
		green_release(gs[i]);
	assert_none_alive();
}

static void test_yield_lets_spawned_run_then_returns(void **state)
{
	static char names[] = "ab";
	green_t *a, *b;

	order_reset();
	a = green_spawn(note_once, &names[0], NULL);
	b = green_spawn(note_once, &names[1], NULL);
	assert_int_equal(green_yield(), 0);
	note('m');
	assert_string_equal(order, "abm");
	assert_int_equal(green_state(a), GREEN_DEAD);
	assert_int_equal(green_state(b), GREEN_DEAD);
	join_release(a);
	join_release(b);
	/* Yield with nobody else ready comes straight back. */
	assert_int_equal(green_yield(), 0);
	assert_none_alive();
}

static void *note_and_yield(void *arg)
{
	for (int i = 0; i < 4; i++) {
		note(*(char *)arg);
		if (green_yield() < 0)
			return (void *)1;
	}
	return NULL;
}

static void test_yield_round_robin(void **state)
{
	static char names[] = "xyz";
	green_t *gs[3];

	order_reset();
	for (int i = 0; i < 3; i++)
		gs[i] = green_spawn(note_and_yield, &names[i], NULL);
	assert_int_equal(green_joinall(gs, 3, 0, GREEN_FOREVER), 3);
	assert_string_equal(order, "xyzxyzxyzxyz");
	for (int i = 0; i < 3; i++) {
		assert_null(green_result(gs[i]));
		green_release(gs[i]);
	}
	assert_none_alive();
}

/* A greenlet spinning on green_yield must not keep timers from firing. */
static volatile bool spin_flag;

static void *spinner(void *arg)
{
	long spins = 0;

	while (!spin_flag) {
		green_yield();
		spins++;
	}
	return (void *)spins;
}

static void *flag_after_sleep(void *arg)
{
	green_sleep(green_now() + 5 * GREEN_MSEC);
	spin_flag = true;
	return NULL;
}

static void test_yield_loop_does_not_starve_timers(void **state)
{
	green_t *gs[2];

	spin_flag = false;
	gs[0] = green_spawn(spinner, NULL, NULL);
	gs[1] = green_spawn(flag_after_sleep, NULL, NULL);
	assert_int_equal(green_joinall(gs, 2, 0, GREEN_FOREVER), 2);
	assert_true(spin_flag);
	assert_true((long)green_result(gs[0]) > 0);
	green_release(gs[0]);
	green_release(gs[1]);
	assert_none_alive();
}

/*
 * A greenlet that only ever passes fair points (a poll that finds its
 * answer ready, in the shim) must let a sleeper's timer fire and a ready
 * greenlet run.  The spin is bounded by a count, not a time: without the
 * turns it runs to the end of the count and the flag stays unset.
 */
#define FAIR_SPIN_LIMIT 200000000L

static void *fair_spinner(void *arg)
{
	struct green_hub *h = green__hub();
	long spins = 0;

	(void)arg;
	while (!spin_flag && spins < FAIR_SPIN_LIMIT) {
		green__fair_point(h);
		spins++;
	}
	return (void *)spins;
}

static void *flag_now(void *arg)
{
	(void)arg;
	spin_flag = true;
	return NULL;
}

static void test_fair_point_gives_turns(void **state)
{
	void *(*setters[2])(void *) = {flag_after_sleep, flag_now};

	for (int i = 0; i < 2; i++) {
		green_t *gs[2];

		spin_flag = false;
		gs[0] = green_spawn(fair_spinner, NULL, NULL);
		gs[1] = green_spawn(setters[i], NULL, NULL);
		assert_int_equal(green_joinall(gs, 2, 0, GREEN_FOREVER), 2);
		assert_true(spin_flag);
		assert_true((long)green_result(gs[0]) < FAIR_SPIN_LIMIT);
		green_release(gs[0]);
		green_release(gs[1]);
	}
	assert_none_alive();
}

static void test_main_greenlet(void **state)
{
	green_t *self = green_current();

	assert_non_null(self);
	assert_true(green_is_main(self));
	assert_int_equal(green_state(self), GREEN_RUNNING);
	assert_string_equal(green_name(self), "main");
	assert_ptr_equal(green_current(), self);
	/* Handles on main are not counted and cannot be killed into death. */
	assert_ptr_equal(green_ref(self), self);
	green_release(self);
	assert_int_equal(green_state(self), GREEN_RUNNING);
	assert_none_alive();
}

/* ---- errno --------------------------------------------------------------------- */

struct errno_run {
	int mine;
	int mismatches;
};

static void *errno_worker(void *arg)
{
	struct errno_run *r = arg;

	if (errno != 0) /* a new greenlet starts with errno 0 */
		r->mismatches++;
	for (int i = 0; i < 200; i++) {
		errno = r->mine;
		green_yield();
		if (errno != r->mine)
			r->mismatches++;
		if (i % 50 == 0) {
			errno = r->mine;
			green_sleep(green_now() + GREEN_MSEC);
			if (errno != r->mine)
				r->mismatches++;
		}
	}
	return NULL;
}

static void test_errno_is_per_greenlet(void **state)
{
	struct errno_run runs[2] = {{EAGAIN, 0}, {ENOENT, 0}};
	green_t *gs[2];

	for (int i = 0; i < 2; i++)
		gs[i] = green_spawn(errno_worker, &runs[i], NULL);
	errno = EMFILE;
	assert_int_equal(green_joinall(gs, 2, 0, GREEN_FOREVER), 2);
	assert_int_equal(errno, EMFILE);
	assert_int_equal(runs[0].mismatches, 0);
	assert_int_equal(runs[1].mismatches, 0);
	green_release(gs[0]);
	green_release(gs[1]);
	assert_none_alive();
}

/* ---- deadlock -------------------------------------------------------------------- */

static void *wait_forever(void *arg)
{
	int *err = arg;

	if (green_sleep(GREEN_FOREVER) < 0)
		*err = errno;
	return NULL;
}

static void test_deadlock_is_reported_to_main(void **state)
{
	int err = 0;
	green_t *g = green_spawn(wait_forever, &err, NULL);

	/* g parks with no timer and nothing can ever wake it: main's join
	 * fails instead of hanging (gevent's LoopExit). */
	assert_int_equal(green_join(g, NULL, GREEN_FOREVER), -1);
	assert_int_equal(errno, EDEADLK);
	assert_int_equal(green_state(g), GREEN_SLEEPING);

	/* The same for main waiting on nothing at all. */
	assert_int_equal(green_sleep(GREEN_FOREVER), -1);
	assert_int_equal(errno, EDEADLK);

	/* Still usable afterwards: kill it and join. */
	assert_int_equal(green_kill(g), 0);
	join_release(g);
	assert_int_equal(err, ECANCELED);
	assert_none_alive();
}

static void *join_arg(void *arg)
{
	return green_join(arg, NULL, GREEN_FOREVER) < 0 ? (void *)(intptr_t)errno : NULL;
}

static void test_deadlock_through_a_chain(void **state)
{
	int err = 0;
	green_t *leaf = green_spawn(wait_forever, &err, NULL);
	green_t *mid = green_spawn(join_arg, leaf, NULL);

	assert_int_equal(green_join(mid, NULL, GREEN_FOREVER), -1);
	assert_int_equal(errno, EDEADLK);
	assert_int_equal(green_kill(leaf), 0);
	join_release(mid);
	assert_null(green_result(mid));
	join_release(leaf);
	assert_none_alive();
}

/* ---- 100,000 greenlets ------------------------------------------------------------ */

#define MANY 100000

static long many_done;

static void *many_worker(void *arg)
{
	intptr_t i = (intptr_t)arg;

	if (green_sleep(green_now() + (i % 5) * GREEN_MSEC) == 0)
		many_done++;
	return arg;
}

static void test_100k_greenlets(void **state)
{
	green_attr_t attr = {.name = NULL, .stack_size = 8192};
	green_t **gs = calloc(MANY, sizeof(*gs));
	struct green_stats before, after;
	long bad = 0;

	assert_non_null(gs);
	green_stats(&before);
	many_done = 0;
	for (intptr_t i = 0; i < MANY; i++) {
		gs[i] = green_spawn(many_worker, (void *)i, &attr);
		if (!gs[i])
			fail_msg("spawn #%ld: %s", (long)i, strerror(errno));
	}
	green_stats(&after);
	assert_int_equal(after.alive, MANY);
	assert_int_equal(green_joinall(gs, MANY, 0, GREEN_FOREVER), MANY);
	assert_int_equal(many_done, MANY);
	for (intptr_t i = 0; i < MANY; i++) {
		if (green_result(gs[i]) != (void *)i)
			bad++;
		green_release(gs[i]);
	}
	assert_int_equal(bad, 0);
	free(gs);
	green_stats(&after);
	assert_int_equal(after.spawned - before.spawned, MANY);
	assert_int_equal(after.finished - before.finished, MANY);
	assert_none_alive();
}

/* ---- a second hub in another OS thread -------------------------------------------- */

#define ROUNDS 20
#define PER_ROUND 50

struct hub_run {
	long ran;       /* greenlet bodies completed */
	long errors;
	green_t *main_g;
	struct green_stats stats; /* its own hub's, when done */
};

static void *counting_worker(void *arg)
{
	struct hub_run *r = arg;

	if (green_yield() < 0 || green_sleep(green_now() + 100 * GREEN_USEC) < 0)
		r->errors++;
	r->ran++;
	return NULL;
}

static void hub_rounds(struct hub_run *r)
{
	green_t *gs[PER_ROUND];

	r->main_g = green_current();
	for (int round = 0; round < ROUNDS; round++) {
		for (int i = 0; i < PER_ROUND; i++)
			gs[i] = green_spawn(counting_worker, r, NULL);
		if (green_joinall(gs, PER_ROUND, 0, GREEN_FOREVER) != PER_ROUND)
			r->errors++;
		for (int i = 0; i < PER_ROUND; i++)
			green_release(gs[i]);
	}
	green_stats(&r->stats);
}

static pthread_mutex_t th_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t th_cond = PTHREAD_COND_INITIALIZER;
static bool th_done, th_may_exit;

static void *hub_thread(void *arg)
{
	struct hub_run *r = arg;

	hub_rounds(r);
	pthread_mutex_lock(&th_lock);
	th_done = true;
	pthread_cond_broadcast(&th_cond);
	while (!th_may_exit)
		pthread_cond_wait(&th_cond, &th_lock);
	pthread_mutex_unlock(&th_lock);
	return NULL;
}

static void test_hub_in_second_thread(void **state)
{
	struct hub_run mine = {0}, theirs = {0};
	struct green_stats all;
	pthread_t th;

	th_done = th_may_exit = false;
	assert_int_equal(pthread_create(&th, NULL, hub_thread, &theirs), 0);
	hub_rounds(&mine);

	pthread_mutex_lock(&th_lock);
	while (!th_done)
		pthread_cond_wait(&th_cond, &th_lock);
	pthread_mutex_unlock(&th_lock);

	assert_int_equal(mine.ran, ROUNDS * PER_ROUND);
	assert_int_equal(theirs.ran, ROUNDS * PER_ROUND);
	assert_int_equal(mine.errors, 0);
	assert_int_equal(theirs.errors, 0);
	assert_true(green_is_main(theirs.main_g));
	assert_ptr_not_equal(theirs.main_g, mine.main_g);
	assert_int_equal(theirs.stats.hubs, 1);
	assert_int_equal(theirs.stats.spawned, ROUNDS * PER_ROUND);
	assert_int_equal(theirs.stats.alive, 0);

	/* Both hubs exist now: green_stats_all adds them up. */
	green_stats(&mine.stats);
	green_stats_all(&all);
	assert_int_equal(all.hubs, 2);
	assert_int_equal(all.spawned, mine.stats.spawned + theirs.stats.spawned);
	assert_int_equal(all.finished, mine.stats.finished + theirs.stats.finished);
	assert_int_equal(all.alive, 0);
	assert_true(all.switches >= mine.stats.switches + theirs.stats.switches);

	pthread_mutex_lock(&th_lock);
	th_may_exit = true;
	pthread_cond_broadcast(&th_cond);
	pthread_mutex_unlock(&th_lock);
	assert_int_equal(pthread_join(th, NULL), 0);

	/* Its hub went with the thread. */
	green_stats_all(&all);
	assert_int_equal(all.hubs, 1);
	assert_none_alive();
}

/* A thread that ends with a greenlet still parked abandons it; its hub is
 * still torn down and the process carries on. */
static void *abandoning_thread(void *arg)
{
	green_t *g = green_spawn(wait_forever, arg, NULL);

	green_yield(); /* g parks */
	green_release(g);
	return NULL;
}

static void test_thread_exit_abandons_parked(void **state)
{
	struct green_stats all;
	int err = 0;
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, abandoning_thread, &err), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	green_stats_all(&all);
	assert_int_equal(all.hubs, 1);
	assert_int_equal(err, 0); /* never resumed */
	assert_none_alive();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spawn_order_is_fifo),
		cmocka_unit_test(test_yield_lets_spawned_run_then_returns),
		cmocka_unit_test(test_yield_round_robin),
		cmocka_unit_test(test_yield_loop_does_not_starve_timers),
		cmocka_unit_test(test_main_greenlet),
		cmocka_unit_test(test_errno_is_per_greenlet),
		cmocka_unit_test(test_fair_point_gives_turns),
		cmocka_unit_test(test_deadlock_is_reported_to_main),
		cmocka_unit_test(test_deadlock_through_a_chain),
		cmocka_unit_test(test_100k_greenlets),
		cmocka_unit_test(test_hub_in_second_thread),
		cmocka_unit_test(test_thread_exit_abandons_parked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
