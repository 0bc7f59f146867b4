/*
 * test_spawn.c - what greend learns when a worker's exec fails: the
 * child's report (errno and sentence) read back from the error pipe, and
 * which errnos are weather (retried by the restart policy) rather than a
 * broken command (fatal).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "../greend/spawn.h"

static int read_back(const char *written, char *buf, size_t len, int *err_no)
{
	int p[2], n;

	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	if (*written)
		assert_int_equal(write(p[1], written, strlen(written)), (ssize_t)strlen(written));
	close(p[1]);
	n = gd_spawn_read_error(p[0], buf, len, err_no);
	close(p[0]);
	return n;
}

static void test_read_error(void **state)
{
	char buf[256], tiny[8];
	int e = -1;

	assert_int_equal(read_back("", buf, sizeof(buf), &e), 0);
	assert_int_equal(e, 0);
	assert_string_equal(buf, "");

	read_back("24:dup: Too many open files", buf, sizeof(buf), &e);
	assert_int_equal(e, EMFILE);
	assert_string_equal(buf, "dup: Too many open files");

	read_back("2:exec /nope: No such file or directory", buf, sizeof(buf), &e);
	assert_int_equal(e, ENOENT);
	assert_string_equal(buf, "exec /nope: No such file or directory");

	/* Not the child's format: shown as it came, with no errno. */
	read_back("something odd", buf, sizeof(buf), &e);
	assert_int_equal(e, 0);
	assert_string_equal(buf, "something odd");
	read_back("99999:x", buf, sizeof(buf), &e);
	assert_int_equal(e, 0);
	assert_string_equal(buf, "99999:x");

	/* Cut to the buffer, terminated. */
	read_back("12:out of memory here", tiny, sizeof(tiny), &e);
	assert_int_equal(e, ENOMEM);
	assert_string_equal(tiny, "out of ");
}

static void test_transient(void **state)
{
	static const int weather[] = { EMFILE, ENFILE, EAGAIN, ENOMEM, EINTR, ENOBUFS };
	static const int broken[] = { ENOENT, EACCES, ENOEXEC, EPERM, E2BIG, ENOTDIR, 0 };

	for (size_t i = 0; i < sizeof(weather) / sizeof(weather[0]); i++)
		assert_true(gd_spawn_errno_transient(weather[i]));
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++)
		assert_false(gd_spawn_errno_transient(broken[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_error),
		cmocka_unit_test(test_transient),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
