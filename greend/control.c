/*
 * control.c - the control socket server.
 *
 * Each client has a bounded input line buffer and an output queue.  A
 * request that cannot be answered at once (dump waits for the worker, stop
 * and restart wait for the processes to go) parks the client: it stops
 * reading until the answer is sent, so answers stay in request order.
 * Parked clients refer to instances by id, never by pointer, because a
 * reload may free an instance while they wait.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "log.h"
#include "proto.h"

enum pending { P_NONE, P_DUMP, P_WAIT };

struct gd_client {
	struct gd_control *ctl;
	struct gd_client *next, *prev;
	int fd;
	ev_io rio, wio;
	uid_t uid;
	pid_t pid;
	bool privileged;
	bool eof;               /* no more input; close once answered */
	bool dead;              /* close as soon as the output is flushed */
	struct gd_linebuf in;
	char *out;
	size_t outlen, outoff;
	enum pending pending;
	char dump_id[80];
	ev_timer dump_timer;
	json_t *wait_ids;       /* array of instance ids */
	json_t *wait_answer;
};

bool gd_control_privileged(uid_t uid, gid_t gid, const gid_t *groups, int ngroups,
			   bool have_group, gid_t group)
{
	if (uid == 0 || uid == geteuid())
		return true;
	if (!have_group)
		return false;
	if (gid == group)
		return true;
	for (int i = 0; i < ngroups; i++)
		if (groups[i] == group)
			return true;
	return false;
}

/* ---- clients ------------------------------------------------------------------ */

static void client_free(struct gd_client *cl)
{
	struct gd_control *ctl = cl->ctl;

	ev_io_stop(ctl->loop, &cl->rio);
	ev_io_stop(ctl->loop, &cl->wio);
	ev_timer_stop(ctl->loop, &cl->dump_timer);
	close(cl->fd);
	gd_linebuf_free(&cl->in);
	free(cl->out);
	json_decref(cl->wait_ids);
	json_decref(cl->wait_answer);
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		ctl->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	ctl->nclients--;
	free(cl);
}

static void client_maybe_close(struct gd_client *cl)
{
	if ((cl->eof || cl->dead) && cl->pending == P_NONE && cl->outoff == cl->outlen)
		client_free(cl);
}

static void client_flush(struct gd_client *cl)
{
	while (cl->outoff < cl->outlen) {
		ssize_t n = send(cl->fd, cl->out + cl->outoff, cl->outlen - cl->outoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				ev_io_start(cl->ctl->loop, &cl->wio);
				return;
			}
			/* The client went away: nothing more to say to it. */
			cl->outoff = cl->outlen;
			cl->dead = true;
			break;
		}
		cl->outoff += (size_t)n;
	}
	ev_io_stop(cl->ctl->loop, &cl->wio);
	cl->outoff = cl->outlen = 0;
}

/* Queue ANSWER (taken); may free the client. Returns false if it did. */
static void client_send(struct gd_client *cl, json_t *answer)
{
	size_t n;
	char *line;

	if (!answer)
		answer = gd_answer_error("internal", "out of memory");
	line = answer ? gd_json_line(answer, &n) : NULL;
	json_decref(answer);
	if (!line) {
		cl->dead = true;
		return;
	}
	if (cl->outlen - cl->outoff + n > GD_MAX_CLIENT_OUTPUT) {
		log_warnx("control: dropping a client (pid %d) that does not read its answers",
			  (int)cl->pid);
		free(line);
		cl->dead = true;
		cl->outoff = cl->outlen;
		return;
	}
	if (cl->outoff == cl->outlen) {
		cl->outoff = cl->outlen = 0;
	}
	{
		char *o = realloc(cl->out, cl->outlen + n);

		if (!o) {
			free(line);
			cl->dead = true;
			return;
		}
		cl->out = o;
	}
	memcpy(cl->out + cl->outlen, line, n);
	cl->outlen += n;
	free(line);
	client_flush(cl);
}

static void process_lines(struct gd_client *cl);

