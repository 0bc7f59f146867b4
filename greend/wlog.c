/*
 * wlog.c - size-rotated worker log files.  Rotation happens before a write
 * that would cross the limit, so no file grows past max_bytes by more than
 * one line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wlog.h"

int gd_wlog_init(struct gd_wlog *wl, const char *dir, const char *name,
		 long long max_bytes, long backups)
{
	memset(wl, 0, sizeof(*wl));
	wl->fd = -1;
	wl->max_bytes = max_bytes;
	wl->backups = backups;
	if (asprintf(&wl->path, "%s/%s.log", dir, name) < 0) {
		wl->path = NULL;
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

static int wlog_open(struct gd_wlog *wl)
{
	struct stat st;

	wl->fd = open(wl->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (wl->fd < 0)
		return -1;
	wl->size = fstat(wl->fd, &st) == 0 ? st.st_size : 0;
	return 0;
}

static void wlog_rotate(struct gd_wlog *wl)
{
	char from[4096], to[4096];

	if (wl->fd >= 0) {
		close(wl->fd);
		wl->fd = -1;
	}
	if (wl->backups == 0) {
		unlink(wl->path);
		return;
	}
	for (long i = wl->backups - 1; i >= 1; i--) {
		snprintf(from, sizeof(from), "%s.%ld", wl->path, i);
		snprintf(to, sizeof(to), "%s.%ld", wl->path, i + 1);
		rename(from, to);
	}
	snprintf(to, sizeof(to), "%s.1", wl->path);
	rename(wl->path, to);
}

int gd_wlog_write(struct gd_wlog *wl, const char *buf, size_t n)
{
	ssize_t w;

	if (wl->fd < 0 && wlog_open(wl) < 0)
		return -1;
	if (wl->max_bytes && wl->size > 0 && wl->size + (long long)n > wl->max_bytes) {
		wlog_rotate(wl);
		if (wlog_open(wl) < 0)
			return -1;
	}
	while (n > 0) {
		w = write(wl->fd, buf, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
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
	free(wl->path);
	wl->path = NULL;
	wl->fd = -1;
}
