/*
 * config.c - the strict greend.json loader.
 *
 * Keys are checked in file order (jansson keeps insertion order), so the
 * error a user sees is the first one in the file.  Each validator takes the
 * JSON path it is checking, so every message names where the problem is;
 * the typed getters they share are jsonpath.c's, for any other reader of
 * untrusted JSON to use too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "jsonpath.h"
#include "parse.h"
#include "pathsec.h"
#include "proto.h"

static const struct {
	const char *name;
	int sig;
} signals[] = {
	{ "TERM", SIGTERM }, { "INT", SIGINT },   { "QUIT", SIGQUIT },
	{ "HUP", SIGHUP },   { "KILL", SIGKILL }, { "USR1", SIGUSR1 },
	{ "USR2", SIGUSR2 }, { "ALRM", SIGALRM }, { "WINCH", SIGWINCH },
};

bool gd_module_known(const char *name)
{
	return green__module_index(name, strlen(name)) >= 0;
}

int gd_patch_list_check(const char *list, char *err, size_t errlen)
{
	unsigned mask;

	return green__patch_parse(list, &mask, err, errlen);
}

const char *gd_restart_name(enum gd_restart r)
{
	switch (r) {
	case GD_RESTART_ALWAYS:
		return "always";
	case GD_RESTART_ON_FAILURE:
		return "on-failure";
	case GD_RESTART_NEVER:
		return "never";
	}
	return "?";
}

const char *gd_signal_name(int sig)
{
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		if (signals[i].sig == sig)
			return signals[i].name;
	return "?";
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d)
		errno = ENOMEM;
	return d;
}

/* Make P absolute against the config file's directory. */
static char *resolve(struct gd_jctx *c, const char *p)
{
	char *out;

	if (p[0] == '/' || !c->base_dir)
		return xstrdup(p);
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	if (strcmp(p, ".") == 0)
		return xstrdup(c->base_dir);
	if (asprintf(&out, "%s/%s", c->base_dir, p) < 0) {
		errno = ENOMEM;
		return NULL;
	}
	return out;
}

static int dup_string(struct gd_jctx *c, const char *path, json_t *v,
		      size_t maxlen, bool is_path, char **out)
{
	const char *s = NULL;

	if (gd_jstring(c, path, v, maxlen, &s) < 0)
		return -1;
	free(*out);
	*out = is_path ? resolve(c, s) : xstrdup(s);
	return *out ? 0 : gd_joom(c);
}

static bool valid_env_name(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789_") == n;
}

