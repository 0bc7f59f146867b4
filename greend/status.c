/*
 * status.c - status JSON, readiness and metrics.  Values a worker has not
 * reported are null in JSON and absent from metrics, never zero: "no data"
 * must not read as "idle".  The metrics are one table of families written
 * in either exposition format, so the control socket's text and the HTTP
 * endpoint's cannot drift apart.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "listen_status.h"
#include "procinfo.h"
#include "log.h"
#include "proto.h"
#include "status.h"

static json_t *jcount(bool have, long long v)
{
	return have ? json_integer((json_int_t)v) : json_null();
}

json_t *gd_status_instance(const struct gd_instance *in, double now)
{
	const struct gd_chan *ch = &in->chan;
	bool st = ch->have_stats;
	json_t *o;

	o = json_pack("{s:s,s:s,s:i,s:o,s:s,s:I,s:o,s:f}",
		      "id", in->id, "name", in->w->conf->name, "instance", in->index,
		      "pid", in->pid > 0 ? json_integer(in->pid) : json_null(),
		      "state", gd_state_name(in->state),
		      "restarts", (json_int_t)in->restarts,
		      "uptime_s", in->pid > 0 ? json_real(now - in->started_at) : json_null(),
		      "state_age_s", now - in->since);
	if (!o)
		return NULL;
	json_object_set(o, "patched", ch->patched ? ch->patched : json_null());
	json_object_set(o, "warnings", ch->warnings ? ch->warnings : json_null());
	json_object_set_new(o, "greenlets", st ? json_pack("{s:I,s:I,s:I}",
				"alive", (json_int_t)ch->alive, "spawned", (json_int_t)ch->spawned,
				"finished", (json_int_t)ch->finished) : json_null());
	json_object_set_new(o, "switches", jcount(st, ch->switches));
	json_object_set_new(o, "switches_per_s", st ? json_real(ch->switches_per_s) : json_null());
	json_object_set_new(o, "timeouts", jcount(st, ch->timeouts));
	json_object_set_new(o, "hub", st ? json_pack("{s:I,s:I,s:f}",
				"iterations", (json_int_t)ch->iterations,
				"blocked", (json_int_t)ch->hub_blocked,
				"max_blocking_ms", ch->max_blocking_ms) : json_null());
	json_object_set_new(o, "blocked_reports", json_integer(ch->blocked_reports));
	json_object_set(o, "last_blocked", ch->last_blocked ? ch->last_blocked : json_null());
	json_object_set_new(o, "report_age_ms",
			    st ? json_integer((json_int_t)((now - ch->stats_at) * 1000)) : json_null());
	json_object_set_new(o, "channel", json_pack("{s:b,s:s?,s:I,s:I,s:I,s:I}",
				"open", ch->fd >= 0,
				"closed", ch->fd < 0 && ch->closed_why[0] ? ch->closed_why : NULL,
				"received", (json_int_t)ch->received,
				"malformed", (json_int_t)ch->malformed,
				"dropped", (json_int_t)ch->dropped,
				"throttled", (json_int_t)ch->throttled));
	json_object_set_new(o, "reason", gd_json_text(in->reason[0] ? in->reason : NULL));
	gd_listen_status_instance(in, o);
	return o;
}

json_t *gd_status_greend(const struct gd_sup *s, const struct gd_daemon_info *di, double now)
{
	/* Paths are bytes, not always UTF-8: gd_json_text keeps status valid. */
	return json_pack("{s:i,s:s,s:f,s:o,s:o,s:o,s:b,s:I}", "pid", (int)getpid(),
			 "version", GREEND_VERSION, "uptime_s", now - di->started_mono,
			 "config", gd_json_text(s->cfg->path), "socket", gd_json_text(di->socket),
			 "privileged_socket", gd_json_text(di->privileged_socket),
			 "shutting_down", s->shutting_down,
			 "log_dropped", (json_int_t)gd_log_dropped());
}

json_t *gd_status_all(const struct gd_sup *s, const struct gd_daemon_info *di, double now)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < s->nworkers; i++)
		for (size_t j = 0; j < s->workers[i]->ninst; j++)
			json_array_append_new(arr, gd_status_instance(s->workers[i]->inst[j], now));
	return json_pack("{s:b,s:o,s:o}", "ok", 1, "greend", gd_status_greend(s, di, now),
			 "workers", arr);
}

/* ---- readiness ------------------------------------------------------------- */

bool gd_inst_wanted(const struct gd_instance *in)
{
	if (in->retire || in->w->retire || in->w->sup->shutting_down)
		return false;
	if (in->state == GD_STOPPED)
		return false;
	return in->state != GD_STOPPING || in->restart_pending;
}

