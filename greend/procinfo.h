/*
 * procinfo.h - what /proc tells about one process (a worker's main process
 * or greend itself), for the metrics.  Fields that could not be read are
 * marked so, and left out of the metrics rather than shown as 0.
 */
#ifndef GREEND_PROCINFO_H
#define GREEND_PROCINFO_H

#include <stdbool.h>
#include <sys/types.h>

struct gd_procinfo {
	bool have_stat;         /* the next four */
	double cpu_seconds;     /* user + system */
	double start_time;      /* seconds since the epoch */
	long long rss_bytes;
	long long vsize_bytes;
	long open_fds;          /* -1: /proc/PID/fd not readable */
};

/* Read PID's figures; -1 and errno if the process is gone. */
int gd_procinfo_read(pid_t pid, struct gd_procinfo *pi);

#endif
