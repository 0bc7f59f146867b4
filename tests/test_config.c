/*
 * test_config.c - greend.json validation: a table of invalid configs, each
 * with the exact message a user would see, and valid ones with the defaults
 * and path resolution they must produce.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../greend/config.h"

#define W(body) "{\"workers\":[{\"name\":\"w\",\"command\":[\"/bin/true\"]," body "}]}"

static const struct bad {
	const char *text;
	const char *msg;
} bad[] = {
	{ "", "t.json:1:0: '[' or '{' expected near end of file" },
	{ "[]", "t.json: (top level): expected a JSON object" },
	{ "{\"workers\":[}", "t.json:1:13: unexpected token near '}'" },
	{ "{\"a\":1,\n \"a\":2}", "t.json:2:4: duplicate object key near '\"a\"'" },
	{ "{\"nope\":1}", "t.json: nope: unknown key" },
	{ "{\"control_socket\":5}", "t.json: control_socket: expected a string" },
	{ "{\"control_socket\":\"\"}", "t.json: control_socket: must not be empty" },
	{ "{\"socket_mode\":660}", "t.json: socket_mode: expected an octal mode string such as \"0660\"" },
	{ "{\"socket_mode\":\"0980\"}", "t.json: socket_mode: expected an octal mode string such as \"0660\"" },
	{ "{\"socket_mode\":\"07777\"}", "t.json: socket_mode: expected an octal mode string such as \"0660\"" },
	{ "{\"socket_group\":[]}", "t.json: socket_group: expected a string" },
	{ "{\"preload\":null}", "t.json: preload: expected a string" },
	{ "{\"stats_interval_ms\":5}", "t.json: stats_interval_ms: expected an integer from 10 to 3600000" },
	{ "{\"stats_interval_ms\":\"1000\"}", "t.json: stats_interval_ms: expected an integer from 10 to 3600000" },
	{ "{\"log_max_bytes\":100}", "t.json: log_max_bytes: expected 0 (never rotate) or at least 4096" },
	{ "{\"log_backups\":-1}", "t.json: log_backups: expected an integer from 0 to 100" },
	{ "{\"workers\":{}}", "t.json: workers: expected an array of objects" },
	{ "{\"workers\":[1]}", "t.json: workers[0]: expected an object" },
	{ "{\"workers\":[{\"command\":[\"x\"]}]}", "t.json: workers[0]: missing required key \"name\"" },
	{ "{\"workers\":[{\"name\":\"a\"}]}", "t.json: workers[0]: missing required key \"command\"" },
	{ "{\"workers\":[{\"name\":\"a b\",\"command\":[\"x\"]}]}",
	  "t.json: workers[0].name: expected 1 to 64 characters from A-Z a-z 0-9 _ . -" },
	{ "{\"workers\":[{\"name\":\"\",\"command\":[\"x\"]}]}",
	  "t.json: workers[0].name: expected 1 to 64 characters from A-Z a-z 0-9 _ . -" },
	{ "{\"workers\":[{\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"command\":[\"x\"]}]}",
	  "t.json: workers[0].name: expected 1 to 64 characters from A-Z a-z 0-9 _ . -" },
	{ "{\"workers\":[{\"name\":\"a\",\"command\":[\"x\"]},{\"name\":\"a\",\"command\":[\"y\"]}]}",
	  "t.json: workers[1].name: duplicate name \"a\" (also workers[0])" },
	{ "{\"workers\":[{\"name\":\"a\",\"command\":\"x\"}]}",
	  "t.json: workers[0].command: expected a non-empty array of strings" },
	{ "{\"workers\":[{\"name\":\"a\",\"command\":[]}]}",
	  "t.json: workers[0].command: expected a non-empty array of strings" },
	{ "{\"workers\":[{\"name\":\"a\",\"command\":[\"x\",2]}]}", "t.json: workers[0].command[1]: expected a string" },
	{ "{\"workers\":[{\"name\":\"a\",\"command\":[\"\"]}]}", "t.json: workers[0].command[0]: the program must not be empty" },
	{ W("\"instances\":0"), "t.json: workers[0].instances: expected an integer from 1 to 1024" },
	{ W("\"instances\":1025"), "t.json: workers[0].instances: expected an integer from 1 to 1024" },
	{ W("\"instances\":1.5"), "t.json: workers[0].instances: expected an integer from 1 to 1024" },
	{ W("\"instances\":true"), "t.json: workers[0].instances: expected an integer from 1 to 1024" },
	{ W("\"patch\":\"some\""), "t.json: workers[0].patch: expected \"all\", \"none\" or a list of modules" },
	{ W("\"patch\":7"), "t.json: workers[0].patch: expected \"all\", \"none\" or a list of modules" },
	{ W("\"patch\":[\"socket\",\"fs\"]"),
	  "t.json: workers[0].patch[1]: unknown module \"fs\" (known: socket, select, time, thread, dns, os)" },
	{ W("\"patch\":[\"time\",\"time\"]"), "t.json: workers[0].patch[1]: module \"time\" listed twice" },
	{ W("\"patch\":[1]"), "t.json: workers[0].patch[0]: expected a module name string" },
	{ W("\"env\":[]"), "t.json: workers[0].env: expected an object of strings" },
	{ W("\"env\":{\"A\":1}"), "t.json: workers[0].env.A: expected a string" },
	{ W("\"env\":{\"1A\":\"x\"}"), "t.json: workers[0].env.1A: not a valid environment variable name" },
	{ W("\"env\":{\"A=B\":\"x\"}"), "t.json: workers[0].env.A=B: not a valid environment variable name" },
	{ W("\"env\":{\"GREEN_PATCH\":\"x\"}"), "t.json: workers[0].env.GREEN_PATCH: set by greend; use the worker's keys instead" },
	{ W("\"cwd\":\"\""), "t.json: workers[0].cwd: must not be empty" },
	{ W("\"user\":0"), "t.json: workers[0].user: expected a string" },
	{ W("\"group\":false"), "t.json: workers[0].group: expected a string" },
	{ W("\"umask\":\"9\""), "t.json: workers[0].umask: expected an octal mode string such as \"0660\"" },
	{ W("\"restart\":\"sometimes\""),
	  "t.json: workers[0].restart: expected \"always\", \"on-failure\" or \"never\"" },
	{ W("\"restart\":true"), "t.json: workers[0].restart: expected \"always\", \"on-failure\" or \"never\"" },
	{ W("\"start_secs\":-1"), "t.json: workers[0].start_secs: expected a number from 0 to 3600" },
	{ W("\"start_secs\":\"1\""), "t.json: workers[0].start_secs: expected a number from 0 to 3600" },
	{ W("\"max_restarts\":-2"), "t.json: workers[0].max_restarts: expected an integer from 0 to 1000000" },
	{ W("\"restart_window_s\":0"), "t.json: workers[0].restart_window_s: expected a number from 1 to 86400" },
	{ W("\"backoff_ms\":99999999"), "t.json: workers[0].backoff_ms: expected an integer from 0 to 3600000" },
	{ W("\"backoff_ms\":500,\"backoff_max_ms\":100"),
	  "t.json: workers[0].backoff_max_ms: must not be less than backoff_ms (500)" },
	{ W("\"stop_signal\":\"SIGFOO\""),
	  "t.json: workers[0].stop_signal: expected a signal name: TERM, INT, QUIT, HUP, KILL, USR1, USR2, ALRM or WINCH" },
	{ W("\"stop_signal\":15"),
	  "t.json: workers[0].stop_signal: expected a signal name: TERM, INT, QUIT, HUP, KILL, USR1, USR2, ALRM or WINCH" },
	{ W("\"stop_timeout_s\":7200"), "t.json: workers[0].stop_timeout_s: expected a number from 0 to 3600" },
	{ W("\"max_blocking_ms\":-5"), "t.json: workers[0].max_blocking_ms: expected an integer from 0 to 3600000" },
	{ W("\"stack_size\":\"256Q\""),
	  "t.json: workers[0].stack_size: expected a size from 16K to 1024M (bytes, or a string such as \"256K\", \"1MiB\" or \"1G\")" },
	{ W("\"stack_size\":1024"),
	  "t.json: workers[0].stack_size: expected a size from 16K to 1024M (bytes, or a string such as \"256K\", \"1MiB\" or \"1G\")" },
	{ W("\"stack_size\":\"2048M\""),
	  "t.json: workers[0].stack_size: expected a size from 16K to 1024M (bytes, or a string such as \"256K\", \"1MiB\" or \"1G\")" },
	/* 9007199254740993 MiB overflows 64 bits; it once wrapped (signed
	 * overflow, an abort under UBSan) into an accepted size. */
	{ W("\"stack_size\":\"9007199254740993M\""),
	  "t.json: workers[0].stack_size: expected a size from 16K to 1024M (bytes, or a string such as \"256K\", \"1MiB\" or \"1G\")" },
	{ W("\"stack_size\":\"17179869184G\""),
	  "t.json: workers[0].stack_size: expected a size from 16K to 1024M (bytes, or a string such as \"256K\", \"1MiB\" or \"1G\")" },
	{ W("\"stack_size\":-65536"),
	  "t.json: workers[0].stack_size: expected a size from 16K to 1024M (bytes, or a string such as \"256K\", \"1MiB\" or \"1G\")" },
	{ W("\"stack_size\":\" 64K\""),
	  "t.json: workers[0].stack_size: expected a size from 16K to 1024M (bytes, or a string such as \"256K\", \"1MiB\" or \"1G\")" },
	{ W("\"colour\":\"green\""), "t.json: workers[0].colour: unknown key" },
	{ W("\"listen\":\"127.0.0.1:80\""),
	  "t.json: workers[0].listen: expected an array of \"HOST:PORT\", \"[V6]:PORT\" or \"unix:PATH\"" },
	{ W("\"listen\":[80]"), "t.json: workers[0].listen[0]: expected a string" },
	{ W("\"listen\":[\"localhost:80\"]"),
	  "t.json: workers[0].listen[0]: the host must be a numeric IPv4 address (greend resolves no names) (got \"localhost:80\")" },
	{ W("\"listen\":[\"127.0.0.1:0\"]"),
	  "t.json: workers[0].listen[0]: the port must be a number from 1 to 65535 (got \"127.0.0.1:0\")" },
	{ W("\"listen\":[\"::1:80\"]"),
	  "t.json: workers[0].listen[0]: an IPv6 address needs brackets: \"[::1]:PORT\" (got \"::1:80\")" },
	{ W("\"listen\":[\"[::1]:80\",\"[0::1]:80\"]"), "t.json: workers[0].listen[1]: [::1]:80 is also listen[0]" },
	{ "{\"workers\":[{\"name\":\"a\",\"command\":[\"x\"],\"listen\":[\"127.0.0.1:81\"]},"
	  "{\"name\":\"b\",\"command\":[\"x\"],\"listen\":[\"127.0.0.1:81\"]}]}",
	  "t.json: workers[1].listen[0]: 127.0.0.1:81 is also listened on by worker \"a\"" },
	{ W("\"listen_mode\":\"rw\""), "t.json: workers[0].listen_mode: expected an octal mode string such as \"0660\"" },
	{ W("\"backlog\":0"), "t.json: workers[0].backlog: expected an integer from 1 to 65535" },
	{ W("\"ready_timeout_s\":0"), "t.json: workers[0].ready_timeout_s: expected a number from 0.1 to 3600" },
	{ W("\"drain_timeout_s\":-1"), "t.json: workers[0].drain_timeout_s: expected a number from 0 to 3600" },
	{ "{\"workers\":[{\"name\":\"a\",\"command\":[\"x\"]},{\"name\":\"b\",\"command\":[\"x\"],\"instances\":\"2\"}]}",
	  "t.json: workers[1].instances: expected an integer from 1 to 1024" },
	{ "{\"control_socket\":\"/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
	  "t.json: control_socket: longer than 107 bytes once made absolute (/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa)" },
	{ "{\"workers\":[{\"name\":\"a\",\n  \"command\":[\"x\"],\n  \"instances\":2,}]}",
	  "t.json:3:17: string or '}' expected near '}'" },
};

