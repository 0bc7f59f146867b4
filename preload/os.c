/*
 * os.c - the "os" module: read/write on pipes, FIFOs and ttys, the wait
 * family, fork.  The signal wrapping that gives every greened call its
 * EINTR is signal.c's.
 *
 * Pipes and ttys are shared with other processes (a shell, a parent), so
 * their O_NONBLOCK is never touched: a call waits for readiness first and
 * then makes the ordinary blocking call, which the readiness makes short.
 * A pipe write goes out in pieces of at most PIPE_BUF bytes, each after the
 * pipe said it had room: a writable pipe always takes PIPE_BUF bytes without
 * blocking, and writes that big were never atomic anyway.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "shim_io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* Polling a child's exit when neither a pidfd nor SIGCHLD can tell us. */
#define CHILD_POLL_MIN (1 * GREEN_MSEC)
#define CHILD_POLL_MAX (50 * GREEN_MSEC)

/* ---- pipes ------------------------------------------------------------------ */

static bool table_active(void)
{
	return !shim_passthrough && (shim_patched[SHIM_SOCKET] || shim_patched[SHIM_OS]);
}

int pipe2(int fds[2], int flags)
{
	int rc = SHIM_REAL(pipe2)(fds, flags);

	if (rc == 0 && table_active()) {
		shim_fd_created(fds[0], SHIM_FD_PIPE, (flags & O_NONBLOCK) != 0, false);
		shim_fd_created(fds[1], SHIM_FD_PIPE, (flags & O_NONBLOCK) != 0, false);
	}
	return rc;
}

int pipe(int fds[2])
{
	int rc = SHIM_REAL(pipe)(fds);

	if (rc == 0 && table_active()) {
		shim_fd_created(fds[0], SHIM_FD_PIPE, false, false);
		shim_fd_created(fds[1], SHIM_FD_PIPE, false, false);
	}
	return rc;
}

/* A tty in non-canonical mode with VMIN 0 returns at once (or after VTIME)
 * even with nothing to read: readiness would wait for input instead. */
static bool tty_reads_without_data(int fd)
{
	struct termios t;

	if (tcgetattr(fd, &t) < 0)
		return true; /* let the real call say what is wrong */
	return !(t.c_lflag & ICANON) && t.c_cc[VMIN] == 0;
}

static bool would_block(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK;
}

/*
 * Wait until fd is ready, then make the real call (op), which then does not
 * block.  A description someone else made non-blocking, or data another
 * reader took first, gives EAGAIN: wait again.
 */
typedef ssize_t (*os_op_fn)(int fd, void *arg);

static ssize_t os_ready_then(struct green_hub *h, int fd, int events, os_op_fn op,
                             void *arg, struct shim_intr *in)
{
	for (;;) {
		int ready = shim_ready_now(fd, events);
		ssize_t n;

		if (ready < 0)
			return op(fd, arg); /* the real call reports EBADF & co */
		if (ready) {
			n = op(fd, arg);
			if (n >= 0 || !would_block(errno))
				return n;
		}
		if (shim_wait_fd_intr(h, fd, events, GREEN_FOREVER, in, false) < 0) {
			int err = errno;

			/* The kernel prefers a ready result to the signal. */
			if (err == EINTR && shim_ready_now(fd, events) > 0) {
				n = op(fd, arg);
				if (n >= 0 || !would_block(errno))
					return n;
			}
			errno = err;
			return -1;
		}
	}
}

struct os_io {
	void *buf;
	size_t len;
	const struct iovec *iov;
	int iovcnt;
};

static ssize_t op_read(int fd, void *arg)
{
	struct os_io *io = arg;

	return SHIM_REAL(read)(fd, io->buf, io->len);
}

static ssize_t op_readv(int fd, void *arg)
{
	struct os_io *io = arg;

	return SHIM_REAL(readv)(fd, io->iov, io->iovcnt);
}

static ssize_t op_write(int fd, void *arg)
{
	struct os_io *io = arg;

	return SHIM_REAL(write)(fd, io->buf, io->len);
}

static ssize_t op_writev(int fd, void *arg)
{
	struct os_io *io = arg;

	return SHIM_REAL(writev)(fd, io->iov, io->iovcnt);
}

