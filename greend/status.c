/*
 * status.c - status JSON and metrics.  Values a worker has not reported are
 * null in JSON and absent from metrics, never zero: "no data" must not
 * read as "idle".
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	return o;
}

json_t *gd_status_greend(const struct gd_sup *s, const struct gd_daemon_info *di, double now)
{
	/* Paths are bytes, not always UTF-8: gd_json_text keeps status valid. */
	return json_pack("{s:i,s:s,s:f,s:o,s:o,s:b,s:I}", "pid", (int)getpid(),
			 "version", GREEND_VERSION, "uptime_s", now - di->started_mono,
			 "config", gd_json_text(s->cfg->path), "socket", gd_json_text(di->socket),
			 "shutting_down", s->shutting_down,
			 "log_dropped", (json_int_t)gd_log_dropped());
}

struct metric {
	const char *name, *type, *help;
};

static const struct metric metrics[] = {
	{ "greend_instance_state", "gauge", "1 for the state the instance is in." },
	{ "greend_instance_up", "gauge", "1 if the instance is running." },
	{ "greend_instance_restarts_total", "counter", "Automatic restarts of the instance." },
	{ "greend_instance_uptime_seconds", "gauge", "Seconds since the instance's process started." },
	{ "greend_greenlets_alive", "gauge", "Greenlets alive in the worker." },
	{ "greend_greenlets_spawned_total", "counter", "Greenlets spawned by the worker." },
	{ "greend_greenlets_finished_total", "counter", "Greenlets finished in the worker." },
	{ "greend_switches_total", "counter", "Greenlet switches in the worker." },
	{ "greend_timeouts_total", "counter", "Timeouts that fired in the worker." },
	{ "greend_hub_blocked_total", "counter", "Times the hub was kept from running past max_blocking_ms." },
	{ "greend_hub_max_blocking_ms", "gauge", "Longest time the hub was kept from running, in ms." },
	{ "greend_blocked_reports_total", "counter", "Blocked-greenlet reports received." },
	{ "greend_report_age_seconds", "gauge", "Age of the worker's last stats report." },
	{ "greend_channel_malformed_total", "counter", "Malformed messages from the worker." },
	{ "greend_channel_dropped_total", "counter", "Messages dropped by the flood limit." },
};

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

static void labels(FILE *f, const struct gd_instance *in)
{
	fputs("{worker=\"", f);
	label_value(f, in->w->conf->name);
	fputs("\",instance=\"", f);
	label_value(f, in->id);
	fputc('"', f);
}

char *gd_metrics_text(const struct gd_sup *s, const struct gd_daemon_info *di, double now)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fprintf(f, "# HELP greend_up 1 while greend answers.\n# TYPE greend_up gauge\ngreend_up 1\n");
	fprintf(f, "# HELP greend_uptime_seconds Seconds since greend started.\n"
		   "# TYPE greend_uptime_seconds gauge\ngreend_uptime_seconds %.3f\n",
		now - di->started_mono);
	fprintf(f, "# HELP greend_log_dropped_total Lines greend dropped because its stderr "
		   "was not read.\n# TYPE greend_log_dropped_total counter\n"
		   "greend_log_dropped_total %lld\n", gd_log_dropped());
	fprintf(f, "# HELP greend_build_info greend's version.\n# TYPE greend_build_info gauge\n"
		   "greend_build_info{version=\"%s\"} 1\n", GREEND_VERSION);
	for (size_t m = 0; m < sizeof(metrics) / sizeof(metrics[0]); m++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", metrics[m].name, metrics[m].help,
			metrics[m].name, metrics[m].type);
		for (size_t i = 0; i < s->nworkers; i++) {
			for (size_t j = 0; j < s->workers[i]->ninst; j++) {
				const struct gd_instance *in = s->workers[i]->inst[j];
				const struct gd_chan *ch = &in->chan;
				const char *name = metrics[m].name;
				double v;

				if (m == 0) {
					for (int st = 0; st < GD_NSTATES; st++) {
						fputs(name, f);
						labels(f, in);
						fprintf(f, ",state=\"%s\"} %d\n", gd_state_name(st),
							in->state == (enum gd_state)st);
					}
					continue;
				}
				switch (m) {
				case 1: v = in->state == GD_RUNNING; break;
				case 2: v = (double)in->restarts; break;
				case 3:
					if (in->pid <= 0)
						continue;
					v = now - in->started_at;
					break;
				case 12:
					if (!ch->have_stats)
						continue;
					v = now - ch->stats_at;
					break;
				case 13: v = (double)ch->malformed; break;
				case 14: v = (double)ch->dropped; break;
				case 11: v = (double)ch->blocked_reports; break;
				default:
					if (!ch->have_stats)
						continue;
					v = m == 4 ? (double)ch->alive : m == 5 ? (double)ch->spawned
					  : m == 6 ? (double)ch->finished : m == 7 ? (double)ch->switches
					  : m == 8 ? (double)ch->timeouts : m == 9 ? (double)ch->hub_blocked
					  : ch->max_blocking_ms;
					break;
				}
				fputs(name, f);
				labels(f, in);
				fprintf(f, "} %.15g\n", v);
			}
		}
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
