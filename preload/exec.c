/*
 * exec.c - a program run by exec, posix_spawn, system or popen sees its
 * inherited sockets as it would without the shim: blocking, unless the
 * program itself made them non-blocking.
 *
 * The shim keeps O_NONBLOCK on sockets it created until they carry data,
 * and for good on listening sockets (socket.c).  The flag belongs to the
 * open file description, which an exec'd program inherits and keeps
 * sharing with every process that has the fd.  So, before the exec, the
 * shim takes O_NONBLOCK off every fd it set it on itself that the new
 * program will inherit (not close-on-exec), and puts it back only if the
 * exec fails.
 *
 * posix_spawn: once the child runs, parent and child share the description
 * for as long as both hold the fd, so no value of the flag is right for
 * both: setting it back after the spawn would show the child O_NONBLOCK
 * the moment it looks.  Nothing in the child can help either: file actions
 * have no way to clear a status flag, and a socket cannot be reopened into
 * a description of its own (open on /proc/self/fd/N fails for sockets), so
 * a spawn path of the shim's own (clone, fix up, exec) would face the same
 * shared description.  glibc's posix_spawn (a CLONE_VM|CLONE_VFORK child
 * that calls its internal execve, never the PLT) keeps the parent
 * suspended until the exec, and system() and popen() call it internally
 * (checked on glibc 2.36), so the wrappers here are the only point where
 * the shim can act.  The least bad correct choice: the child gets the
 * kernel's flag cleared, and the parent stops relying on it for those fds
 * from then on.  Their entries lose shim_nonblock, which makes them what
 * an inherited listener already is to the shim: accept waits for
 * readiness first, then makes the blocking call (socket.c).  The price is
 * that a connection taken by another process between the readiness and
 * the accept makes that accept, and its hub, wait for the next one.
 *
 * fork then exec in the child is the same case seen from the other side:
 * the child's exec clears the flag the parent's table still believes in.
 * So fork marks every such description shared (desc_shared), and socket.c
 * no longer trusts shim_nonblock for it: accept looks for readiness first,
 * connect checks the kernel's flag.
 *
 * With file actions, a spawn may dup2 any fd, close-on-exec or not, onto
 * one the child keeps; the shim cannot read glibc's private list of
 * actions, so it clears every fd it flipped.  popen's actions are known
 * (the pipe end onto 0 or 1, closes of other popen pipes) and touch no
 * socket.
 */
#define _GNU_SOURCE
#include "shim_io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct exec_prep {
	bool with_cloexec; /* also fds marked close-on-exec (file actions) */
	int cleared;
};

static void clear_one(int fd, struct shim_fd *e, void *arg)
{
	struct exec_prep *p = arg;
	int fdfl, fl;

	if (e->kind != SHIM_FD_SOCKET || !e->shim_nonblock || e->user_nonblock)
		return;
	fdfl = SHIM_REAL(fcntl)(fd, F_GETFD);
	if (fdfl < 0 || ((fdfl & FD_CLOEXEC) && !p->with_cloexec))
		return; /* closed behind the table's back, or gone at exec */
	fl = SHIM_REAL(fcntl)(fd, F_GETFL);
	if (fl < 0 || !(fl & O_NONBLOCK))
		return; /* a forked child's exec cleared it already */
	if (SHIM_REAL(fcntl)(fd, F_SETFL, fl & ~O_NONBLOCK) == 0) {
		e->exec_cleared = true;
		p->cleared++;
	}
}

static void restore_one(int fd, struct shim_fd *e, void *arg)
{
	int fl;

	(void)arg;
	if (!e->exec_cleared)
		return;
	e->exec_cleared = false;
	fl = SHIM_REAL(fcntl)(fd, F_GETFL);
	if (fl >= 0)
		SHIM_REAL(fcntl)(fd, F_SETFL, fl | O_NONBLOCK);
}

static void keep_one(int fd, struct shim_fd *e, void *arg)
{
	(void)fd;
	(void)arg;
	if (!e->exec_cleared)
		return;
	e->exec_cleared = false;
	e->shim_nonblock = false;
}

static void share_one(int fd, struct shim_fd *e, void *arg)
{
	(void)fd;
	(void)arg;
	if (e->shim_nonblock)
		e->desc_shared = true;
}

/* The shim's own threads never exec for the program; their fds are
 * libev's, which the table does not hold. */
static bool exec_active(void)
{
	return !shim_passthrough;
}

static void exec_prepare(bool with_cloexec)
{
	struct exec_prep p = {.with_cloexec = with_cloexec};

	if (!exec_active())
		return;
	shim_fd_each(0, UINT_MAX, clear_one, &p);
	if (p.cleared)
		SHIM_DEBUG("exec: O_NONBLOCK taken off %d socket(s) the shim had set it on",
		           p.cleared);
}