static void test_invalid_table(void **state)
{
	char err[1024];
	size_t i;

	assert_true(sizeof(bad) / sizeof(bad[0]) >= 30);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct gd_config *cfg;

		err[0] = '\0';
		cfg = gd_config_parse(bad[i].text, "t.json", "/etc/greend", err, sizeof(err));
		if (cfg || strcmp(err, bad[i].msg) != 0)
			fail_msg("case %zu: %s\n  got:  %s\n  want: %s", i, bad[i].text,
				 cfg ? "(accepted)" : err, bad[i].msg);
		gd_config_free(cfg);
	}
}

static void test_defaults(void **state)
{
	char err[1024];
	struct gd_config *cfg;
	struct gd_worker_conf *w;

	cfg = gd_config_parse("{\"workers\":[{\"name\":\"web\",\"command\":[\"/bin/sleep\",\"1\"]}]}",
			      "t.json", "/etc/greend", err, sizeof(err));
	assert_non_null(cfg);
	assert_int_equal(cfg->socket_mode, 0660);
	assert_null(cfg->socket_group);
	assert_null(cfg->preload);
	assert_null(cfg->log_dir);
	assert_int_equal(cfg->stats_interval_ms, 1000);
	assert_int_equal(cfg->log_max_bytes, 10 * 1024 * 1024);
	assert_int_equal(cfg->log_backups, 5);
	assert_int_equal(cfg->dump_timeout_ms, 2000);
	assert_non_null(cfg->control_socket);
	assert_int_equal(cfg->nworkers, 1);
	w = cfg->workers[0];
	assert_string_equal(w->name, "web");
	assert_string_equal(w->argv[0], "/bin/sleep");
	assert_string_equal(w->argv[1], "1");
	assert_null(w->argv[2]);
	assert_int_equal(w->instances, 1);
	assert_string_equal(w->patch, "all");
	assert_null(w->env);
	assert_null(w->cwd);
	assert_null(w->user);
	assert_int_equal(w->umask, -1);
	assert_int_equal(w->restart, GD_RESTART_ON_FAILURE);
	assert_true(w->start_secs == 1);
	assert_int_equal(w->max_restarts, 5);
	assert_true(w->restart_window_s == 60);
	assert_int_equal(w->backoff_ms, 100);
	assert_int_equal(w->backoff_max_ms, 30000);
	assert_int_equal(w->stop_signal, SIGTERM);
	assert_true(w->stop_timeout_s == 10);
	assert_int_equal(w->max_blocking_ms, 0);
	assert_int_equal(w->stack_size, 0);
	assert_null(w->listen);
	assert_int_equal(w->nlisten, 0);
	assert_int_equal(w->listen_mode, 0660);
	assert_int_equal(w->backlog, 1024);
	assert_true(w->ready_timeout_s == 10);
	assert_true(w->drain_timeout_s == 30);
	gd_config_free(cfg);
}