ssize_t shim_os_read(struct green_hub *h, struct shim_fd *e, int fd, void *buf,
                     size_t len)
{
	struct os_io io = {.buf = buf, .len = len};
	struct shim_intr in;

	if (shim_alone(h) || (e->kind == SHIM_FD_TTY && tty_reads_without_data(fd)))
		return SHIM_REAL(read)(fd, buf, len);
	shim_intr_begin(&in, false);
	return os_ready_then(h, fd, GREEN_READ, op_read, &io, &in);
}

ssize_t shim_os_readv(struct green_hub *h, struct shim_fd *e, int fd,
                      const struct iovec *iov, int iovcnt)
{
	struct os_io io = {.iov = iov, .iovcnt = iovcnt};
	struct shim_intr in;

	if (shim_alone(h) || (e->kind == SHIM_FD_TTY && tty_reads_without_data(fd)))
		return SHIM_REAL(readv)(fd, iov, iovcnt);
	shim_intr_begin(&in, false);
	return os_ready_then(h, fd, GREEN_READ, op_readv, &io, &in);
}

/*
 * Copy into out[] the part of iov[] that starts `skip` bytes in and is at
 * most `max` bytes long; returns the number of entries used.
 */
static int iov_slice(const struct iovec *iov, int iovcnt, size_t skip, size_t max,
                     struct iovec *out, int outmax)
{
	int n = 0;

	for (int i = 0; i < iovcnt && n < outmax && max; i++) {
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		out[n].iov_base = (char *)iov[i].iov_base + skip;
		out[n].iov_len = l - skip < max ? l - skip : max;
		max -= out[n].iov_len;
		skip = 0;
		n++;
	}
	return n;
}

/*
 * A blocking write writes everything: piece by piece for a pipe (each piece
 * at most PIPE_BUF, which a writable pipe takes whole), in one call for a
 * tty.  A signal or an error after some progress returns the progress.
 */
static ssize_t os_write_iov(struct green_hub *h, struct shim_fd *e, int fd,
                            const struct iovec *iov, int iovcnt)
{
	size_t total = 0, done = 0;
	struct shim_intr in;

	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	shim_intr_begin(&in, false);
	for (;;) {
		struct iovec part[16];
		struct os_io io;
		size_t max = e->kind == SHIM_FD_PIPE ? PIPE_BUF : total - done;
		ssize_t n;

		io.iovcnt = iov_slice(iov, iovcnt, done, max, part, 16);
		io.iov = part;
		n = os_ready_then(h, fd, GREEN_WRITE, op_writev, &io, &in);
		if (n < 0)
			return done ? (ssize_t)done : -1;
		done += (size_t)n;
		if (done >= total || n == 0)
			return (ssize_t)done;
	}
}

ssize_t shim_os_write(struct green_hub *h, struct shim_fd *e, int fd,
                      const void *buf, size_t len)
{
	struct iovec one = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
	struct os_io io = {.buf = (void *)(uintptr_t)buf, .len = len};
	struct shim_intr in;

	if (len == 0 || shim_alone(h))
		return SHIM_REAL(write)(fd, buf, len);
	if (e->kind != SHIM_FD_PIPE || len <= PIPE_BUF) {
		shim_intr_begin(&in, false);
		return os_ready_then(h, fd, GREEN_WRITE, op_write, &io, &in);
	}
	return os_write_iov(h, e, fd, &one, 1);
}

ssize_t shim_os_writev(struct green_hub *h, struct shim_fd *e, int fd,
                       const struct iovec *iov, int iovcnt)
{
	size_t total = 0;
	struct os_io io = {.iov = iov, .iovcnt = iovcnt};
	struct shim_intr in;

	for (int i = 0; i < iovcnt && iovcnt > 0; i++)
		total += iov[i].iov_len;
	if (iovcnt <= 0 || total == 0 || shim_alone(h))
		return SHIM_REAL(writev)(fd, iov, iovcnt);
	if (e->kind != SHIM_FD_PIPE || total <= PIPE_BUF) {
		shim_intr_begin(&in, false);
		return os_ready_then(h, fd, GREEN_WRITE, op_writev, &io, &in);
	}
	return os_write_iov(h, e, fd, iov, iovcnt);
}

/* pread/pwrite work on seekable files only, which never block in the sense
 * a hub can help with: they go straight through. */
ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen);
ssize_t __pread64_chk(int fd, void *buf, size_t n, off64_t off, size_t buflen);

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	return SHIM_REAL(pread)(fd, buf, n, off);
}

