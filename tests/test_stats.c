/*
 * test_stats.c - the counters (spawned, finished, alive, switches,
 * timeouts, iterations, blocked) of one hub and summed over hubs, and
 * green_walk: every live greenlet, main first, with its state, what it waits
 * on, its deadline, age and stack size.
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
#include "test_util.h"

static void *sleep_until(void *arg)
{
	const int64_t *deadline = arg;

	return green_sleep(*deadline) < 0 ? (void *)(intptr_t)errno : NULL;
}

static void *join_arg(void *arg)
{
	return green_join(arg, NULL, GREEN_FOREVER) < 0 ? (void *)(intptr_t)errno : NULL;
}

/* ---- walk ---------------------------------------------------------------------- */

#define MAX_SEEN 16

struct seen {
	struct green_info info[MAX_SEEN];
	char names[MAX_SEEN][32];
	int n;
	int stop_after; /* 0 = never */
};

static int collect(const struct green_info *info, void *arg)
{
	struct seen *s = arg;

	if (s->n < MAX_SEEN) {
		s->info[s->n] = *info;
		strncpy(s->names[s->n], info->name, sizeof(s->names[0]) - 1);
		s->info[s->n].name = s->names[s->n];
	}
	s->n++;
	return s->stop_after && s->n >= s->stop_after ? 7 : 0;
}

static const struct green_info *find(const struct seen *s, uint64_t id)
{
	for (int i = 0; i < s->n && i < MAX_SEEN; i++) {
		if (s->info[i].id == id)
			return &s->info[i];
	}
	return NULL;
}

