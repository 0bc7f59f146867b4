/*
 * control.c - the control socket's listener: creating the socket and its
 * lock file, probing for a running greend, accepting connections with the
 * peer's credentials, and answering "busy" when out of fds.  A connection's life is in
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
#include "safepath.h"

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
	if (ctl->op_fd >= 0)
		ev_io_start(loop, &ctl->op_accept_io);
}

const char *gd_control_admit(const struct gd_control *ctl, uid_t uid, bool privileged)
{
	size_t same_uid = 0;

	if (ctl->nclients >= GD_MAX_CLIENTS)
		return "too many clients";
	if (privileged)
		return NULL;
	if (ctl->nclients >= GD_MAX_CLIENTS - GD_PRIVILEGED_RESERVE)
		return "too many clients (the remaining slots are kept for privileged users)";
	for (const struct gd_client *cl = ctl->clients; cl; cl = cl->next)
		same_uid += cl->uid == uid;
	if (same_uid >= GD_MAX_CLIENTS_PER_UID)
		return "too many connections from this user";
	return NULL;
}

/* Say busy and why, then hang up; the peer may already be gone. */
static void refuse(int fd, const char *why)
{
	json_t *a = gd_answer_error("busy", "%s", why);
	size_t n = 0;
	char *line = a ? gd_json_line(a, &n) : NULL;

	if (line && send(fd, line, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* it is leaving anyway */
	}
	free(line);
	json_decref(a);
	close(fd);
}

static int open_spare(void)
{
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/*
 * Out of fds, a waiting client would sit in the backlog until its own
 * timeout (greenctl's is 10 s) while greend stays at its limit.  The fd
 * kept in reserve is given up for a moment instead: the client is taken
 * off the queue, told "busy" and why, and the reserve taken back.  The
 * kernel fails accept with EMFILE before it looks at the queue, so an
 * empty queue is only seen here.  1: a client was told; 0: nobody waits;
 * -1: no reserve, or the fd was not enough.
 */
static int refuse_out_of_fds(struct gd_control *ctl, int listen_fd, int err)
{
	int fd, e;

	if (ctl->spare_fd < 0)
		return -1;
	close(ctl->spare_fd);
	fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	e = errno;
	if (fd >= 0)
		refuse(fd, err == ENFILE ? "the system is out of file descriptors"
					 : "greend is out of file descriptors");
	ctl->spare_fd = open_spare();
	if (fd >= 0)
		return 1;
	return e == EAGAIN || e == EWOULDBLOCK ? 0 : -1;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gd_control *ctl = w->data;
	bool on_operator = w == &ctl->op_accept_io;

	for (int i = 0; i < 16; i++) {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		gid_t groups[256];
		socklen_t glen = sizeof(groups);
		int ngroups = 0;
		bool privileged;
		const char *why;
		int fd;

		fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int err = errno, told;

			if (err == EMFILE || err == ENFILE) {
				told = refuse_out_of_fds(ctl, w->fd, err);
				if (told == 0)
					return;
				if (told == 1) {
					log_warnx("control: accept: %s; a client was told busy",
						  strerror(err));
					continue;
				}
			}
			errno = err;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* No fd to answer with: stop accepting for a moment
				 * instead of spinning. */
				log_warnx("control: accept: %s; pausing for 1 s", strerror(errno));
				ev_io_stop(loop, &ctl->accept_io);
				ev_io_stop(loop, &ctl->op_accept_io);
				ev_timer_set(&ctl->accept_pause, 1.0, 0);
				ev_timer_start(loop, &ctl->accept_pause);
			}
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			close(fd);
			continue;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0)
			ngroups = (int)(glen / sizeof(gid_t));
		privileged = gd_control_privileged(cred.uid, cred.gid, groups, ngroups,
						   ctl->have_group, ctl->group);
		why = on_operator && !privileged
			? "the privileged socket is for users who may change things; use the control socket"
			: gd_control_admit(ctl, cred.uid, privileged);
		if (why) {
			refuse(fd, why);
			continue;
		}
		gd_client_new(ctl, fd, cred.uid, cred.pid, privileged);
	}
}

