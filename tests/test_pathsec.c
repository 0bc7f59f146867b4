/*
 * test_pathsec.c - what greend refuses to trust as root: files and
 * directories on the way that others could change, along the path as
 * written and as resolved; and a config whose own file, preload or worker
 * executable is such a path, unless allow_insecure_paths.  Needs root
 * (chown); skips otherwise.
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

#include "../greend/config.h"
#include "../greend/pathsec.h"

#define NOBODY 65534

static char top[64];

static const char *at(const char *rel)
{
	static char bufs[4][256];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, 256, "%s/%s", top, rel);
	return b;
}

static void make_file(const char *rel, mode_t mode, uid_t uid)
{
	FILE *f = fopen(at(rel), "w");

	assert_non_null(f);
	fputs("{\"workers\":[]}\n", f);
	fclose(f);
	assert_int_equal(chmod(at(rel), mode), 0);
	assert_int_equal(chown(at(rel), uid, 0), 0);
}

static void make_dir(const char *rel, mode_t mode, uid_t uid)
{
	assert_int_equal(mkdir(at(rel), 0700), 0);
	assert_int_equal(chmod(at(rel), mode), 0);
	assert_int_equal(chown(at(rel), uid, 0), 0);
}

static int setup(void **state)
{
	if (geteuid() != 0) {
		print_message("skipped: needs root\n");
		return 0;
	}
	snprintf(top, sizeof(top), "/tmp/test_pathsec.XXXXXX");
	assert_non_null(mkdtemp(top));
	assert_int_equal(chmod(top, 0755), 0);
	make_dir("ok", 0755, 0);
	make_file("ok/f", 0644, 0);
	make_file("ok/world", 0666, 0);
	make_file("ok/group", 0664, 0);
	assert_int_equal(chown(at("ok/group"), 0, NOBODY), 0);
	make_file("ok/nobodys", 0644, NOBODY);
	make_file("ok/nobodys-ro", 0444, NOBODY);
	make_dir("open", 0777, 0);
	make_file("open/f", 0644, 0);
	make_dir("sticky", 01777, 0);
	make_file("sticky/f", 0644, 0);
	make_dir("nbdir", 0755, NOBODY);
	make_file("nbdir/f", 0644, 0);
	assert_int_equal(symlink(at("open/f"), at("ok/link-to-open")), 0);
	assert_int_equal(symlink(at("ok/f"), at("open/link-to-ok")), 0);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	if (top[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
		if (system(cmd) != 0)
			return -1;
	}
	return 0;
}

static void expect(const char *rel, uid_t owner, const char *want)
{
	char err[1024] = "";
	int r = gd_path_check(at(rel), owner, "thing", err, sizeof(err));

	if (!want) {
		if (r != 0)
			fail_msg("%s refused: %s", rel, err);
		return;
	}
	if (r != -1 || errno != EPERM)
		fail_msg("%s accepted", rel);
	if (!strstr(err, want))
		fail_msg("%s: \"%s\" does not say \"%s\"", rel, err, want);
}

static void test_path_check(void **state)
{
	char want[256];

	if (geteuid() != 0)
		skip();
	expect("ok/f", (uid_t)-1, NULL);
	expect("ok/missing", (uid_t)-1, NULL);
	expect("ok/world", (uid_t)-1, "thing ");
	expect("ok/world", (uid_t)-1, "ok/world is writable by others (mode 0666, owner uid 0");
	expect("ok/group", (uid_t)-1, "is writable by a group other than root's (mode 0664");
	expect("ok/nobodys", (uid_t)-1, "owned by a user other than root with write bits (mode 0644, owner uid 65534");
	/* the user a worker runs as may own its own executable */
	expect("ok/nobodys", NOBODY, NULL);
	expect("ok/nobodys-ro", (uid_t)-1, NULL);
	snprintf(want, sizeof(want), "directory %s is writable by others (mode 0777", at("open"));
	expect("open/f", (uid_t)-1, want);
	expect("open/missing", (uid_t)-1, want);
	expect("sticky/f", (uid_t)-1, NULL);
	snprintf(want, sizeof(want), "directory %s is owned by a user other than root", at("nbdir"));
	expect("nbdir/f", (uid_t)-1, want);
	/* a safe name resolving into an unsafe place, and the reverse */
	snprintf(want, sizeof(want), "directory %s is writable by others", at("open"));
	expect("ok/link-to-open", (uid_t)-1, want);
	expect("open/link-to-ok", (uid_t)-1, want);
}