/* The exec did not happen: the fds are the shim's again, as before. */
static void exec_failed(void)
{
	int err = errno;

	if (exec_active())
		shim_fd_each(0, UINT_MAX, restore_one, NULL);
	errno = err;
}

/* A child runs with the fds: they stay blocking, in the parent too. */
static void exec_shared(void)
{
	if (exec_active())
		shim_fd_each(0, UINT_MAX, keep_one, NULL);
}

void shim_exec_forked(void)
{
	shim_fd_each(0, UINT_MAX, share_one, NULL);
}

/* ---- the exec family: they return only on failure ----------------------------- */

int execve(const char *path, char *const argv[], char *const envp[])
{
	exec_prepare(false);
	SHIM_REAL(execve)(path, argv, envp);
	exec_failed();
	return -1;
}

int execv(const char *path, char *const argv[])
{
	exec_prepare(false);
	SHIM_REAL(execv)(path, argv);
	exec_failed();
	return -1;
}

int execvp(const char *file, char *const argv[])
{
	exec_prepare(false);
	SHIM_REAL(execvp)(file, argv);
	exec_failed();
	return -1;
}

int execvpe(const char *file, char *const argv[], char *const envp[])
{
	exec_prepare(false);
	SHIM_REAL(execvpe)(file, argv, envp);
	exec_failed();
	return -1;
}

int fexecve(int fd, char *const argv[], char *const envp[])
{
	exec_prepare(false);
	SHIM_REAL(fexecve)(fd, argv, envp);
	exec_failed();
	return -1;
}

int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
             int flags)
{
	exec_prepare(false);
	SHIM_REAL(execveat)(dirfd, path, argv, envp, flags);
	exec_failed();
	return -1;
}

/*
 * The list forms cannot pass their arguments on, so they build the vector
 * here, on the stack as glibc does: exec may follow vfork-like clones,
 * where malloc is not safe.
 */
static size_t list_count(const char *arg0, va_list ap)
{
	size_t n = 1;
	va_list cp;

	va_copy(cp, ap);
	if (arg0)
		while (va_arg(cp, const char *))
			n++;
	va_end(cp);
	return n; /* the arguments, arg0 included, before the NULL */
}

/* Fills argv[0..n] and leaves ap past the terminating NULL (execle's
 * envp comes next). */
static void list_fill(char **argv, size_t n, const char *arg0, va_list *ap)
{
	argv[0] = (char *)(uintptr_t)arg0;
	if (!arg0)
		return;
	for (size_t i = 1; i < n; i++)
		argv[i] = va_arg(*ap, char *);
	argv[n] = va_arg(*ap, char *);
}

/* In a variadic function whose last named parameter is arg: argv, the
 * vector, and ap, left open for what follows the list. */
#define EXEC_ARGV(arg, argv, ap)                                              	size_t n_;                                                            	va_start(ap, arg);                                                    	n_ = list_count(arg, ap);                                             	if (n_ >= INT_MAX) {                                                  		va_end(ap);                                                   		errno = E2BIG;                                                		return -1;                                                    	}                                                                     	char *argv[n_ + 1];                                                   	list_fill(argv, n_, arg, &ap)

int execl(const char *path, const char *arg, ...)
{
	va_list ap;

	EXEC_ARGV(arg, argv, ap);
	va_end(ap);
	return execv(path, argv);
}

int execlp(const char *file, const char *arg, ...)
{
	va_list ap;

	EXEC_ARGV(arg, argv, ap);
	va_end(ap);
	return execvp(file, argv);
}

int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	char *const *envp;

	EXEC_ARGV(arg, argv, ap);
	envp = va_arg(ap, char *const *);
	va_end(ap);
	return execve(path, argv, envp);
}

/* ---- spawning: the child shares the descriptions ------------------------------- */

/* rc is what a posix_spawn said: 0 means a child runs with the fds. */
static int spawned(int rc)
{
	if (rc == 0)
		exec_shared();
	else
		exec_failed();
	return rc;
}

int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	exec_prepare(fa != NULL);
	return spawned(SHIM_REAL(posix_spawn)(pid, path, fa, attr, argv, envp));
}

int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                 const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	exec_prepare(fa != NULL);
	return spawned(SHIM_REAL(posix_spawnp)(pid, file, fa, attr, argv, envp));
}

/* -1 means no shell was started; anything else, one ran with the fds (and
 * may have left a background job holding them). */
int system(const char *command)
{
	int rc;

	if (!command) /* only asks whether there is a shell */
		return SHIM_REAL(system)(command);
	exec_prepare(false);
	rc = SHIM_REAL(system)(command);
	spawned(rc == -1 ? -1 : 0);
	return rc;
}

FILE *popen(const char *command, const char *mode)
{
	FILE *f;

	exec_prepare(false);
	f = SHIM_REAL(popen)(command, mode);
	spawned(f ? 0 : -1);
	return f;
}