/* Whether a greend answers on NAME; removes a stale socket.  0: the name
 * is free now. */
static int probe(int dir_fd, const char *name, const char *path, char *err, size_t errlen)
{
	struct stat st;
	char e2[256];
	int fd;

	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
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
	if (unlinkat(dir_fd, name, 0) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "removing stale %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Close the privileged socket and remove its file; NAME: the control
 * socket's. */
static void close_operator_socket(struct gd_control *ctl, const char *name)
{
	char op_name[NAME_MAX + 1];

	close(ctl->op_fd);
	ctl->op_fd = -1;
	if (gd_snprintf(op_name, sizeof(op_name), "%s%s", name, GD_OPERATOR_SUFFIX) >= 0)
		unlinkat(ctl->dir_fd, op_name, 0);
	free(ctl->op_path);
	ctl->op_path = NULL;
}

/* Open and lock PATH.lock in DIR_FD without following a symlink, and only
 * if it is a plain file of ours with no other name (a hard link planted
 * there would make greend lock, and keep open, someone else's file). */
static int take_lock(struct gd_control *ctl, const char *name, const char *path,
		     char *err, size_t errlen)
{
	char lockname[NAME_MAX + 1];
	struct stat st;
	int e;

	if (gd_snprintf(lockname, sizeof(lockname), "%s.lock", name) < 0) {
		snprintf(err, errlen, "%s.lock: name too long", path);
		return -1;
	}
	ctl->lock_fd = openat(ctl->dir_fd, lockname,
			      O_RDWR | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0600);
	if (ctl->lock_fd < 0) {
		e = errno;
		snprintf(err, errlen, "%s.lock: %s", path,
			 e == ELOOP ? "is a symlink; refusing to follow it" : strerror(e));
		errno = e;
		return -1;
	}
	if (fstat(ctl->lock_fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    st.st_nlink != 1) {
		snprintf(err, errlen, "%s.lock is not a plain file of greend's user with one name; "
			 "refusing to use it", path);
		errno = EPERM;
		return -1;
	}
	if (flock(ctl->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		e = errno == EWOULDBLOCK ? EADDRINUSE : errno;
		snprintf(err, errlen, "another greend holds %s.lock", path);
		errno = e;
		return -1;
	}
	return 0;
}

/*
 * Bind, set the group, listen, all inside a fresh 0700 directory only
 * greend can enter, then rename the socket into place.  On Linux a
 * socket's file mode comes from the umask at bind() (fchmod on the socket
 * fd changes the socket inode, not the file), so bind runs under the umask
 * that leaves exactly MODE; the group is set by name, which is safe in a
 * directory nobody else can change.  The rename replaces whatever sits at
 * the name without following it.
 */
static int bind_in_place(struct gd_control *ctl, int fd, const char *dir, const char *name,
			 int mode, char *err, size_t errlen)
{
	char tmpname[64], tmppath[PATH_MAX];
	struct sockaddr_un sa;
	int priv_fd = -1, e = 0, r;
	mode_t old;

	for (int tries = 0;; tries++) {
		snprintf(tmpname, sizeof(tmpname), ".greend-bind.%d.%d.%u", (int)getpid(), tries,
			 (unsigned)random());
		if (mkdirat(ctl->dir_fd, tmpname, 0700) == 0)
			break;
		if (errno != EEXIST || tries == 100) {
			e = errno;
			snprintf(err, errlen, "creating a private directory in %s: %s", dir, strerror(e));
			errno = e;
			return -1;
		}
	}
	priv_fd = openat(ctl->dir_fd, tmpname, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (priv_fd < 0 || gd_snprintf(tmppath, sizeof(tmppath), "%s/%s/s", dir, tmpname) < 0) {
		e = priv_fd < 0 ? errno : ENAMETOOLONG;
		snprintf(err, errlen, "%s/%s: %s", dir, tmpname, strerror(e));
		goto out;
	}
	old = umask((mode_t)(~mode & 0777));
	/* Through the directory fd when /proc is there, by path if not (the
	 * directory was checked, so the path leads to the same place). */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/s", priv_fd);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (r < 0 && errno == ENOENT && gd_snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", tmppath) >= 0)
		r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	e = r < 0 ? errno : 0;
	umask(old);
	if (r < 0) {
		snprintf(err, errlen, "bind %s: %s", tmppath, strerror(e));
		goto out;
	}
	if (ctl->have_group && fchownat(priv_fd, "s", (uid_t)-1, ctl->group, AT_SYMLINK_NOFOLLOW) < 0) {
		e = errno;
		snprintf(err, errlen, "setting the group of %s/%s: %s", dir, name, strerror(e));
		goto out_unlink;
	}
	if (listen(fd, SOMAXCONN) < 0) {
		e = errno;
		snprintf(err, errlen, "listen %s/%s: %s", dir, name, strerror(e));
		goto out_unlink;
	}
	if (renameat(priv_fd, "s", ctl->dir_fd, name) < 0) {
		e = errno;
		snprintf(err, errlen, "moving the socket to %s/%s: %s", dir, name, strerror(e));
		goto out_unlink;
	}
	goto out;
out_unlink:
	unlinkat(priv_fd, "s", 0);
out:
	if (priv_fd >= 0)
		close(priv_fd);
	unlinkat(ctl->dir_fd, tmpname, AT_REMOVEDIR);
	errno = e;
	return e ? -1 : 0;
}

/*
 * The privileged socket beside the control socket.  A crowd of readers
 * can fill the control socket's accept queue, and the kernel hands its
 * connections out in arrival order, so an operator's would wait behind
 * all of them; here the file mode keeps the crowd out (0600, or 0660 for
 * socket_group: the users who may change things anyway) and its watcher
 * runs first in every loop pass.  A path too long for the suffix only
 * costs that fast lane, and says so.
 */
static int open_operator_socket(struct gd_control *ctl, const char *dir, const char *name,
				char *err, size_t errlen)
{
	char op_name[NAME_MAX + 1], op_path[PATH_MAX];
	struct sockaddr_un sa;
	int e;

	if (gd_snprintf(op_name, sizeof(op_name), "%s%s", name, GD_OPERATOR_SUFFIX) < 0 ||
	    gd_snprintf(op_path, sizeof(op_path), "%s%s", ctl->path, GD_OPERATOR_SUFFIX) < 0 ||
	    strlen(op_path) >= sizeof(sa.sun_path)) {
		log_warnx("%s%s would be too long for a socket path; there is no privileged socket",
			  ctl->path, GD_OPERATOR_SUFFIX);
		return 0;
	}
	ctl->op_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->op_fd < 0) {
		e = errno;
		snprintf(err, errlen, "socket: %s", strerror(e));
		errno = e;
		return -1;
	}
	if (bind_in_place(ctl, ctl->op_fd, dir, op_name, ctl->have_group ? 0660 : 0600, err,
			  errlen) < 0) {
		e = errno;
		close(ctl->op_fd);
		ctl->op_fd = -1;
		errno = e;
		return -1;
	}
	ctl->op_path = strdup(op_path);
	if (!ctl->op_path) {
		close_operator_socket(ctl, name);
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

int gd_control_listen(struct gd_control *ctl, struct ev_loop *loop, struct gd_sup *sup,
		      const char *path, int mode, const char *group, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	char dir[PATH_MAX], *slash;
	const char *name;
	int e;

	memset(ctl, 0, sizeof(*ctl));
	ctl->fd = ctl->op_fd = ctl->lock_fd = ctl->dir_fd = ctl->spare_fd = -1;
	ctl->loop = loop;
	ctl->sup = sup;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: socket path too long", path);
		errno = ENAMETOOLONG;
		return -1;
	}
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
	if (!slash) {
		snprintf(dir, sizeof(dir), ".");
		name = path;
	} else {
		name = path + (slash - dir) + 1;
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			e = errno;
			snprintf(err, errlen, "creating %s: %s", dir, strerror(e));
			errno = e;
			return -1;
		}
	}
	if (!*name || strchr(name, '/')) {
		snprintf(err, errlen, "%s: not a socket path", path);
		errno = EINVAL;
		return -1;
	}
	ctl->dir_fd = gd_open_trusted_dir(dir, err, errlen);
	if (ctl->dir_fd < 0)
		return -1;
	/* The lock closes the window between probing for a running greend
	 * and binding, when two start at once. */
	if (take_lock(ctl, name, path, err, errlen) < 0 ||
	    probe(ctl->dir_fd, name, path, err, errlen) < 0) {
		e = errno;
		goto fail;
	}
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0) {
		e = errno;
		snprintf(err, errlen, "socket: %s", strerror(e));
		goto fail;
	}
	if (bind_in_place(ctl, ctl->fd, dir, name, mode, err, errlen) < 0) {
		e = errno;
		goto fail;
	}
	ctl->path = strdup(path);
	ctl->name = strdup(name);
	if (!ctl->path || !ctl->name) {
		e = ENOMEM;
		unlinkat(ctl->dir_fd, name, 0);
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (open_operator_socket(ctl, dir, name, err, errlen) < 0) {
		e = errno;
		unlinkat(ctl->dir_fd, name, 0);
		goto fail;
	}
	ctl->spare_fd = open_spare(); /* without one, EMFILE only pauses */
	ev_io_init(&ctl->accept_io, accept_cb, ctl->fd, EV_READ);
	ctl->accept_io.data = ctl;
	ev_io_start(loop, &ctl->accept_io);
	ev_io_init(&ctl->op_accept_io, accept_cb, ctl->op_fd, EV_READ);
	ctl->op_accept_io.data = ctl;
	/* Taken before the crowd's in the same loop pass. */
	ev_set_priority(&ctl->op_accept_io, EV_MAXPRI);
	if (ctl->op_fd >= 0)
		ev_io_start(loop, &ctl->op_accept_io);
	ev_timer_init(&ctl->accept_pause, accept_resume_cb, 1, 0);
	ctl->accept_pause.data = ctl;
	ev_check_init(&ctl->waiters, waiters_cb);
	ctl->waiters.data = ctl;
	ev_check_start(loop, &ctl->waiters);
	sup->on_dump = gd_clients_on_dump;
	sup->hook_data = ctl;
	return 0;
fail:
	free(ctl->path);
	free(ctl->name);
	ctl->path = ctl->name = NULL;
	if (ctl->op_fd >= 0)
		close_operator_socket(ctl, name);
	if (ctl->fd >= 0)
		close(ctl->fd);
	if (ctl->lock_fd >= 0)
		close(ctl->lock_fd);
	if (ctl->dir_fd >= 0)
		close(ctl->dir_fd);
	ctl->fd = ctl->lock_fd = ctl->dir_fd = -1;
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
	ev_io_stop(ctl->loop, &ctl->op_accept_io);
	ev_timer_stop(ctl->loop, &ctl->accept_pause);
	ev_check_stop(ctl->loop, &ctl->waiters);
	close(ctl->fd);
	ctl->fd = -1;
	unlinkat(ctl->dir_fd, ctl->name, 0);
	if (ctl->op_fd >= 0)
		close_operator_socket(ctl, ctl->name);
	close(ctl->dir_fd);
	ctl->dir_fd = -1;
	free(ctl->path);
	free(ctl->name);
	ctl->path = ctl->name = NULL;
	close(ctl->lock_fd);
	ctl->lock_fd = -1;
	if (ctl->spare_fd >= 0)
		close(ctl->spare_fd);
	ctl->spare_fd = -1;
	ctl->sup->on_dump = NULL;
}
