/*
 * status.h - what greend tells about itself: the status answer and the
 * Prometheus text exposition, both built from the supervisor's state.
 */
#ifndef GREEND_STATUS_H
#define GREEND_STATUS_H

#include <stdio.h>
#include <jansson.h>

#include "sup.h"

struct gd_daemon_info {
	double started_mono;
	const char *socket;
	const char *privileged_socket;   /* NULL when there is none */
	/* Kept by the HTTP endpoint while it is open. */
	bool http_open;
	size_t http_connections;
	unsigned long long http_requests;       /* answered, any status */
	unsigned long long http_cut;            /* shut: late request head, or evicted */
};

json_t *gd_status_instance(const struct gd_instance *in, double now);
json_t *gd_status_greend(const struct gd_sup *s, const struct gd_daemon_info *di, double now);
/* The control socket's status answer for every instance. */
json_t *gd_status_all(const struct gd_sup *s, const struct gd_daemon_info *di, double now);

/* Whether IN should be running: not stopped on request, not on its way
 * out, greend not shutting down. */
bool gd_inst_wanted(const struct gd_instance *in);
/* {"ready":B,"shutting_down":B,"wanted":N,"not_running":[{"id","state"}...]}:
 * ready when every wanted instance is running. */
json_t *gd_status_readiness(const struct gd_sup *s);

enum gd_metrics_format {
	GD_METRICS_TEXT,        /* Prometheus text format 0.0.4 */
	GD_METRICS_OPENMETRICS, /* OpenMetrics 1.0.0 */
};

/* Malloc'ed metrics in FMT; NULL on ENOMEM. */
char *gd_metrics_render(const struct gd_sup *s, const struct gd_daemon_info *di, double now,
			enum gd_metrics_format fmt);
/* HELP and TYPE of one family, named as FMT wants (OpenMetrics drops a
 * counter's "_total" and an info's "_info" from the family name). */
void gd_metrics_family(FILE *f, enum gd_metrics_format fmt, const char *name,
		       const char *type, const char *help);
/* The same in the text format, as the control socket's metrics command. */
char *gd_metrics_text(const struct gd_sup *s, const struct gd_daemon_info *di, double now);

#endif
