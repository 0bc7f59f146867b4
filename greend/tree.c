/*
 * tree.c - an instance's processes from /proc (see tree.h).  Reading /proc
 * races with forks and exits by nature; the callers scan again after
 * signalling, and a process that appears meanwhile is reparented to greend
 * and found on the next pass.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tree.h"

/* "pid (comm) S ppid pgrp session ...": comm may hold ')' and blanks, so
 * the fields are counted from the last ')'. */
static int read_stat(pid_t pid, struct gd_proc *p)
{
	char path[64], buf[1024], *rp;
	int fd, ppid, pgid, sid;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	rp = strrchr(buf, ')');
	if (!rp || sscanf(rp + 1, " %*c %d %d %d", &ppid, &pgid, &sid) != 3)
		return -1;
	p->pid = pid;
	p->ppid = ppid;
	p->pgid = pgid;
	p->sid = sid;
	return 0;
}

ssize_t gd_proc_scan(struct gd_proc **out)
{
	struct gd_proc *v = NULL, *nv;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int e;

	d = opendir("/proc");
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				e = ENOMEM;
				goto fail;
			}
			v = nv;
		}
		if (read_stat((pid_t)pid, &v[n]) == 0)
			n++;
	}
	closedir(d);
	*out = v;
	return (ssize_t)n;
fail:
	closedir(d);
	free(v);
	errno = e;
	return -1;
}

bool gd_proc_env_has(pid_t pid, const char *entry)
{
	char path[64], buf[65536];
	size_t len = strlen(entry);
	ssize_t n, got = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	while ((size_t)got < sizeof(buf) - 1 &&
	       (n = read(fd, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	buf[got] = '\0';
	for (ssize_t i = 0; i < got; i += (ssize_t)strlen(buf + i) + 1)
		if (strlen(buf + i) == len && memcmp(buf + i, entry, len) == 0)
			return true;
	return false;
}

size_t gd_tree_mark(const struct gd_proc *p, size_t n, pid_t self, pid_t leader,
		    bool leader_alive, const char *id,
		    bool (*is_leader)(pid_t pid, void *arg), void *arg, bool *mark)
{
	char entry[128];
	size_t marked = 0;
	bool grew;

	snprintf(entry, sizeof(entry), "GREEND_INSTANCE=%s", id);
	for (size_t i = 0; i < n; i++) {
		mark[i] = false;
		if (p[i].pid == leader || p[i].pid == self || p[i].pid == 1 ||
		    p[i].ppid != self || is_leader(p[i].pid, arg))
			continue;
		/* An orphan greend inherited: is it this instance's? */
		if (p[i].pgid == leader || p[i].sid == leader ||
		    gd_proc_env_has(p[i].pid, entry)) {
			mark[i] = true;
			marked++;
		}
	}
	/* Descendants of the leader and of the orphans found, to a fixed point
	 * (the snapshot is not ordered parent first). */
	do {
		grew = false;
		for (size_t i = 0; i < n; i++) {
			if (mark[i] || p[i].pid == self || p[i].pid == 1 || p[i].pid == leader)
				continue;
			/* A reaped leader's pid may already be someone else's. */
			if (leader_alive && p[i].ppid == leader) {
				mark[i] = grew = true;
			} else {
				for (size_t j = 0; j < n; j++) {
					if (mark[j] && p[j].pid == p[i].ppid) {
						mark[i] = grew = true;
						break;
					}
				}
			}
			if (mark[i])
				marked++;
		}
	} while (grew);
	return marked;
}
