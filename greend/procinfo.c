/*
 * procinfo.c - reads /proc/PID/stat (CPU time, start time, memory) and
 * counts /proc/PID/fd.  One open, one read per file: a scrape of many
 * instances stays cheap, and a process that exits meanwhile only loses
 * its samples.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procinfo.h"

static int read_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), e;

	if (fd < 0)
		return -1;
	do
		n = read(fd, buf, len - 1);
	while (n < 0 && errno == EINTR);
	e = errno;
	close(fd);
	if (n < 0) {
		errno = e;
		return -1;
	}
	buf[n] = '\0';
	return 0;
}

/* Seconds since the epoch at which the system booted, read once. */
static double boot_time(void)
{
	static double btime = -1;
	char buf[8192], *p;

	if (btime >= 0)
		return btime;
	if (read_file("/proc/stat", buf, sizeof(buf)) < 0)
		return 0;
	p = strstr(buf, "\nbtime ");
	btime = p ? strtod(p + 7, NULL) : 0;
	return btime;
}

static long count_fds(pid_t pid)
{
	char path[64];
	struct dirent *de;
	long n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	/* Reading our own table, the directory's own fd is counted too. */
	return pid == getpid() && n > 0 ? n - 1 : n;
}

int gd_procinfo_read(pid_t pid, struct gd_procinfo *pi)
{
	char path[64], buf[2048], *p;
	unsigned long long utime, stime, start, vsize;
	long long rss;
	long tick = sysconf(_SC_CLK_TCK);
	long page = sysconf(_SC_PAGESIZE);

	memset(pi, 0, sizeof(*pi));
	pi->open_fds = -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	/* The command name may hold spaces and parentheses: skip past the
	 * last ')'.  Then field 3 (state) on, as proc(5) numbers them. */
	p = strrchr(buf, ')');
	if (!p || tick <= 0 || page <= 0) {
		errno = EIO;
		return -1;
	}
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
		   "%*d %*d %*d %*d %*d %*d %llu %llu %lld",
		   &utime, &stime, &start, &vsize, &rss) == 5) {
		pi->have_stat = true;
		pi->cpu_seconds = (double)(utime + stime) / (double)tick;
		pi->start_time = boot_time() + (double)start / (double)tick;
		pi->rss_bytes = rss * page;
		pi->vsize_bytes = (long long)vsize;
	}
	pi->open_fds = count_fds(pid);
	return 0;
}