static void test_listen(void **state)
{
	static const char text[] =
		"{\"workers\":[{\"name\":\"web\",\"command\":[\"x\"],"
		" \"listen\":[\"127.0.0.1:8080\",\"[0:0::1]:8080\",\"0.0.0.0:80\",\"unix:run/web.sock\"],"
		" \"listen_mode\":\"0600\",\"backlog\":64,\"ready_timeout_s\":2.5,\"drain_timeout_s\":0}]}";
	char err[1024];
	struct gd_config *cfg;
	struct gd_worker_conf *w;

	(void)state;
	cfg = gd_config_parse(text, "t.json", "/etc/greend", err, sizeof(err));
	if (!cfg)
		fail_msg("%s", err);
	w = cfg->workers[0];
	assert_int_equal(w->nlisten, 4);
	/* As gd_addr_format spells them, relative paths made absolute. */
	assert_string_equal(w->listen[0], "127.0.0.1:8080");
	assert_string_equal(w->listen[1], "[::1]:8080");
	assert_string_equal(w->listen[2], "0.0.0.0:80");
	assert_string_equal(w->listen[3], "unix:/etc/greend/run/web.sock");
	assert_null(w->listen[4]);
	assert_int_equal(w->listen_mode, 0600);
	assert_int_equal(w->backlog, 64);
	assert_true(w->ready_timeout_s == 2.5);
	assert_true(w->drain_timeout_s == 0);
	assert_non_null(json_object_get(w->effective, "listen"));
	assert_int_equal(json_array_size(json_object_get(w->effective, "listen")), 4);
	gd_config_free(cfg);
}

