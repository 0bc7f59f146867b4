/*
 * roll.h - rolling restart of a worker whose listeners greend holds.
 *
 * One instance at a time: a new process is started beside the old one (the
 * same slot, the same id), and once its shim reports that it accepts on the
 * inherited listeners, the old one is told to drain and gets stop_signal
 * when its last accepted connection closed or drain_timeout_s passed.  As
 * every instance shares one accept queue, a connection is never refused in
 * between.  A new process that exits or stays silent for ready_timeout_s
 * stops the roll; the old ones go on serving and status says why.
 */
#ifndef GREEND_ROLL_H
#define GREEND_ROLL_H

#include <stdbool.h>

#include "sup.h"

/* Restart IN: rolled when its worker has listeners and NOW is false,
 * otherwise stop-then-start (gd_inst_restart). */
void gd_roll_restart(struct gd_instance *in, bool now);

/* sup.c's hooks: a state change, a "listen" report. */
void gd_roll_on_change(struct gd_instance *in);
void gd_roll_on_listen(struct gd_instance *in);

/* The worker goes away: forget its roll. */
void gd_roll_free(struct gd_worker *w);

/* For status: "starting-new", "draining-old" or NULL. */
const char *gd_roll_phase(const struct gd_worker *w);

#endif