static void client_unpark(struct gd_client *cl, json_t *answer)
{
	ev_timer_stop(cl->ctl->loop, &cl->dump_timer);
	cl->pending = P_NONE;
	json_decref(cl->wait_ids);
	cl->wait_ids = NULL;
	client_send(cl, answer);
	if (!cl->eof && !cl->dead)
		ev_io_start(cl->ctl->loop, &cl->rio);
	process_lines(cl);
}

static void process_lines(struct gd_client *cl)
{
	char *line;
	int r;

	while (cl->pending == P_NONE && !cl->dead) {
		json_t *answer;

		/* Backpressure: a client that does not read its answers gets no
		 * more work done for it until it does. */
		if (cl->outlen - cl->outoff > GD_CLIENT_BACKLOG) {
			ev_io_stop(cl->ctl->loop, &cl->rio);
			break;
		}

		r = gd_linebuf_next(&cl->in, &line);
		if (r == 0)
			break;
		if (r < 0) {
			client_send(cl, gd_answer_error("bad_request",
				errno == EMSGSIZE ? "request line longer than %d bytes" : "out of memory",
				GD_LINE_MAX));
			cl->dead = true;
			ev_io_stop(cl->ctl->loop, &cl->rio);
			break;
		}
		if (line[strspn(line, " \t")] == '\0') {
			free(line); /* blank lines are not requests */
			continue;
		}
		answer = gd_control_handle(cl->ctl, cl, line);
		free(line);
		if (answer)
			client_send(cl, answer);
		else
			ev_io_stop(cl->ctl->loop, &cl->rio);
	}
	client_maybe_close(cl);
}

static void client_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gd_client *cl = w->data;
	char buf[16384];
	ssize_t n;

	n = recv(cl->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* EOF or error: answer what was asked, then go. */
		cl->eof = true;
		ev_io_stop(loop, &cl->rio);
		if (n < 0)
			cl->dead = true;
		if (cl->pending != P_NONE && cl->dead) {
			client_free(cl);
			return;
		}
		process_lines(cl);
		return;
	}
	if (gd_linebuf_append(&cl->in, buf, (size_t)n) < 0) {
		client_free(cl);
		return;
	}
	process_lines(cl);
}

static void client_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gd_client *cl = w->data;

	client_flush(cl);
	if (cl->outoff == cl->outlen && cl->pending == P_NONE && !cl->eof && !cl->dead) {
		ev_io_start(loop, &cl->rio);
		process_lines(cl);
		return;
	}
	client_maybe_close(cl);
}

static void dump_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gd_client *cl = t->data;

	client_unpark(cl, gd_answer_error("timeout",
		"%s did not answer the dump request within %ld ms", cl->dump_id,
		cl->ctl->sup->cfg->dump_timeout_ms));
}

static void on_dump(struct gd_instance *in, json_t *greenlets, void *data)
{
	struct gd_control *ctl = data;
	struct gd_client *cl, *next;

	for (cl = ctl->clients; cl; cl = next) {
		next = cl->next;
		if (cl->pending == P_DUMP && strcmp(cl->dump_id, in->id) == 0)
			client_unpark(cl, json_pack("{s:b,s:s,s:i,s:O}", "ok", 1, "id", in->id,
						    "pid", (int)in->pid, "greenlets", greenlets));
	}
}

static bool wait_done(struct gd_control *ctl, json_t *ids)
{
	size_t i;
	json_t *v;

	json_array_foreach(ids, i, v) {
		struct gd_instance *in = gd_sup_find_instance(ctl->sup, json_string_value(v));

		if (in && (in->state == GD_STOPPING || in->restart_pending))
			return false;
	}
	return true;
}

static json_t *states_of(struct gd_control *ctl, json_t *ids)
{
	json_t *arr = json_array(), *v;
	size_t i;

	json_array_foreach(ids, i, v) {
		struct gd_instance *in = gd_sup_find_instance(ctl->sup, json_string_value(v));

		json_array_append_new(arr, json_pack("{s:O,s:s}", "id", v, "state",
						     in ? gd_state_name(in->state) : "removed"));
	}
	return arr;
}