static void free_strv(char **v)
{
	if (!v)
		return;
	for (size_t i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

void gd_worker_conf_free(struct gd_worker_conf *wc)
{
	if (!wc)
		return;
	free(wc->name);
	free_strv(wc->argv);
	free(wc->patch);
	free_strv(wc->env);
	free(wc->cwd);
	free(wc->user);
	free(wc->group);
	free_strv(wc->listen);
	json_decref(wc->effective);
	free(wc);
}

void gd_config_free(struct gd_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	free(cfg->control_socket);
	free(cfg->socket_group);
	free(cfg->http_listen);
	free(cfg->preload);
	free(cfg->log_dir);
	for (size_t i = 0; i < cfg->nworkers; i++)
		gd_worker_conf_free(cfg->workers[i]);
	free(cfg->workers);
	free(cfg);
}

static int parse_command(struct gd_jctx *c, const char *wpath, json_t *v,
			 struct gd_worker_conf *wc)
{
	char path[160];
	size_t n, i;
	json_t *item;

	snprintf(path, sizeof(path), "%s.command", wpath);
	if (!json_is_array(v))
		return gd_jfail(c, path, "expected a non-empty array of strings");
	n = json_array_size(v);
	if (n == 0)
		return gd_jfail(c, path, "expected a non-empty array of strings");
	if (n > 4096)
		return gd_jfail(c, path, "more than 4096 arguments");
	free_strv(wc->argv);
	wc->argv = calloc(n + 1, sizeof(char *));
	if (!wc->argv)
		return gd_joom(c);
	json_array_foreach(v, i, item) {
		const char *s;

		snprintf(path, sizeof(path), "%s.command[%zu]", wpath, i);
		if (!json_is_string(item))
			return gd_jfail(c, path, "expected a string");
		s = json_string_value(item);
		if (i == 0 && !*s)
			return gd_jfail(c, path, "the program must not be empty");
		if (json_string_length(item) != strlen(s))
			return gd_jfail(c, path, "contains a NUL byte");
		if (i == 0 && strchr(s, '/'))
			wc->argv[i] = resolve(c, s);
		else
			wc->argv[i] = xstrdup(s);
		if (!wc->argv[i])
			return gd_joom(c);
	}
	return 0;
}

static int parse_listen_addr(struct gd_jctx *c, const char *path, json_t *v, char **out);

/* Each address is kept in gd_addr_format's spelling, so that a reload
 * compares "[::1]:80" and "[0:0::1]:80" as the one address they are. */
static int parse_listen(struct gd_jctx *c, const char *wpath, json_t *v,
			struct gd_worker_conf *wc)
{
	char path[160], text[PATH_MAX + 8], why[160];
	struct gd_addr a;
	size_t n, i;
	json_t *item;

	snprintf(path, sizeof(path), "%s.listen", wpath);
	if (!json_is_array(v))
		return gd_jfail(c, path, "expected an array of \"HOST:PORT\", \"[V6]:PORT\" or \"unix:PATH\"");
	n = json_array_size(v);
	if (n > GD_LISTEN_MAX)
		return gd_jfail(c, path, "more than %d addresses", GD_LISTEN_MAX);
	free_strv(wc->listen);
	wc->nlisten = 0;
	wc->listen = calloc(n + 1, sizeof(char *));
	if (!wc->listen)
		return gd_joom(c);
	json_array_foreach(v, i, item) {
		char *raw = NULL;

		snprintf(path, sizeof(path), "%s.listen[%zu]", wpath, i);
		if (parse_listen_addr(c, path, item, &raw) < 0)
			return -1;
		gd_addr_parse(raw, &a, why, sizeof(why));
		free(raw);
		gd_addr_format(&a, text, sizeof(text));
		for (size_t j = 0; j < i; j++)
			if (strcmp(wc->listen[j], text) == 0)
				return gd_jfail(c, path, "%s is also listen[%zu]", text, j);
		wc->listen[i] = xstrdup(text);
		if (!wc->listen[i])
			return gd_joom(c);
		wc->nlisten = i + 1;
	}
	return 0;
}

static int parse_patch(struct gd_jctx *c, const char *wpath, json_t *v,
		       struct gd_worker_conf *wc)
{
	char path[160], buf[256] = "";
	size_t i, j;
	json_t *item;

	snprintf(path, sizeof(path), "%s.patch", wpath);
	if (json_is_string(v)) {
		const char *s = json_string_value(v);

		if (strcmp(s, "all") != 0 && strcmp(s, "none") != 0)
			return gd_jfail(c, path,
				    "expected \"all\", \"none\" or a list of modules");
		free(wc->patch);
		wc->patch = xstrdup(s);
		return wc->patch ? 0 : gd_joom(c);
	}
	if (!json_is_array(v))
		return gd_jfail(c, path, "expected \"all\", \"none\" or a list of modules");
	json_array_foreach(v, i, item) {
		const char *s;

		snprintf(path, sizeof(path), "%s.patch[%zu]", wpath, i);
		if (!json_is_string(item))
			return gd_jfail(c, path, "expected a module name string");
		s = json_string_value(item);
		if (!gd_module_known(s))
			return gd_jfail(c, path,
				    "unknown module \"%s\" (known: socket, select, time, thread, dns, os)",
				    s);
		for (j = 0; j < i; j++)
			if (strcmp(json_string_value(json_array_get(v, j)), s) == 0)
				return gd_jfail(c, path, "module \"%s\" listed twice", s);
		if (i)
			strcat(buf, ",");
		strcat(buf, s);
	}
	free(wc->patch);
	wc->patch = xstrdup(i == 0 ? "none" : buf);
	return wc->patch ? 0 : gd_joom(c);
}

static int parse_env(struct gd_jctx *c, const char *wpath, json_t *v,
		     struct gd_worker_conf *wc)
{
	char path[256];
	const char *key;
	json_t *val;
	size_t i = 0;

	snprintf(path, sizeof(path), "%s.env", wpath);
	if (!json_is_object(v))
		return gd_jfail(c, path, "expected an object of strings");
	free_strv(wc->env);
	wc->env = calloc(json_object_size(v) + 1, sizeof(char *));
	if (!wc->env)
		return gd_joom(c);
	json_object_foreach(v, key, val) {
		const char *s;

		snprintf(path, sizeof(path), "%s.env.%s", wpath, key);
		if (!valid_env_name(key))
			return gd_jfail(c, path, "not a valid environment variable name");
		if (strcmp(key, "GREEN_CONTROL_FD") == 0 ||
		    strcmp(key, "GREEN_PATCH") == 0)
			return gd_jfail(c, path, "set by greend; use the worker's keys instead");
		if (!json_is_string(val))
			return gd_jfail(c, path, "expected a string");
		s = json_string_value(val);
		if (json_string_length(val) != strlen(s))
			return gd_jfail(c, path, "contains a NUL byte");
		if (asprintf(&wc->env[i], "%s=%s", key, s) < 0) {
			wc->env[i] = NULL;
			return gd_joom(c);
		}
		i++;
	}
	return 0;
}

/* One size syntax everywhere: libgreen's, which the shim reads back from
 * GREEN_STACK_SIZE, so greend can never pass on a value the shim rejects. */
static int parse_stack_size(struct gd_jctx *c, const char *path, json_t *v,
			    long long *out)
{
	const size_t lo = 16 * 1024, hi = (size_t)1024 * 1024 * 1024;
	size_t x = 0;

	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			goto bad;
		x = (size_t)json_integer_value(v);
	} else if (!json_is_string(v) || green__parse_size(json_string_value(v), &x) < 0) {
		goto bad;
	}
	if (x < lo || x > hi)
		goto bad;
	*out = (long long)x;
	return 0;
bad:
	return gd_jfail(c, path,
		    "expected a size from 16K to 1024M (bytes, or a string such as \"256K\", \"1MiB\" or \"1G\")");
}

static int parse_signal(struct gd_jctx *c, const char *path, json_t *v, int *out)
{
	const char *s = NULL;

	if (!json_is_string(v))
		goto bad;
	s = json_string_value(v);
	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
		if (strcmp(signals[i].name, s) == 0) {
			*out = signals[i].sig;
			return 0;
		}
	}
bad:
	return gd_jfail(c, path,
		    "expected a signal name: TERM, INT, QUIT, HUP, KILL, USR1, USR2, ALRM or WINCH");
}

