/*
 * safepath.c - the checked directory walk behind the control socket and
 * its lock file.  realpath() first, so the walk sees no symlinks an owner
 * put there on purpose; then each component is opened with O_NOFOLLOW
 * relative to its checked parent, so one swapped in between the two fails
 * instead of leading greend elsewhere.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safepath.h"

const char *gd_dir_untrusted(const struct stat *st)
{
	if (!S_ISDIR(st->st_mode))
		return "is not a directory";
	if (st->st_uid != 0 && st->st_uid != geteuid())
		return "is owned by another user";
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(st->st_mode & S_ISVTX))
		return "is writable by group or others and not sticky";
	return NULL;
}

static int check(int fd, const char *shown, char *err, size_t errlen)
{
	struct stat st;
	const char *why;

	if (fstat(fd, &st) < 0) {
		int e = errno;

		snprintf(err, errlen, "%s: %s", shown, strerror(e));
		errno = e;
		return -1;
	}
	why = gd_dir_untrusted(&st);
	if (why) {
		snprintf(err, errlen, "%s %s (owner uid %u, mode %04o); greend creates files "
			 "only where nobody but root and its own user can change them", shown, why,
			 (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		errno = EPERM;
		return -1;
	}
	return 0;
}

int gd_open_trusted_dir(const char *dir, char *err, size_t errlen)
{
	char real[PATH_MAX], *comp, *save = NULL, shown[PATH_MAX];
	size_t shown_len = 0;
	int fd, e;

	if (!realpath(dir, real)) {
		e = errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(e));
		errno = e;
		return -1;
	}
	fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "/: %s", strerror(e));
		errno = e;
		return -1;
	}
	if (check(fd, "/", err, errlen) < 0)
		goto fail;
	shown[0] = '\0';
	for (comp = strtok_r(real, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		int next = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		shown_len += (size_t)snprintf(shown + shown_len, sizeof(shown) - shown_len,
					      "/%s", comp);
		if (shown_len >= sizeof(shown))
			shown_len = sizeof(shown) - 1;
		if (next < 0) {
			e = errno;
			snprintf(err, errlen, "%s: %s", shown,
				 e == ELOOP || e == ENOTDIR ? "was replaced while greend checked it"
							    : strerror(e));
			close(fd);
			errno = e;
			return -1;
		}
		close(fd);
		fd = next;
		if (check(fd, shown, err, errlen) < 0)
			goto fail;
	}
	return fd;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}