/* After every loop pass: answer parked stop/restart requests that are done. */
static void waiters_cb(struct ev_loop *loop, ev_check *c, int revents)
{
	struct gd_control *ctl = c->data;
	struct gd_client *cl, *next;

	for (cl = ctl->clients; cl; cl = next) {
		next = cl->next;
		if (cl->pending == P_WAIT && wait_done(ctl, cl->wait_ids)) {
			json_t *a = cl->wait_answer;

			cl->wait_answer = NULL;
			json_object_set_new(a, "workers", states_of(ctl, cl->wait_ids));
			client_unpark(cl, a);
		}
	}
}

/* ---- requests ---------------------------------------------------------------- */

/* Instances named by TARGET: "all", a worker name, or an instance id. */
static json_t *select_ids(struct gd_control *ctl, const char *target)
{
	struct gd_sup *s = ctl->sup;
	json_t *ids = json_array();
	struct gd_worker *w;
	struct gd_instance *in;

	if (strcmp(target, "all") == 0) {
		for (size_t i = 0; i < s->nworkers; i++)
			for (size_t j = 0; j < s->workers[i]->ninst; j++)
				if (!s->workers[i]->retire && !s->workers[i]->inst[j]->retire)
					json_array_append_new(ids, json_string(s->workers[i]->inst[j]->id));
		return ids;
	}
	if ((w = gd_sup_find_worker(s, target))) {
		for (size_t j = 0; j < w->ninst; j++)
			if (!w->inst[j]->retire)
				json_array_append_new(ids, json_string(w->inst[j]->id));
		return ids;
	}
	if ((in = gd_sup_find_instance(s, target)) && !in->w->retire && !in->retire) {
		json_array_append_new(ids, json_string(in->id));
		return ids;
	}
	json_decref(ids);
	return NULL;
}

static json_t *do_status(struct gd_control *ctl, json_t *req)
{
	struct gd_sup *s = ctl->sup;
	json_t *target = json_object_get(req, "worker"), *arr, *ids = NULL, *v;
	double now = ev_now(ctl->loop);
	size_t i;

	if (target && !json_is_string(target))
		return gd_answer_error("bad_request", "\"worker\" must be a string");
	arr = json_array();
	if (target) {
		ids = select_ids(ctl, json_string_value(target));
		if (!ids) {
			json_decref(arr);
			return gd_answer_error("no_such_worker", "no worker or instance named \"%s\"",
					       json_string_value(target));
		}
		json_array_foreach(ids, i, v)
			json_array_append_new(arr, gd_status_instance(
				gd_sup_find_instance(s, json_string_value(v)), now));
		json_decref(ids);
	} else {
		for (i = 0; i < s->nworkers; i++)
			for (size_t j = 0; j < s->workers[i]->ninst; j++)
				json_array_append_new(arr, gd_status_instance(s->workers[i]->inst[j], now));
	}
	return json_pack("{s:b,s:o,s:o}", "ok", 1, "greend",
			 gd_status_greend(s, ctl->info, now), "workers", arr);
}

