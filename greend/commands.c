/*
 * commands.c - what each control request does.  The table below is the
 * whole protocol: a command's name, its handler, and whether it changes
 * things (and so needs a privileged peer).  gd_control_handle() parses the
 * line, finds the entry and checks privilege; handlers only do their job.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "control.h"
#include "ctl_client.h"
#include "proto.h"
#include "roll.h"

struct command {
	const char *name;
	bool privileged;
	json_t *(*run)(struct gd_control *ctl, struct gd_client *cl, json_t *req,
		       const char *cmd);
};

bool gd_cmd_wait_done(struct gd_control *ctl, json_t *ids)
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

json_t *gd_cmd_states_of(struct gd_control *ctl, json_t *ids)
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

static json_t *do_status(struct gd_control *ctl, struct gd_client *cl, json_t *req,
			 const char *cmd)
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

static json_t *do_version(struct gd_control *ctl, struct gd_client *cl, json_t *req,
			  const char *cmd)
{
	return json_pack("{s:b,s:s,s:i}", "ok", 1, "version", GREEND_VERSION,
			 "protocol", GD_PROTOCOL_VERSION);
}

static json_t *do_metrics(struct gd_control *ctl, struct gd_client *cl, json_t *req,
			  const char *cmd)
{
	char *text = gd_metrics_text(ctl->sup, ctl->info, ev_now(ctl->loop));
	json_t *answer = text ? json_pack("{s:b,s:s}", "ok", 1, "text", text) : NULL;

	free(text);
	return answer;
}

static json_t *do_dump(struct gd_control *ctl, struct gd_client *cl, json_t *req,
		       const char *cmd)
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
	gd_client_park_dump(cl, in->id, ctl->sup->cfg->dump_timeout_ms / 1000.0);
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
			gd_roll_restart(in, json_is_true(json_object_get(req, "now")));
	}
	if (strcmp(cmd, "start") == 0 || !cl || gd_cmd_wait_done(ctl, ids)) {
		json_t *a = json_pack("{s:b,s:o}", "ok", 1, "workers", gd_cmd_states_of(ctl, ids));

		json_decref(ids);
		return a;
	}
	gd_client_park_wait(cl, ids, gd_answer_ok());
	return NULL;
}

static json_t *do_reload(struct gd_control *ctl, struct gd_client *cl, json_t *req,
			 const char *cmd)
{
	char err[1024];
	json_t *report = json_object();

	if (ctl->reload(ctl->data, report, err, sizeof(err)) < 0) {
		json_decref(report);
		return gd_answer_error("bad_config", "%s", err);
	}
	json_object_set_new(report, "ok", json_true());
	return report;
}

static json_t *do_shutdown(struct gd_control *ctl, struct gd_client *cl, json_t *req,
			   const char *cmd)
{
	ctl->shutdown(ctl->data);
	return gd_answer_ok();
}

static const struct command commands[] = {
	{ "status", false, do_status },
	{ "version", false, do_version },
	{ "metrics", false, do_metrics },
	{ "dump", false, do_dump },
	{ "start", true, do_action },
	{ "stop", true, do_action },
	{ "restart", true, do_action },
	{ "reload", true, do_reload },
	{ "shutdown", true, do_shutdown },
};

json_t *gd_control_handle(struct gd_control *ctl, struct gd_client *cl, const char *line)
{
	const struct command *c = NULL;
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
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, cmd) == 0)
			c = &commands[i];
	if (!c)
		answer = gd_answer_error("unknown_command", "unknown command \"%.*s\"",
					 (int)gd_utf8_prefix(cmd, 64), cmd);
	else if (c->privileged && !privileged)
		answer = gd_answer_error("forbidden",
			"%s needs uid 0, greend's uid or membership of socket_group", cmd);
	else
		answer = c->run(ctl, cl, req, cmd);
	json_decref(req);
	return answer;
}
