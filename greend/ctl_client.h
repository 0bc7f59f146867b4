/*
 * ctl_client.h - one control-socket connection: its bounded input line
 * buffer, its output queue, and the parking of a request whose answer must
 * wait (a dump, a stop).  The listener creates clients; the command table
 * parks them.  Kept apart from both so each reads on its own.
 */
#ifndef GREEND_CTL_CLIENT_H
#define GREEND_CTL_CLIENT_H

#include <stdbool.h>
#include <sys/types.h>

#include <ev.h>
#include <jansson.h>

#include "proto.h"

struct gd_control;
struct gd_instance;

enum gd_pending { GD_P_NONE, GD_P_DUMP, GD_P_WAIT };

struct gd_client {
	struct gd_control *ctl;
	struct gd_client *next, *prev;
	int fd;
	ev_io rio, wio;
	uid_t uid;
	pid_t pid;
	bool privileged;
	bool eof;               /* no more input; close once answered */
	bool dead;              /* close as soon as the output is flushed */
	struct gd_linebuf in;
	char *out;
	size_t outlen, outoff;
	enum gd_pending pending;
	char dump_id[80];
	ev_timer dump_timer;
	ev_timer idle_timer;
	double active_at;       /* last complete request or answer progress */
	json_t *wait_ids;       /* array of instance ids */
	json_t *wait_answer;
};

/* Take FD (accepted, non-blocking) as a client of CTL with the peer's
 * credentials; -1/ENOMEM (FD is then closed). */
int gd_client_new(struct gd_control *ctl, int fd, uid_t uid, pid_t pid, bool privileged);
void gd_client_free(struct gd_client *cl);
/* Send what can be sent now without blocking. */
void gd_client_flush(struct gd_client *cl);

/* Park CL until ID's dump arrives or TIMEOUT_S passes. */
void gd_client_park_dump(struct gd_client *cl, const char *id, double timeout_s);
/* Park CL until every instance in IDS (taken) is at rest; then ANSWER
 * (taken) gets "workers" and is sent. */
void gd_client_park_wait(struct gd_client *cl, json_t *ids, json_t *answer);

/* Hooks the listener installs: a dump arrived; a loop pass ended. */
void gd_clients_on_dump(struct gd_instance *in, json_t *greenlets, void *data);
void gd_clients_check_waiters(struct gd_control *ctl);

#endif