static json_t *do_dump(struct gd_control *ctl, struct gd_client *cl, json_t *req)
{
	json_t *target = json_object_get(req, "worker");
	struct gd_instance *in;
	struct gd_worker *w;

	if (!json_is_string(target))
		return gd_answer_error("bad_request", "dump needs \"worker\": an instance id such as \"web:0\"");
	in = gd_sup_find_instance(ctl->sup, json_string_value(target));
	if (!in && (w = gd_sup_find_worker(ctl->sup, json_string_value(target))) && w->ninst == 1)
		in = w->inst[0];
	if (!in)
		return gd_answer_error("no_such_worker", "no instance named \"%s\"",
				       json_string_value(target));
	if (in->pid <= 0)
		return gd_answer_error("not_running", "%s is %s", in->id, gd_state_name(in->state));
	if (gd_chan_request_dump(&in->chan) < 0) {
		if (errno == EAGAIN)
			return gd_answer_error("busy", "%s's channel is full; try again", in->id);
		return gd_answer_error("no_channel", "%s has no channel to greend (%s)", in->id,
				       in->chan.closed_why[0] ? in->chan.closed_why : "never opened");
	}
	if (!cl) /* a test without a client: the request was sent */
		return gd_answer_ok();
	cl->pending = P_DUMP;
	snprintf(cl->dump_id, sizeof(cl->dump_id), "%s", in->id);
	ev_timer_set(&cl->dump_timer, ctl->sup->cfg->dump_timeout_ms / 1000.0, 0);
	ev_timer_start(ctl->loop, &cl->dump_timer);
	return NULL;
}

static json_t *do_action(struct gd_control *ctl, struct gd_client *cl, json_t *req,
			 const char *cmd)
{
	json_t *target = json_object_get(req, "worker"), *ids, *v;
	size_t i;

	if (!json_is_string(target))
		return gd_answer_error("bad_request", "%s needs \"worker\": a name, an instance id or \"all\"", cmd);
	if (ctl->sup->shutting_down && strcmp(cmd, "stop") != 0)
		return gd_answer_error("shutting_down", "greend is shutting down");
	ids = select_ids(ctl, json_string_value(target));
	if (!ids)
		return gd_answer_error("no_such_worker", "no worker or instance named \"%s\"",
				       json_string_value(target));
	json_array_foreach(ids, i, v) {
		struct gd_instance *in = gd_sup_find_instance(ctl->sup, json_string_value(v));

		if (strcmp(cmd, "start") == 0)
			gd_inst_start(in);
		else if (strcmp(cmd, "stop") == 0)
			gd_inst_stop(in);
		else
			gd_inst_restart(in);
	}
	if (strcmp(cmd, "start") == 0 || !cl || wait_done(ctl, ids)) {
		json_t *a = json_pack("{s:b,s:o}", "ok", 1, "workers", states_of(ctl, ids));

		json_decref(ids);
		return a;
	}
	cl->pending = P_WAIT;
	cl->wait_ids = ids;
	cl->wait_answer = gd_answer_ok();
	return NULL;
}

json_t *gd_control_handle(struct gd_control *ctl, struct gd_client *cl, const char *line)
{
	json_error_t je;
	json_t *req, *cmdv, *answer;
	const char *cmd;
	bool privileged = cl ? cl->privileged : true;

	req = json_loads(line, JSON_REJECT_DUPLICATES, &je);
	if (!req)
		return gd_answer_error("bad_request", "not JSON: %s (column %d)", je.text, je.column);
	if (!json_is_object(req)) {
		json_decref(req);
		return gd_answer_error("bad_request", "a request is a JSON object");
	}
	cmdv = json_object_get(req, "cmd");
	if (!json_is_string(cmdv)) {
		json_decref(req);
		return gd_answer_error("bad_request", "a request needs \"cmd\": a string");
	}
	cmd = json_string_value(cmdv);
	if (strcmp(cmd, "status") == 0) {
		answer = do_status(ctl, req);
	} else if (strcmp(cmd, "version") == 0) {
		answer = json_pack("{s:b,s:s,s:i}", "ok", 1, "version", GREEND_VERSION,
				   "protocol", GD_PROTOCOL_VERSION);
	} else if (strcmp(cmd, "metrics") == 0) {
		char *text = gd_metrics_text(ctl->sup, ctl->info, ev_now(ctl->loop));

		answer = text ? json_pack("{s:b,s:s}", "ok", 1, "text", text) : NULL;
		free(text);
	} else if (strcmp(cmd, "dump") == 0) {
		answer = do_dump(ctl, cl, req);
	} else if (strcmp(cmd, "start") == 0 || strcmp(cmd, "stop") == 0 ||
		   strcmp(cmd, "restart") == 0 || strcmp(cmd, "reload") == 0 ||
		   strcmp(cmd, "shutdown") == 0) {
		if (!privileged) {
			answer = gd_answer_error("forbidden",
				"%s needs uid 0, greend's uid or membership of socket_group", cmd);
		} else if (strcmp(cmd, "reload") == 0) {
			char err[1024];
			json_t *report = json_object();

			if (ctl->reload(ctl->data, report, err, sizeof(err)) < 0) {
				json_decref(report);
				answer = gd_answer_error("bad_config", "%s", err);
			} else {
				json_object_set_new(report, "ok", json_true());
				answer = report;
			}
		} else if (strcmp(cmd, "shutdown") == 0) {
			answer = gd_answer_ok();
			ctl->shutdown(ctl->data);
		} else {
			answer = do_action(ctl, cl, req, cmd);
		}
	} else {
		answer = gd_answer_error("unknown_command", "unknown command \"%.64s\"", cmd);
	}
	json_decref(req);
	return answer;
}

