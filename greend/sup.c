/*
 * sup.c - supervising worker instances: spawning, reaping, restart policy
 * with exponential back-off and a restart window, stopping whole process
 * trees, and forwarding worker output.  Applying a reloaded config is
 * reload.c's, on top of the worker functions at the end of this file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "roll.h"
#include "spawn.h"
#include "sup.h"
#include "tree.h"

static const char *const state_names[GD_NSTATES] = {
	"stopped", "starting", "running", "backoff", "stopping", "exited", "fatal",
};

const char *gd_state_name(enum gd_state st)
{
	return (unsigned)st < GD_NSTATES ? state_names[st] : "?";
}

bool gd_state_at_rest(enum gd_state st)
{
	return st == GD_STOPPED || st == GD_EXITED || st == GD_FATAL;
}

long gd_backoff_ms(const struct gd_worker_conf *c, size_t n)
{
	long ms = c->backoff_ms;

	for (size_t i = 1; i < n && ms < c->backoff_max_ms; i++)
		ms *= 2;
	return ms > c->backoff_max_ms ? c->backoff_max_ms : ms;
}

static void set_state(struct gd_instance *in, enum gd_state st)
{
	struct gd_sup *s = in->w->sup;

	if (in->state != st)
		log_info("%s: %s -> %s", in->id, gd_state_name(in->state), gd_state_name(st));
	in->state = st;
	in->since = ev_now(s->loop);
	if (s->on_change)
		s->on_change(in, s->change_data);
	gd_roll_on_change(in);
}

/* ---- worker output --------------------------------------------------------- */

static void emit(struct gd_instance *in, const char *p, size_t n)
{
	struct gd_worker *w = in->w;
	struct gd_sup *s = w->sup;
	char buf[sizeof(in->line) + 128];
	size_t len;

	len = (size_t)snprintf(buf, sizeof(buf), "%s: ", in->id);
	memcpy(buf + len, p, n);
	len += n;
	buf[len++] = '\n';
	if (s->cfg->log_dir) {
		if (!w->have_wlog) {
			if (gd_wlog_init(&w->wlog, s->cfg->log_dir, w->conf->name,
					 s->cfg->log_max_bytes, s->cfg->log_backups) < 0)
				return;
			w->have_wlog = true;
		}
		if (gd_wlog_write(&w->wlog, buf, len) < 0 && !in->log_warned) {
			log_warnx("%s: log file: %s", in->id, w->wlog.err);
			in->log_warned = true;
		}
		return;
	}
	gd_log_emit(buf, len);
}

static void out_feed(struct gd_instance *in, const char *p, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;
		size_t room = sizeof(in->line) - in->linelen;

		if (take >= room) {
			memcpy(in->line + in->linelen, p, room);
			emit(in, in->line, sizeof(in->line));
			in->linelen = 0;
			p += room;
			n -= room;
			continue;
		}
		memcpy(in->line + in->linelen, p, take);
		in->linelen += take;
		p += take;
		n -= take;
		if (nl) {
			emit(in, in->line, in->linelen);
			in->linelen = 0;
			p++;
			n--;
		}
	}
}

static void out_close(struct gd_instance *in)
{
	if (in->out_fd < 0)
		return;
	ev_io_stop(in->w->sup->loop, &in->out_io);
	close(in->out_fd);
	in->out_fd = -1;
	if (in->linelen) {
		emit(in, in->line, in->linelen);
		in->linelen = 0;
	}
}

/* Returns false once the pipe is at EOF. */
static bool out_drain(struct gd_instance *in, int max_reads)
{
	char buf[16384];

	for (int i = 0; i < max_reads; i++) {
		ssize_t n = read(in->out_fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN;
		if (n == 0)
			return false;
		out_feed(in, buf, (size_t)n);
	}
	return true;
}

static void out_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gd_instance *in = w->data;

	if (!out_drain(in, 4))
		out_close(in);
}

/* ---- the exec error pipe ------------------------------------------------------ */

