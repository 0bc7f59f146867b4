/*
 * safepath.h - opening the directories greend creates files in (the
 * control socket's, its lock file's) so that nobody but root and greend's
 * own user can swap what is in them: every component from / is checked
 * (owner root or greend's uid; writable by group or others only when
 * sticky, as /tmp), walked without following symlinks, and the result is
 * a directory fd for the *at() calls that create and remove files there.
 */
#ifndef GREEND_SAFEPATH_H
#define GREEND_SAFEPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* Whether a directory with ST may hold greend's files: NULL if so, else
 * why not (a static sentence fragment). */
const char *gd_dir_untrusted(const struct stat *st);

/*
 * Open DIR (made absolute with realpath, so a symlink an owner trusted is
 * fine) as an O_PATH directory fd after checking each component; -1 with
 * errno (EPERM for an untrusted component, ELOOP for a symlink swapped in
 * during the walk) and the component and its owner and mode in ERR.
 */
int gd_open_trusted_dir(const char *dir, char *err, size_t errlen);

#endif