json_t *gd_status_readiness(const struct gd_sup *s)
{
	json_t *others = json_array(), *o;
	size_t wanted = 0;

	for (size_t i = 0; i < s->nworkers; i++) {
		for (size_t j = 0; j < s->workers[i]->ninst; j++) {
			const struct gd_instance *in = s->workers[i]->inst[j];

			if (!gd_inst_wanted(in))
				continue;
			wanted++;
			if (in->state != GD_RUNNING)
				json_array_append_new(others, json_pack("{s:s,s:s}", "id", in->id,
						      "state", gd_state_name(in->state)));
		}
	}
	o = json_pack("{s:b,s:b,s:I,s:o}", "ready",
		      !s->shutting_down && json_array_size(others) == 0,
		      "shutting_down", s->shutting_down, "wanted", (json_int_t)wanted,
		      "not_running", others);
	return o;
}

/* ---- metrics --------------------------------------------------------------- */

/*
 * Per-instance families, in the order they are written.  A counter's name
 * carries "_total" as the text format wants; OpenMetrics names the family
 * without it.
 */
enum inst_metric {
	IM_UP, IM_RESTARTS, IM_UPTIME, IM_CPU, IM_RSS, IM_FDS,
	IM_ALIVE, IM_SPAWNED, IM_FINISHED, IM_SWITCHES, IM_TIMEOUTS,
	IM_HUB_BLOCKED, IM_MAX_BLOCKING, IM_BLOCKED_REPORTS, IM_REPORT_AGE,
	IM_MALFORMED, IM_DROPPED,
	IM_COUNT
};

struct family {
	const char *name, *type, *help;
};

static const struct family inst_families[IM_COUNT] = {
	[IM_UP] = { "greend_instance_up", "gauge", "1 if the instance is running, else 0." },
	[IM_RESTARTS] = { "greend_instance_restarts_total", "counter",
			  "Automatic restarts of the instance since greend started." },
	[IM_UPTIME] = { "greend_instance_uptime_seconds", "gauge",
			"Seconds since the instance's process started." },
	[IM_CPU] = { "greend_instance_cpu_seconds_total", "counter",
		     "User and system CPU time of the instance's main process." },
	[IM_RSS] = { "greend_instance_resident_memory_bytes", "gauge",
		     "Resident memory of the instance's main process." },
	[IM_FDS] = { "greend_instance_open_fds", "gauge",
		     "Open file descriptors of the instance's main process." },
	[IM_ALIVE] = { "greend_greenlets_alive", "gauge", "Greenlets alive in the worker." },
	[IM_SPAWNED] = { "greend_greenlets_spawned_total", "counter",
			 "Greenlets spawned by the worker." },
	[IM_FINISHED] = { "greend_greenlets_finished_total", "counter",
			  "Greenlets finished in the worker." },
	[IM_SWITCHES] = { "greend_switches_total", "counter", "Greenlet switches in the worker." },
	[IM_TIMEOUTS] = { "greend_timeouts_total", "counter", "Timeouts that fired in the worker." },
	[IM_HUB_BLOCKED] = { "greend_hub_blocked_total", "counter",
			     "Times a hub was kept from running past max_blocking_ms." },
	[IM_MAX_BLOCKING] = { "greend_hub_max_blocking_seconds", "gauge",
			      "Longest time a hub was kept from running." },
	[IM_BLOCKED_REPORTS] = { "greend_blocked_reports_total", "counter",
				 "Blocked-greenlet reports received from the worker." },
	[IM_REPORT_AGE] = { "greend_report_age_seconds", "gauge",
			    "Age of the worker's last stats report." },
	[IM_MALFORMED] = { "greend_channel_malformed_total", "counter",
			   "Malformed messages received from the worker." },
	[IM_DROPPED] = { "greend_channel_dropped_total", "counter",
			 "Messages from the worker dropped by the flood limit." },
};

struct inst_values {
	bool have[IM_COUNT];
	double v[IM_COUNT];
};

static void set(struct inst_values *iv, enum inst_metric m, double v)
{
	iv->have[m] = true;
	iv->v[m] = v;
}

