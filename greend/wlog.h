/*
 * wlog.h - a worker's log file, log_dir/NAME.log, rotated by size:
 * NAME.log becomes NAME.log.1, .1 becomes .2, ... up to the number of
 * backups kept.  Opened lazily so a log_dir that appears later still works.
 *
 * greend is usually root and log_dir may be writable by others (a group of
 * operators, a shared /var/log): every file is reached through a directory
 * fd that was checked, never by path, and never through a symlink, so a
 * planted link or hard link cannot point greend's writes elsewhere.
 */
#ifndef GREEND_WLOG_H
#define GREEND_WLOG_H

#include <stddef.h>

struct gd_wlog {
	char *dir;
	char *name;             /* "NAME.log", inside dir */
	char *path;             /* dir/name, for messages */
	int fd;
	long long size;
	long long max_bytes;    /* 0: never rotate */
	long backups;
	char err[512];          /* why the last failed write failed */
};

int gd_wlog_init(struct gd_wlog *wl, const char *dir, const char *name,
		 long long max_bytes, long backups);
/* Append; -1 with errno and a sentence in wl->err. */
int gd_wlog_write(struct gd_wlog *wl, const char *buf, size_t n);
void gd_wlog_free(struct gd_wlog *wl);

/* Whether greend may create files in the directory open at DIRFD: it is a
 * directory owned by root or by greend's user, and not writable by others
 * unless sticky.  0, or -1 with errno EPERM and a sentence naming PATH and
 * its mode in ERR.  Shared with the other files greend creates. */
int gd_dir_fd_check(int dirfd, const char *path, char *err, size_t errlen);

#endif
