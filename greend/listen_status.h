/*
 * listen_status.h - the listener parts of status and metrics.
 */
#ifndef GREEND_LISTEN_STATUS_H
#define GREEND_LISTEN_STATUS_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "sup.h"

/* Add "listeners", "listen", "draining", "roll", "roll_error" to O. */
void gd_listen_status_instance(const struct gd_instance *in, json_t *o);
/* greend_listener_* in Prometheus text. */
void gd_listen_metrics(const struct gd_sup *s, FILE *f, bool openmetrics);

#endif