ssize_t pread64(int fd, void *buf, size_t n, off64_t off)
{
	return SHIM_REAL(pread64)(fd, buf, n, off);
}

ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
	return SHIM_REAL(__pread_chk)(fd, buf, n, off, buflen);
}

ssize_t __pread64_chk(int fd, void *buf, size_t n, off64_t off, size_t buflen)
{
	return SHIM_REAL(__pread64_chk)(fd, buf, n, off, buflen);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return SHIM_REAL(pwrite)(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	return SHIM_REAL(pwrite64)(fd, buf, n, off);
}

/* ---- the wait family ----------------------------------------------------------
 *
 * A blocking wait becomes a WNOHANG loop.  Between tries the greenlet parks
 * on what can say "a child changed": a pidfd when one child is named (it
 * becomes readable when the child exits), the program's own SIGCHLD handler
 * if it has one (the wrapper pokes the hub), and always a short timer that
 * backs off, for stops and continues and for "any child".  The shim never
 * installs a SIGCHLD handler of its own: that would change what the
 * program's other calls see.
 */
struct wait_call {
	int kind; /* 0 wait4, 1 waitid */
	pid_t pid;
	int *status;
	int options;
	struct rusage *ru;
	idtype_t idtype;
	id_t id;
	siginfo_t *info;
	pid_t result;
};

/* One WNOHANG try: 1 done (result set, or -1 with errno), 0 not yet. */
static int wait_try(struct wait_call *c)
{
	if (c->kind == 0) {
		c->result = SHIM_REAL(wait4)(c->pid, c->status, c->options | WNOHANG, c->ru);
		return c->result != 0;
	}
	c->info->si_pid = 0;
	c->result = SHIM_REAL(waitid)(c->idtype, c->id, c->info, c->options | WNOHANG);
	return c->result != 0 || c->info->si_pid != 0;
}

/* Park until the deadline, a signal handler, or (if fd >= 0) fd readable. */
static int wait_park(struct green_hub *h, int fd, int64_t deadline, struct shim_intr *in)
{
	int rc;

	if (fd >= 0)
		return shim_wait_fd_intr(h, fd, GREEN_READ, deadline, in, false);
	if (shim_intr_arm(h, in) < 0)
		return -1;
	rc = green__park(h, GREEN_WAIT_TIMER, NULL, deadline, 0);
	shim_intr_disarm(in);
	return rc;
}

/*
 * The pidfd the shim opens to hear of one child's exit.  The fd number is
 * the program's to close too (close_range, closefrom, a daemon's close
 * loop): the fd table's generation says whether the number was closed
 * since, and then it is no longer the shim's to wait on or to close, since
 * the program may already have a file of its own under that number.
 */
struct wait_pidfd {
	int fd;
	uint32_t gen;
	bool failed; /* none could be had, or the program closed ours */
};

static void wait_pidfd_open(struct wait_pidfd *p, pid_t pid)
{
	struct shim_fd *e;

	/* pidfd_open sets close-on-exec itself. */
	p->fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (p->fd < 0) {
		p->failed = true;
		return;
	}
	e = shim_fd_get(p->fd);
	if (!e) {
		SHIM_REAL(close)(p->fd);
		p->fd = -1;
		p->failed = true;
		return;
	}
	p->gen = e->gen;
}

static bool wait_pidfd_still_ours(const struct wait_pidfd *p)
{
	const struct shim_fd *e = p->fd >= 0 ? shim_fd_get(p->fd) : NULL;

	return e && e->gen == p->gen;
}

static void wait_pidfd_close(struct wait_pidfd *p)
{
	if (wait_pidfd_still_ours(p)) {
		shim_fd_closing(p->fd);
		SHIM_REAL(close)(p->fd);
	}
	p->fd = -1;
}

static pid_t wait_green(struct green_hub *h, struct wait_call *c)
{
	struct shim_intr in;
	int64_t backoff = CHILD_POLL_MIN;
	struct wait_pidfd own = {.fd = -1};
	int fd = -1;
	int err = 0;

	shim_intr_begin(&in, false);
	for (;;) {
		int rc;

		if (wait_try(c)) {
			err = errno;
			break;
		}
		if (fd < 0) {
			if (c->kind == 1 && c->idtype == P_PIDFD) {
				fd = (int)c->id;
			} else {
				pid_t one = c->kind == 0 ? c->pid
				                         : (c->idtype == P_PID ? (pid_t)c->id : -1);

				if (one > 0 && own.fd < 0 && !own.failed) {
					wait_pidfd_open(&own, one);
					fd = own.fd;
				}
			}
		}
		/* A pidfd says nothing of stops and continues. */
		rc = wait_park(h, fd,
		               fd >= 0 && !(c->options & (WUNTRACED | WCONTINUED))
		                   ? GREEN_FOREVER
		                   : green_now() + backoff,
		               &in);
		if (backoff < CHILD_POLL_MAX)
			backoff *= 2;
		if (rc < 0 && errno == EBADF && fd >= 0 && fd == own.fd &&
		    !wait_pidfd_still_ours(&own)) {
			/* The program closed our pidfd: go on with the
			 * timer, as the kernel's wait does not notice. */
			own.fd = fd = -1;
			own.failed = true;
			continue;
		}
		if (rc < 0 && errno == EINTR) {
			if (wait_try(c)) {
				err = errno;
				break;
			}
			c->result = -1;
			err = EINTR;
			break;
		}
		if (rc < 0 && errno != EAGAIN && errno != ETIMEDOUT) {
			c->result = -1;
			err = errno;
			break;
		}
	}
	wait_pidfd_close(&own);
	errno = err;
	return c->result;
}

pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
	struct green_hub *h = shim_hub_for(SHIM_OS);
	struct wait_call c = {.kind = 0, .pid = pid, .status = status,
	                      .options = options, .ru = ru};

	if (!h || (options & WNOHANG) || shim_alone(h))
		return SHIM_REAL(wait4)(pid, status, options, ru);
	return wait_green(h, &c);
}