static void test_full_and_paths(void **state)
{
	static const char text[] =
		"{\"control_socket\":\"run/c.sock\",\"socket_mode\":\"0600\",\"socket_group\":\"adm\","
		" \"preload\":\"../lib/libgreen-preload.so\",\"log_dir\":\"./logs\",\"stats_interval_ms\":250,"
		" \"workers\":[{\"name\":\"a.b-c_1\",\"command\":[\"bin/srv\",\"x\"],\"instances\":3,"
		"  \"patch\":[\"socket\",\"dns\"],\"env\":{\"A\":\"1\",\"B_2\":\"two words\"},\"cwd\":\".\","
		"  \"user\":\"nobody\",\"group\":\"nogroup\",\"umask\":\"022\",\"restart\":\"always\",\"start_secs\":0.5,"
		"  \"max_restarts\":0,\"restart_window_s\":10,\"backoff_ms\":0,\"backoff_max_ms\":0,"
		"  \"stop_signal\":\"SIGINT\",\"stop_timeout_s\":0,\"max_blocking_ms\":200,\"stack_size\":\"256K\"},"
		"  {\"name\":\"p\",\"command\":[\"python3\"],\"patch\":\"none\",\"stack_size\":65536},"
		"  {\"name\":\"q\",\"command\":[\"python3\"],\"patch\":[]}]}";
	char err[1024];
	struct gd_config *cfg;
	struct gd_worker_conf *w;

	cfg = gd_config_parse(text, "t.json", "/etc/greend", err, sizeof(err));
	if (!cfg)
		fail_msg("%s", err);
	assert_string_equal(cfg->control_socket, "/etc/greend/run/c.sock");
	assert_int_equal(cfg->socket_mode, 0600);
	assert_string_equal(cfg->socket_group, "adm");
	assert_string_equal(cfg->preload, "/etc/greend/../lib/libgreen-preload.so");
	assert_string_equal(cfg->log_dir, "/etc/greend/logs");
	assert_int_equal(cfg->stats_interval_ms, 250);
	w = cfg->workers[0];
	assert_string_equal(w->argv[0], "/etc/greend/bin/srv");
	assert_int_equal(w->instances, 3);
	assert_string_equal(w->patch, "socket,dns");
	assert_string_equal(w->env[0], "A=1");
	assert_string_equal(w->env[1], "B_2=two words");
	assert_null(w->env[2]);
	assert_string_equal(w->cwd, "/etc/greend");
	assert_string_equal(w->user, "nobody");
	assert_string_equal(w->group, "nogroup");
	assert_int_equal(w->umask, 022);
	assert_int_equal(w->restart, GD_RESTART_ALWAYS);
	assert_true(w->start_secs == 0.5);
	assert_int_equal(w->stop_signal, SIGINT);
	assert_int_equal(w->max_blocking_ms, 200);
	assert_int_equal(w->stack_size, 256 * 1024);
	/* a bare program name stays for PATH lookup */
	assert_string_equal(cfg->workers[1]->argv[0], "python3");
	assert_string_equal(cfg->workers[1]->patch, "none");
	assert_int_equal(cfg->workers[1]->stack_size, 65536);
	assert_string_equal(cfg->workers[2]->patch, "none");
	gd_config_free(cfg);
}

