/*
 * test_chan.c - the worker channel's judgement of untrusted messages:
 * what is accepted, what is counted as malformed, and the flood limit.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../greend/chan.h"
#include "../greend/proto.h"

static enum gd_msg parse(struct gd_chan *ch, const char *s, double now)
{
	json_t *dump = NULL;
	enum gd_msg r = gd_chan_parse(ch, s, strlen(s), now, &dump);

	json_decref(dump);
	return r;
}

static void test_hello_and_stats(void **state)
{
	struct gd_chan ch;

	gd_chan_init(&ch, NULL);
	assert_int_equal(parse(&ch, "{\"type\":\"hello\",\"version\":1,\"pid\":42,\"patched\":[\"socket\",\"os\"]}", 1),
			 GD_MSG_HELLO);
	assert_true(ch.hello);
	assert_int_equal(ch.hello_pid, 42);
	assert_int_equal(json_array_size(ch.patched), 2);
	assert_int_equal(json_array_size(ch.warnings), 0);
	assert_int_equal(parse(&ch, "{\"type\":\"hello\",\"version\":1,\"pid\":42,\"patched\":[\"os\"],"
				     "\"warnings\":[\"thread: left unpatched: why\"]}", 1), GD_MSG_HELLO);
	assert_string_equal(json_string_value(json_array_get(ch.warnings, 0)),
			    "thread: left unpatched: why");
	assert_int_equal(parse(&ch, "{\"type\":\"stats\",\"greenlets\":{\"alive\":3,\"spawned\":10,\"finished\":7},"
				     "\"switches\":100,\"timeouts\":1,\"hub\":{\"iterations\":5,\"blocked\":2,"
				     "\"max_blocking_ms\":1.5}}", 2), GD_MSG_STATS);
	assert_true(ch.have_stats);
	assert_int_equal(ch.alive, 3);
	assert_int_equal(ch.hub_blocked, 2);
	assert_true(ch.max_blocking_ms == 1.5);
	assert_int_equal(parse(&ch, "{\"type\":\"stats\",\"greenlets\":{\"alive\":3,\"spawned\":10,\"finished\":7},"
				     "\"switches\":300,\"timeouts\":1}", 4), GD_MSG_STATS);
	assert_true(ch.switches_per_s == 100);
	assert_true(ch.stats_at == 4);
	assert_int_equal(parse(&ch, "{\"type\":\"blocked\",\"greenlet\":9,\"name\":\"w\",\"ms\":12.5}", 5),
			 GD_MSG_BLOCKED);
	assert_int_equal(ch.blocked_reports, 1);
	assert_string_equal(json_string_value(json_object_get(ch.last_blocked, "name")), "w");
	assert_int_equal(ch.malformed, 0);
	gd_chan_reset(&ch);
	assert_false(ch.have_stats);
	assert_null(ch.patched);
	assert_null(ch.warnings);
}

static const char *const lies[] = {
	"",
	"garbage",
	"[]",
	"{}",
	"{\"type\":7}",
	"{\"type\":\"nope\"}",
	"{\"type\":\"hello\",\"version\":1,\"pid\":0,\"patched\":[]}",
	"{\"type\":\"hello\",\"version\":1,\"pid\":5,\"patched\":[\"fs\"]}",
	"{\"type\":\"hello\",\"version\":\"1\",\"pid\":5,\"patched\":[]}",
	"{\"type\":\"hello\",\"version\":1,\"pid\":5,\"patched\":[],\"warnings\":\"x\"}",
	"{\"type\":\"hello\",\"version\":1,\"pid\":5,\"patched\":[],\"warnings\":[7]}",
	"{\"type\":\"stats\",\"greenlets\":{\"alive\":-1,\"spawned\":1,\"finished\":1},\"switches\":1,\"timeouts\":1}",
	"{\"type\":\"stats\",\"greenlets\":{\"alive\":1.5,\"spawned\":1,\"finished\":1},\"switches\":1,\"timeouts\":1}",
	"{\"type\":\"stats\",\"greenlets\":{\"alive\":1,\"spawned\":1,\"finished\":1},\"switches\":\"1\",\"timeouts\":1}",
	"{\"type\":\"stats\",\"greenlets\":{\"alive\":1,\"spawned\":1,\"finished\":1},\"switches\":99999999999999999999,\"timeouts\":1}",
	"{\"type\":\"stats\",\"greenlets\":{\"alive\":1,\"spawned\":1,\"finished\":1},\"switches\":1,\"timeouts\":1,"
	"\"hub\":{\"iterations\":1,\"blocked\":1,\"max_blocking_ms\":1e300}}",
	"{\"type\":\"stats\",\"greenlets\":[],\"switches\":1,\"timeouts\":1}",
	"{\"type\":\"blocked\",\"greenlet\":1,\"ms\":-1}",
	"{\"type\":\"blocked\",\"greenlet\":1,\"name\":5,\"ms\":1}",
	"{\"type\":\"dump\",\"greenlets\":{}}",
	"{\"type\":\"dump\",\"greenlets\":[1]}",
	"{\"type\":\"stats\",\"type\":\"stats\"}",
};

static void test_lies_are_malformed(void **state)
{
	struct gd_chan ch;
	size_t i;

	gd_chan_init(&ch, NULL);
	for (i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		if (parse(&ch, lies[i], 1) != GD_MSG_MALFORMED)
			fail_msg("accepted: %s", lies[i]);
	}
	assert_int_equal(ch.malformed, (long long)i);
	assert_false(ch.have_stats);
	assert_false(ch.hello);
	gd_chan_reset(&ch);
}

static void test_dump(void **state)
{
	struct gd_chan ch;
	json_t *dump = NULL;
	const char *m = "{\"type\":\"dump\",\"greenlets\":[{\"id\":1},{\"id\":2,\"parent\":1}]}";

	gd_chan_init(&ch, NULL);
	assert_int_equal(gd_chan_parse(&ch, m, strlen(m), 1, &dump), GD_MSG_DUMP);
	assert_int_equal(json_array_size(dump), 2);
	assert_false(ch.dump_truncated);
	json_decref(dump);

	/* a dump cut to fit says so and how many it left out; a count of the
	 * rest is a cut even without the flag; lies about it are malformed */
	static const struct {
		const char *msg;
		enum gd_msg r;
		bool truncated;
		long long left_out;
	} cases[] = {
		{ "{\"type\":\"dump\",\"greenlets\":[{\"id\":1}],\"truncated\":true,\"left_out\":9999}",
		  GD_MSG_DUMP, true, 9999 },
		{ "{\"type\":\"dump\",\"greenlets\":[],\"left_out\":3}", GD_MSG_DUMP, true, 3 },
		{ "{\"type\":\"dump\",\"greenlets\":[],\"truncated\":false,\"left_out\":0}",
		  GD_MSG_DUMP, false, 0 },
		{ "{\"type\":\"dump\",\"greenlets\":[],\"truncated\":\"yes\"}", GD_MSG_MALFORMED, false, 0 },
		{ "{\"type\":\"dump\",\"greenlets\":[],\"left_out\":-1}", GD_MSG_MALFORMED, false, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dump = NULL;
		assert_int_equal(gd_chan_parse(&ch, cases[i].msg, strlen(cases[i].msg), 1, &dump),
				 cases[i].r);
		if (cases[i].r != GD_MSG_DUMP)
			continue;
		assert_int_equal(ch.dump_truncated, cases[i].truncated);
		assert_int_equal(ch.dump_left_out, cases[i].left_out);
		json_decref(dump);
	}
}

