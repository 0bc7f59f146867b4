/*
 * shim_io.h - what the socket, os and select modules (socket.c, os.c,
 * select.c) and the fd table (fd.c) share beyond shim.h: the "alone on the
 * hub" fast path and the per-kind I/O helpers that read()/write() dispatch
 * to.  Signal-interrupted waits (EINTR) are shim_signal.h's.
 */
#ifndef GREEN_SHIM_IO_H
#define GREEN_SHIM_IO_H

#include "shim.h"
#include "shim_signal.h"

#include <sys/types.h>
#include <sys/uio.h>

/* read() on a signalfd the program made blocking: parks until readable. */
ssize_t shim_signalfd_read(struct green_hub *h, struct shim_fd *e, int fd,
                           void *buf, size_t len);

/* ---- the fd table and waiting (fd.c) ------------------------------------- */

/*
 * True when the calling greenlet is the only thing this hub could run: the
 * main greenlet, no other greenlet alive, nothing ready, no remote work, no
 * scoped timeout, nobody (the reporter) needing the hub to poll.  Then a
 * blocking call may go straight to the kernel, which gives the program
 * exactly its native semantics at native cost.
 */
bool shim_alone(struct green_hub *h);

/* The table said "socket" but the kernel says ENOTSOCK: the fd was closed
 * behind the shim's back (fclose, close_range ...) and its number reused.
 * Look at it afresh; NULL if it is not open. */
struct shim_fd *shim_fd_rediscover(int fd);

/* shim_wait_fd with an EINTR record (NULL: not interruptible); known_open
 * when the caller's own call on fd has just said EAGAIN (no check then). */
int shim_wait_fd_intr(struct green_hub *h, int fd, int events, int64_t deadline,
                      struct shim_intr *intr, bool known_open);

/* Whether a real poll says fd is ready for events now: the GREEN_ mask,
 * 0, or -1 with errno (EBADF for a closed fd). */
int shim_ready_now(int fd, int events);

/* close()/dup2() of fd: stop the select module's watchers on it (select.c). */
void shim_select_fd_closing(int fd);

/* ---- per-kind I/O (socket.c, os.c) -------------------------------------- */

/* Sockets: read/write/readv/writev on a socket become these. */
ssize_t shim_sock_read(struct green_hub *h, struct shim_fd *e, int fd,
                       void *buf, size_t len);
ssize_t shim_sock_write(struct green_hub *h, struct shim_fd *e, int fd,
                        const void *buf, size_t len);
ssize_t shim_sock_readv(struct green_hub *h, struct shim_fd *e, int fd,
                        const struct iovec *iov, int iovcnt);
ssize_t shim_sock_writev(struct green_hub *h, struct shim_fd *e, int fd,
                         const struct iovec *iov, int iovcnt);

/* Pipes, FIFOs and ttys: readiness first, never O_NONBLOCK. */
ssize_t shim_os_read(struct green_hub *h, struct shim_fd *e, int fd,
                     void *buf, size_t len);
ssize_t shim_os_write(struct green_hub *h, struct shim_fd *e, int fd,
                      const void *buf, size_t len);
ssize_t shim_os_readv(struct green_hub *h, struct shim_fd *e, int fd,
                      const struct iovec *iov, int iovcnt);
ssize_t shim_os_writev(struct green_hub *h, struct shim_fd *e, int fd,
                       const struct iovec *iov, int iovcnt);

/* The module that greens I/O on an fd of this kind, or -1. */
static inline int shim_module_of(const struct shim_fd *e)
{
	switch (e->kind) {
	case SHIM_FD_SOCKET:
		return SHIM_SOCKET;
	case SHIM_FD_PIPE:
	case SHIM_FD_TTY:
		return SHIM_OS;
	default:
		return -1;
	}
}

/* glibc's fortify failure (exported by libc). */
extern void __chk_fail(void) __attribute__((noreturn));

#endif