/* ---- listening ---------------------------------------------------------------- */

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents);

static void accept_resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gd_control *ctl = t->data;

	ev_io_start(loop, &ctl->accept_io);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gd_control *ctl = w->data;

	for (int i = 0; i < 16; i++) {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		gid_t groups[256];
		socklen_t glen = sizeof(groups);
		int ngroups = 0;
		struct gd_client *cl;
		int fd;

		fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Out of fds: stop accepting for a moment instead of spinning. */
				log_warnx("control: accept: %s; pausing for 1 s", strerror(errno));
				ev_io_stop(loop, &ctl->accept_io);
				ev_timer_set(&ctl->accept_pause, 1.0, 0);
				ev_timer_start(loop, &ctl->accept_pause);
			}
			return;
		}
		if (ctl->nclients >= GD_MAX_CLIENTS) {
			static const char busy[] =
				"{\"ok\":false,\"code\":\"busy\",\"error\":\"too many clients\"}\n";

			if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
				/* it is leaving anyway */
			}
			close(fd);
			continue;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			close(fd);
			continue;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0)
			ngroups = (int)(glen / sizeof(gid_t));
		cl = calloc(1, sizeof(*cl));
		if (!cl) {
			close(fd);
			continue;
		}
		cl->ctl = ctl;
		cl->fd = fd;
		cl->uid = cred.uid;
		cl->pid = cred.pid;
		cl->privileged = gd_control_privileged(cred.uid, cred.gid, groups, ngroups,
							ctl->have_group, ctl->group);
		gd_linebuf_init(&cl->in, GD_LINE_MAX);
		ev_io_init(&cl->rio, client_read_cb, fd, EV_READ);
		cl->rio.data = cl;
		ev_io_init(&cl->wio, client_write_cb, fd, EV_WRITE);
		cl->wio.data = cl;
		ev_timer_init(&cl->dump_timer, dump_timeout_cb, 0, 0);
		cl->dump_timer.data = cl;
		cl->next = ctl->clients;
		if (ctl->clients)
			ctl->clients->prev = cl;
		ctl->clients = cl;
		ctl->nclients++;
		ev_io_start(loop, &cl->rio);
	}
}

