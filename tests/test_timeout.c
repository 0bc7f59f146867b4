/*
 * test_timeout.c - green_sleep and scoped timeouts: sleeps that end exactly
 * at (never before) their deadline, GREEN_NOW and past deadlines, nested
 * scopes where either side is shorter, what leave reports, waits inside an
 * expired scope failing without a switch, scopes being per greenlet, and
 * kills taking precedence.  The only timing checks are "not before".
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "green.h"
#include "test_util.h"

static uint64_t switches(void)
{
	struct green_stats st;

	green_stats(&st);
	return st.switches;
}

static uint64_t timeouts(void)
{
	struct green_stats st;

	green_stats(&st);
	return st.timeouts;
}

/* ---- sleep -------------------------------------------------------------------- */

static void test_sleep_until_deadline(void **state)
{
	int64_t deadline = green_now() + 10 * GREEN_MSEC;
	uint64_t t0 = timeouts();

	assert_int_equal(green_sleep(deadline), 0);
	assert_true(green_now() >= deadline);
	/* a sleep that ends is not a timeout */
	assert_int_equal(timeouts(), t0);
	assert_none_alive();
}

static void test_sleep_now_and_past(void **state)
{
	int64_t past = green_now() - GREEN_SEC;
	uint64_t t0 = timeouts();

	green_sleep(green_now()); /* make sure the hub exists */
	assert_int_equal(green_sleep(GREEN_NOW), 0);
	assert_int_equal(green_sleep(past), 0);
	assert_int_equal(green_sleep(1), 0); /* 1 ns after boot */
	assert_int_equal(timeouts(), t0);
	assert_none_alive();
}

static char wake_order[8];
static size_t wake_len;

static void *sleep_and_note(void *arg)
{
	const int64_t *deadline = arg;

	if (green_sleep(*deadline) == 0 && green_now() >= *deadline &&
	    wake_len < sizeof(wake_order) - 1)
		wake_order[wake_len++] = (char)('0' + (deadline[1]));
	return NULL;
}

static void test_sleepers_wake_in_deadline_order(void **state)
{
	/* Deadlines far enough ahead that all three are parked in time;
	 * {deadline, label} pairs, spawned out of order. */
	int64_t base = green_now() + 200 * GREEN_MSEC;
	int64_t d[3][2] = {{base + 30 * GREEN_MSEC, 3},
	                   {base + 10 * GREEN_MSEC, 1},
	                   {base + 20 * GREEN_MSEC, 2}};
	green_t *gs[3];

	wake_len = 0;
	memset(wake_order, 0, sizeof(wake_order));
	for (int i = 0; i < 3; i++)
		gs[i] = green_spawn(sleep_and_note, d[i], NULL);
	assert_int_equal(green_joinall(gs, 3, 0, GREEN_FOREVER), 3);
	assert_string_equal(wake_order, "123");
	for (int i = 0; i < 3; i++)
		green_release(gs[i]);
	assert_none_alive();
}

/* ---- scopes --------------------------------------------------------------------- */