static void gather(const struct gd_instance *in, double now, struct inst_values *iv)
{
	const struct gd_chan *ch = &in->chan;
	struct gd_procinfo pi;

	memset(iv, 0, sizeof(*iv));
	set(iv, IM_UP, in->state == GD_RUNNING);
	set(iv, IM_RESTARTS, (double)in->restarts);
	set(iv, IM_BLOCKED_REPORTS, (double)ch->blocked_reports);
	set(iv, IM_MALFORMED, (double)ch->malformed);
	set(iv, IM_DROPPED, (double)ch->dropped);
	if (in->pid > 0) {
		set(iv, IM_UPTIME, now - in->started_at);
		if (gd_procinfo_read(in->pid, &pi) == 0) {
			if (pi.have_stat) {
				set(iv, IM_CPU, pi.cpu_seconds);
				set(iv, IM_RSS, (double)pi.rss_bytes);
			}
			if (pi.open_fds >= 0)
				set(iv, IM_FDS, (double)pi.open_fds);
		}
	}
	if (ch->have_stats) {
		set(iv, IM_ALIVE, (double)ch->alive);
		set(iv, IM_SPAWNED, (double)ch->spawned);
		set(iv, IM_FINISHED, (double)ch->finished);
		set(iv, IM_SWITCHES, (double)ch->switches);
		set(iv, IM_TIMEOUTS, (double)ch->timeouts);
		set(iv, IM_HUB_BLOCKED, (double)ch->hub_blocked);
		set(iv, IM_MAX_BLOCKING, ch->max_blocking_ms / 1000.0);
		set(iv, IM_REPORT_AGE, now - ch->stats_at);
	}
}

void gd_metrics_family(FILE *f, enum gd_metrics_format fmt, const char *name,
		       const char *type, const char *help)
{
	size_t n = strlen(name);

	if (fmt == GD_METRICS_TEXT) {
		/* The text format has no info type: an info family is a gauge. */
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
			strcmp(type, "info") == 0 ? "gauge" : type);
		return;
	}
	/* OpenMetrics names a counter family without "_total" and an info
	 * family without "_info"; the samples keep the suffix. */
	if (strcmp(type, "counter") == 0 && n > 6 && strcmp(name + n - 6, "_total") == 0)
		n -= 6;
	else if (strcmp(type, "info") == 0 && n > 5 && strcmp(name + n - 5, "_info") == 0)
		n -= 5;
	fprintf(f, "# TYPE %.*s %s\n# HELP %.*s %s\n", (int)n, name, type, (int)n, name, help);
}

