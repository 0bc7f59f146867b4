/*
 * ctl_client.c - a control-socket connection from accept to close.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "commands.h"
#include "control.h"
#include "ctl_client.h"
#include "log.h"

void gd_client_free(struct gd_client *cl)
{
	struct gd_control *ctl = cl->ctl;

	ev_io_stop(ctl->loop, &cl->rio);
	ev_io_stop(ctl->loop, &cl->wio);
	ev_timer_stop(ctl->loop, &cl->dump_timer);
	ev_timer_stop(ctl->loop, &cl->idle_timer);
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
	if ((cl->eof || cl->dead) && cl->pending == GD_P_NONE && cl->outoff == cl->outlen)
		gd_client_free(cl);
}

void gd_client_flush(struct gd_client *cl)
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
		cl->active_at = ev_now(cl->ctl->loop);
	}
	ev_io_stop(cl->ctl->loop, &cl->wio);
	cl->outoff = cl->outlen = 0;
}

/* What a client gets when its answer cannot be built (out of memory, or
 * text jansson refused): still an answer, and then the connection goes, so
 * a request greend cannot answer never holds a slot. */
static const char unanswerable[] =
	"{\"ok\":false,\"code\":\"internal\",\"error\":\"greend could not build the answer\"}\n";

static bool client_queue(struct gd_client *cl, const char *line, size_t n)
{
	char *o;

	if (cl->outlen - cl->outoff + n > GD_MAX_CLIENT_OUTPUT) {
		log_warnx("control: dropping a client (pid %d) that does not read its answers",
			  (int)cl->pid);
		cl->dead = true;
		cl->outoff = cl->outlen;
		return false;
	}
	if (cl->outoff == cl->outlen)
		cl->outoff = cl->outlen = 0;
	o = realloc(cl->out, cl->outlen + n);
	if (!o)
		return false;
	cl->out = o;
	memcpy(cl->out + cl->outlen, line, n);
	cl->outlen += n;
	return true;
}