/* EOF on the pipe means the exec succeeded (the pipe is CLOEXEC); a failed
 * exec wrote why.  Either way the fd goes now, not at the exit: a running
 * instance holds only its channel and its output pipe. */
static void err_collect(struct gd_instance *in)
{
	if (in->err_fd < 0)
		return;
	ev_io_stop(in->w->sup->loop, &in->err_io);
	gd_spawn_read_error(in->err_fd, in->spawn_err, sizeof(in->spawn_err),
			    &in->spawn_errno);
	close(in->err_fd);
	in->err_fd = -1;
}

static void err_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	err_collect(w->data);
}

/* ---- the instance's other processes ------------------------------------------- */

static bool is_live_leader(pid_t pid, void *arg)
{
	struct gd_sup *s = arg;

	for (size_t i = 0; i < s->nworkers; i++)
		for (size_t j = 0; j < s->workers[i]->ninst; j++)
			if (s->workers[i]->inst[j]->pid == pid)
				return true;
	return false;
}

/*
 * Send SIG to every process of IN outside the leader's process group's
 * reach: setsid children, and what the leader left to greend when it died
 * (see tree.h).  LEADER is the live leader, or the one that just exited.
 * With SIGKILL it scans again until nothing is left to kill (a fork may
 * land between a scan and its kill), within a few passes.
 */
/* A /proc snapshot, reused within one loop pass: stopping or losing many
 * instances at once (shutdown, a reload) then reads /proc once, not once
 * per instance.  FRESH forces a new one. */
static ssize_t snapshot(struct gd_sup *s, bool fresh, struct gd_proc **out)
{
	unsigned int iter = ev_iteration(s->loop);

	if (fresh || !s->procs || s->procs_iter != iter) {
		struct gd_proc *p = NULL;
		ssize_t n = gd_proc_scan(&p);

		if (n < 0)
			return -1;
		free(s->procs);
		s->procs = p;
		s->nprocs = (size_t)n;
		s->procs_iter = iter;
	}
	*out = s->procs;
	return (ssize_t)s->nprocs;
}

static void end_tree(struct gd_instance *in, pid_t leader, bool leader_alive, int sig)
{
	struct gd_sup *s = in->w->sup;
	pid_t self = getpid();

	for (int pass = 0; pass < 4; pass++) {
		struct gd_proc *p;
		ssize_t n = snapshot(s, pass > 0, &p);
		bool *mark;
		size_t hits = 0;

		if (n <= 0 || !(mark = calloc((size_t)n, sizeof(bool))))
			return;
		if (gd_tree_mark(p, (size_t)n, self, leader, leader_alive, in->id,
				 is_live_leader, s, mark)) {
			for (ssize_t i = 0; i < n; i++) {
				if (!mark[i])
					continue;
				if (kill(p[i].pid, sig) == 0)
					hits++;
				if (sig != SIGKILL)
					kill(p[i].pid, SIGCONT);
			}
		}
		free(mark);
		if (hits && pass == 0)
			log_info("%s: sent SIG%s to %zu process%s outside its group", in->id,
				 sig == SIGKILL ? "KILL" : gd_signal_name(sig), hits,
				 hits == 1 ? "" : "es");
		if (!hits || sig != SIGKILL)
			return;
	}
}

/* ---- lifecycle --------------------------------------------------------------- */

static void spawn(struct gd_instance *in);

static void fatal(struct gd_instance *in, const char *why)
{
	snprintf(in->reason, sizeof(in->reason), "%s", why);
	log_warnx("%s: fatal: %s", in->id, why);
	set_state(in, GD_FATAL);
}

static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gd_instance *in = t->data;

	switch (in->state) {
	case GD_STARTING:
		set_state(in, GD_RUNNING);
		break;
	case GD_BACKOFF:
		spawn(in);
		break;
	case GD_STOPPING:
		log_warnx("%s: did not stop within %g s; sending SIGKILL to its process group",
			  in->id, in->w->conf->stop_timeout_s);
		if (in->pid > 0) {
			kill(-in->pid, SIGKILL);
			end_tree(in, in->pid, true, SIGKILL);
		}
		break;
	default:
		break;
	}
}

