/*
 * greend.c - the supervisor daemon's main: command line, config, the
 * control socket and HTTP endpoint, signals (TERM/INT stop, HUP reload),
 * systemd notification, daemonizing when not in the foreground, and what
 * PID 1 of a container owes the processes the kernel hands it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "config.h"
#include "control.h"
#include "http.h"
#include "log.h"
#include "notify.h"
#include "proto.h"
#include "status.h"
#include "sup.h"

#define DEFAULT_CONFIG "/etc/greend/greend.json"

struct daemon {
	struct ev_loop *loop;
	const char *config_path;        /* as given, then our own absolute copy */
	char *config_copy;
	struct gd_sup sup;
	struct gd_control ctl;
	struct gd_http http;
	struct gd_daemon_info info;
	ev_signal sigterm, sigint, sighup;
	ev_check exit_check;
	ev_prepare status_prepare;
	bool status_due;
	int stop_requests;
	bool pid1;              /* PID 1 of a pid namespace: the reaper of last resort */
	bool others_signalled;  /* PID 1 has sent SIGTERM to the rest of the namespace */
	ev_timer others_kill;   /* and SIGKILL after this */
};

/* How long PID 1 gives the processes that are not workers to go after
 * SIGTERM before SIGKILL. */
#define OTHERS_STOP_TIMEOUT_S 5.0

static void usage(FILE *f)
{
	fprintf(f, "usage: greend [-c FILE] [--check] [-f|--foreground] [--version]\n"
		   "  -c, --config FILE   config file (default %s)\n"
		   "      --check         validate the config and exit 0 (valid) or 1\n"
		   "  -f, --foreground    do not daemonize; log to stderr\n"
		   "      --version       print the version and exit\n", DEFAULT_CONFIG);
}

static void send_status(struct daemon *d)
{
	size_t total = 0, running = 0, fatal = 0;

	for (size_t i = 0; i < d->sup.nworkers; i++) {
		for (size_t j = 0; j < d->sup.workers[i]->ninst; j++) {
			total++;
			running += d->sup.workers[i]->inst[j]->state == GD_RUNNING;
			fatal += d->sup.workers[i]->inst[j]->state == GD_FATAL;
		}
	}
	if (fatal)
		gd_notify("STATUS=%zu of %zu instances running, %zu fatal", running, total, fatal);
	else
		gd_notify("STATUS=%zu of %zu instances running", running, total);
}

static void on_change(struct gd_instance *in, void *data)
{
	((struct daemon *)data)->status_due = true;
}

/* Coalesce STATUS= updates to one per loop pass. */
static void status_prepare_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	struct daemon *d = p->data;

	if (!d->status_due)
		return;
	d->status_due = false;
	send_status(d);
}

static long socket_gid(const struct gd_config *cfg)
{
	struct group *gr = cfg->socket_group ? getgrnam(cfg->socket_group) : NULL;

	return gr ? (long)gr->gr_gid : -1;
}

static int http_open(struct daemon *d, const char *addr, char *err, size_t errlen)
{
	if (gd_http_open(&d->http, d->loop, &d->sup, &d->info, addr, d->sup.cfg->socket_mode,
			 socket_gid(d->sup.cfg), err, errlen) < 0)
		return -1;
	log_info("http: listening on %s", addr);
	return 0;
}

/* A reload moved, added or removed http_listen.  The old listener goes
 * first (the new address may be the same port); if the new one cannot be
 * opened the old comes back and the reload says why. */
static void http_apply(struct daemon *d, json_t *report)
{
	const char *want = d->sup.cfg->http_listen;
	char *had = d->http.addr ? strdup(d->http.addr) : NULL;
	char err[1024], err2[1024];

	if ((!want && !had) || (want && had && strcmp(want, had) == 0))
		goto out;
	gd_http_close(&d->http);
	if (!want) {
		log_info("http: closed %s", had);
		goto out;
	}
	if (http_open(d, want, err, sizeof(err)) == 0)
		goto out;
	log_errx("%s", err);
	json_array_append_new(json_object_get(report, "warnings"), json_string(err));
	if (had && http_open(d, had, err2, sizeof(err2)) < 0)
		log_errx("%s", err2);
out:
	free(had);
}

