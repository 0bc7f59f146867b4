/*
 * test_sup.c - the supervisor: back-off growth and cap, state names, and
 * reloads racing the stops of earlier reloads.  The reload tests run a real
 * supervisor on libev's default loop with /bin/sleep workers; the loop is
 * only run between steps, so "while stopping" is exact, not a timing bet.
 * Every wait is bounded and every test ends with its workers reaped.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../greend/proto.h"
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

/* ---- reload interleavings ------------------------------------------------------ */

#define SETTLE_S 20.0

/* A config with worker "r" of N instances running `sleep ARG` (N = 0: no
 * workers at all). */
static struct gd_config *conf_r(int n, const char *arg)
{
	char text[512], err[512];
	struct gd_config *cfg;

	if (n == 0)
		snprintf(text, sizeof(text),
			 "{\"control_socket\":\"/nonexistent/s\",\"preload\":\"/nonexistent/shim.so\","
			 "\"workers\":[]}");
	else
		snprintf(text, sizeof(text),
			 "{\"control_socket\":\"/nonexistent/s\",\"preload\":\"/nonexistent/shim.so\","
			 "\"workers\":[{\"name\":\"r\",\"command\":[\"/bin/sleep\",\"%s\"],"
			 "\"instances\":%d,\"start_secs\":0,\"stop_timeout_s\":5}]}",
			 arg, n);
	cfg = gd_config_parse(text, "t.json", "/", err, sizeof(err));
	if (!cfg)
		fail_msg("%s", err);
	return cfg;
}

static void reload(struct gd_sup *s, int n, const char *arg)
{
	json_t *report = json_object();

	assert_int_equal(gd_sup_reload(s, conf_r(n, arg), report), 0);
	json_decref(report);
}

static void tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
}

/* Run the loop until PRED holds (or fail after SETTLE_S). */
static void run_until(struct gd_sup *s, bool (*pred)(struct gd_sup *, void *), void *arg,
		      const char *what)
{
	double deadline = gd_mono() + SETTLE_S;
	ev_timer tick;

	ev_timer_init(&tick, tick_cb, 0.02, 0.02);
	ev_timer_start(s->loop, &tick);
	while (!pred(s, arg)) {
		if (gd_mono() > deadline) {
			ev_timer_stop(s->loop, &tick);
			fail_msg("timed out waiting for %s", what);
		}
		ev_run(s->loop, EVRUN_ONCE);
	}
	ev_timer_stop(s->loop, &tick);
}

/* Instances of worker "r" in every worker struct named so (retiring or not). */
static int count_r(struct gd_sup *s, int *nworkers_named_r)
{
	int n = 0;

	*nworkers_named_r = 0;
	for (size_t i = 0; i < s->nworkers; i++) {
		if (strcmp(s->workers[i]->conf->name, "r") != 0)
			continue;
		(*nworkers_named_r)++;
		n += (int)s->workers[i]->ninst;
	}
	return n;
}

/* Worker "r" has exactly N instances, r:0 .. r:N-1, each running, in one
 * worker, with nothing retiring left over. */
static bool settled(struct gd_sup *s, void *arg)
{
	int want = *(int *)arg, named, seen = 0;
	struct gd_worker *w;

	if (count_r(s, &named) != want || named != (want ? 1 : 0))
		return false;
	if (!want)
		return true;
	w = gd_sup_find_worker(s, "r");
	if (!w || w->ninst != (size_t)want)
		return false;
	for (size_t j = 0; j < w->ninst; j++) {
		struct gd_instance *in = w->inst[j];

		if (in->retire || in->state != GD_RUNNING || in->pid <= 0 ||
		    in->index < 0 || in->index >= want || (seen & (1 << in->index)))
			return false;
		seen |= 1 << in->index;
	}
	return true;
}

static bool all_at_rest(struct gd_sup *s, void *arg)
{
	return gd_sup_all_at_rest(s);
}

static bool stopped_above(struct gd_sup *s, void *arg)
{
	struct gd_worker *w = gd_sup_find_worker(s, "r");
	int n = *(int *)arg;

	for (size_t j = 0; w && j < w->ninst; j++)
		if (w->inst[j]->index >= n && w->inst[j]->state != GD_STOPPED)
			return false;
	return true;
}

static void start_r(struct gd_sup *s, int n)
{
	assert_int_equal(gd_sup_init(s, ev_default_loop(0), conf_r(n, "60")), 0);
	gd_sup_start_all(s);
	run_until(s, settled, &n, "the first instances to run");
}

