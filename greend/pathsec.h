/*
 * pathsec.h - what greend, as root, refuses to trust: a file that someone
 * other than root (or the user it is run for) could change, by writing it
 * or by renaming something on the way to it.  As sshd's StrictModes does
 * for authorized_keys, but up to "/": any writable directory on the way
 * lets its writer move the rest of the path aside and put their own in.
 */
#ifndef GREEND_PATHSEC_H
#define GREEND_PATHSEC_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"

/*
 * Check PATH (absolute) and every directory leading to it, both as written
 * and with its symlinks resolved.  An object is insecure when it is
 * writable by others, writable by a group other than root's, or owned by
 * someone other than root and OWNER (pass (uid_t)-1 for root alone) while
 * it has any write bit; a directory writable by others is fine when it is
 * sticky and root's (/tmp).  A path that does not exist yet is judged by
 * the directories that do, since those decide who could create it.
 * Returns 0, or -1 with errno EPERM and "WHAT PATH: OBJECT is ... (mode
 * 0777, owner uid 1000)" in ERR.
 */
int gd_path_check(const char *path, uid_t owner, const char *what, char *err,
		  size_t errlen);

/*
 * Every path CFG (loaded from its file) makes greend trust: the config
 * file, the preload library (the configured one or the one greend would
 * find), and each worker's executable as the worker's PATH resolves it,
 * with the PATH directories searched before it.  Returns 0 or -1 with the
 * first problem in ERR, prefixed by the config file's name.
 */
int gd_config_check_paths(const struct gd_config *cfg, char *err, size_t errlen);

#endif
