/*
 * listen_status.c - what status and metrics say about listeners: which
 * addresses an instance got, what its shim reports of them (accepting,
 * draining, connections accepted and open), and a rolling restart's phase
 * or why the last one stopped.  Apart from status.c so that the listener
 * feature reads in one place.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "listen_status.h"
#include "roll.h"
#include "status.h"

void gd_listen_status_instance(const struct gd_instance *in, json_t *o)
{
	const struct gd_chan *ch = &in->chan;
	const struct gd_worker *w = in->w;
	json_t *addrs;

	if (w->conf->nlisten == 0)
		return;
	addrs = json_array();
	for (size_t i = 0; i < w->conf->nlisten; i++)
		json_array_append_new(addrs, json_string(w->conf->listen[i]));
	json_object_set_new(o, "listeners", addrs);
	json_object_set_new(o, "listen", ch->have_listen
			    ? json_pack("{s:s,s:I,s:I}", "state",
					in->draining && !ch->listen_state[0] ? "draining" : ch->listen_state,
					"accepted", (json_int_t)ch->listen_accepted,
					"open", (json_int_t)ch->listen_open)
			    : json_null());
	json_object_set_new(o, "draining", json_boolean(in->draining));
	json_object_set_new(o, "roll", gd_roll_phase(w) ? json_string(gd_roll_phase(w)) : json_null());
	json_object_set_new(o, "roll_error", w->roll_error[0] ? json_string(w->roll_error) : json_null());
}

static void label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

void gd_listen_metrics(const struct gd_sup *s, FILE *f, bool openmetrics)
{
	static const struct {
		const char *name, *type, *help;
	} m[] = {
		{"greend_listener_accepted_total", "counter",
		 "Connections the instance's shim accepted on greend's listeners."},
		{"greend_listener_open_connections", "gauge",
		 "Connections accepted on greend's listeners and not yet closed."},
		{"greend_listener_accepting", "gauge",
		 "1 while the instance accepts on greend's listeners (not draining)."},
	};

	gd_metrics_family(f, openmetrics ? GD_METRICS_OPENMETRICS : GD_METRICS_TEXT, "greend_listener_info", "info",
	       "A listening socket greend holds for a worker.");
	for (size_t i = 0; i < s->listeners.n; i++) {
		const struct gd_listener *l = s->listeners.v[i];

		fputs("greend_listener_info{worker=\"", f);
		label(f, l->worker);
		fputs("\",address=\"", f);
		label(f, l->addr);
		fprintf(f, "\",backlog=\"%d\"} 1\n", l->backlog);
	}
	for (size_t k = 0; k < sizeof(m) / sizeof(m[0]); k++) {
		gd_metrics_family(f, openmetrics ? GD_METRICS_OPENMETRICS : GD_METRICS_TEXT, m[k].name, m[k].type, m[k].help);
		for (size_t i = 0; i < s->nworkers; i++) {
			for (size_t j = 0; j < s->workers[i]->ninst; j++) {
				const struct gd_instance *in = s->workers[i]->inst[j];
				const struct gd_chan *ch = &in->chan;
				long long v;

				if (!ch->have_listen || in->pid <= 0)
					continue;
				v = k == 0 ? ch->listen_accepted : k == 1 ? ch->listen_open
				  : (long long)(strcmp(ch->listen_state, "accepting") == 0);
				fprintf(f, "%s{worker=\"", m[k].name);
				label(f, in->w->conf->name);
				fputs("\",instance=\"", f);
				label(f, in->id);
				fprintf(f, "\",pid=\"%d\"} %lld\n", (int)in->pid, v);
			}
		}
	}
}
