/*
 * config.h - greend.json, loaded strictly: an unknown key, a wrong type or a
 * value out of range is an error naming the JSON path (and the line and
 * column for syntax errors, which is all jansson can place).  A loaded
 * config has every default filled in and every relative path made absolute
 * against the config file's directory, so the rest of greend never looks at
 * JSON again.
 */
#ifndef GREEND_CONFIG_H
#define GREEND_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

enum gd_restart {
	GD_RESTART_ALWAYS,
	GD_RESTART_ON_FAILURE,
	GD_RESTART_NEVER,
};

/* Listen addresses per worker, at most. */
#define GD_LISTEN_MAX 64

struct gd_worker_conf {
	char *name;
	char **argv;            /* NULL-terminated; argv[0] made absolute if it has a '/' */
	int instances;
	char *patch;            /* GREEN_PATCH: "all", "none" or "socket,dns,..." */
	char **env;             /* NULL-terminated "KEY=VALUE" */
	char *cwd;              /* absolute, or NULL to inherit greend's */
	char *user, *group;     /* or NULL */
	int umask;              /* -1: inherit greend's */
	enum gd_restart restart;
	double start_secs;
	long max_restarts;
	double restart_window_s;
	long backoff_ms, backoff_max_ms;
	int stop_signal;
	double stop_timeout_s;
	long max_blocking_ms;   /* 0 = off */
	long long stack_size;   /* bytes; 0 = the shim's default */
	char **listen;          /* NULL-terminated addresses, as gd_addr_format writes them */
	size_t nlisten;
	int listen_mode;        /* for unix: listeners */
	int backlog;
	double ready_timeout_s; /* a rolled-in instance must accept within this */
	double drain_timeout_s; /* a rolled-out instance may finish its connections */
	json_t *effective;      /* every setting that reaches the worker; reload compares these */
};

struct gd_config {
	char *path;             /* the file, absolute ("<string>" for gd_config_parse) */
	char *control_socket;
	int socket_mode;
	char *socket_group;     /* or NULL */
	char *preload;          /* or NULL: next to greend, then GREEND_PRELOAD_PATH */
	char *log_dir;          /* or NULL: greend's stderr, prefixed */
	long stats_interval_ms;
	long long log_max_bytes;/* rotate NAME.log past this size; 0 = never */
	long log_backups;
	long dump_timeout_ms;
	char *http_listen;      /* "HOST:PORT", "[V6]:PORT", "unix:PATH", or NULL: off */
	bool allow_insecure_paths; /* as root, accept paths others could change */
	struct gd_worker_conf **workers;
	size_t nworkers;
};

/* Load and validate FILE.  On error returns NULL, errno EINVAL (or the
 * open error) and a message "FILE[:LINE:COL]: PATH: what" in ERR.  As
 * root it also refuses (EPERM) a config file, preload library or worker
 * executable that others could change, unless allow_insecure_paths. */
struct gd_config *gd_config_load(const char *file, char *err, size_t errlen);
/* The same for a string; relative paths resolve against BASE_DIR and
 * messages start with NAME. */
struct gd_config *gd_config_parse(const char *text, const char *name,
				  const char *base_dir, char *err, size_t errlen);
void gd_config_free(struct gd_config *cfg);
void gd_worker_conf_free(struct gd_worker_conf *wc);

/* A patchable module's name (libgreen's table, shared with the shim). */
bool gd_module_known(const char *name);
/* Check a GREEN_PATCH value ("socket, dns", "all,-thread", "none") with the
 * shim's own parser. */
int gd_patch_list_check(const char *list, char *err, size_t errlen);

const char *gd_restart_name(enum gd_restart r);
const char *gd_signal_name(int sig);

#endif