static void write_conf(const char *rel, const char *text, mode_t mode)
{
	FILE *f = fopen(at(rel), "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(at(rel), mode), 0);
}

static void test_config_refused(void **state)
{
	char err[2048], text[1024], want[512];
	struct gd_config *cfg;

	if (geteuid() != 0)
		skip();
	/* The config file itself. */
	write_conf("ok/c1.json", "{\"workers\":[]}", 0666);
	cfg = gd_config_load(at("ok/c1.json"), err, sizeof(err));
	assert_null(cfg);
	assert_int_equal(errno, EPERM);
	snprintf(want, sizeof(want), "%s: config file %s is writable by others (mode 0666",
		 at("ok/c1.json"), at("ok/c1.json"));
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("\"%s\" does not start with \"%s\"", err, want);
	assert_non_null(strstr(err, "refusing it as root (set \"allow_insecure_paths\": true"));
	write_conf("ok/c1.json", "{\"allow_insecure_paths\":true,\"workers\":[]}", 0666);
	cfg = gd_config_load(at("ok/c1.json"), err, sizeof(err));
	assert_non_null(cfg);
	assert_true(cfg->allow_insecure_paths);
	gd_config_free(cfg);

	/* The preload library. */
	snprintf(text, sizeof(text), "{\"preload\":\"%s\",\"workers\":[]}", at("ok/world"));
	write_conf("ok/c2.json", text, 0644);
	assert_null(gd_config_load(at("ok/c2.json"), err, sizeof(err)));
	snprintf(want, sizeof(want), "preload library %s is writable by others (mode 0666",
		 at("ok/world"));
	assert_non_null(strstr(err, want));

	/* A worker's executable, by path and found on its PATH. */
	snprintf(text, sizeof(text),
		 "{\"workers\":[{\"name\":\"a\",\"command\":[\"/bin/true\"]},"
		 "{\"name\":\"b\",\"command\":[\"%s\"]}]}", at("ok/nobodys"));
	write_conf("ok/c3.json", text, 0644);
	assert_null(gd_config_load(at("ok/c3.json"), err, sizeof(err)));
	snprintf(want, sizeof(want), "workers[1].command[0]: %s is owned by a user other than root",
		 at("ok/nobodys"));
	assert_non_null(strstr(err, want));
	snprintf(text, sizeof(text),
		 "{\"workers\":[{\"name\":\"b\",\"command\":[\"f\"],\"env\":{\"PATH\":\"%s:%s\"}}]}",
		 at("ok"), at("open"));
	write_conf("ok/c4.json", text, 0644);
	assert_int_equal(chmod(at("ok/f"), 0755), 0);
	cfg = gd_config_load(at("ok/c4.json"), err, sizeof(err));
	if (!cfg)
		fail_msg("%s", err);
	gd_config_free(cfg);
	/* Found after an open directory on PATH, which could shadow it. */
	snprintf(text, sizeof(text),
		 "{\"workers\":[{\"name\":\"b\",\"command\":[\"f\"],\"env\":{\"PATH\":\"%s:%s\"}}]}",
		 at("open"), at("ok"));
	write_conf("ok/c4.json", text, 0644);
	assert_null(gd_config_load(at("ok/c4.json"), err, sizeof(err)));
	snprintf(want, sizeof(want), "workers[0].command[0]: PATH directory %s is writable by others",
		 at("open"));
	assert_non_null(strstr(err, want));
	/* Not root's business when the option says so. */
	snprintf(text, sizeof(text),
		 "{\"allow_insecure_paths\":true,\"workers\":[{\"name\":\"b\",\"command\":[\"%s\"]}]}",
		 at("open/f"));
	write_conf("ok/c5.json", text, 0644);
	cfg = gd_config_load(at("ok/c5.json"), err, sizeof(err));
	assert_non_null(cfg);
	gd_config_free(cfg);
	write_conf("ok/c6.json", "{\"allow_insecure_paths\":1}", 0644);
	assert_null(gd_config_load(at("ok/c6.json"), err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: allow_insecure_paths: expected true or false", at("ok/c6.json"));
	assert_string_equal(err, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_check),
		cmocka_unit_test(test_config_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
