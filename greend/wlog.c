/*
 * wlog.c - size-rotated worker log files.  Rotation happens before a write
 * that would cross the limit, so no file grows past max_bytes by more than
 * one line.
 *
 * Every open and rename goes through a fresh fd of log_dir that was checked
 * first (gd_dir_fd_check) and uses O_NOFOLLOW; the opened file must then be
 * a regular file of ours with one link.  Together these stop a user who can
 * write to log_dir from planting NAME.log as a symlink or hard link to a
 * file greend (root) would otherwise append to or create.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wlog.h"

int gd_dir_fd_check(int dirfd, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(dirfd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: not a directory", path);
		errno = ENOTDIR;
		return -1;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(err, errlen, "%s: owned by uid %u (mode %04o), not by root or greend's user; "
			 "not creating files there", path, (unsigned)st.st_uid,
			 (unsigned)(st.st_mode & 07777));
		errno = EPERM;
		return -1;
	}
	if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
		snprintf(err, errlen, "%s: writable by others and not sticky (mode %04o); "
			 "not creating files there", path, (unsigned)(st.st_mode & 07777));
		errno = EPERM;
		return -1;
	}
	return 0;
}

int gd_wlog_init(struct gd_wlog *wl, const char *dir, const char *name,
		 long long max_bytes, long backups)
{
	memset(wl, 0, sizeof(*wl));
	wl->fd = -1;
	wl->max_bytes = max_bytes;
	wl->backups = backups;
	if (asprintf(&wl->name, "%s.log", name) < 0) {
		wl->name = NULL;
		goto oom;
	}
	if (asprintf(&wl->path, "%s/%s", dir, wl->name) < 0) {
		wl->path = NULL;
		goto oom;
	}
	if (!(wl->dir = strdup(dir)))
		goto oom;
	return 0;
oom:
	gd_wlog_free(wl);
	errno = ENOMEM;
	return -1;
}

static int fail(struct gd_wlog *wl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct gd_wlog *wl, const char *fmt, ...)
{
	int e = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(wl->err, sizeof(wl->err), fmt, ap);
	va_end(ap);
	errno = e;
	return -1;
}

static int open_dir(struct gd_wlog *wl)
{
	int dirfd = open(wl->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dirfd < 0)
		return fail(wl, "%s: %s", wl->dir, strerror(errno));
	if (gd_dir_fd_check(dirfd, wl->dir, wl->err, sizeof(wl->err)) < 0) {
		int e = errno;

		close(dirfd);
		errno = e;
		return -1;
	}
	return dirfd;
}

static int wlog_open(struct gd_wlog *wl, int dirfd)
{
	struct stat st;
	int e;

	/* O_NONBLOCK: a FIFO planted under our name must not hang greend. */
	wl->fd = openat(dirfd, wl->name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
			O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0640);
	if (wl->fd < 0) {
		if (errno == ELOOP)
			return fail(wl, "%s is a symbolic link; not following it", wl->path);
		return fail(wl, "%s: %s", wl->path, strerror(errno));
	}
	if (fstat(wl->fd, &st) < 0) {
		e = errno;
		fail(wl, "%s: %s", wl->path, strerror(e));
		goto refuse;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1) {
		e = EPERM;
		fail(wl, "%s is not a regular file of greend's user with one link "
		     "(uid %u, mode %04o, %lu links); not writing to it", wl->path,
		     (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
		     (unsigned long)st.st_nlink);
		goto refuse;
	}
	wl->size = st.st_size;
	return 0;
refuse:
	close(wl->fd);
	wl->fd = -1;
	errno = e;
	return -1;
}

static void wlog_rotate(struct gd_wlog *wl, int dirfd)
{
	char from[512], to[512];

	if (wl->fd >= 0) {
		close(wl->fd);
		wl->fd = -1;
	}
	/* renameat and unlinkat act on the names themselves, links included. */
	if (wl->backups == 0) {
		unlinkat(dirfd, wl->name, 0);
		return;
	}
	for (long i = wl->backups - 1; i >= 1; i--) {
		snprintf(from, sizeof(from), "%s.%ld", wl->name, i);
		snprintf(to, sizeof(to), "%s.%ld", wl->name, i + 1);
		renameat(dirfd, from, dirfd, to);
	}
	snprintf(to, sizeof(to), "%s.1", wl->name);
	renameat(dirfd, wl->name, dirfd, to);
}

int gd_wlog_write(struct gd_wlog *wl, const char *buf, size_t n)
{
	bool rotate;
	ssize_t w;
	int dirfd, r = 0, e;

	rotate = wl->fd >= 0 && wl->max_bytes && wl->size > 0 &&
		 wl->size + (long long)n > wl->max_bytes;
	if (wl->fd < 0 || rotate) {
		if ((dirfd = open_dir(wl)) < 0)
			return -1;
		if (rotate)
			wlog_rotate(wl, dirfd);
		r = wlog_open(wl, dirfd);
		e = errno;
		close(dirfd);
		errno = e;
		if (r < 0)
			return -1;
	}
	while (n > 0) {
		w = write(wl->fd, buf, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return fail(wl, "writing %s: %s", wl->path, strerror(errno));
		}
		buf += w;
		n -= (size_t)w;
		wl->size += w;
	}
	return 0;
}

void gd_wlog_free(struct gd_wlog *wl)
{
	if (wl->fd >= 0)
		close(wl->fd);
	free(wl->dir);
	free(wl->name);
	free(wl->path);
	wl->dir = wl->name = wl->path = NULL;
	wl->fd = -1;
}