static void arm(struct gd_instance *in, double secs)
{
	struct ev_loop *loop = in->w->sup->loop;

	ev_timer_stop(loop, &in->timer);
	ev_timer_set(&in->timer, secs, 0);
	ev_timer_start(loop, &in->timer);
}

/* An exit we did not ask for: decide between backoff, exited and fatal. */
static void exit_policy(struct gd_instance *in, int status, bool spawn_failed)
{
	const struct gd_worker_conf *c = in->w->conf;
	struct gd_sup *s = in->w->sup;
	double now = ev_now(s->loop);
	bool failed = spawn_failed || !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	size_t keep = 0;
	long delay;

	if (s->shutting_down || in->retire) {
		set_state(in, GD_STOPPED);
		return;
	}
	if (c->restart == GD_RESTART_NEVER ||
	    (c->restart == GD_RESTART_ON_FAILURE && !failed)) {
		set_state(in, GD_EXITED);
		return;
	}
	for (size_t i = 0; i < in->nrecent; i++)
		if (in->recent[i] > now - c->restart_window_s)
			in->recent[keep++] = in->recent[i];
	in->nrecent = keep;
	if ((long)in->nrecent >= c->max_restarts) {
		char why[200];

		snprintf(why, sizeof(why),
			 "exited %zu times within %g s (max_restarts %ld); not restarting",
			 in->nrecent + 1, c->restart_window_s, c->max_restarts);
		fatal(in, why);
		return;
	}
	if (in->nrecent == in->caprecent) {
		size_t cap = in->caprecent ? in->caprecent * 2 : 8;
		double *r = realloc(in->recent, cap * sizeof(double));

		if (!r) {
			fatal(in, "out of memory");
			return;
		}
		in->recent = r;
		in->caprecent = cap;
	}
	in->recent[in->nrecent++] = now;
	in->restarts++;
	delay = gd_backoff_ms(c, in->nrecent);
	log_info("%s: restarting in %ld ms", in->id, delay);
	set_state(in, GD_BACKOFF);
	arm(in, delay / 1000.0);
}

static void describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(status),
			 strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
	else
		snprintf(buf, len, "wait status %#x", status);
}

static void child_cb(struct ev_loop *loop, ev_child *cw, int revents)
{
	struct gd_instance *in = cw->data;
	int status = cw->rstatus;
	char what[128];
	bool stopping = in->state == GD_STOPPING;

	ev_child_stop(loop, cw);
	ev_timer_stop(loop, &in->timer);
	err_collect(in);
	if (in->out_fd >= 0) {
		out_drain(in, 64);
		out_close(in);
	}
	gd_chan_close(&in->chan, loop, "worker exited");
	gd_listeners_release(&in->w->sup->listeners, in->held, in->nheld);
	in->nheld = 0;
	/* Whatever the leader left behind goes with it, whether we asked it to
	 * stop or it exited by itself: its group, and (in->pid is still the
	 * leader's, so it is not taken for a live one) what escaped the group
	 * or was reparented to greend. */
	kill(-in->pid, SIGKILL);
	end_tree(in, in->pid, false, SIGKILL);
	in->pid = 0;
	in->have_status = true;
	in->last_status = status;
	describe_status(status, what, sizeof(what));
	snprintf(in->reason, sizeof(in->reason), "%s", what);
	if (in->spawn_err[0]) {
		/* Out of fds or processes is weather, not a broken command: the
		 * restart policy (with its back-off and window) decides. */
		if (!stopping && gd_spawn_errno_transient(in->spawn_errno)) {
			log_warnx("%s: cannot start: %s", in->id, in->spawn_err);
			snprintf(in->reason, sizeof(in->reason), "%s", in->spawn_err);
			exit_policy(in, status, true);
			return;
		}
		if (!stopping) {
			fatal(in, in->spawn_err);
			return;
		}
	}
	log_info("%s: %s", in->id, what);
	if (stopping) {
		if (in->restart_pending && !in->w->sup->shutting_down && !in->retire) {
			in->restart_pending = false;
			set_state(in, GD_STOPPED);
			spawn(in);
		} else {
			in->restart_pending = false;
			set_state(in, GD_STOPPED);
		}
		return;
	}
	exit_policy(in, status, false);
}