/* Queue ANSWER (taken); NULL means it could not be built. */
static void client_send(struct gd_client *cl, json_t *answer)
{
	size_t n = 0;
	char *line = answer ? gd_json_line(answer, &n) : NULL;

	json_decref(answer);
	if (!line || !client_queue(cl, line, n)) {
		if (!cl->dead && !client_queue(cl, unanswerable, sizeof(unanswerable) - 1)) {
			/* Not even that fits: write what the socket takes now. */
			if (send(cl->fd, unanswerable, sizeof(unanswerable) - 1,
				 MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
				/* the client is gone or full; it is closed below */
			}
		}
		cl->dead = true;
		ev_io_stop(cl->ctl->loop, &cl->rio);
	}
	free(line);
	gd_client_flush(cl);
}

static void process_lines(struct gd_client *cl);

static void client_unpark(struct gd_client *cl, json_t *answer)
{
	ev_timer_stop(cl->ctl->loop, &cl->dump_timer);
	cl->pending = GD_P_NONE;
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

	while (cl->pending == GD_P_NONE && !cl->dead) {
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
		cl->active_at = ev_now(cl->ctl->loop);
		if (line[strspn(line, " \t")] == '\0') {
			free(line); /* blank lines are not requests */
			continue;
		}
		answer = gd_control_handle(cl->ctl, cl, line);
		free(line);
		if (answer || cl->pending == GD_P_NONE)
			client_send(cl, answer);
		else
			ev_io_stop(cl->ctl->loop, &cl->rio); /* parked */
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
		if (cl->pending != GD_P_NONE && cl->dead) {
			gd_client_free(cl);
			return;
		}
		process_lines(cl);
		return;
	}
	if (gd_linebuf_append(&cl->in, buf, (size_t)n) < 0) {
		gd_client_free(cl);
		return;
	}
	process_lines(cl);
}

static void client_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gd_client *cl = w->data;

	gd_client_flush(cl);
	if (cl->outoff == cl->outlen && cl->pending == GD_P_NONE && !cl->eof && !cl->dead) {
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

/* Bytes alone do not keep a client: one that sends a byte now and then
 * but never a whole request is as idle as one that sends nothing. */
static void idle_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gd_client *cl = t->data;
	double left = cl->active_at + GD_CLIENT_IDLE_S - ev_now(loop);

	if (cl->pending != GD_P_NONE)
		left = GD_CLIENT_IDLE_S; /* greend is the one taking its time */
	if (left > 0) {
		t->repeat = left;
		ev_timer_again(loop, t);
		return;
	}
	log_debug("control: closing a client (pid %d, uid %u) idle for %g s", (int)cl->pid,
		  (unsigned)cl->uid, GD_CLIENT_IDLE_S);
	gd_client_free(cl);
}

void gd_client_park_dump(struct gd_client *cl, const char *id, double timeout_s)
{
	cl->pending = GD_P_DUMP;
	snprintf(cl->dump_id, sizeof(cl->dump_id), "%s", id);
	ev_timer_set(&cl->dump_timer, timeout_s, 0);
	ev_timer_start(cl->ctl->loop, &cl->dump_timer);
}

void gd_client_park_wait(struct gd_client *cl, json_t *ids, json_t *answer)
{
	cl->pending = GD_P_WAIT;
	cl->wait_ids = ids;
	cl->wait_answer = answer;
}

void gd_clients_on_dump(struct gd_instance *in, json_t *greenlets, void *data)
{
	struct gd_control *ctl = data;
	struct gd_client *cl, *next;

	for (cl = ctl->clients; cl; cl = next) {
		next = cl->next;
		if (cl->pending == GD_P_DUMP && strcmp(cl->dump_id, in->id) == 0)
			client_unpark(cl, json_pack("{s:b,s:s,s:i,s:O,s:b,s:I}", "ok", 1, "id", in->id,
						    "pid", (int)in->pid, "greenlets", greenlets,
						    "truncated", in->chan.dump_truncated,
						    "left_out", (json_int_t)in->chan.dump_left_out));
	}
}

void gd_clients_check_waiters(struct gd_control *ctl)
{
	struct gd_client *cl, *next;

	for (cl = ctl->clients; cl; cl = next) {
		next = cl->next;
		if (cl->pending == GD_P_WAIT && gd_cmd_wait_done(ctl, cl->wait_ids)) {
			json_t *a = cl->wait_answer;

			cl->wait_answer = NULL;
			json_object_set_new(a, "workers", gd_cmd_states_of(ctl, cl->wait_ids));
			client_unpark(cl, a);
		}
	}
}

int gd_client_new(struct gd_control *ctl, int fd, uid_t uid, pid_t pid, bool privileged)
{
	struct gd_client *cl = calloc(1, sizeof(*cl));

	if (!cl) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	cl->ctl = ctl;
	cl->fd = fd;
	cl->uid = uid;
	cl->pid = pid;
	cl->privileged = privileged;
	gd_linebuf_init(&cl->in, GD_LINE_MAX);
	ev_io_init(&cl->rio, client_read_cb, fd, EV_READ);
	cl->rio.data = cl;
	ev_io_init(&cl->wio, client_write_cb, fd, EV_WRITE);
	cl->wio.data = cl;
	ev_timer_init(&cl->dump_timer, dump_timeout_cb, 0, 0);
	cl->dump_timer.data = cl;
	ev_timer_init(&cl->idle_timer, idle_cb, 0, GD_CLIENT_IDLE_S);
	cl->idle_timer.data = cl;
	cl->active_at = ev_now(ctl->loop);
	ev_timer_again(ctl->loop, &cl->idle_timer);
	cl->next = ctl->clients;
	if (ctl->clients)
		ctl->clients->prev = cl;
	ctl->clients = cl;
	ctl->nclients++;
	ev_io_start(ctl->loop, &cl->rio);
	return 0;
}