static void finish(struct gd_sup *s)
{
	gd_sup_shutdown(s);
	run_until(s, all_at_rest, NULL, "everything to stop");
	gd_sup_free(s);
}

static pid_t pid_of(struct gd_sup *s, const char *id)
{
	struct gd_instance *in = gd_sup_find_instance(s, id);

	assert_non_null(in);
	return in->pid;
}

/* 3 -> 1 -> 3 while r:1 and r:2 are still stopping, the second reload
 * running `sleep ARG`: all three end up running (they once stayed
 * stopped); r:0 is restarted only if the command changed. */
static void shrink_grow_while_stopping(const char *arg)
{
	bool changed = strcmp(arg, "60") != 0;
	struct gd_sup s;
	int three = 3;
	pid_t p0;

	start_r(&s, 3);
	p0 = pid_of(&s, "r:0");
	reload(&s, 1, "60");
	assert_int_equal(gd_sup_find_instance(&s, "r:1")->state, GD_STOPPING);
	reload(&s, 3, arg);
	run_until(&s, settled, &three, "r to have 3 running instances");
	assert_true((pid_of(&s, "r:0") != p0) == changed);
	assert_string_equal(gd_sup_find_worker(&s, "r")->conf->argv[1], arg);
	finish(&s);
}

static void test_shrink_grow_while_stopping(void **state)
{
	shrink_grow_while_stopping("60");
}

static void test_shrink_grow_changed(void **state)
{
	shrink_grow_while_stopping("61");
}

/* The same when the stops are done but not yet collected. */
static void test_shrink_grow_after_stop(void **state)
{
	struct gd_sup s;
	int one = 1, three = 3;

	start_r(&s, 3);
	reload(&s, 1, "60");
	ev_prepare_stop(s.loop, &s.gc);
	run_until(&s, stopped_above, &one, "r:1 and r:2 to stop");
	reload(&s, 3, "60");
	ev_prepare_start(s.loop, &s.gc);
	run_until(&s, settled, &three, "r to have 3 running instances");
	finish(&s);
}

/* 2 -> 5 -> 2 before the new ones have even been looked at. */
static void test_grow_shrink(void **state)
{
	struct gd_sup s;
	int two = 2;

	start_r(&s, 2);
	reload(&s, 5, "60");
	reload(&s, 2, "60");
	run_until(&s, settled, &two, "r to have 2 running instances");
	finish(&s);
}

/* Removed, then re-added while its instances stop: one worker "r", one
 * r:0 (there were once two). */
static void test_remove_readd_while_stopping(void **state)
{
	struct gd_sup s;
	int three = 3, named;

	start_r(&s, 3);
	reload(&s, 0, NULL);
	assert_null(gd_sup_find_worker(&s, "r"));
	reload(&s, 3, "60");
	assert_int_equal(count_r(&s, &named), 3);
	assert_int_equal(named, 1);
	run_until(&s, settled, &three, "r to have 3 running instances");
	finish(&s);
}

/* Removed, re-added with fewer instances, removed again: nothing left. */
static void test_remove_readd_remove(void **state)
{
	struct gd_sup s;
	int zero = 0;

	start_r(&s, 3);
	reload(&s, 0, NULL);
	reload(&s, 2, "60");
	reload(&s, 0, NULL);
	run_until(&s, settled, &zero, "r to be gone");
	finish(&s);
}

/* Removed, re-added after its instances stopped but before they were
 * freed. */
static void test_remove_readd_after_stop(void **state)
{
	struct gd_sup s;
	int zero = 0, two = 2;

	start_r(&s, 3);
	reload(&s, 0, NULL);
	ev_prepare_stop(s.loop, &s.gc);
	run_until(&s, all_at_rest, &zero, "r's instances to stop");
	reload(&s, 2, "60");
	ev_prepare_start(s.loop, &s.gc);
	run_until(&s, settled, &two, "r to have 2 running instances");
	finish(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_states),
		cmocka_unit_test(test_shrink_grow_while_stopping),
		cmocka_unit_test(test_shrink_grow_after_stop),
		cmocka_unit_test(test_shrink_grow_changed),
		cmocka_unit_test(test_grow_shrink),
		cmocka_unit_test(test_remove_readd_while_stopping),
		cmocka_unit_test(test_remove_readd_remove),
		cmocka_unit_test(test_remove_readd_after_stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
