/*
 * pathsec.c - refusing config, preload and command paths that others could
 * change (see pathsec.h).  Only stat(2) and realpath(3): nothing is opened,
 * so checking a FIFO or a device cannot block greend.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pathsec.h"
#include "proto.h"

static int insecure(const char *what, const char *path, const char *obj,
		    const struct stat *st, const char *why, char *err, size_t errlen)
{
	if (strcmp(path, obj) == 0)
		snprintf(err, errlen, "%s %s is %s (mode %04o, owner uid %u, group gid %u)",
			 what, path, why, (unsigned)(st->st_mode & 07777),
			 (unsigned)st->st_uid, (unsigned)st->st_gid);
	else
		snprintf(err, errlen, "%s %s: directory %s is %s (mode %04o, owner uid %u, group gid %u)",
			 what, path, obj, why, (unsigned)(st->st_mode & 07777),
			 (unsigned)st->st_uid, (unsigned)st->st_gid);
	errno = EPERM;
	return -1;
}

/* One object: 0 fine, 1 absent, -1 insecure (ERR set). */
static int check_one(const char *what, const char *path, const char *obj, uid_t owner,
		     char *err, size_t errlen)
{
	struct stat st;

	if (stat(obj, &st) < 0)
		return 1;
	if (S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX) && st.st_uid == 0)
		return 0; /* /tmp: others may add names, not move ours */
	if (st.st_mode & S_IWOTH)
		return insecure(what, path, obj, &st, "writable by others", err, errlen);
	if ((st.st_mode & S_IWGRP) && st.st_gid != 0)
		return insecure(what, path, obj, &st, "writable by a group other than root's",
				err, errlen);
	if (st.st_uid != 0 && st.st_uid != owner && (st.st_mode & 0222))
		return insecure(what, path, obj, &st, "owned by a user other than root with write bits",
				err, errlen);
	return 0;
}

/* PATH and each of its ancestors up to "/", as the names go. */
static int check_chain(const char *what, const char *path, const char *p, uid_t owner,
		       char *err, size_t errlen)
{
	char buf[PATH_MAX];
	size_t n = strlen(p);
	int r;

	if (n == 0 || n >= sizeof(buf) || p[0] != '/')
		return 0;
	memcpy(buf, p, n + 1);
	/* From the top down, so the first problem reported is the highest. */
	if (check_one(what, path, "/", owner, err, errlen) < 0)
		return -1;
	for (size_t i = 1; i <= n; i++) {
		char c = buf[i];

		if ((c != '/' && c != '\0') || buf[i - 1] == '/')
			continue;
		buf[i] = '\0';
		r = check_one(what, path, buf, owner, err, errlen);
		buf[i] = c;
		if (r < 0)
			return -1;
		if (r > 0)
			return 0; /* the rest does not exist: its parent decided */
	}
	return 0;
}

int gd_path_check(const char *path, uid_t owner, const char *what, char *err,
		  size_t errlen)
{
	char real[PATH_MAX];

	if (check_chain(what, path, path, owner, err, errlen) < 0)
		return -1;
	if (realpath(path, real) && strcmp(real, path) != 0 &&
	    check_chain(what, path, real, owner, err, errlen) < 0)
		return -1;
	return 0;
}

static const char *worker_path_var(const struct gd_worker_conf *wc)
{
	const char *p = getenv("PATH");

	for (size_t i = 0; wc->env && wc->env[i]; i++)
		if (strncmp(wc->env[i], "PATH=", 5) == 0)
			p = wc->env[i] + 5;
	/* execvp's own default when PATH is unset */
	return p ? p : "/bin:/usr/bin";
}

static uid_t worker_uid(const struct gd_worker_conf *wc)
{
	struct passwd *pw;
	char *end;
	unsigned long v;

	if (!wc->user)
		return 0;
	if ((pw = getpwnam(wc->user)))
		return pw->pw_uid;
	v = strtoul(wc->user, &end, 10);
	if (*end == '\0' && end != wc->user)
		return (uid_t)v;
	return (uid_t)-1;
}

static bool is_executable(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

/* The worker's executable as execvp will find it, and every PATH
 * directory searched before it (a writer there could shadow it). */
static int check_command(const struct gd_worker_conf *wc, size_t idx, char *err,
			 size_t errlen)
{
	char what[128], dirwhat[160], cand[PATH_MAX];
	const char *argv0 = wc->argv[0], *p;
	uid_t uid = worker_uid(wc);

	snprintf(what, sizeof(what), "workers[%zu].command[0]:", idx);
	snprintf(dirwhat, sizeof(dirwhat), "%s PATH directory", what);
	if (strchr(argv0, '/'))
		return gd_path_check(argv0, uid, what, err, errlen);
	for (p = worker_path_var(wc); ; p++) {
		const char *end = strchrnul(p, ':');
		int len = (int)(end - p);

		if (len > 0 && p[0] == '/' &&
		    gd_snprintf(cand, sizeof(cand), "%.*s/%s", len, p, argv0) >= 0) {
			cand[len] = '\0';
			if (gd_path_check(cand, uid, dirwhat, err, errlen) < 0)
				return -1;
			cand[len] = '/';
			if (is_executable(cand))
				return gd_path_check(cand, uid, what, err, errlen);
		}
		if (*end == '\0')
			break;
		p = end;
	}
	return 0;
}

int gd_config_check_paths(const struct gd_config *cfg, char *err, size_t errlen)
{
	char msg[1024], pre[PATH_MAX];
	const char *preload = cfg->preload;

	if (gd_path_check(cfg->path, (uid_t)-1, "config file", msg, sizeof(msg)) < 0)
		goto bad;
	if (!preload && gd_find_preload(pre, sizeof(pre)) == 0)
		preload = pre;
	if (preload && gd_path_check(preload, (uid_t)-1, "preload library", msg, sizeof(msg)) < 0)
		goto bad;
	for (size_t i = 0; i < cfg->nworkers; i++)
		if (check_command(cfg->workers[i], i, msg, sizeof(msg)) < 0)
			goto bad;
	return 0;
bad:
	snprintf(err, errlen, "%s: %s; refusing it as root (set \"allow_insecure_paths\": true "
		 "to accept it)", cfg->path, msg);
	errno = EPERM;
	return -1;
}
