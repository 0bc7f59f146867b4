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
		cmocka_unit_test(test_socket_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
