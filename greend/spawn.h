/*
 * spawn.h - fork+exec of one worker instance with the shim injected.
 *
 * Everything that can allocate or consult NSS (environment, user and group
 * lookup, supplementary groups) is done in the parent before fork; the
 * child only makes system calls.  A failure in the child is written as a
 * sentence to a CLOEXEC pipe, so a successful exec shows as EOF and a
 * failed one as the reason the instance became fatal.
 */
#ifndef GREEND_SPAWN_H
#define GREEND_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

struct gd_spawn {
	const struct gd_worker_conf *conf;
	const char *id;             /* "web:0", for GREEND_INSTANCE */
	const char *preload;        /* path or NULL (then LD_PRELOAD is left alone) */
	long stats_interval_ms;
	const int *listen_fds;      /* handed over as fds 3... (LISTEN_FDS) */
	size_t nlisten;
	/* results */
	pid_t pid;
	int chan_fd;                /* greend's end of the channel, non-blocking */
	int out_fd;                 /* read end of the worker's stdout+stderr */
	int err_fd;                 /* read end of the exec error pipe, non-blocking */
};

/* Build the worker's environment (malloc'ed, NULL-terminated). */
char **gd_spawn_env(const struct gd_spawn *sp, char **base);
void gd_spawn_env_free(char **env);

/* Fork and exec.  Returns 0 with the results filled in, or -1 with errno
 * and a sentence in ERR when nothing was started (unknown user, EMFILE...). */
int gd_spawn_start(struct gd_spawn *sp, char *err, size_t errlen);

/* Read what the child wrote to the error pipe, if anything (non-blocking):
 * the sentence in BUF and the errno of the failed step in *ERR_NO (0 when
 * the pipe was empty: the exec succeeded).  Returns the bytes read. */
int gd_spawn_read_error(int err_fd, char *buf, size_t len, int *err_no);
/* Whether a spawn that failed with E is worth retrying by the restart
 * policy (out of fds, processes or memory) rather than fatal. */
bool gd_spawn_errno_transient(int e);

#endif
