/*
 * control.h - greend's control socket: a Unix stream socket, one JSON
 * request per line and one JSON answer per line, many clients at once,
 * never blocking.  The listener (control.c), a connection (ctl_client.c)
 * and the command table (commands.c) share this state.  Authorization comes from SO_PEERCRED: everyone who can
 * open the socket may read; changing things needs uid 0, greend's uid or
 * membership of socket_group.
 */
#ifndef GREEND_CONTROL_H
#define GREEND_CONTROL_H

#include <stdbool.h>
#include <sys/types.h>

#include <ev.h>
#include <jansson.h>

#include "status.h"
#include "sup.h"

#define GD_MAX_CLIENTS 256
/* The last slots are kept for privileged peers, so that no crowd of
 * readers can lock out the operator who would stop it. */
#define GD_PRIVILEGED_RESERVE 16
/* Connections one unprivileged uid may hold at once. */
#define GD_MAX_CLIENTS_PER_UID 32
/* A client that neither completes a request nor takes answer bytes for
 * this long is closed (a parked request does not count as idle). */
#define GD_CLIENT_IDLE_S 10.0
/* A client whose unread answers pile up past this is dropped. */
#define GD_MAX_CLIENT_OUTPUT (16 * 1024 * 1024)
/* Past this much unsent output a client's further requests wait. */
#define GD_CLIENT_BACKLOG (256 * 1024)

struct gd_client;

struct gd_control {
	struct ev_loop *loop;
	struct gd_sup *sup;
	struct gd_daemon_info *info;
	int fd;
	int op_fd;              /* the privileged socket, or -1 */
	int lock_fd;
	int dir_fd;             /* the socket's checked directory (O_PATH) */
	int spare_fd;           /* /dev/null, given up to answer when out of fds */
	char *path;
	char *name;             /* the socket's name inside dir_fd */
	char *op_path;          /* the privileged socket's path, or NULL */
	bool have_group;
	gid_t group;
	ev_io accept_io;
	ev_io op_accept_io;
	ev_timer accept_pause;
	ev_check waiters;
	struct gd_client *clients;
	size_t nclients;
	/* provided by greend's main */
	void *data;
	int (*reload)(void *data, json_t *report, char *err, size_t errlen);
	void (*shutdown)(void *data);
};

/*
 * Create the socket at PATH with MODE and GROUP (NULL: greend's group),
 * listening, in one rename from a private directory, so it is never
 * reachable with other permissions and no path greend touches can be
 * raced into pointing elsewhere.  PATH's directory must be trusted (see
 * safepath.h).  Fails with EADDRINUSE when another greend answers there;
 * replaces a stale socket file.  Beside it, PATH.priv, which only users
 * who may change things can open (see open_operator_socket).
 */
int gd_control_listen(struct gd_control *ctl, struct ev_loop *loop, struct gd_sup *sup,
		      const char *path, int mode, const char *group,
		      char *err, size_t errlen);
/* Stop listening, drop every client, remove the socket file. */
void gd_control_close(struct gd_control *ctl);

/* Why a new peer must be turned away (busy), or NULL to let it in:
 * every slot is taken, the rest are kept for privileged peers, or its uid
 * holds GD_MAX_CLIENTS_PER_UID already. */
const char *gd_control_admit(const struct gd_control *ctl, uid_t uid, bool privileged);

/* Whether a peer with these credentials may change things. */
bool gd_control_privileged(uid_t uid, gid_t gid, const gid_t *groups, int ngroups,
			   bool have_group, gid_t group);

#endif