static int parse_worker(struct gd_jctx *c, size_t idx, json_t *obj,
			struct gd_worker_conf **out)
{
	struct gd_worker_conf *wc;
	char wpath[64], path[160];
	const char *key;
	json_t *v;
	long long ll = 0;

	snprintf(wpath, sizeof(wpath), "workers[%zu]", idx);
	if (!json_is_object(obj))
		return gd_jfail(c, wpath, "expected an object");
	wc = calloc(1, sizeof(*wc));
	if (!wc)
		return gd_joom(c);
	*out = wc;
	wc->instances = 1;
	wc->umask = -1;
	wc->restart = GD_RESTART_ON_FAILURE;
	wc->start_secs = 1;
	wc->max_restarts = 5;
	wc->restart_window_s = 60;
	wc->backoff_ms = 100;
	wc->backoff_max_ms = 30000;
	wc->stop_signal = SIGTERM;
	wc->stop_timeout_s = 10;
	wc->listen_mode = 0660;
	wc->backlog = 1024;
	wc->ready_timeout_s = 10;
	wc->drain_timeout_s = 30;
	wc->patch = xstrdup("all");
	if (!wc->patch)
		return gd_joom(c);

	json_object_foreach(obj, key, v) {
		snprintf(path, sizeof(path), "%s.%s", wpath, key);
		if (strcmp(key, "name") == 0) {
			if (!json_is_string(v) || !gd_valid_name(json_string_value(v)))
				return gd_jfail(c, path,
					    "expected 1 to 64 characters from A-Z a-z 0-9 _ . -");
			free(wc->name);
			wc->name = xstrdup(json_string_value(v));
			if (!wc->name)
				return gd_joom(c);
		} else if (strcmp(key, "command") == 0) {
			if (parse_command(c, wpath, v, wc) < 0)
				return -1;
		} else if (strcmp(key, "instances") == 0) {
			if (gd_jint(c, path, v, 1, 1024, &ll) < 0)
				return -1;
			wc->instances = (int)ll;
		} else if (strcmp(key, "patch") == 0) {
			if (parse_patch(c, wpath, v, wc) < 0)
				return -1;
		} else if (strcmp(key, "env") == 0) {
			if (parse_env(c, wpath, v, wc) < 0)
				return -1;
		} else if (strcmp(key, "cwd") == 0) {
			if (dup_string(c, path, v, PATH_MAX - 1, true, &wc->cwd) < 0)
				return -1;
		} else if (strcmp(key, "user") == 0) {
			if (dup_string(c, path, v, 256, false, &wc->user) < 0)
				return -1;
		} else if (strcmp(key, "group") == 0) {
			if (dup_string(c, path, v, 256, false, &wc->group) < 0)
				return -1;
		} else if (strcmp(key, "umask") == 0) {
			if (gd_jmode(c, path, v, &wc->umask) < 0)
				return -1;
		} else if (strcmp(key, "restart") == 0) {
			const char *s = json_is_string(v) ? json_string_value(v) : "";

			if (strcmp(s, "always") == 0)
				wc->restart = GD_RESTART_ALWAYS;
			else if (strcmp(s, "on-failure") == 0)
				wc->restart = GD_RESTART_ON_FAILURE;
			else if (strcmp(s, "never") == 0)
				wc->restart = GD_RESTART_NEVER;
			else
				return gd_jfail(c, path,
					    "expected \"always\", \"on-failure\" or \"never\"");
		} else if (strcmp(key, "start_secs") == 0) {
			if (gd_jnumber(c, path, v, 0, 3600, &wc->start_secs) < 0)
				return -1;
		} else if (strcmp(key, "max_restarts") == 0) {
			if (gd_jlong(c, path, v, 0, 1000000, &wc->max_restarts) < 0)
				return -1;
		} else if (strcmp(key, "restart_window_s") == 0) {
			if (gd_jnumber(c, path, v, 1, 86400, &wc->restart_window_s) < 0)
				return -1;
		} else if (strcmp(key, "backoff_ms") == 0) {
			if (gd_jlong(c, path, v, 0, 3600000, &wc->backoff_ms) < 0)
				return -1;
		} else if (strcmp(key, "backoff_max_ms") == 0) {
			if (gd_jlong(c, path, v, 0, 86400000, &wc->backoff_max_ms) < 0)
				return -1;
		} else if (strcmp(key, "stop_signal") == 0) {
			if (parse_signal(c, path, v, &wc->stop_signal) < 0)
				return -1;
		} else if (strcmp(key, "stop_timeout_s") == 0) {
			if (gd_jnumber(c, path, v, 0, 3600, &wc->stop_timeout_s) < 0)
				return -1;
		} else if (strcmp(key, "max_blocking_ms") == 0) {
			if (gd_jlong(c, path, v, 0, 3600000, &wc->max_blocking_ms) < 0)
				return -1;
		} else if (strcmp(key, "stack_size") == 0) {
			if (parse_stack_size(c, path, v, &wc->stack_size) < 0)
				return -1;
		} else if (strcmp(key, "listen") == 0) {
			if (parse_listen(c, wpath, v, wc) < 0)
				return -1;
		} else if (strcmp(key, "listen_mode") == 0) {
			if (gd_jmode(c, path, v, &wc->listen_mode) < 0)
				return -1;
		} else if (strcmp(key, "backlog") == 0) {
			if (gd_jint(c, path, v, 1, 65535, &ll) < 0)
				return -1;
			wc->backlog = (int)ll;
		} else if (strcmp(key, "ready_timeout_s") == 0) {
			if (gd_jnumber(c, path, v, 0.1, 3600, &wc->ready_timeout_s) < 0)
				return -1;
		} else if (strcmp(key, "drain_timeout_s") == 0) {
			if (gd_jnumber(c, path, v, 0, 3600, &wc->drain_timeout_s) < 0)
				return -1;
		} else {
			return gd_jfail(c, path, "unknown key");
		}
	}
	if (!wc->name)
		return gd_jfail(c, wpath, "missing required key \"name\"");
	if (!wc->argv)
		return gd_jfail(c, wpath, "missing required key \"command\"");
	if (wc->backoff_max_ms < wc->backoff_ms) {
		snprintf(path, sizeof(path), "%s.backoff_max_ms", wpath);
		return gd_jfail(c, path, "must not be less than backoff_ms (%ld)",
			    wc->backoff_ms);
	}
	if (wc->group && !wc->user && 0) /* a group alone is allowed */
		return -1;
	return 0;
}