static void test_empty_and_effective(void **state)
{
	char err[1024];
	struct gd_config *a, *b, *c;

	a = gd_config_parse("{}", "t.json", "/", err, sizeof(err));
	assert_non_null(a);
	assert_int_equal(a->nworkers, 0);
	gd_config_free(a);

	a = gd_config_parse(W("\"instances\":2"), "t.json", "/", err, sizeof(err));
	b = gd_config_parse(W("\"instances\":2"), "t.json", "/", err, sizeof(err));
	c = gd_config_parse(W("\"instances\":2,\"env\":{\"X\":\"1\"}"), "t.json", "/", err, sizeof(err));
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_true(json_equal(a->workers[0]->effective, b->workers[0]->effective));
	assert_false(json_equal(a->workers[0]->effective, c->workers[0]->effective));
	gd_config_free(a);
	gd_config_free(b);
	gd_config_free(c);
}

static void test_load_file(void **state)
{
	char dir[] = "/tmp/test_config.XXXXXX", path[256], err[1024];
	struct gd_config *cfg;
	FILE *fp;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/g.json", dir);
	cfg = gd_config_load(path, err, sizeof(err));
	assert_null(cfg);
	assert_non_null(strstr(err, "No such file or directory"));

	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("{\n  \"workers\": [\n    {\"name\": \"x\", \"command\": [\"./run\"]}\n  ],\n  \"log_dir\": \"logs\"\n}\n", fp);
	fclose(fp);
	cfg = gd_config_load(path, err, sizeof(err));
	if (!cfg)
		fail_msg("%s", err);
	assert_string_equal(cfg->path, path);
	snprintf(err, sizeof(err), "%s/run", dir);
	assert_string_equal(cfg->workers[0]->argv[0], err);
	snprintf(err, sizeof(err), "%s/logs", dir);
	assert_string_equal(cfg->log_dir, err);
	gd_config_free(cfg);

	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("{\n  \"workers\": [\n    {\"name\": \"x\", \"name\": \"y\"}\n  ]\n}\n", fp);
	fclose(fp);
	cfg = gd_config_load(path, err, sizeof(err));
	assert_null(cfg);
	snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "%s", "");
	{
		char want[512];

		snprintf(want, sizeof(want), "%s:3:24: duplicate object key near '\"name\"'", path);
		assert_string_equal(err, want);
	}
	unlink(path);
	rmdir(dir);
}

static void test_patch_list_check(void **state)
{
	char err[256];

	assert_int_equal(gd_patch_list_check("all", err, sizeof(err)), 0);
	assert_int_equal(gd_patch_list_check("none", err, sizeof(err)), 0);
	assert_int_equal(gd_patch_list_check("socket,dns", err, sizeof(err)), 0);
	assert_int_equal(gd_patch_list_check("all,-thread", err, sizeof(err)), 0);
	assert_int_equal(gd_patch_list_check("socket,,dns", err, sizeof(err)), -1);
	assert_int_equal(gd_patch_list_check("", err, sizeof(err)), -1);
	/* The shim accepts blanks around names; greenctl run --patch once did not. */
	assert_int_equal(gd_patch_list_check("socket, dns", err, sizeof(err)), 0);
	assert_int_equal(gd_patch_list_check(" all , -thread ", err, sizeof(err)), 0);
	assert_int_equal(gd_patch_list_check("fs", err, sizeof(err)), -1);
	assert_string_equal(err, "unknown module 'fs' (known: socket, select, time, thread, dns, os, all, none)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_invalid_table),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_full_and_paths),
		cmocka_unit_test(test_empty_and_effective),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_patch_list_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