static void test_walk_states_and_waits(void **state)
{
	green_attr_t sleeper_attr = {.name = "sleeper", .stack_size = 0};
	green_attr_t joiner_attr = {.name = "joiner", .stack_size = 64 * 1024};
	green_attr_t ready_attr = {.name = "ready", .stack_size = 8192};
	int64_t deadline = green_now() + 60 * GREEN_SEC;
	struct seen s;
	const struct green_info *m, *a, *b, *c;
	green_t *ga, *gb, *gc;

	ga = green_spawn(sleep_until, &deadline, &sleeper_attr);
	/* Let the hub poll so that the next spawn is stamped later. */
	assert_int_equal(green_sleep(green_now() + 2 * GREEN_MSEC), 0);
	gb = green_spawn(join_arg, ga, &joiner_attr);
	assert_int_equal(green_yield(), 0); /* gb parks on ga */
	gc = green_spawn(return_arg, NULL, &ready_attr);

	memset(&s, 0, sizeof(s));
	assert_int_equal(green_walk(collect, &s), 0);
	assert_int_equal(s.n, 4);
	m = &s.info[0]; /* oldest first: main */
	assert_true(m->main);
	assert_true(m->current);
	assert_int_equal(m->id, green_id(green_current()));
	assert_string_equal(m->name, "main");
	assert_int_equal(m->state, GREEN_RUNNING);
	assert_int_equal(m->wait, GREEN_WAIT_NONE);
	assert_int_equal(m->deadline, GREEN_FOREVER);
	assert_int_equal(m->fd, -1);

	a = find(&s, green_id(ga));
	b = find(&s, green_id(gb));
	c = find(&s, green_id(gc));
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_ptr_equal(a, &s.info[1]);
	assert_ptr_equal(b, &s.info[2]);
	assert_ptr_equal(c, &s.info[3]);

	assert_string_equal(a->name, "sleeper");
	assert_int_equal(a->state, GREEN_SLEEPING);
	assert_int_equal(a->wait, GREEN_WAIT_TIMER);
	assert_int_equal(a->deadline, deadline);
	assert_null(a->object);
	assert_false(a->main);
	assert_false(a->current);
	assert_true(a->stack_size >= 256 * 1024 || getenv("GREEN_STACK_SIZE"));

	assert_string_equal(b->name, "joiner");
	assert_int_equal(b->state, GREEN_WAITING);
	assert_int_equal(b->wait, GREEN_WAIT_JOIN);
	assert_ptr_equal(b->object, ga);
	assert_int_equal(b->deadline, GREEN_FOREVER);
	assert_int_equal(b->stack_size, 64 * 1024);

	assert_string_equal(c->name, "ready");
	assert_int_equal(c->state, GREEN_READY);
	assert_int_equal(c->wait, GREEN_WAIT_NONE);
	assert_int_equal(c->stack_size, 8192);

	/* Ages: everything is at least as old as what was spawned after it. */
	assert_true(c->age_ns >= 0);
	assert_true(b->age_ns >= c->age_ns);
	assert_true(a->age_ns > b->age_ns); /* a slept in between */
	assert_true(m->age_ns >= a->age_ns);

	/* A non-zero return stops the walk and is returned. */
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	assert_int_equal(green_walk(collect, &s), 7);
	assert_int_equal(s.n, 2);

	errno = 0;
	assert_int_equal(green_walk(NULL, NULL), -1);
	assert_int_equal(errno, EINVAL);

	assert_int_equal(green_kill(ga), 0);
	join_release(gb);
	join_release(ga);
	join_release(gc);
	assert_int_equal((intptr_t)green_result(ga), ECANCELED);

	/* Dead greenlets are not walked. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(green_walk(collect, &s), 0);
	assert_int_equal(s.n, 1);
	assert_true(s.info[0].main);
	assert_none_alive();
}

static void test_wait_kind_names(void **state)
{
	static const char *const names[] = {
	    "none", "fd", "timer", "event", "lock", "semaphore",
	    "condition", "queue", "join", "group", "other"};

	for (int k = GREEN_WAIT_NONE; k <= GREEN_WAIT_OTHER; k++)
		assert_string_equal(green_wait_kind_name((enum green_wait_kind)k), names[k]);
	assert_none_alive();
}

/* ---- counters -------------------------------------------------------------------- */

static void *yield_three_times(void *arg)
{
	for (int i = 0; i < 3; i++)
		green_yield();
	return NULL;
}

static void test_counters(void **state)
{
	enum { N = 10 };
	struct green_stats before, mid, after;
	green_t *gs[N];

	green_sleep(GREEN_NOW); /* the hub exists from here on */
	green_stats(&before);
	assert_int_equal(before.hubs, 1);
	for (int i = 0; i < N; i++)
		gs[i] = green_spawn(yield_three_times, NULL, NULL);
	green_stats(&mid);
	assert_int_equal(mid.alive, N);
	assert_int_equal(mid.spawned, before.spawned + N);
	assert_int_equal(mid.finished, before.finished);
	assert_int_equal(mid.switches, before.switches); /* none ran yet */

	assert_int_equal(green_joinall(gs, N, 0, GREEN_FOREVER), N);
	green_stats(&after);
	assert_int_equal(after.alive, 0);
	assert_int_equal(after.spawned, before.spawned + N);
	assert_int_equal(after.finished, before.finished + N);
	/* each was switched to at least once per yield plus once to start */
	assert_true(after.switches >= before.switches + N * 4);
	assert_int_equal(after.timeouts, before.timeouts);
	for (int i = 0; i < N; i++)
		green_release(gs[i]);
	assert_none_alive();
}

static void test_timeout_counter(void **state)
{
	int64_t forever = GREEN_FOREVER;
	struct green_stats before, after;
	green_timeout_t t;
	green_t *g = green_spawn(sleep_until, &forever, NULL);

	green_stats(&before);
	assert_int_equal(green_join(g, NULL, GREEN_NOW), -1);          /* +1 */
	assert_int_equal(green_join(g, NULL, green_now() + GREEN_MSEC), -1); /* +1 */
	assert_int_equal(green_sleep(green_now() + GREEN_MSEC), 0);    /* +0 */
	green_timeout_enter(&t, green_now() + GREEN_MSEC);
	assert_int_equal(green_sleep(GREEN_FOREVER), -1);              /* +1 */
	green_timeout_leave(&t);
	green_stats(&after);
	assert_int_equal(after.timeouts, before.timeouts + 3);
	assert_true(after.iterations > before.iterations);

	assert_int_equal(green_kill(g), 0);
	join_release(g);
	assert_none_alive();
}

/* A wait's timer that expires after something else already woke it is not
 * a timeout.  Here the waiter is killed after its deadline has passed, with
 * more greenlets queued ahead of it than the hub dispatches between polls,
 * so the hub polls (and the timer fires) before the waiter runs again. */
struct join_run {
	green_t *target;
	int64_t deadline;
	int err;
};

static void *join_with_deadline(void *arg)
{
	struct join_run *r = arg;

	r->err = green_join(r->target, NULL, r->deadline) < 0 ? errno : 0;
	return NULL;
}

static void test_late_timer_is_not_a_timeout(void **state)
{
	enum { AHEAD = 300 }; /* more than the hub dispatches between polls */
	int64_t forever = GREEN_FOREVER;
	struct join_run r = {NULL, 0, -1};
	struct green_stats before, after;
	green_t *waiter, *ahead[AHEAD];

	r.target = green_spawn(sleep_until, &forever, NULL);
	r.deadline = green_now() + 2 * GREEN_MSEC;
	waiter = green_spawn(join_with_deadline, &r, NULL);
	assert_int_equal(green_yield(), 0); /* both park */
	assert_int_equal(green_state(waiter), GREEN_WAITING);
	for (int i = 0; i < AHEAD; i++)
		ahead[i] = green_spawn(return_arg, NULL, NULL);
	while (green_now() < r.deadline)
		; /* the waiter's timer is due, but nobody polls */
	green_stats(&before);
	assert_int_equal(green_kill(waiter), 0);
	join_release(waiter);
	green_stats(&after);
	assert_int_equal(r.err, ECANCELED);
	assert_int_equal(after.timeouts, before.timeouts);
	assert_true(after.iterations > before.iterations); /* it did poll */

	assert_int_equal(green_joinall(ahead, AHEAD, 0, GREEN_FOREVER), AHEAD);
	for (int i = 0; i < AHEAD; i++)
		green_release(ahead[i]);
	assert_int_equal(green_kill(r.target), 0);
	join_release(r.target);
	assert_none_alive();
}

static void test_max_blocking(void **state)
{
	struct green_stats before, after;
	int64_t until;

	green_sleep(GREEN_NOW);
	green_set_max_blocking(GREEN_MSEC);
	green_sleep(green_now() + GREEN_MSEC); /* poll: the clock starts here */
	green_stats(&before);
	until = green_now() + 5 * GREEN_MSEC;
	while (green_now() < until)
		; /* keep the hub from polling */
	assert_int_equal(green_sleep(green_now() + GREEN_MSEC), 0);
	green_stats(&after);
	assert_true(after.blocked >= before.blocked + 1);
	assert_true(after.max_blocking_ms >= 5.0);

	/* 0 turns the "blocked" count off; the longest stretch is still kept. */
	green_set_max_blocking(0);
	green_stats(&before);
	until = green_now() + 2 * GREEN_MSEC;
	while (green_now() < until)
		;
	assert_int_equal(green_sleep(green_now() + GREEN_MSEC), 0);
	green_stats(&after);
	assert_int_equal(after.blocked, before.blocked);
	assert_true(after.max_blocking_ms >= before.max_blocking_ms);
	assert_none_alive();
}

/* ---- other threads ------------------------------------------------------------------ */

static struct green_stats nohub_stats;
static int nohub_walked, nohub_walk_rc;

static void *thread_without_hub(void *arg)
{
	struct seen s;

	memset(&s, 0, sizeof(s));
	green_stats(&nohub_stats);
	nohub_walk_rc = green_walk(collect, &s);
	nohub_walked = s.n;
	return NULL;
}

static void test_thread_without_hub(void **state)
{
	pthread_t th;

	memset(&nohub_stats, 0xff, sizeof(nohub_stats));
	assert_int_equal(pthread_create(&th, NULL, thread_without_hub, NULL), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	/* Asking does not create a hub. */
	assert_int_equal(nohub_stats.hubs, 0);
	assert_int_equal(nohub_stats.spawned, 0);
	assert_int_equal(nohub_stats.alive, 0);
	assert_int_equal(nohub_walk_rc, 0);
	assert_int_equal(nohub_walked, 0);
	assert_none_alive();
}

static pthread_mutex_t th_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t th_cond = PTHREAD_COND_INITIALIZER;
static int th_phase;

static void th_set(int phase)
{
	pthread_mutex_lock(&th_lock);
	th_phase = phase;
	pthread_cond_broadcast(&th_cond);
	pthread_mutex_unlock(&th_lock);
}

static void th_wait(int phase)
{
	pthread_mutex_lock(&th_lock);
	while (th_phase < phase)
		pthread_cond_wait(&th_cond, &th_lock);
	pthread_mutex_unlock(&th_lock);
}

static void *thread_with_parked(void *arg)
{
	int64_t forever = GREEN_FOREVER;
	green_t *gs[3];

	gs[0] = green_spawn(return_arg, NULL, NULL);
	gs[1] = green_spawn(sleep_until, &forever, NULL);
	gs[2] = green_spawn(sleep_until, &forever, NULL);
	green_join(gs[0], NULL, GREEN_FOREVER); /* the other two park */
	th_set(1);
	th_wait(2); /* main looks at the counters meanwhile */
	green_kill(gs[1]);
	green_kill(gs[2]);
	green_joinall(gs, 3, 0, GREEN_FOREVER);
	for (int i = 0; i < 3; i++)
		green_release(gs[i]);
	return NULL;
}

static void test_stats_all_sums_hubs(void **state)
{
	struct green_stats mine, all;
	pthread_t th;

	green_sleep(GREEN_NOW);
	th_phase = 0;
	assert_int_equal(pthread_create(&th, NULL, thread_with_parked, NULL), 0);
	th_wait(1);
	green_stats(&mine);
	green_stats_all(&all);
	assert_int_equal(all.hubs, 2);
	assert_int_equal(mine.hubs, 1);
	assert_int_equal(mine.alive, 0);
	assert_int_equal(all.alive, 2); /* the other hub's two sleepers */
	assert_int_equal(all.spawned, mine.spawned + 3);
	assert_int_equal(all.finished, mine.finished + 1);
	th_set(2);
	assert_int_equal(pthread_join(th, NULL), 0);
	green_stats_all(&all);
	assert_int_equal(all.hubs, 1);
	assert_int_equal(all.alive, 0);
	assert_none_alive();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walk_states_and_waits),
		cmocka_unit_test(test_wait_kind_names),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_timeout_counter),
		cmocka_unit_test(test_late_timer_is_not_a_timeout),
		cmocka_unit_test(test_max_blocking),
		cmocka_unit_test(test_thread_without_hub),
		cmocka_unit_test(test_stats_all_sums_hubs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
