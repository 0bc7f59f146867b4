/*
 * greenctl.c - the command line for greend: a table of commands, each
 * turning argv into one request and the answer into text (or --json).
 * Exit status: 0 success, 1 greend said no, 2 usage, 3 greend unreachable.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "config.h"
#include "proto.h"

static const char *sock_opt;

static void usage(FILE *f)
{
	fputs("usage: greenctl [-s SOCKET] status [NAME|ID] [--json]\n"
	      "       greenctl [-s SOCKET] start|stop|restart [--now] NAME|ID|all\n"
	      "       greenctl [-s SOCKET] reload | shutdown | version\n"
	      "       greenctl [-s SOCKET] dump ID [--json]\n"
	      "       greenctl [-s SOCKET] metrics\n"
	      "       greenctl [-s SOCKET] top [-n COUNT] [-d SECONDS]\n"
	      "       greenctl run [--patch LIST] [--] COMMAND [ARG...]\n", f);
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "greenctl: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	usage(stderr);
	return GD_EXIT_USAGE;
}

/*
 * The privileged socket when this user may open it: it is served before
 * any crowd on the control socket.  Anyone else, or a greend without one,
 * gets the control socket, and its error if that fails too.
 */
static int connect_privileged_first(const char *path, char *err, size_t errlen)
{
	char op_path[PATH_MAX];
	int fd;

	if (gd_snprintf(op_path, sizeof(op_path), "%s%s", path, GD_OPERATOR_SUFFIX) >= 0) {
		fd = gd_connect(op_path, err, errlen);
		if (fd >= 0)
			return fd;
	}
	return gd_connect(path, err, errlen);
}

/* Send one request; on success *ANSWER holds an "ok":true answer.  Returns
 * an exit status: 0, 1 (greend said no; message printed) or 3. */
static int call(json_t *req, int timeout_ms, json_t **answer)
{
	char path[PATH_MAX], err[512];
	int fd, r;
	json_t *a;

	*answer = NULL;
	if (gd_client_socket_path(sock_opt, path, sizeof(path)) < 0) {
		fprintf(stderr, "greenctl: socket path too long\n");
		json_decref(req);
		return GD_EXIT_USAGE;
	}
	fd = connect_privileged_first(path, err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "greenctl: greend is not reachable: %s\n", err);
		json_decref(req);
		return GD_EXIT_UNREACHABLE;
	}
	r = gd_request(fd, req, timeout_ms, &a, err, sizeof(err));
	close(fd);
	json_decref(req);
	if (r < 0) {
		fprintf(stderr, "greenctl: %s\n", err);
		return GD_EXIT_UNREACHABLE;
	}
	if (!json_is_true(json_object_get(a, "ok"))) {
		const char *e = json_string_value(json_object_get(a, "error"));
		const char *code = json_string_value(json_object_get(a, "code"));

		fprintf(stderr, "greenctl: %s (%s)\n", e ? e : "request failed", code ? code : "error");
		json_decref(a);
		return GD_EXIT_REFUSED;
	}
	*answer = a;
	return GD_EXIT_OK;
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (s)
		puts(s);
	free(s);
}

