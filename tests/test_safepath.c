/*
 * test_safepath.c - which directories greend trusts with its files, and
 * the checked walk that opens them.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../greend/safepath.h"

static void test_dir_rules(void **state)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFDIR | 0755;
	st.st_uid = 0;
	assert_null(gd_dir_untrusted(&st));
	st.st_uid = geteuid();
	assert_null(gd_dir_untrusted(&st));
	st.st_mode = S_IFDIR | 01777; /* /tmp */
	assert_null(gd_dir_untrusted(&st));
	st.st_mode = S_IFDIR | 0777;
	assert_non_null(gd_dir_untrusted(&st));
	st.st_mode = S_IFDIR | 0775;
	assert_non_null(gd_dir_untrusted(&st));
	st.st_mode = S_IFREG | 0755;
	assert_non_null(gd_dir_untrusted(&st));
	st.st_mode = S_IFDIR | 0755;
	st.st_uid = geteuid() + 1;
	if (st.st_uid != 0)
		assert_non_null(gd_dir_untrusted(&st));
}

static void test_walk(void **state)
{
	char base[] = "/tmp/test_safepath.XXXXXX", sub[64], link[64], err[512];
	int fd;

	assert_non_null(mkdtemp(base));
	chmod(base, 0755);
	snprintf(sub, sizeof(sub), "%s/d", base);
	snprintf(link, sizeof(link), "%s/l", base);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(symlink("d", link), 0);

	fd = gd_open_trusted_dir(sub, err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);
	/* a symlink the owner made is resolved first, then walked */
	fd = gd_open_trusted_dir(link, err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);

	chmod(sub, 0777);
	fd = gd_open_trusted_dir(sub, err, sizeof(err));
	assert_int_equal(fd, -1);
	assert_int_equal(errno, EPERM);
	assert_non_null(strstr(err, "/d is writable by group or others and not sticky"));
	assert_non_null(strstr(err, "mode 0777"));
	chmod(sub, 01777);
	fd = gd_open_trusted_dir(sub, err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);

	fd = gd_open_trusted_dir("/nonexistent/dir", err, sizeof(err));
	assert_int_equal(fd, -1);
	assert_int_equal(errno, ENOENT);

	unlink(link);
	rmdir(sub);
	rmdir(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dir_rules),
		cmocka_unit_test(test_walk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