static const char *preload_for(struct gd_sup *s, char *buf, size_t len)
{
	if (s->cfg->preload) {
		if (access(s->cfg->preload, R_OK) == 0)
			return s->cfg->preload;
		if (!s->preload_warned)
			log_warnx("warning: preload library %s: %s; workers run unpatched",
				  s->cfg->preload, strerror(errno));
		s->preload_warned = true;
		return NULL;
	}
	if (gd_find_preload(buf, len) == 0)
		return buf;
	if (!s->preload_warned)
		log_warnx("warning: %s not found next to greend nor at %s; workers run unpatched",
			  GD_PRELOAD_NAME, GREEND_PRELOAD_PATH);
	s->preload_warned = true;
	return NULL;
}

/*
 * The listeners go to the new process as they are.  Their O_NONBLOCK is the
 * one flag every instance shares, so it is decided per worker: set when the
 * shim greens sockets (its accept then never blocks the hub when a sibling
 * took the connection, and it shows the program a blocking socket), clear
 * otherwise, as systemd hands them, for a kernel-blocking accept.
 */
static int hand_over(struct gd_instance *in, struct gd_spawn *sp, int *lfds)
{
	struct gd_sup *s = in->w->sup;
	bool nonblock = sp->preload && gd_patch_has_socket(in->w->conf->patch);

	if (gd_listeners_take(&s->listeners, in->w->conf, in->held, &in->nheld) < 0)
		return -1;
	for (size_t i = 0; i < in->nheld; i++) {
		int fl = fcntl(in->held[i]->fd, F_GETFL);

		if (fl >= 0 && ((fl & O_NONBLOCK) != 0) != nonblock)
			fcntl(in->held[i]->fd, F_SETFL, nonblock ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
		lfds[i] = in->held[i]->fd;
	}
	sp->listen_fds = lfds;
	sp->nlisten = in->nheld;
	return 0;
}

static void spawn(struct gd_instance *in)
{
	struct gd_sup *s = in->w->sup;
	struct gd_spawn sp;
	char err[300], pre[4096];
	int lfds[GD_LISTEN_MAX];

	memset(&sp, 0, sizeof(sp));
	sp.conf = in->w->conf;
	sp.id = in->id;
	sp.preload = preload_for(s, pre, sizeof(pre));
	sp.stats_interval_ms = s->cfg->stats_interval_ms;
	in->reason[0] = '\0';
	in->spawn_err[0] = '\0';
	in->spawn_errno = 0;
	in->have_status = false;
	if (hand_over(in, &sp, lfds) < 0) {
		fatal(in, "a listener of its config is not open (greend could not bind it)");
		return;
	}
	if (gd_spawn_start(&sp, err, sizeof(err)) < 0) {
		int e = errno;

		gd_listeners_release(&s->listeners, in->held, in->nheld);
		in->nheld = 0;
		errno = e;
		if (!gd_spawn_errno_transient(errno)) {
			fatal(in, err);
		} else {
			log_warnx("%s: cannot start: %s", in->id, err);
			snprintf(in->reason, sizeof(in->reason), "%s", err);
			set_state(in, GD_STARTING);
			exit_policy(in, 0, true);
		}
		return;
	}
	in->pid = sp.pid;
	in->err_fd = sp.err_fd;
	ev_io_set(&in->err_io, sp.err_fd, EV_READ);
	ev_io_start(s->loop, &in->err_io);
	in->out_fd = sp.out_fd;
	in->started_at = ev_now(s->loop);
	ev_child_set(&in->child_w, sp.pid, 0);
	ev_child_start(s->loop, &in->child_w);
	ev_io_set(&in->out_io, sp.out_fd, EV_READ);
	ev_io_start(s->loop, &in->out_io);
	gd_chan_reset(&in->chan);
	gd_chan_open(&in->chan, s->loop, sp.chan_fd);
	log_info("%s: started pid %d", in->id, (int)sp.pid);
	set_state(in, GD_STARTING);
	if (in->w->conf->start_secs <= 0)
		set_state(in, GD_RUNNING);
	else
		arm(in, in->w->conf->start_secs);
}

int gd_inst_start(struct gd_instance *in)
{
	if (in->w->sup->shutting_down) {
		errno = ESHUTDOWN;
		return -1;
	}
	switch (in->state) {
	case GD_STOPPED:
	case GD_EXITED:
	case GD_FATAL:
		in->nrecent = 0;
		spawn(in);
		break;
	case GD_BACKOFF:
		ev_timer_stop(in->w->sup->loop, &in->timer);
		spawn(in);
		break;
	case GD_STOPPING:
		in->restart_pending = true;
		break;
	case GD_STARTING:
	case GD_RUNNING:
		break;
	}
	return 0;
}

void gd_inst_stop(struct gd_instance *in)
{
	const struct gd_worker_conf *c = in->w->conf;

	in->restart_pending = false;
	switch (in->state) {
	case GD_STARTING:
	case GD_RUNNING:
		log_info("%s: stopping pid %d with SIG%s", in->id, (int)in->pid,
			 gd_signal_name(c->stop_signal));
		kill(-in->pid, c->stop_signal);
		kill(-in->pid, SIGCONT);
		end_tree(in, in->pid, true, c->stop_signal);
		set_state(in, GD_STOPPING);
		arm(in, c->stop_timeout_s);
		break;
	case GD_BACKOFF:
		ev_timer_stop(in->w->sup->loop, &in->timer);
		set_state(in, GD_STOPPED);
		break;
	default:
		break;
	}
}

void gd_inst_restart(struct gd_instance *in)
{
	if (in->w->sup->shutting_down)
		return;
	switch (in->state) {
	case GD_STARTING:
	case GD_RUNNING:
		gd_inst_stop(in);
		in->restart_pending = true;
		break;
	case GD_STOPPING:
		in->restart_pending = true;
		break;
	default:
		gd_inst_start(in);
		break;
	}
}

static void on_chan_dump(void *owner, json_t *greenlets)
{
	struct gd_instance *in = owner;
	struct gd_sup *s = in->w->sup;

	if (s->on_dump)
		s->on_dump(in, greenlets, s->hook_data);
}

static void on_chan_listen(void *owner)
{
	gd_roll_on_listen(owner);
}

static struct gd_instance *inst_new(struct gd_worker *w, int index)
{
	struct gd_instance *in = calloc(1, sizeof(*in));

	if (!in)
		return NULL;
	in->w = w;
	in->index = index;
	snprintf(in->id, sizeof(in->id), "%s:%d", w->conf->name, index);
	in->state = GD_STOPPED;
	in->since = ev_now(w->sup->loop);
	in->err_fd = in->out_fd = -1;
	ev_child_init(&in->child_w, child_cb, 0, 0);
	in->child_w.data = in;
	ev_timer_init(&in->timer, timer_cb, 0, 0);
	in->timer.data = in;
	ev_io_init(&in->err_io, err_cb, -1, EV_READ);
	in->err_io.data = in;
	ev_io_init(&in->out_io, out_cb, -1, EV_READ);
	in->out_io.data = in;
	gd_chan_init(&in->chan, in);
	in->chan.on_dump = on_chan_dump;
	in->chan.on_listen = on_chan_listen;
	return in;
}

static void inst_free(struct gd_instance *in)
{
	struct ev_loop *loop = in->w->sup->loop;

	ev_child_stop(loop, &in->child_w);
	ev_timer_stop(loop, &in->timer);
	out_close(in);
	err_collect(in);
	gd_chan_close(&in->chan, loop, "");
	gd_chan_reset(&in->chan);
	gd_listeners_release(&in->w->sup->listeners, in->held, in->nheld);
	free(in->recent);
	free(in);
}

/* Create W's missing instances below index N, stopped. */
int gd_worker_grow(struct gd_worker *w, int n)
{
	for (int i = 0; i < n; i++) {
		struct gd_instance *in = NULL, **arr;

		for (size_t j = 0; j < w->ninst && !in; j++)
			if (w->inst[j]->index == i)
				in = w->inst[j];
		if (in)
			continue;
		in = inst_new(w, i);
		if (!in)
			return -1;
		arr = realloc(w->inst, (w->ninst + 1) * sizeof(*arr));
		if (!arr) {
			inst_free(in);
			return -1;
		}
		w->inst = arr;
		w->inst[w->ninst++] = in;
	}
	return 0;
}

struct gd_instance *gd_sup_inst_add(struct gd_worker *w, int index)
{
	struct gd_instance *in = inst_new(w, index), **arr;

	if (!in)
		return NULL;
	arr = realloc(w->inst, (w->ninst + 1) * sizeof(*arr));
	if (!arr) {
		inst_free(in);
		return NULL;
	}
	w->inst = arr;
	w->inst[w->ninst++] = in;
	return in;
}

void gd_worker_set_conf(struct gd_worker *w, struct gd_worker_conf *c)
{
	if (w->conf != c)
		gd_worker_conf_free(w->conf);
	w->conf = c;
	if (w->have_wlog) {
		gd_wlog_free(&w->wlog);
		w->have_wlog = false;
	}
	for (size_t i = 0; i < w->ninst; i++)
		snprintf(w->inst[i]->id, sizeof(w->inst[i]->id), "%s:%d", c->name,
			 w->inst[i]->index);
}

struct gd_worker *gd_worker_new(struct gd_sup *s, struct gd_worker_conf *c)
{
	struct gd_worker *w = calloc(1, sizeof(*w)), **arr;

	if (!w)
		return NULL;
	w->sup = s;
	w->conf = c;
	if (gd_worker_grow(w, c->instances) < 0)
		goto err;
	arr = realloc(s->workers, (s->nworkers + 1) * sizeof(*arr));
	if (!arr)
		goto err;
	s->workers = arr;
	s->workers[s->nworkers++] = w;
	return w;
err:
	for (size_t i = 0; i < w->ninst; i++)
		inst_free(w->inst[i]);
	free(w->inst);
	free(w);
	return NULL;
}

static void worker_free(struct gd_worker *w)
{
	gd_roll_free(w);
	for (size_t i = 0; i < w->ninst; i++)
		inst_free(w->inst[i]);
	free(w->inst);
	if (w->have_wlog)
		gd_wlog_free(&w->wlog);
	gd_worker_conf_free(w->conf);
	free(w);
}

/* Free what was marked to go and has come to rest. */
static void gc_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	struct gd_sup *s = p->data;
	size_t i, j, k;

	for (i = 0, k = 0; i < s->nworkers; i++) {
		struct gd_worker *w = s->workers[i];
		size_t keep = 0;

		for (j = 0; j < w->ninst; j++) {
			struct gd_instance *in = w->inst[j];

			if ((in->retire || w->retire) && gd_state_at_rest(in->state) && in->pid == 0)
				inst_free(in);
			else
				w->inst[keep++] = in;
		}
		w->ninst = keep;
		if (w->retire && w->ninst == 0)
			worker_free(w);
		else
			s->workers[k++] = w;
	}
	s->nworkers = k;
}

