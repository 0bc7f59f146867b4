/*
 * test_proto.c - the shared protocol code: bounded line framing, answers,
 * socket path resolution.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../greend/proto.h"

static void test_linebuf(void **state)
{
	struct gd_linebuf lb;
	char *line = NULL;

	gd_linebuf_init(&lb, 8);
	assert_int_equal(gd_linebuf_append(&lb, "ab", 2), 0);
	assert_int_equal(gd_linebuf_next(&lb, &line), 0);
	assert_int_equal(gd_linebuf_append(&lb, "c\r\nde\nf", 7), 0);
	assert_int_equal(gd_linebuf_next(&lb, &line), 1);
	assert_string_equal(line, "abc");
	free(line);
	assert_int_equal(gd_linebuf_next(&lb, &line), 1);
	assert_string_equal(line, "de");
	free(line);
	assert_int_equal(gd_linebuf_next(&lb, &line), 0);
	/* exactly the limit is fine, one more is not, even before its newline */
	assert_int_equal(gd_linebuf_append(&lb, "1234567\n", 8), 0);
	assert_int_equal(gd_linebuf_next(&lb, &line), 1);
	assert_string_equal(line, "f1234567");
	free(line);
	assert_int_equal(gd_linebuf_append(&lb, "123456789", 9), 0);
	assert_int_equal(gd_linebuf_next(&lb, &line), -1);
	assert_int_equal(errno, EMSGSIZE);
	gd_linebuf_free(&lb);
}

static void test_answers(void **state)
{
	json_t *a = gd_answer_error("no_such_worker", "no worker named \"%s\"", "x");
	size_t n;
	char *s = gd_json_line(a, &n);

	assert_string_equal(s, "{\"ok\":false,\"code\":\"no_such_worker\",\"error\":\"no worker named \\\"x\\\"\"}\n");
	assert_int_equal(n, strlen(s));
	free(s);
	json_decref(a);
	a = gd_answer_ok();
	s = gd_json_line(a, NULL);
	assert_string_equal(s, "{\"ok\":true}\n");
	free(s);
	json_decref(a);
}

static void test_utf8_cut(void **state)
{
	/* "a" then three 2-byte characters */
	const char *s = "a\xc3\xa9\xc3\xa9\xc3\xa9";
	char buf[64];

	assert_int_equal(gd_utf8_prefix(s, 0), 0);
	assert_int_equal(gd_utf8_prefix(s, 1), 1);
	assert_int_equal(gd_utf8_prefix(s, 2), 1);  /* not inside the first e-acute */
	assert_int_equal(gd_utf8_prefix(s, 4), 3);
	assert_int_equal(gd_utf8_prefix(s, 100), 7);
	/* 4-byte (U+1F600) and 3-byte (U+20AC) characters */
	assert_int_equal(gd_utf8_prefix("\xf0\x9f\x98\x80x", 3), 0);
	assert_int_equal(gd_utf8_prefix("\xf0\x9f\x98\x80x", 4), 4);
	assert_int_equal(gd_utf8_prefix("\xe2\x82\xacx", 2), 0);

	/* a character cut at the end is dropped */
	strcpy(buf, "ab\xc3");
	assert_int_equal(gd_utf8_fix(buf), 2);
	assert_string_equal(buf, "ab");
	strcpy(buf, "\xf0\x9f\x98");
	assert_int_equal(gd_utf8_fix(buf), 0);
	/* invalid bytes elsewhere become '?': stray continuation, overlong,
	 * surrogate, past U+10FFFF, 0xff */
	strcpy(buf, "x\x80y\xc0\xafz\xed\xa0\x80w\xf4\x90\x80\x80v\xff");
	gd_utf8_fix(buf);
	assert_string_equal(buf, "x?y??z???w????v?");
	strcpy(buf, "ok \xc3\xa9");
	assert_int_equal(gd_utf8_fix(buf), 5);
	assert_string_equal(buf, "ok \xc3\xa9");
}

static void test_answer_text_always_valid(void **state)
{
	char big[2100];
	json_t *a, *t;
	char *line;

	/* An error text cut by the buffer inside a character still makes an
	 * answer; so does one quoting bytes that are not UTF-8. */
	for (int shift = 0; shift < 2; shift++) {
		memset(big, 'x', (size_t)shift);
		for (int i = shift; i + 1 < 2000; i += 2) {
			big[i] = '\xc3';
			big[i + 1] = '\xa9';
		}
		big[2000] = '\0';
		a = gd_answer_error("bad_config", "%s", big);
		assert_non_null(a);
		line = gd_json_line(a, NULL);
		assert_non_null(line);
		free(line);
		json_decref(a);
	}
	a = gd_answer_error("bad_request", "name \"%s\"", "\xff\xfe");
	assert_non_null(a);
	assert_string_equal(json_string_value(json_object_get(a, "error")), "name \"??\"");
	json_decref(a);
	t = gd_json_text("/etc/conf\xff/greend.json");
	assert_non_null(t);
	assert_string_equal(json_string_value(t), "/etc/conf?/greend.json");
	json_decref(t);
	t = gd_json_text(NULL);
	assert_true(json_is_null(t));
}

static void test_socket_paths(void **state)
{
	char buf[256];

	assert_int_equal(gd_client_socket_path("/x.sock", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/x.sock");
	setenv("GREEND_SOCKET", "/env.sock", 1);
	assert_int_equal(gd_client_socket_path(NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/env.sock");
	unsetenv("GREEND_SOCKET");
	setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
	assert_int_equal(gd_client_socket_path(NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, geteuid() == 0 ? "/run/greend/control.sock"
						: "/run/user/1000/greend/control.sock");
	assert_int_equal(gd_client_socket_path("/x.sock", buf, 4), -1);
	assert_int_equal(errno, ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_linebuf),
		cmocka_unit_test(test_answers),
		cmocka_unit_test(test_utf8_cut),
		cmocka_unit_test(test_answer_text_always_valid),
		cmocka_unit_test(test_socket_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