static json_t *strv_json(char **v)
{
	json_t *a = json_array();

	for (size_t i = 0; v && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static int build_effective(struct gd_config *cfg, struct gd_worker_conf *wc)
{
	json_t *e;

	e = json_pack("{s:s,s:o,s:i,s:s,s:o,s:s?,s:s?,s:s?,s:i,s:s,s:f,s:I,s:f,"
		      "s:I,s:I,s:i,s:f,s:I,s:I,s:s?,s:s?,s:I}",
		      "name", wc->name, "command", strv_json(wc->argv),
		      "instances", wc->instances, "patch", wc->patch,
		      "env", strv_json(wc->env), "cwd", wc->cwd, "user", wc->user,
		      "group", wc->group, "umask", wc->umask,
		      "restart", gd_restart_name(wc->restart),
		      "start_secs", wc->start_secs,
		      "max_restarts", (json_int_t)wc->max_restarts,
		      "restart_window_s", wc->restart_window_s,
		      "backoff_ms", (json_int_t)wc->backoff_ms,
		      "backoff_max_ms", (json_int_t)wc->backoff_max_ms,
		      "stop_signal", wc->stop_signal,
		      "stop_timeout_s", wc->stop_timeout_s,
		      "max_blocking_ms", (json_int_t)wc->max_blocking_ms,
		      "stack_size", (json_int_t)wc->stack_size,
		      "preload", cfg->preload, "log_dir", cfg->log_dir,
		      "stats_interval_ms", (json_int_t)cfg->stats_interval_ms);
	if (!e) {
		errno = ENOMEM;
		return -1;
	}
	if (json_object_set_new(e, "listen", strv_json(wc->listen)) < 0 ||
	    json_object_set_new(e, "listen_mode", json_integer(wc->listen_mode)) < 0 ||
	    json_object_set_new(e, "backlog", json_integer(wc->backlog)) < 0 ||
	    json_object_set_new(e, "ready_timeout_s", json_real(wc->ready_timeout_s)) < 0 ||
	    json_object_set_new(e, "drain_timeout_s", json_real(wc->drain_timeout_s)) < 0) {
		json_decref(e);
		errno = ENOMEM;
		return -1;
	}
	wc->effective = e;
	return 0;
}

static int parse_workers(struct gd_jctx *c, json_t *v, struct gd_config *cfg)
{
	size_t i, j;
	json_t *item;

	if (!json_is_array(v))
		return gd_jfail(c, "workers", "expected an array of objects");
	if (json_array_size(v) > 1024)
		return gd_jfail(c, "workers", "more than 1024 workers");
	cfg->workers = calloc(json_array_size(v) + 1, sizeof(*cfg->workers));
	if (!cfg->workers)
		return gd_joom(c);
	json_array_foreach(v, i, item) {
		if (parse_worker(c, i, item, &cfg->workers[i]) < 0) {
			cfg->nworkers = i + 1;
			return -1;
		}
		cfg->nworkers = i + 1;
		for (j = 0; j < i; j++) {
			if (strcmp(cfg->workers[j]->name, cfg->workers[i]->name) == 0) {
				char path[64];

				snprintf(path, sizeof(path), "workers[%zu].name", i);
				return gd_jfail(c, path, "duplicate name \"%s\" (also workers[%zu])",
					    cfg->workers[i]->name, j);
			}
			for (size_t a = 0; a < cfg->workers[i]->nlisten; a++)
				for (size_t b = 0; b < cfg->workers[j]->nlisten; b++)
					if (strcmp(cfg->workers[i]->listen[a], cfg->workers[j]->listen[b]) == 0) {
						char path[80];

						snprintf(path, sizeof(path), "workers[%zu].listen[%zu]", i, a);
						return gd_jfail(c, path, "%s is also listened on by worker \"%s\"",
							    cfg->workers[i]->listen[a], cfg->workers[j]->name);
					}
		}
	}
	return 0;
}

/* A listen address; "unix:PATH" resolves a relative PATH like every path. */
static int parse_listen_addr(struct gd_jctx *c, const char *path, json_t *v, char **out)
{
	const char *s = NULL;
	struct gd_addr a;
	char why[128], *text, *abs;

	if (gd_jstring(c, path, v, PATH_MAX - 1, &s) < 0)
		return -1;
	if (strncmp(s, "unix:", 5) == 0 && s[5] && s[5] != '/') {
		if (!(abs = resolve(c, s + 5)))
			return gd_joom(c);
		if (asprintf(&text, "unix:%s", abs) < 0) {
			free(abs);
			return gd_joom(c);
		}
		free(abs);
	} else if (!(text = xstrdup(s))) {
		return gd_joom(c);
	}
	if (gd_addr_parse(text, &a, why, sizeof(why)) < 0) {
		free(text);
		return gd_jfail(c, path, "%s (got \"%s\")", why, s);
	}
	free(*out);
	*out = text;
	return 0;
}

static struct gd_config *parse_root(struct gd_jctx *c, json_t *root)
{
	struct gd_config *cfg;
	char sock[PATH_MAX];
	const char *key;
	json_t *v;

	if (!json_is_object(root)) {
		gd_jfail(c, "(top level)", "expected a JSON object");
		return NULL;
	}
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg) {
		gd_joom(c);
		return NULL;
	}
	cfg->socket_mode = 0660;
	cfg->stats_interval_ms = 1000;
	cfg->log_max_bytes = 10 * 1024 * 1024;
	cfg->log_backups = 5;
	cfg->dump_timeout_ms = 2000;
	json_object_foreach(root, key, v) {
		if (strcmp(key, "control_socket") == 0) {
			if (dup_string(c, key, v, PATH_MAX - 1, true, &cfg->control_socket) < 0)
				goto err;
			if (strlen(cfg->control_socket) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
				gd_jfail(c, key, "longer than %zu bytes once made absolute (%s)",
				     sizeof(((struct sockaddr_un *)0)->sun_path) - 1,
				     cfg->control_socket);
				goto err;
			}
		} else if (strcmp(key, "socket_mode") == 0) {
			if (gd_jmode(c, key, v, &cfg->socket_mode) < 0)
				goto err;
		} else if (strcmp(key, "socket_group") == 0) {
			if (dup_string(c, key, v, 256, false, &cfg->socket_group) < 0)
				goto err;
		} else if (strcmp(key, "preload") == 0) {
			if (dup_string(c, key, v, PATH_MAX - 1, true, &cfg->preload) < 0)
				goto err;
		} else if (strcmp(key, "log_dir") == 0) {
			if (dup_string(c, key, v, PATH_MAX - 1, true, &cfg->log_dir) < 0)
				goto err;
		} else if (strcmp(key, "stats_interval_ms") == 0) {
			if (gd_jlong(c, key, v, 10, 3600000, &cfg->stats_interval_ms) < 0)
				goto err;
		} else if (strcmp(key, "log_max_bytes") == 0) {
			if (gd_jint(c, key, v, 0, 1LL << 40, &cfg->log_max_bytes) < 0)
				goto err;
			if (cfg->log_max_bytes && cfg->log_max_bytes < 4096) {
				gd_jfail(c, key, "expected 0 (never rotate) or at least 4096");
				goto err;
			}
		} else if (strcmp(key, "log_backups") == 0) {
			if (gd_jlong(c, key, v, 0, 100, &cfg->log_backups) < 0)
				goto err;
		} else if (strcmp(key, "dump_timeout_ms") == 0) {
			if (gd_jlong(c, key, v, 10, 60000, &cfg->dump_timeout_ms) < 0)
				goto err;
		} else if (strcmp(key, "http_listen") == 0) {
			if (parse_listen_addr(c, key, v, &cfg->http_listen) < 0)
				goto err;
		} else if (strcmp(key, "allow_insecure_paths") == 0) {
			if (!json_is_boolean(v)) {
				gd_jfail(c, key, "expected true or false");
				goto err;
			}
			cfg->allow_insecure_paths = json_is_true(v);
		} else if (strcmp(key, "workers") == 0) {
			if (parse_workers(c, v, cfg) < 0)
				goto err;
		} else {
			gd_jfail(c, key, "unknown key");
			goto err;
		}
	}
	if (!cfg->control_socket) {
		if (gd_default_socket_path(sock, sizeof(sock)) < 0 ||
		    !(cfg->control_socket = xstrdup(sock))) {
			gd_joom(c);
			goto err;
		}
	}
	for (size_t i = 0; i < cfg->nworkers; i++) {
		if (build_effective(cfg, cfg->workers[i]) < 0) {
			gd_joom(c);
			goto err;
		}
	}
	return cfg;
err:
	gd_config_free(cfg);
	return NULL;
}

static void syntax_error(struct gd_jctx *c, const json_error_t *je)
{
	if (je->line > 0)
		snprintf(c->err, c->errlen, "%s:%d:%d: %s", c->name, je->line,
			 je->column, je->text);
	else
		snprintf(c->err, c->errlen, "%s: %s", c->name, je->text);
	errno = EINVAL;
}

struct gd_config *gd_config_parse(const char *text, const char *name,
				  const char *base_dir, char *err, size_t errlen)
{
	struct gd_jctx c = { name, base_dir, err, errlen };
	struct gd_config *cfg;
	json_error_t je;
	json_t *root;

	root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		syntax_error(&c, &je);
		return NULL;
	}
	cfg = parse_root(&c, root);
	json_decref(root);
	if (cfg && !(cfg->path = xstrdup(name))) {
		gd_config_free(cfg);
		gd_joom(&c);
		return NULL;
	}
	return cfg;
}