static void fmt_duration(json_t *v, char *buf, size_t len)
{
	long s, d;

	if (!json_is_number(v)) {
		snprintf(buf, len, "-");
		return;
	}
	s = (long)json_number_value(v);
	d = s / 86400;
	s %= 86400;
	if (d)
		snprintf(buf, len, "%ldd %ld:%02ld:%02ld", d, s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, len, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

static void fmt_num(json_t *v, char *buf, size_t len)
{
	if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%.0f", json_real_value(v));
	else
		snprintf(buf, len, "-");
}

/* "accepting 120 accepted, 2 open" for an instance with greend's listeners. */
static void listen_info(json_t *w, char *buf, size_t len)
{
	json_t *l = json_object_get(w, "listen");
	const char *err = json_string_value(json_object_get(w, "roll_error"));
	const char *roll = json_string_value(json_object_get(w, "roll"));

	if (json_is_object(l))
		snprintf(buf, len, "%s %lld accepted, %lld open%s%s",
			 json_string_value(json_object_get(l, "state")),
			 (long long)json_integer_value(json_object_get(l, "accepted")),
			 (long long)json_integer_value(json_object_get(l, "open")),
			 roll ? "; rolling: " : "", roll ? roll : "");
	if (err && strlen(buf) + 8 < len)
		snprintf(buf + strlen(buf), len - strlen(buf), "%sroll stopped: %s",
			 buf[0] ? "; " : "", err);
}

static void print_table(json_t *workers, FILE *f)
{
	size_t i;
	json_t *w;

	fprintf(f, "%-24s %-9s %7s %11s %9s %8s %8s %7s  %s\n", "ID", "STATE", "PID", "UPTIME",
		"GREENLETS", "SW/S", "TIMEOUTS", "BLOCKED", "INFO");
	json_array_foreach(workers, i, w) {
		char pid[16], up[32], gl[24], sw[24], to[24], bl[24], info[256] = "";
		json_t *hub = json_object_get(w, "hub"), *ch = json_object_get(w, "channel");
		const char *reason = json_string_value(json_object_get(w, "reason"));
		const char *state = json_string_value(json_object_get(w, "state"));
		json_t *age = json_object_get(w, "report_age_ms");

		fmt_num(json_object_get(w, "pid"), pid, sizeof(pid));
		fmt_duration(json_object_get(w, "uptime_s"), up, sizeof(up));
		fmt_num(json_object_get(json_object_get(w, "greenlets"), "alive"), gl, sizeof(gl));
		fmt_num(json_object_get(w, "switches_per_s"), sw, sizeof(sw));
		fmt_num(json_object_get(w, "timeouts"), to, sizeof(to));
		fmt_num(json_object_get(hub, "blocked"), bl, sizeof(bl));
		if (reason && state && strcmp(state, "running") != 0 && strcmp(state, "starting") != 0)
			snprintf(info, sizeof(info), "%s", reason);
		else if (json_is_string(json_object_get(ch, "closed")) && json_object_get(w, "pid") &&
			 !json_is_null(json_object_get(w, "pid")))
			snprintf(info, sizeof(info), "no channel (%s)",
				 json_string_value(json_object_get(ch, "closed")));
		else if (json_is_integer(age) && json_integer_value(age) > 5000)
			snprintf(info, sizeof(info), "report %llds old",
				 (long long)json_integer_value(age) / 1000);
		if (!info[0])
			listen_info(w, info, sizeof(info));
		fprintf(f, "%-24s %-9s %7s %11s %9s %8s %8s %7s  %s\n",
			json_string_value(json_object_get(w, "id")), state ? state : "?", pid, up,
			gl, sw, to, bl, info);
	}
	/* What the shim of an instance left unpatched, and why, under the table. */
	json_array_foreach(workers, i, w) {
		size_t k;
		json_t *v;

		json_array_foreach(json_object_get(w, "warnings"), k, v)
			fprintf(f, "%s: warning: %s\n", json_string_value(json_object_get(w, "id")),
				json_string_value(v));
	}
}

static bool want_json(int argc, char **argv, int *nargs)
{
	bool j = false;
	int k = 0;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			j = true;
		else
			argv[k++] = argv[i];
	}
	*nargs = k;
	return j;
}

static int cmd_status(int argc, char **argv)
{
	int n, rc;
	bool js = want_json(argc, argv, &n);
	json_t *req, *a;

	if (n > 1)
		return usage_error("status takes at most one NAME or ID%s", "");
	req = json_pack("{s:s}", "cmd", "status");
	if (n == 1)
		json_object_set_new(req, "worker", json_string(argv[0]));
	rc = call(req, 10000, &a);
	if (rc)
		return rc;
	if (js)
		print_json(a);
	else
		print_table(json_object_get(a, "workers"), stdout);
	json_decref(a);
	return 0;
}

static int cmd_action(const char *cmd, int argc, char **argv)
{
	json_t *a, *v;
	size_t i;
	int rc;
	bool now = false;

	/* --now: stop then start, even where a rolling restart is possible. */
	if (argc == 2 && strcmp(cmd, "restart") == 0 && strcmp(argv[0], "--now") == 0) {
		now = true;
		argv++;
		argc--;
	}
	if (argc != 1)
		return usage_error("%s needs one NAME, ID or all", cmd);
	rc = call(json_pack("{s:s,s:s,s:b}", "cmd", cmd, "worker", argv[0], "now", now), 300000, &a);
	if (rc)
		return rc;
	json_array_foreach(json_object_get(a, "workers"), i, v)
		printf("%s: %s\n", json_string_value(json_object_get(v, "id")),
		       json_string_value(json_object_get(v, "state")));
	json_decref(a);
	return 0;
}

static void print_names(json_t *a, const char *key, const char *label)
{
	json_t *arr = json_object_get(a, key), *v;
	size_t i;

	json_array_foreach(arr, i, v)
		printf("%s: %s\n", json_string_value(v), label);
}

static int cmd_simple(const char *cmd, int argc, char **argv)
{
	json_t *a;
	int rc;

	if (argc != 0)
		return usage_error("%s takes no arguments", cmd);
	rc = call(json_pack("{s:s}", "cmd", cmd), strcmp(cmd, "reload") == 0 ? 60000 : 10000, &a);
	if (strcmp(cmd, "version") == 0) {
		printf("greenctl %s\n", GREEND_VERSION);
		if (rc == 0)
			printf("greend %s (protocol %lld)\n",
			       json_string_value(json_object_get(a, "version")),
			       (long long)json_integer_value(json_object_get(a, "protocol")));
	} else if (rc == 0 && strcmp(cmd, "reload") == 0) {
		json_t *v;
		size_t i;

		print_names(a, "added", "added");
		print_names(a, "removed", "removed");
		print_names(a, "changed", "changed");
		json_array_foreach(json_object_get(a, "warnings"), i, v)
			fprintf(stderr, "greenctl: warning: %s\n", json_string_value(v));
	} else if (rc == 0 && strcmp(cmd, "metrics") == 0) {
		fputs(json_string_value(json_object_get(a, "text")), stdout);
	} else if (rc == 0 && strcmp(cmd, "shutdown") == 0) {
		printf("greend is shutting down\n");
	}
	json_decref(a);
	return rc;
}

static void describe_wait(json_t *g, char *buf, size_t len)
{
	json_t *w = json_object_get(g, "wait");
	char *s;

	buf[0] = '\0';
	if (!w || json_is_null(w))
		return;
	if (json_is_string(w)) {
		snprintf(buf, len, " on %s", json_string_value(w));
		return;
	}
	if (json_is_integer(json_object_get(w, "fd"))) {
		snprintf(buf, len, " on fd %lld (%s)", (long long)json_integer_value(json_object_get(w, "fd")),
			 json_is_string(json_object_get(w, "events")) ?
			 json_string_value(json_object_get(w, "events")) : "?");
		return;
	}
	s = json_dumps(w, JSON_COMPACT);
	snprintf(buf, len, " on %s", s ? s : "?");
	free(s);
}

/* A greenlet whose parent is absent or not in the dump starts a tree. */
static bool is_root(json_t *gs, json_t *parent)
{
	size_t k;
	json_t *o;

	if (!parent || json_is_null(parent))
		return true;
	json_array_foreach(gs, k, o)
		if (json_equal(json_object_get(o, "id"), parent))
			return false;
	return true;
}

static void dump_tree(json_t *gs, json_t *parent, int depth, int *shown)
{
	size_t i;
	json_t *g;

	if (depth > 64)
		return;
	json_array_foreach(gs, i, g) {
		json_t *p = json_object_get(g, "parent");
		char wait[256], age[48] = "", label[160];
		json_t *a = json_object_get(g, "age_ms");
		const char *name = json_string_value(json_object_get(g, "name"));
		const char *state = json_string_value(json_object_get(g, "state"));

		if (parent ? !json_equal(p, parent) : !is_root(gs, p))
			continue;
		describe_wait(g, wait, sizeof(wait));
		if (json_is_number(a))
			snprintf(age, sizeof(age), ", age %.1f s", json_number_value(a) / 1000);
		snprintf(label, sizeof(label), "<greenlet %lld%s%s%s>",
			 (long long)json_integer_value(json_object_get(g, "id")),
			 name ? " \"" : "", name ? name : "", name ? "\"" : "");
		printf("%*s+--- %s %s%s%s\n", depth * 5, "", label, state ? state : "?", wait, age);
		(*shown)++;
		if (json_object_get(g, "id"))
			dump_tree(gs, json_object_get(g, "id"), depth + 1, shown);
	}
}

static int cmd_dump(int argc, char **argv)
{
	int n, rc, shown = 0;
	bool js = want_json(argc, argv, &n);
	json_t *a, *gs;

	if (n != 1)
		return usage_error("dump needs one ID%s", "");
	rc = call(json_pack("{s:s,s:s}", "cmd", "dump", "worker", argv[0]), 15000, &a);
	if (rc)
		return rc;
	if (js) {
		print_json(a);
	} else {
		gs = json_object_get(a, "greenlets");
		printf("%s (pid %lld): %zu greenlets\n", json_string_value(json_object_get(a, "id")),
		       (long long)json_integer_value(json_object_get(a, "pid")), json_array_size(gs));
		dump_tree(gs, NULL, 0, &shown);
		if (json_is_true(json_object_get(a, "truncated")))
			printf("... and %lld more: the dump was cut to fit one message\n",
			       (long long)json_integer_value(json_object_get(a, "left_out")));
	}
	json_decref(a);
	return 0;
}

static struct termios saved_tty;
static bool tty_raw;

static void tty_restore(void)
{
	if (tty_raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
	tty_raw = false;
}

static void on_sig(int sig)
{
	tty_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int cmd_top(int argc, char **argv)
{
	long count = -1;
	double interval = 1.0;
	int rc = 0;

	for (int i = 0; i < argc; i++) {
		if ((strcmp(argv[i], "-n") == 0 || strcmp(argv[i], "--iterations") == 0) && i + 1 < argc)
			count = strtol(argv[++i], NULL, 10);
		else if ((strcmp(argv[i], "-d") == 0 || strcmp(argv[i], "--delay") == 0) && i + 1 < argc)
			interval = strtod(argv[++i], NULL);
		else
			return usage_error("top: unknown argument %s", argv[i]);
	}
	if (!(interval >= 0.05))
		interval = 0.05;
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tty) == 0) {
		struct termios raw = saved_tty;

		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0) {
			tty_raw = true;
			atexit(tty_restore);
			signal(SIGINT, on_sig);
			signal(SIGTERM, on_sig);
		}
	}
	for (long k = 0; count < 0 || k < count; k++) {
		json_t *a, *g;
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
		double until;
		char up[32];

		rc = call(json_pack("{s:s}", "cmd", "status"), 10000, &a);
		if (rc)
			break;
		g = json_object_get(a, "greend");
		fmt_duration(json_object_get(g, "uptime_s"), up, sizeof(up));
		if (isatty(STDOUT_FILENO))
			fputs("\033[H\033[2J", stdout);
		printf("greend %s  pid %lld  up %s  %s    (q quits)\n\n",
		       json_string_value(json_object_get(g, "version")),
		       (long long)json_integer_value(json_object_get(g, "pid")), up,
		       json_string_value(json_object_get(g, "config")));
		print_table(json_object_get(a, "workers"), stdout);
		fflush(stdout);
		json_decref(a);
		if (count >= 0 && k + 1 >= count)
			break;
		until = gd_mono() + interval;
		for (;;) {
			double left = until - gd_mono();
			char c;

			if (left <= 0)
				break;
			if (poll(&pfd, 1, (int)(left * 1000) + 1) > 0) {
				ssize_t n = read(STDIN_FILENO, &c, 1);

				if (n == 1 && (c == 'q' || c == 'Q'))
					goto out;
				if (n <= 0)
					pfd.fd = -1; /* stdin closed: just refresh */
			}
		}
	}
out:
	tty_restore();
	return rc;
}