static int do_reload(void *data, json_t *report, char *err, size_t errlen)
{
	struct daemon *d = data;
	struct gd_config *nc;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	gd_notify("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
		  (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000,
		  d->config_path);
	log_info("reloading %s", d->config_path);
	nc = gd_config_load(d->config_path, err, errlen);
	if (!nc) {
		log_errx("reload failed, keeping the running config: %s", err);
		gd_notify("READY=1\nSTATUS=reload failed: %.200s", err);
		return -1;
	}
	if (gd_sup_reload_listen(&d->sup, nc, err, errlen) < 0) {
		log_errx("reload failed, keeping the running config: %s", err);
		gd_notify("READY=1\nSTATUS=reload failed: %.200s", err);
		gd_config_free(nc);
		return -1;
	}
	if (gd_sup_reload(&d->sup, nc, report) < 0) {
		snprintf(err, errlen, "reload: %s", strerror(errno));
		gd_notify("READY=1");
		return -1;
	}
	http_apply(d, report);
	{
		char *s = json_dumps(report, JSON_COMPACT);

		log_info("reloaded: %s", s ? s : "");
		free(s);
	}
	gd_notify("READY=1");
	send_status(d);
	return 0;
}

/* Whether any child is left, exited or not, without reaping it: libev's
 * SIGCHLD handler reaps every child, workers or not. */
static bool have_children(void)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

static void others_kill_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	log_warnx("processes left in the namespace after %.0f s: sending SIGKILL",
		  OTHERS_STOP_TIMEOUT_S);
	kill(-1, SIGKILL);
}

static void exit_check_cb(struct ev_loop *loop, ev_check *c, int revents)
{
	struct daemon *d = c->data;

	if (!gd_sup_all_at_rest(&d->sup))
		return;
	/* As PID 1, everything left in the namespace is ours to stop: the
	 * kernel would SIGKILL it when we exit, with no chance to clean up. */
	if (d->pid1 && have_children()) {
		if (!d->others_signalled) {
			d->others_signalled = true;
			log_info("all workers stopped; sending SIGTERM to the other processes");
			kill(-1, SIGTERM);
			ev_timer_start(loop, &d->others_kill);
		}
		return;
	}
	ev_break(loop, EVBREAK_ALL);
}

static void do_shutdown(void *data)
{
	struct daemon *d = data;

	if (d->stop_requests++ > 0) {
		log_warnx("second stop request: killing every worker now");
		gd_sup_kill_all(&d->sup);
		return;
	}
	log_info("stopping all workers");
	gd_notify("STOPPING=1\nSTATUS=stopping");
	gd_sup_shutdown(&d->sup);
	ev_check_start(d->loop, &d->exit_check);
	/* A pass with nothing to wake it must still check: feed one event. */
	ev_feed_event(d->loop, &d->exit_check, EV_CHECK);
}

static void sig_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct daemon *d = w->data;

	if (w->signum == SIGHUP) {
		char err[1024];
		json_t *report = json_object();

		do_reload(d, report, err, sizeof(err));
		json_decref(report);
		return;
	}
	log_info("got SIG%s", w->signum == SIGTERM ? "TERM" : "INT");
	do_shutdown(d);
}

static int check_only(const char *path)
{
	char err[1024];
	struct gd_config *cfg = gd_config_load(path, err, sizeof(err));

	if (!cfg) {
		fprintf(stderr, "greend: %s\n", err);
		return 1;
	}
	for (size_t i = 0; i < cfg->nworkers; i++) {
		if (cfg->workers[i]->user && !getpwnam(cfg->workers[i]->user))
			fprintf(stderr, "greend: %s: warning: workers[%zu].user: no user named \"%s\" here\n",
				path, i, cfg->workers[i]->user);
		if (cfg->workers[i]->group && !getgrnam(cfg->workers[i]->group))
			fprintf(stderr, "greend: %s: warning: workers[%zu].group: no group named \"%s\" here\n",
				path, i, cfg->workers[i]->group);
	}
	if (cfg->socket_group && !getgrnam(cfg->socket_group))
		fprintf(stderr, "greend: %s: warning: socket_group: no group named \"%s\" here\n",
			path, cfg->socket_group);
	printf("%s: configuration OK (%zu worker%s)\n", cfg->path, cfg->nworkers,
	       cfg->nworkers == 1 ? "" : "s");
	gd_config_free(cfg);
	return 0;
}

/* Fork into the background; the parent exits with the child's start-up
 * verdict, read from READY_FD, so `greend && greenctl status` works. */
static int daemonize(int *ready_fd)
{
	int p[2];
	pid_t pid;
	char c = 1;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(p[1]);
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(c == 0 ? 0 : 1);
	}
	close(p[0]);
	setsid();
	*ready_fd = p[1];
	return 0;
}