static int probe(const char *path, char *err, size_t errlen)
{
	struct stat st;
	char e2[256];
	int fd;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket", path);
		errno = EEXIST;
		return -1;
	}
	fd = gd_connect(path, e2, sizeof(e2));
	if (fd >= 0) {
		close(fd);
		snprintf(err, errlen, "another greend is already listening on %s", path);
		errno = EADDRINUSE;
		return -1;
	}
	if (errno != ECONNREFUSED) {
		snprintf(err, errlen, "%s", e2);
		return -1;
	}
	log_info("replacing stale socket %s", path);
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "removing stale %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int gd_control_listen(struct gd_control *ctl, struct ev_loop *loop, struct gd_sup *sup,
		      const char *path, int mode, const char *group, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	char dir[PATH_MAX], lockpath[PATH_MAX], *slash;
	mode_t old;
	int e;

	memset(ctl, 0, sizeof(*ctl));
	ctl->fd = ctl->lock_fd = -1;
	ctl->loop = loop;
	ctl->sup = sup;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: socket path too long", path);
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	if (group) {
		struct group *gr = getgrnam(group);

		if (!gr) {
			snprintf(err, errlen, "socket_group: no group named \"%s\"", group);
			errno = ENOENT;
			return -1;
		}
		ctl->have_group = true;
		ctl->group = gr->gr_gid;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			e = errno;
			snprintf(err, errlen, "creating %s: %s", dir, strerror(e));
			errno = e;
			return -1;
		}
	}
	/* A lock beside the socket closes the window between probing for a
	 * running greend and binding, when two start at once. */
	if (gd_snprintf(lockpath, sizeof(lockpath), "%s.lock", path) < 0) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	ctl->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (ctl->lock_fd < 0) {
		e = errno;
		snprintf(err, errlen, "%s: %s", lockpath, strerror(e));
		errno = e;
		return -1;
	}
	if (flock(ctl->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		e = errno == EWOULDBLOCK ? EADDRINUSE : errno;
		snprintf(err, errlen, "another greend holds %s", lockpath);
		goto fail;
	}
	if (probe(path, err, errlen) < 0) {
		e = errno;
		goto fail;
	}
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0) {
		e = errno;
		snprintf(err, errlen, "socket: %s", strerror(e));
		goto fail;
	}
	/* Bind owner-only, then widen to MODE and GROUP before listen(): until
	 * listen() nobody can connect, and the file is never wider than asked. */
	old = umask(0177);
	if (bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = errno;
		umask(old);
		snprintf(err, errlen, "bind %s: %s", path, strerror(e));
		goto fail;
	}
	umask(old);
	if ((ctl->have_group && chown(path, (uid_t)-1, ctl->group) < 0) ||
	    chmod(path, (mode_t)mode) < 0) {
		e = errno;
		snprintf(err, errlen, "setting owner and mode of %s: %s", path, strerror(e));
		unlink(path);
		goto fail;
	}
	if (listen(ctl->fd, SOMAXCONN) < 0) {
		e = errno;
		snprintf(err, errlen, "listen %s: %s", path, strerror(e));
		unlink(path);
		goto fail;
	}
	ctl->path = strdup(path);
	if (!ctl->path) {
		e = ENOMEM;
		unlink(path);
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	ev_io_init(&ctl->accept_io, accept_cb, ctl->fd, EV_READ);
	ctl->accept_io.data = ctl;
	ev_io_start(loop, &ctl->accept_io);
	ev_timer_init(&ctl->accept_pause, accept_resume_cb, 1, 0);
	ctl->accept_pause.data = ctl;
	ev_check_init(&ctl->waiters, waiters_cb);
	ctl->waiters.data = ctl;
	ev_check_start(loop, &ctl->waiters);
	sup->on_dump = on_dump;
	sup->hook_data = ctl;
	return 0;
fail:
	if (ctl->fd >= 0)
		close(ctl->fd);
	close(ctl->lock_fd);
	ctl->fd = ctl->lock_fd = -1;
	errno = e;
	return -1;
}

void gd_control_close(struct gd_control *ctl)
{
	if (ctl->fd < 0)
		return;
	while (ctl->clients) {
		struct gd_client *cl = ctl->clients;

		client_flush(cl);
		client_free(cl);
	}
	ev_io_stop(ctl->loop, &ctl->accept_io);
	ev_timer_stop(ctl->loop, &ctl->accept_pause);
	ev_check_stop(ctl->loop, &ctl->waiters);
	close(ctl->fd);
	ctl->fd = -1;
	unlink(ctl->path);
	free(ctl->path);
	ctl->path = NULL;
	close(ctl->lock_fd);
	ctl->lock_fd = -1;
	ctl->sup->on_dump = NULL;
}
