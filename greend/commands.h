/*
 * commands.h - the control protocol's commands: one table of name,
 * handler and whether the caller must be privileged (smtpctl's shape), so
 * authorization is decided in one place, before any handler runs.
 */
#ifndef GREEND_COMMANDS_H
#define GREEND_COMMANDS_H

#include <stdbool.h>

#include <jansson.h>

struct gd_control;
struct gd_client;

/* Handle one request line from CL (NULL: a privileged caller without a
 * connection, for tests); the answer, or NULL when CL was parked. */
json_t *gd_control_handle(struct gd_control *ctl, struct gd_client *cl, const char *line);

/* Whether every instance in IDS is at rest (a parked stop may answer). */
bool gd_cmd_wait_done(struct gd_control *ctl, json_t *ids);
/* [{"id":..,"state":..}] for IDS, "removed" for those gone. */
json_t *gd_cmd_states_of(struct gd_control *ctl, json_t *ids);

#endif
