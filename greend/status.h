/*
 * status.h - what greend tells about itself: the status answer and the
 * Prometheus text exposition, both built from the supervisor's state.
 */
#ifndef GREEND_STATUS_H
#define GREEND_STATUS_H

#include <jansson.h>

#include "sup.h"

struct gd_daemon_info {
	double started_mono;
	const char *socket;
};

json_t *gd_status_instance(const struct gd_instance *in, double now);
json_t *gd_status_greend(const struct gd_sup *s, const struct gd_daemon_info *di, double now);
/* Malloc'ed Prometheus text; NULL on ENOMEM. */
char *gd_metrics_text(const struct gd_sup *s, const struct gd_daemon_info *di, double now);

#endif
