/*
 * test_sup.c - the supervisor's pure parts: back-off growth and cap, and
 * state names.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../greend/sup.h"

static void test_backoff(void **state)
{
	struct gd_worker_conf c = { .backoff_ms = 100, .backoff_max_ms = 1000 };

	assert_int_equal(gd_backoff_ms(&c, 1), 100);
	assert_int_equal(gd_backoff_ms(&c, 2), 200);
	assert_int_equal(gd_backoff_ms(&c, 4), 800);
	assert_int_equal(gd_backoff_ms(&c, 5), 1000);
	assert_int_equal(gd_backoff_ms(&c, 1000000), 1000);
	c.backoff_ms = 0;
	c.backoff_max_ms = 0;
	assert_int_equal(gd_backoff_ms(&c, 3), 0);
}

static void test_states(void **state)
{
	assert_string_equal(gd_state_name(GD_STOPPED), "stopped");
	assert_string_equal(gd_state_name(GD_BACKOFF), "backoff");
	assert_string_equal(gd_state_name(GD_FATAL), "fatal");
	assert_true(gd_state_at_rest(GD_EXITED));
	assert_false(gd_state_at_rest(GD_STOPPING));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_states),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