static void test_scope_expires_a_wait(void **state)
{
	green_timeout_t t;
	int64_t deadline = green_now() + 10 * GREEN_MSEC;
	uint64_t t0 = timeouts();

	green_timeout_enter(&t, deadline);
	assert_false(green_timeout_expired(&t));
	errno = 0;
	assert_int_equal(green_sleep(GREEN_FOREVER), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_true(green_now() >= deadline);
	assert_true(green_timeout_expired(&t));
	assert_true(green_timeout_leave(&t));
	assert_int_equal(timeouts(), t0 + 1);
	/* outside the scope, waits are bounded by their own deadline only */
	assert_int_equal(green_sleep(green_now() + GREEN_MSEC), 0);
	assert_none_alive();
}

static void test_own_deadline_shorter_than_scope(void **state)
{
	green_timeout_t t;
	int64_t deadline = green_now() + 5 * GREEN_MSEC;

	green_timeout_enter(&t, green_now() + 60 * GREEN_SEC);
	/* the sleep's own deadline comes first: success, not a timeout */
	assert_int_equal(green_sleep(deadline), 0);
	assert_true(green_now() >= deadline);
	assert_false(green_timeout_leave(&t));
	assert_none_alive();
}

static void test_nested_inner_shorter(void **state)
{
	green_timeout_t outer, inner;
	int64_t inner_deadline;

	green_timeout_enter(&outer, green_now() + 60 * GREEN_SEC);
	inner_deadline = green_now() + 10 * GREEN_MSEC;
	green_timeout_enter(&inner, inner_deadline);
	errno = 0;
	assert_int_equal(green_sleep(GREEN_FOREVER), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_true(green_now() >= inner_deadline);
	assert_true(green_timeout_leave(&inner));
	/* back in the outer scope, which has time left */
	assert_int_equal(green_sleep(green_now() + GREEN_MSEC), 0);
	assert_false(green_timeout_leave(&outer));
	assert_none_alive();
}

static void test_nested_outer_shorter(void **state)
{
	green_timeout_t outer, inner;
	int64_t outer_deadline = green_now() + 10 * GREEN_MSEC;

	green_timeout_enter(&outer, outer_deadline);
	green_timeout_enter(&inner, green_now() + 60 * GREEN_SEC);
	errno = 0;
	assert_int_equal(green_sleep(GREEN_FOREVER), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_true(green_now() >= outer_deadline);
	/* the inner scope's own deadline did not pass; the outer's did */
	assert_false(green_timeout_leave(&inner));
	assert_true(green_timeout_leave(&outer));
	assert_none_alive();
}

static void test_nested_forever_inside_deadline(void **state)
{
	green_timeout_t outer, inner;
	int64_t outer_deadline = green_now() + 5 * GREEN_MSEC;

	green_timeout_enter(&outer, outer_deadline);
	green_timeout_enter(&inner, GREEN_FOREVER);
	assert_false(green_timeout_expired(&inner));
	assert_int_equal(green_sleep(GREEN_FOREVER), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_false(green_timeout_leave(&inner)); /* FOREVER never expires */
	assert_true(green_timeout_leave(&outer));
	assert_none_alive();
}

static void test_leave_reports_expiry(void **state)
{
	green_timeout_t t;
	int64_t deadline;

	green_timeout_enter(&t, GREEN_FOREVER);
	assert_false(green_timeout_leave(&t));

	green_timeout_enter(&t, green_now() + 60 * GREEN_SEC);
	assert_false(green_timeout_leave(&t));

	green_timeout_enter(&t, GREEN_NOW);
	assert_true(green_timeout_expired(&t));
	assert_true(green_timeout_leave(&t));

	/* Expiry needs no wait inside the scope: only the clock. */
	deadline = green_now() + 2 * GREEN_MSEC;
	green_timeout_enter(&t, deadline);
	while (green_now() < deadline)
		;
	assert_true(green_timeout_leave(&t));
	assert_none_alive();
}

static void test_waits_in_expired_scope_fail_at_once(void **state)
{
	green_timeout_t t;
	green_t *g = green_spawn(sleep_forever, NULL, NULL);
	uint64_t s0, t0;

	assert_int_equal(green_yield(), 0); /* g parks */
	green_timeout_enter(&t, green_now() + 5 * GREEN_MSEC);
	assert_int_equal(green_sleep(GREEN_FOREVER), -1);
	assert_int_equal(errno, ETIMEDOUT);

	/* Now every wait fails without switching away. */
	s0 = switches();
	t0 = timeouts();
	errno = 0;
	assert_int_equal(green_sleep(green_now() + 60 * GREEN_SEC), -1);
	assert_int_equal(errno, ETIMEDOUT);
	errno = 0;
	assert_int_equal(green_join(g, NULL, GREEN_FOREVER), -1);
	assert_int_equal(errno, ETIMEDOUT);
	errno = 0;
	assert_int_equal(green_sleep(GREEN_NOW), -1); /* not a success any more */
	assert_int_equal(errno, ETIMEDOUT);
	errno = 0;
	assert_int_equal(green_sleep(green_now() - GREEN_SEC), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_int_equal(switches(), s0);
	assert_int_equal(timeouts(), t0 + 4);
	assert_true(green_timeout_leave(&t));

	/* Out of the scope, the same join works. */
	assert_int_equal(green_kill(g), 0);
	join_release(g);
	assert_none_alive();
}

static void test_scope_entered_expired(void **state)
{
	green_timeout_t outer, inner;

	/* An inner scope inherits the outer one's expiry, even with a later
	 * deadline of its own. */
	green_timeout_enter(&outer, green_now() - GREEN_MSEC);
	green_timeout_enter(&inner, green_now() + 60 * GREEN_SEC);
	assert_int_equal(green_sleep(green_now() + 60 * GREEN_SEC), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_false(green_timeout_leave(&inner));
	assert_true(green_timeout_leave(&outer));
	assert_int_equal(green_sleep(green_now() + GREEN_MSEC), 0);
	assert_none_alive();
}

/* Scopes belong to the greenlet that entered them. */
struct scoped_run {
	int64_t deadline;
	int rc, err;
	bool expired;
};

static void *sleep_in_scope(void *arg)
{
	struct scoped_run *r = arg;
	green_timeout_t t;

	green_timeout_enter(&t, r->deadline);
	r->rc = green_sleep(GREEN_FOREVER);
	r->err = r->rc < 0 ? errno : 0;
	r->expired = green_timeout_leave(&t);
	return NULL;
}

static void test_scopes_are_per_greenlet(void **state)
{
	struct scoped_run r = {0, 0, 0, false};
	green_timeout_t mine;
	green_t *g;

	r.deadline = green_now() + 10 * GREEN_MSEC;
	g = green_spawn(sleep_in_scope, &r, NULL);
	/* main's own long scope must not affect g, nor g's affect main */
	green_timeout_enter(&mine, green_now() + 60 * GREEN_SEC);
	assert_int_equal(green_join(g, NULL, GREEN_FOREVER), 0);
	assert_false(green_timeout_leave(&mine));
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.err, ETIMEDOUT);
	assert_true(r.expired);
	green_release(g);
	assert_none_alive();
}

static void *sleep_in_scope_until_killed(void *arg)
{
	int *err = arg;
	green_timeout_t t;

	green_timeout_enter(&t, green_now() + 60 * GREEN_SEC);
	*err = green_sleep(GREEN_FOREVER) < 0 ? errno : 0;
	green_timeout_leave(&t);
	return NULL;
}

static void test_kill_inside_scope_is_ecanceled(void **state)
{
	int err = 0;
	green_t *g = green_spawn(sleep_in_scope_until_killed, &err, NULL);

	assert_int_equal(green_yield(), 0);
	assert_int_equal(green_kill(g), 0);
	join_release(g);
	assert_int_equal(err, ECANCELED);
	assert_none_alive();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sleep_until_deadline),
		cmocka_unit_test(test_sleep_now_and_past),
		cmocka_unit_test(test_sleepers_wake_in_deadline_order),
		cmocka_unit_test(test_scope_expires_a_wait),
		cmocka_unit_test(test_own_deadline_shorter_than_scope),
		cmocka_unit_test(test_nested_inner_shorter),
		cmocka_unit_test(test_nested_outer_shorter),
		cmocka_unit_test(test_nested_forever_inside_deadline),
		cmocka_unit_test(test_leave_reports_expiry),
		cmocka_unit_test(test_waits_in_expired_scope_fail_at_once),
		cmocka_unit_test(test_scope_entered_expired),
		cmocka_unit_test(test_scopes_are_per_greenlet),
		cmocka_unit_test(test_kill_inside_scope_is_ecanceled),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