static void daemon_ready(int *ready_fd)
{
	char c = 0;
	int fd;

	if (*ready_fd < 0)
		return;
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
		gd_log_reopen();
	}
	if (write(*ready_fd, &c, 1) < 0) {
		/* the parent is gone; nothing to tell */
	}
	close(*ready_fd);
	*ready_fd = -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'C' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon d;
	struct gd_config *cfg;
	bool check = false, foreground = false;
	char err[1024];
	int opt, ready_fd = -1, rc = 1;

	memset(&d, 0, sizeof(d));
	d.config_path = DEFAULT_CONFIG;
	d.pid1 = getpid() == 1;
	gd_log_init("greend");
	while ((opt = getopt_long(argc, argv, "c:fh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			d.config_path = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'f':
			foreground = true;
			break;
		case 'V':
			printf("greend %s\n", GREEND_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return GD_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return GD_EXIT_USAGE;
	}
	if (check)
		return check_only(d.config_path);

	cfg = gd_config_load(d.config_path, err, sizeof(err));
	if (!cfg) {
		log_errx("%s", err);
		return 1;
	}
	/* Our own copy: a reload frees the config that holds cfg->path. */
	d.config_copy = strdup(cfg->path);
	if (!d.config_copy) {
		log_errx("out of memory");
		gd_config_free(cfg);
		return 1;
	}
	d.config_path = d.config_copy;
	gd_notify_init();
	signal(SIGPIPE, SIG_IGN);
	/* PID 1 must stay: its exit ends the container. */
	if (!foreground && !d.pid1 && !gd_notify_enabled() && daemonize(&ready_fd) < 0) {
		log_errx("daemonizing: %s", strerror(errno));
		gd_config_free(cfg);
		goto out_free_path;
	}
	d.loop = ev_default_loop(EVFLAG_AUTO);
	if (!d.loop) {
		log_errx("cannot initialise libev's default loop");
		gd_config_free(cfg);
		goto out_free_path;
	}
	gd_log_attach(d.loop);
	d.info.started_mono = ev_now(d.loop);
	if (gd_sup_init(&d.sup, d.loop, cfg) < 0) {
		log_errx("out of memory");
		goto out_free_sup;
	}
	if (gd_sup_listen(&d.sup, err, sizeof(err)) < 0) {
		log_errx("%s", err);
		goto out_free_sup;
	}
	d.sup.on_change = on_change;
	d.sup.change_data = &d;
	if (gd_control_listen(&d.ctl, d.loop, &d.sup, d.sup.cfg->control_socket,
			      d.sup.cfg->socket_mode, d.sup.cfg->socket_group, err, sizeof(err)) < 0) {
		log_errx("%s", err);
		goto out_free_sup;
	}
	d.info.socket = d.ctl.path;
	d.info.privileged_socket = d.ctl.op_path;
	d.ctl.info = &d.info;
	d.ctl.data = &d;
	d.ctl.reload = do_reload;
	d.ctl.shutdown = do_shutdown;
	if (d.sup.cfg->http_listen && http_open(&d, d.sup.cfg->http_listen, err, sizeof(err)) < 0) {
		log_errx("%s", err);
		gd_control_close(&d.ctl);
		goto out_free_sup;
	}

	ev_signal_init(&d.sigterm, sig_cb, SIGTERM);
	ev_signal_init(&d.sigint, sig_cb, SIGINT);
	ev_signal_init(&d.sighup, sig_cb, SIGHUP);
	d.sigterm.data = d.sigint.data = d.sighup.data = &d;
	ev_signal_start(d.loop, &d.sigterm);
	ev_signal_start(d.loop, &d.sigint);
	ev_signal_start(d.loop, &d.sighup);
	ev_timer_init(&d.others_kill, others_kill_cb, OTHERS_STOP_TIMEOUT_S, 0.);
	ev_check_init(&d.exit_check, exit_check_cb);
	d.exit_check.data = &d;
	ev_prepare_init(&d.status_prepare, status_prepare_cb);
	d.status_prepare.data = &d;
	ev_prepare_start(d.loop, &d.status_prepare);

	log_info("greend %s: pid %d, config %s, control socket %s", GREEND_VERSION,
		 (int)getpid(), d.config_path, d.ctl.path);
	gd_sup_start_all(&d.sup);
	gd_notify("READY=1\nMAINPID=%d", (int)getpid());
	send_status(&d);
	gd_notify_watchdog_start(d.loop);
	daemon_ready(&ready_fd);

	ev_run(d.loop, 0);

	log_info("all workers stopped; exiting");
	rc = 0;
	gd_notify_watchdog_stop(d.loop);
	gd_http_close(&d.http);
	gd_control_close(&d.ctl);
	ev_signal_stop(d.loop, &d.sigterm);
	ev_signal_stop(d.loop, &d.sigint);
	ev_signal_stop(d.loop, &d.sighup);
	ev_check_stop(d.loop, &d.exit_check);
	ev_timer_stop(d.loop, &d.others_kill);
	ev_prepare_stop(d.loop, &d.status_prepare);
out_free_sup:
	gd_sup_free(&d.sup);
	gd_log_attach(NULL);
	ev_loop_destroy(d.loop);
out_free_path:
	free(d.config_copy);
	return rc;
}
