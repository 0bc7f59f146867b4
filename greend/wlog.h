/*
 * wlog.h - a worker's log file, log_dir/NAME.log, rotated by size:
 * NAME.log becomes NAME.log.1, .1 becomes .2, ... up to the number of
 * backups kept.  Opened lazily so a log_dir that appears later still works.
 */
#ifndef GREEND_WLOG_H
#define GREEND_WLOG_H

#include <stddef.h>

struct gd_wlog {
	char *path;
	int fd;
	long long size;
	long long max_bytes;    /* 0: never rotate */
	long backups;
};

int gd_wlog_init(struct gd_wlog *wl, const char *dir, const char *name,
		 long long max_bytes, long backups);
int gd_wlog_write(struct gd_wlog *wl, const char *buf, size_t n);
void gd_wlog_free(struct gd_wlog *wl);

#endif
