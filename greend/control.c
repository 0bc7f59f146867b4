/*
 * control.c - the control socket's listener: creating the socket and its
 * lock file, probing for a running greend, accepting connections with the
 * peer's credentials, and pausing on EMFILE.  A connection's life is in
 * ctl_client.c; what a request does is in commands.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "ctl_client.h"
#include "log.h"
#include "proto.h"

bool gd_control_privileged(uid_t uid, gid_t gid, const gid_t *groups, int ngroups,
			   bool have_group, gid_t group)
{
	if (uid == 0 || uid == geteuid())
		return true;
	if (!have_group)
		return false;
	if (gid == group)
		return true;
	for (int i = 0; i < ngroups; i++)
		if (groups[i] == group)
			return true;
	return false;
}

/* After every loop pass: answer parked stop/restart requests that are done. */
static void waiters_cb(struct ev_loop *loop, ev_check *c, int revents)
{
	gd_clients_check_waiters(c->data);
}

/* ---- listening ---------------------------------------------------------------- */

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents);

static void accept_resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gd_control *ctl = t->data;

	ev_io_start(loop, &ctl->accept_io);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gd_control *ctl = w->data;

	for (int i = 0; i < 16; i++) {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		gid_t groups[256];
		socklen_t glen = sizeof(groups);
		int ngroups = 0;
		int fd;

		fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Out of fds: stop accepting for a moment instead of spinning. */
				log_warnx("control: accept: %s; pausing for 1 s", strerror(errno));
				ev_io_stop(loop, &ctl->accept_io);
				ev_timer_set(&ctl->accept_pause, 1.0, 0);
				ev_timer_start(loop, &ctl->accept_pause);
			}
			return;
		}
		if (ctl->nclients >= GD_MAX_CLIENTS) {
			static const char busy[] =
				"{\"ok\":false,\"code\":\"busy\",\"error\":\"too many clients\"}\n";

			if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
				/* it is leaving anyway */
			}
			close(fd);
			continue;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			close(fd);
			continue;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0)
			ngroups = (int)(glen / sizeof(gid_t));
		gd_client_new(ctl, fd, cred.uid, cred.pid,
			      gd_control_privileged(cred.uid, cred.gid, groups, ngroups,
						    ctl->have_group, ctl->group));
	}
}

static int probe(const char *path, char *err, size_t errlen)
{
	struct stat st;
	char e2[256];
	int fd;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket", path);
		errno = EEXIST;
		return -1;
	}
	fd = gd_connect(path, e2, sizeof(e2));
	if (fd >= 0) {
		close(fd);
		snprintf(err, errlen, "another greend is already listening on %s", path);
		errno = EADDRINUSE;
		return -1;
	}
	if (errno != ECONNREFUSED) {
		snprintf(err, errlen, "%s", e2);
		return -1;
	}
	log_info("replacing stale socket %s", path);
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "removing stale %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int gd_control_listen(struct gd_control *ctl, struct ev_loop *loop, struct gd_sup *sup,
		      const char *path, int mode, const char *group, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	char dir[PATH_MAX], lockpath[PATH_MAX], *slash;
	mode_t old;
	int e;

	memset(ctl, 0, sizeof(*ctl));
	ctl->fd = ctl->lock_fd = -1;
	ctl->loop = loop;
	ctl->sup = sup;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: socket path too long", path);
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	if (group) {
		struct group *gr = getgrnam(group);

		if (!gr) {
			snprintf(err, errlen, "socket_group: no group named \"%s\"", group);
			errno = ENOENT;
			return -1;
		}
		ctl->have_group = true;
		ctl->group = gr->gr_gid;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			e = errno;
			snprintf(err, errlen, "creating %s: %s", dir, strerror(e));
			errno = e;
			return -1;
		}
	}
	/* A lock beside the socket closes the window between probing for a
	 * running greend and binding, when two start at once. */
	if (gd_snprintf(lockpath, sizeof(lockpath), "%s.lock", path) < 0) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	ctl->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (ctl->lock_fd < 0) {
		e = errno;
		snprintf(err, errlen, "%s: %s", lockpath, strerror(e));
		errno = e;
		return -1;
	}
	if (flock(ctl->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		e = errno == EWOULDBLOCK ? EADDRINUSE : errno;
		snprintf(err, errlen, "another greend holds %s", lockpath);
		goto fail;
	}
	if (probe(path, err, errlen) < 0) {
		e = errno;
		goto fail;
	}
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0) {
		e = errno;
		snprintf(err, errlen, "socket: %s", strerror(e));
		goto fail;
	}
	/* Bind owner-only, then widen to MODE and GROUP before listen(): until
	 * listen() nobody can connect, and the file is never wider than asked. */
	old = umask(0177);
	if (bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = errno;
		umask(old);
		snprintf(err, errlen, "bind %s: %s", path, strerror(e));
		goto fail;
	}
	umask(old);
	if ((ctl->have_group && chown(path, (uid_t)-1, ctl->group) < 0) ||
	    chmod(path, (mode_t)mode) < 0) {
		e = errno;
		snprintf(err, errlen, "setting owner and mode of %s: %s", path, strerror(e));
		unlink(path);
		goto fail;
	}
	if (listen(ctl->fd, SOMAXCONN) < 0) {
		e = errno;
		snprintf(err, errlen, "listen %s: %s", path, strerror(e));
		unlink(path);
		goto fail;
	}
	ctl->path = strdup(path);
	if (!ctl->path) {
		e = ENOMEM;
		unlink(path);
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	ev_io_init(&ctl->accept_io, accept_cb, ctl->fd, EV_READ);
	ctl->accept_io.data = ctl;
	ev_io_start(loop, &ctl->accept_io);
	ev_timer_init(&ctl->accept_pause, accept_resume_cb, 1, 0);
	ctl->accept_pause.data = ctl;
	ev_check_init(&ctl->waiters, waiters_cb);
	ctl->waiters.data = ctl;
	ev_check_start(loop, &ctl->waiters);
	sup->on_dump = gd_clients_on_dump;
	sup->hook_data = ctl;
	return 0;
fail:
	if (ctl->fd >= 0)
		close(ctl->fd);
	close(ctl->lock_fd);
	ctl->fd = ctl->lock_fd = -1;
	errno = e;
	return -1;
}

void gd_control_close(struct gd_control *ctl)
{
	if (ctl->fd < 0)
		return;
	while (ctl->clients) {
		struct gd_client *cl = ctl->clients;

		gd_client_flush(cl);
		gd_client_free(cl);
	}
	ev_io_stop(ctl->loop, &ctl->accept_io);
	ev_timer_stop(ctl->loop, &ctl->accept_pause);
	ev_check_stop(ctl->loop, &ctl->waiters);
	close(ctl->fd);
	ctl->fd = -1;
	unlink(ctl->path);
	free(ctl->path);
	ctl->path = NULL;
	close(ctl->lock_fd);
	ctl->lock_fd = -1;
	ctl->sup->on_dump = NULL;
}