struct gd_config *gd_config_load(const char *file, char *err, size_t errlen)
{
	char abs[PATH_MAX], cwd[PATH_MAX], *dir = NULL, *slash;
	struct gd_config *cfg = NULL;
	struct gd_jctx c = { file, NULL, err, errlen };
	json_error_t je;
	json_t *root;
	FILE *fp;
	int e;

	if (file[0] == '/') {
		if (gd_snprintf(abs, sizeof(abs), "%s", file) < 0)
			goto toolong;
	} else {
		if (!getcwd(cwd, sizeof(cwd)) ||
		    gd_snprintf(abs, sizeof(abs), "%s/%s", cwd, file) < 0)
			goto toolong;
	}
	dir = xstrdup(abs);
	if (!dir) {
		gd_joom(&c);
		return NULL;
	}
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	c.base_dir = dir;
	fp = fopen(file, "re");
	if (!fp) {
		e = errno;
		snprintf(err, errlen, "%s: %s", file, strerror(e));
		free(dir);
		errno = e;
		return NULL;
	}
	root = json_loadf(fp, JSON_REJECT_DUPLICATES, &je);
	fclose(fp);
	if (!root) {
		syntax_error(&c, &je);
		goto out;
	}
	cfg = parse_root(&c, root);
	json_decref(root);
	if (cfg && !(cfg->path = xstrdup(abs))) {
		gd_config_free(cfg);
		cfg = NULL;
		gd_joom(&c);
	}
	if (cfg && geteuid() == 0 && !cfg->allow_insecure_paths &&
	    gd_config_check_paths(cfg, err, errlen) < 0) {
		gd_config_free(cfg);
		cfg = NULL;
		errno = EPERM;
	}
out:
	e = errno;
	free(dir);
	errno = e;
	return cfg;
toolong:
	snprintf(err, errlen, "%s: path too long", file);
	errno = ENAMETOOLONG;
	return NULL;
}