static void label_value(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void inst_labels(FILE *f, const struct gd_instance *in)
{
	fputs("{worker=\"", f);
	label_value(f, in->w->conf->name);
	fputs("\",id=\"", f);
	label_value(f, in->id);
	fputc('"', f);
}

static void sample(FILE *f, const char *name, double v)
{
	fprintf(f, "%s %.15g\n", name, v);
}

static void self_metrics(FILE *f, enum gd_metrics_format fmt)
{
	struct gd_procinfo pi;
	struct rlimit rl;

	if (gd_procinfo_read(getpid(), &pi) < 0)
		return;
	if (pi.have_stat) {
		gd_metrics_family(f, fmt, "greend_process_cpu_seconds_total", "counter",
		       "User and system CPU time greend has used.");
		sample(f, "greend_process_cpu_seconds_total", pi.cpu_seconds);
		gd_metrics_family(f, fmt, "greend_process_resident_memory_bytes", "gauge", "greend's resident memory.");
		sample(f, "greend_process_resident_memory_bytes", (double)pi.rss_bytes);
		gd_metrics_family(f, fmt, "greend_process_virtual_memory_bytes", "gauge", "greend's virtual memory.");
		sample(f, "greend_process_virtual_memory_bytes", (double)pi.vsize_bytes);
		gd_metrics_family(f, fmt, "greend_process_start_time_seconds", "gauge",
		       "When greend started, in seconds since the epoch.");
		sample(f, "greend_process_start_time_seconds", pi.start_time);
	}
	if (pi.open_fds >= 0) {
		gd_metrics_family(f, fmt, "greend_process_open_fds", "gauge", "File descriptors greend has open.");
		sample(f, "greend_process_open_fds", (double)pi.open_fds);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		gd_metrics_family(f, fmt, "greend_process_max_fds", "gauge", "greend's limit on open file descriptors.");
		sample(f, "greend_process_max_fds", (double)rl.rlim_cur);
	}
}

static void http_metrics(FILE *f, enum gd_metrics_format fmt, const struct gd_daemon_info *di)
{
	gd_metrics_family(f, fmt, "greend_http_connections", "gauge", "Open connections to the HTTP endpoint.");
	sample(f, "greend_http_connections", (double)di->http_connections);
	gd_metrics_family(f, fmt, "greend_http_requests_total", "counter", "HTTP requests answered.");
	sample(f, "greend_http_requests_total", (double)di->http_requests);
	gd_metrics_family(f, fmt, "greend_http_connections_cut_total", "counter",
	       "HTTP connections shut for a late request head or to make room for a new one.");
	sample(f, "greend_http_connections_cut_total", (double)di->http_cut);
}

static void worker_metrics(FILE *f, enum gd_metrics_format fmt, const struct gd_sup *s)
{
	for (int running = 0; running < 2; running++) {
		const char *name = running ? "greend_worker_instances_running"
					   : "greend_worker_instances_wanted";

		gd_metrics_family(f, fmt, name, "gauge", running
		       ? "Instances of the worker in state running."
		       : "Instances of the worker that should run (configured, less those stopped on request).");
		for (size_t i = 0; i < s->nworkers; i++) {
			const struct gd_worker *w = s->workers[i];
			size_t n = 0;

			if (w->retire)
				continue;
			for (size_t j = 0; j < w->ninst; j++)
				n += running ? w->inst[j]->state == GD_RUNNING : gd_inst_wanted(w->inst[j]);
			fprintf(f, "%s{worker=\"", name);
			label_value(f, w->conf->name);
			fprintf(f, "\"} %zu\n", n);
		}
	}
}

char *gd_metrics_render(const struct gd_sup *s, const struct gd_daemon_info *di, double now,
			enum gd_metrics_format fmt)
{
	struct inst_values *vals;
	char *buf = NULL;
	size_t len = 0, n = 0, k;
	FILE *f;

	for (size_t i = 0; i < s->nworkers; i++)
		n += s->workers[i]->ninst;
	vals = calloc(n ? n : 1, sizeof(*vals));
	if (!vals)
		return NULL;
	f = open_memstream(&buf, &len);
	if (!f) {
		free(vals);
		return NULL;
	}
	k = 0;
	for (size_t i = 0; i < s->nworkers; i++)
		for (size_t j = 0; j < s->workers[i]->ninst; j++)
			gather(s->workers[i]->inst[j], now, &vals[k++]);

	gd_metrics_family(f, fmt, "greend_up", "gauge", "1 while greend answers.");
	sample(f, "greend_up", 1);
	gd_metrics_family(f, fmt, "greend_uptime_seconds", "gauge", "Seconds since greend started.");
	sample(f, "greend_uptime_seconds", now - di->started_mono);
	gd_metrics_family(f, fmt, "greend_log_dropped_total", "counter",
	       "Lines greend dropped because its stderr was not read.");
	sample(f, "greend_log_dropped_total", (double)gd_log_dropped());
	gd_metrics_family(f, fmt, "greend_build_info", fmt == GD_METRICS_TEXT ? "gauge" : "info",
	       "greend's version.");
	fprintf(f, "greend_build_info{version=\"%s\"} 1\n", GREEND_VERSION);
	self_metrics(f, fmt);
	if (di->http_open)
		http_metrics(f, fmt, di);
	worker_metrics(f, fmt, s);

	gd_metrics_family(f, fmt, "greend_instance_state", "gauge",
	       "1 for the state the instance is in, 0 for the others.");
	for (size_t i = 0; i < s->nworkers; i++) {
		for (size_t j = 0; j < s->workers[i]->ninst; j++) {
			const struct gd_instance *in = s->workers[i]->inst[j];

			for (int st = 0; st < GD_NSTATES; st++) {
				fputs("greend_instance_state", f);
				inst_labels(f, in);
				fprintf(f, ",state=\"%s\"} %d\n", gd_state_name(st),
					in->state == (enum gd_state)st);
			}
		}
	}
	for (int m = 0; m < IM_COUNT; m++) {
		gd_metrics_family(f, fmt, inst_families[m].name, inst_families[m].type, inst_families[m].help);
		k = 0;
		for (size_t i = 0; i < s->nworkers; i++) {
			for (size_t j = 0; j < s->workers[i]->ninst; j++, k++) {
				if (!vals[k].have[m])
					continue;
				fputs(inst_families[m].name, f);
				inst_labels(f, s->workers[i]->inst[j]);
				fprintf(f, "} %.15g\n", vals[k].v[m]);
			}
		}
	}
	gd_listen_metrics(s, f, fmt == GD_METRICS_OPENMETRICS);
	if (fmt == GD_METRICS_OPENMETRICS)
		fputs("# EOF\n", f);
	free(vals);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

char *gd_metrics_text(const struct gd_sup *s, const struct gd_daemon_info *di, double now)
{
	return gd_metrics_render(s, di, now, GD_METRICS_TEXT);
}