static void test_listen_report(void **state)
{
	static const char *const bad_reports[] = {
		"{\"type\":\"listen\",\"state\":\"sleeping\",\"accepted\":1,\"open\":0}",
		"{\"type\":\"listen\",\"state\":\"accepting\",\"accepted\":-1,\"open\":0}",
		"{\"type\":\"listen\",\"state\":\"accepting\",\"accepted\":1}",
		"{\"type\":\"listen\",\"state\":7,\"accepted\":1,\"open\":0}",
	};
	struct gd_chan ch;

	(void)state;
	gd_chan_init(&ch, NULL);
	for (size_t i = 0; i < sizeof(bad_reports) / sizeof(bad_reports[0]); i++)
		if (parse(&ch, bad_reports[i], 1) != GD_MSG_MALFORMED)
			fail_msg("accepted: %s", bad_reports[i]);
	assert_false(ch.have_listen);
	assert_int_equal(parse(&ch, "{\"type\":\"listen\",\"state\":\"draining\","
				  "\"listeners\":1,\"accepted\":12,\"open\":3}", 1), GD_MSG_LISTEN);
	assert_true(ch.have_listen);
	assert_string_equal(ch.listen_state, "draining");
	assert_int_equal(ch.listen_accepted, 12);
	assert_int_equal(ch.listen_open, 3);
	gd_chan_reset(&ch);
	assert_false(ch.have_listen);
}