int gd_sup_init(struct gd_sup *s, struct ev_loop *loop, struct gd_config *cfg)
{
	memset(s, 0, sizeof(*s));
	/* Whatever a worker leaves behind is reparented to greend, which can
	 * then end it with its instance (tree.h) and reaps it. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_warnx("warning: PR_SET_CHILD_SUBREAPER: %s; a worker's orphans go to init",
			  strerror(errno));
	s->loop = loop;
	s->cfg = cfg;
	ev_prepare_init(&s->gc, gc_cb);
	s->gc.data = s;
	ev_prepare_start(loop, &s->gc);
	for (size_t i = 0; i < cfg->nworkers; i++) {
		if (!gd_worker_new(s, cfg->workers[i]))
			return -1;
		cfg->workers[i] = NULL;
	}
	cfg->nworkers = 0;
	return 0;
}

int gd_sup_listen(struct gd_sup *s, char *err, size_t errlen)
{
	struct gd_worker_conf *confs[1024];
	size_t n = 0;

	for (size_t i = 0; i < s->nworkers && n < sizeof(confs) / sizeof(confs[0]); i++)
		confs[n++] = s->workers[i]->conf;
	if (gd_listeners_bind(&s->listeners, confs, n, err, errlen) < 0)
		return -1;
	gd_listeners_commit(&s->listeners);
	return 0;
}

int gd_sup_reload_listen(struct gd_sup *s, struct gd_config *nc, char *err, size_t errlen)
{
	return gd_listeners_bind(&s->listeners, nc->workers, nc->nworkers, err, errlen);
}

void gd_sup_start_all(struct gd_sup *s)
{
	for (size_t i = 0; i < s->nworkers; i++)
		for (size_t j = 0; j < s->workers[i]->ninst; j++)
			gd_inst_start(s->workers[i]->inst[j]);
}

void gd_sup_shutdown(struct gd_sup *s)
{
	s->shutting_down = true;
	for (size_t i = 0; i < s->nworkers; i++)
		for (size_t j = 0; j < s->workers[i]->ninst; j++)
			gd_inst_stop(s->workers[i]->inst[j]);
}

void gd_sup_kill_all(struct gd_sup *s)
{
	for (size_t i = 0; i < s->nworkers; i++)
		for (size_t j = 0; j < s->workers[i]->ninst; j++)
			if (s->workers[i]->inst[j]->pid > 0) {
				kill(-s->workers[i]->inst[j]->pid, SIGKILL);
				end_tree(s->workers[i]->inst[j], s->workers[i]->inst[j]->pid,
					 true, SIGKILL);
			}
}

bool gd_sup_all_at_rest(const struct gd_sup *s)
{
	for (size_t i = 0; i < s->nworkers; i++)
		for (size_t j = 0; j < s->workers[i]->ninst; j++)
			if (!gd_state_at_rest(s->workers[i]->inst[j]->state) ||
			    s->workers[i]->inst[j]->pid > 0)
				return false;
	return true;
}

void gd_sup_free(struct gd_sup *s)
{
	ev_prepare_stop(s->loop, &s->gc);
	free(s->procs);
	s->procs = NULL;
	for (size_t i = 0; i < s->nworkers; i++)
		worker_free(s->workers[i]);
	free(s->workers);
	gd_listeners_free(&s->listeners);
	gd_config_free(s->cfg);
	s->workers = NULL;
	s->nworkers = 0;
	s->cfg = NULL;
}

struct gd_worker *gd_sup_find_worker(const struct gd_sup *s, const char *name)
{
	for (size_t i = 0; i < s->nworkers; i++)
		if (!s->workers[i]->retire && strcmp(s->workers[i]->conf->name, name) == 0)
			return s->workers[i];
	return NULL;
}

struct gd_instance *gd_sup_find_instance(const struct gd_sup *s, const char *id)
{
	/* During a rolling restart a draining instance shares its id with
	 * its successor: the one that stays is meant. */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < s->nworkers; i++)
			for (size_t j = 0; j < s->workers[i]->ninst; j++)
				if ((pass || !s->workers[i]->inst[j]->retire) &&
				    strcmp(s->workers[i]->inst[j]->id, id) == 0)
					return s->workers[i]->inst[j];
	return NULL;
}