pid_t waitpid(pid_t pid, int *status, int options)
{
	struct green_hub *h = shim_hub_for(SHIM_OS);
	struct wait_call c = {.kind = 0, .pid = pid, .status = status, .options = options};

	if (!h || (options & WNOHANG) || shim_alone(h))
		return SHIM_REAL(waitpid)(pid, status, options);
	return wait_green(h, &c);
}

pid_t wait(int *status)
{
	struct green_hub *h = shim_hub_for(SHIM_OS);
	struct wait_call c = {.kind = 0, .pid = -1, .status = status};

	if (!h || shim_alone(h))
		return SHIM_REAL(wait)(status);
	return wait_green(h, &c);
}

pid_t wait3(int *status, int options, struct rusage *ru)
{
	struct green_hub *h = shim_hub_for(SHIM_OS);
	struct wait_call c = {.kind = 0, .pid = -1, .status = status,
	                      .options = options, .ru = ru};

	if (!h || (options & WNOHANG) || shim_alone(h))
		return SHIM_REAL(wait3)(status, options, ru);
	return wait_green(h, &c);
}

int waitid(idtype_t idtype, id_t id, siginfo_t *info, int options)
{
	struct green_hub *h = shim_hub_for(SHIM_OS);
	struct wait_call c = {.kind = 1, .idtype = idtype, .id = id, .info = info,
	                      .options = options};

	if (!h || !info || (options & WNOHANG) || shim_alone(h))
		return SHIM_REAL(waitid)(idtype, id, info, options);
	return (int)wait_green(h, &c);
}

/* ---- fork ------------------------------------------------------------------------
 *
 * The child's hub must not share the parent's epoll instance: ev_loop_fork
 * makes libev build its own on the next iteration.  This is done whatever
 * the modules, since any greened call may have created the hub.  Then the
 * thread and dns modules put their own state right.  In both processes the
 * sockets the shim made non-blocking are marked shared (exec.c).
 */
pid_t fork(void)
{
	pid_t pid = SHIM_REAL(fork)();

	/* Both sides now share every description, and either may exec. */
	if (pid >= 0 && !shim_passthrough)
		shim_exec_forked();
	if (pid == 0 && !shim_passthrough) {
		struct green_hub *h = green__hub_peek();

		green__fork_child();
		SHIM_DEBUG("forked: the child's hub %s", h ? "rebuilds its loop" : "does not exist yet");
		shim_signal_after_fork();
		shim_thread_after_fork();
		shim_dns_after_fork();
	}
	return pid;
}

/*
 * vfork is not greened.  A wrapper cannot pass it through (the child would
 * return into, and clobber, the wrapper's frame that the parent still
 * needs), and a vfork child shares the shim's memory, so a close() it makes
 * before exec would edit the parent's fd table.  POSIX allows vfork to be
 * fork; the child gets its own copy of everything.
 */
pid_t vfork(void)
{
	return fork();
}
