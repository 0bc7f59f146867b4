/*
 * sup.h - the supervisor: workers, their instances, and the state machine
 *
 *   stopped -> starting -> running -> stopping -> stopped
 *   an unexpected exit -> backoff (then starting) | exited | fatal
 *
 * on libev's default loop (ev_child needs it).  Instances that must go away
 * (a reload shrank or removed their worker) are only marked; a prepare
 * watcher frees them once they are at rest, so no callback ever runs on
 * freed memory and callers may hold instance pointers for one loop pass.
 */
#ifndef GREEND_SUP_H
#define GREEND_SUP_H

#include <stdbool.h>
#include <sys/types.h>

#include <ev.h>
#include <jansson.h>

#include "chan.h"
#include "config.h"
#include "listen.h"
#include "tree.h"
#include "wlog.h"

enum gd_state {
	GD_STOPPED,
	GD_STARTING,
	GD_RUNNING,
	GD_BACKOFF,
	GD_STOPPING,
	GD_EXITED,
	GD_FATAL,
};
#define GD_NSTATES 7

struct gd_sup;
struct gd_worker;
struct gd_roll;

struct gd_instance {
	struct gd_worker *w;
	int index;
	char id[80];
	enum gd_state state;
	pid_t pid;
	long restarts;          /* automatic restarts since greend started */
	double started_at;      /* ev_now() when the current process was forked */
	double since;           /* ev_now() of the last state change */
	double *recent;         /* restart times inside restart_window_s */
	size_t nrecent, caprecent;
	bool have_status;
	int last_status;        /* wait status of the last exit */
	char reason[512];       /* why fatal/exited, for status */
	bool restart_pending;   /* start again once stopped */
	bool retire;            /* free once at rest */
	bool log_warned;        /* a failed log write was reported */
	ev_child child_w;
	ev_timer timer;         /* start_secs, back-off or stop timeout */
	int err_fd;             /* exec error pipe, open until exec or failure */
	ev_io err_io;
	char spawn_err[256];    /* what the child said before exec failed */
	int spawn_errno;
	int out_fd;
	ev_io out_io;
	char line[4096];
	size_t linelen;
	struct gd_chan chan;
	bool draining;          /* a rolling restart drains it before the stop */
	struct gd_listener *held[GD_LISTEN_MAX]; /* what the running process got */
	size_t nheld;
};

struct gd_worker {
	struct gd_sup *sup;
	struct gd_worker_conf *conf;
	struct gd_instance **inst;
	size_t ninst;
	bool retire;
	bool have_wlog;
	struct gd_wlog wlog;
	struct gd_roll *roll;   /* a rolling restart under way (roll.c) */
	char roll_error[400];   /* why the last one stopped, for status */
};

struct gd_sup {
	struct ev_loop *loop;
	struct gd_config *cfg;  /* global settings; worker confs belong to workers */
	struct gd_worker **workers;
	size_t nworkers;
	struct gd_listeners listeners;
	bool preload_warned;
	bool shutting_down;
	ev_prepare gc;
	struct gd_proc *procs;  /* /proc snapshot of this loop pass (sup.c) */
	size_t nprocs;
	unsigned int procs_iter;
	void *hook_data;        /* for on_dump */
	void (*on_dump)(struct gd_instance *in, json_t *greenlets, void *data);
	void *change_data;      /* for on_change */
	void (*on_change)(struct gd_instance *in, void *data);
};

const char *gd_state_name(enum gd_state st);
bool gd_state_at_rest(enum gd_state st);

/* Take CFG (and its worker confs) and create the instances, all stopped. */
int gd_sup_init(struct gd_sup *s, struct ev_loop *loop, struct gd_config *cfg);
void gd_sup_start_all(struct gd_sup *s);
/* Bind the listeners of every worker (greend exits 1 when this fails). */
int gd_sup_listen(struct gd_sup *s, char *err, size_t errlen);
/* Bind what NEWCFG adds before gd_sup_reload; a failure changes nothing. */
int gd_sup_reload_listen(struct gd_sup *s, struct gd_config *newcfg, char *err, size_t errlen);
/* Stop everything for good; gd_sup_all_at_rest() tells when done. */
void gd_sup_shutdown(struct gd_sup *s);
bool gd_sup_all_at_rest(const struct gd_sup *s);
/* Send SIGKILL to every process group still alive (second SIGTERM). */
void gd_sup_kill_all(struct gd_sup *s);
void gd_sup_free(struct gd_sup *s);

/* Apply NEWCFG (taken): add, remove, restart changed, keep the rest.
 * REPORT gets "added", "removed", "changed", "unchanged", "warnings". */
int gd_sup_reload(struct gd_sup *s, struct gd_config *newcfg, json_t *report);

int gd_inst_start(struct gd_instance *in);
void gd_inst_stop(struct gd_instance *in);
void gd_inst_restart(struct gd_instance *in);
/* One more instance for slot INDEX of W, stopped (a rolling restart's
 * successor, which shares the slot's id until the old one is gone). */
struct gd_instance *gd_sup_inst_add(struct gd_worker *w, int index);

/* For reload.c: a new worker for C (taken), its instances created stopped;
 * a worker's config replaced (the old one freed); W's missing instances
 * below index N created, stopped. */
struct gd_worker *gd_worker_new(struct gd_sup *s, struct gd_worker_conf *c);
void gd_worker_set_conf(struct gd_worker *w, struct gd_worker_conf *c);
int gd_worker_grow(struct gd_worker *w, int n);

struct gd_worker *gd_sup_find_worker(const struct gd_sup *s, const char *name);
struct gd_instance *gd_sup_find_instance(const struct gd_sup *s, const char *id);

/* The back-off before restart number N (1-based) inside the window. */
long gd_backoff_ms(const struct gd_worker_conf *c, size_t n);

#endif