static int cmd_run(int argc, char **argv)
{
	const char *patch = NULL, *old;
	char pre[PATH_MAX], err[256], *val;
	int i;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (strcmp(argv[i], "--patch") == 0 && i + 1 < argc)
			patch = argv[++i];
		else if (strncmp(argv[i], "--patch=", 8) == 0)
			patch = argv[i] + 8;
		else if (argv[i][0] == '-')
			return usage_error("run: unknown option %s", argv[i]);
		else
			break;
	}
	if (i >= argc)
		return usage_error("run needs a COMMAND%s", "");
	if (patch && gd_patch_list_check(patch, err, sizeof(err)) < 0)
		return usage_error("--patch: %s", err);
	if (gd_find_preload(pre, sizeof(pre)) < 0) {
		fprintf(stderr, "greenctl: %s not found next to greenctl nor at %s\n",
			GD_PRELOAD_NAME, GREEND_PRELOAD_PATH);
		return GD_EXIT_REFUSED;
	}
	old = getenv("LD_PRELOAD");
	if (old && *old) {
		if (asprintf(&val, "%s:%s", pre, old) < 0)
			return GD_EXIT_REFUSED;
	} else if (!(val = strdup(pre))) {
		return GD_EXIT_REFUSED;
	}
	setenv("LD_PRELOAD", val, 1);
	free(val);
	if (patch)
		setenv("GREEN_PATCH", patch, 1);
	execvp(argv[i], argv + i);
	fprintf(stderr, "greenctl: %s: %s\n", argv[i], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}