static void test_oversized(void **state)
{
	struct gd_chan ch;
	size_t n = GD_CHAN_MSG_MAX + 10;
	char *big = malloc(n);
	json_t *dump = NULL;

	gd_chan_init(&ch, NULL);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	assert_int_equal(gd_chan_parse(&ch, big, n, 1, &dump), GD_MSG_MALFORMED);
	free(big);
}

static void test_flood_limit(void **state)
{
	struct gd_chan ch;
	bool flood = false;
	int admitted = 0, i;

	gd_chan_init(&ch, NULL);
	ch.tokens_at = 10;
	for (i = 0; i < 100000 && !flood; i++)
		admitted += gd_chan_admit(&ch, 10, &flood);
	assert_true(flood);
	assert_int_equal(admitted, (int)GD_CHAN_BURST);
	assert_int_equal(ch.dropped, GD_CHAN_FLOOD_DROPS + 1);

	/* a steady worker within the refill rate is never dropped */
	gd_chan_init(&ch, NULL);
	for (i = 0; i < 1000; i++) {
		assert_true(gd_chan_admit(&ch, 100 + i * 0.02, &flood));
		assert_false(flood);
	}
	assert_int_equal(ch.dropped, 0);
}

static void test_byte_limit(void **state)
{
	struct gd_chan ch;
	bool flood = false;
	double pause = 0, t = 10;
	int admitted = 0, pauses = 0;

	/* 60 KiB messages as fast as they come: the burst, then one per
	 * refill, each refusal pausing reading until the budget is back. */
	gd_chan_init(&ch, NULL);
	ch.bytes_at = t;
	while (!flood && t < 100) {
		if (gd_chan_admit_bytes(&ch, t, 60 * 1024, &pause, &flood)) {
			admitted++;
			continue;
		}
		pauses++;
		assert_true(pause >= 0.05 && pause <= 1.0);
		t += pause;
	}
	assert_true(flood);
	assert_int_equal(pauses, GD_CHAN_FLOOD_PAUSES);
	assert_int_equal(ch.throttled, GD_CHAN_FLOOD_PAUSES);
	assert_int_equal(admitted, 4 + GD_CHAN_FLOOD_PAUSES - 1);

	/* stats-sized reports at 100 a second never pause */
	gd_chan_init(&ch, NULL);
	for (int i = 0; i < 10000; i++)
		assert_true(gd_chan_admit_bytes(&ch, 100 + i * 0.01, 400, &pause, &flood));
	assert_int_equal(ch.throttled, 0);

	/* an asked-for dump passes an empty budget, once */
	gd_chan_init(&ch, NULL);
	ch.bytes = 0;
	ch.bytes_at = 5;
	ch.dump_wanted = true;
	assert_true(gd_chan_admit_bytes(&ch, 5, 64 * 1024, &pause, &flood));
	assert_false(ch.dump_wanted);
	assert_false(gd_chan_admit_bytes(&ch, 5, 64 * 1024, &pause, &flood));
	assert_true(pause > 1.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_and_stats),
		cmocka_unit_test(test_lies_are_malformed),
		cmocka_unit_test(test_dump),
		cmocka_unit_test(test_listen_report),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_flood_limit),
		cmocka_unit_test(test_byte_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
