/*
 * test_util.h - what the libgreen unit tests share: checks for the main
 * greenlet to make, and greenlet bodies.  The bodies report (a return value,
 * an errno) rather than assert: a failed cmocka assertion inside a greenlet
 * would longjmp off its stack.
 */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>

#include "green.h"

/* Tests end with this, so that a leaked greenlet fails the test that
 * leaked it rather than a later one. */
static inline void assert_none_alive(void)
{
	struct green_stats st;

	green_stats(&st);
	assert_int_equal(st.alive, 0);
}

static inline void join_release(green_t *g)
{
	assert_int_equal(green_join(g, NULL, GREEN_FOREVER), 0);
	green_release(g);
}

static inline void *return_arg(void *arg)
{
	return arg;
}

/* Sleeps forever; returns the errno that woke it (0 if none). */
static inline void *sleep_forever(void *arg)
{
	return green_sleep(GREEN_FOREVER) < 0 ? (void *)(intptr_t)errno : NULL;
}

#endif