int main(int argc, char **argv)
{
	int i = 1;
	const char *cmd;

	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
			sock_opt = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "--socket=", 9) == 0) {
			sock_opt = argv[i] + 9;
			i++;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("greenctl %s\n", GREEND_VERSION);
			return 0;
		} else {
			return usage_error("unknown option %s", argv[i]);
		}
	}
	if (i >= argc)
		return usage_error("missing command%s", "");
	cmd = argv[i++];
	argc -= i;
	argv += i;
	if (strcmp(cmd, "status") == 0)
		return cmd_status(argc, argv);
	if (strcmp(cmd, "start") == 0 || strcmp(cmd, "stop") == 0 || strcmp(cmd, "restart") == 0)
		return cmd_action(cmd, argc, argv);
	if (strcmp(cmd, "reload") == 0 || strcmp(cmd, "shutdown") == 0 ||
	    strcmp(cmd, "version") == 0 || strcmp(cmd, "metrics") == 0)
		return cmd_simple(cmd, argc, argv);
	if (strcmp(cmd, "dump") == 0)
		return cmd_dump(argc, argv);
	if (strcmp(cmd, "top") == 0)
		return cmd_top(argc, argv);
	if (strcmp(cmd, "run") == 0)
		return cmd_run(argc, argv);
	return usage_error("unknown command %s", cmd);
}
