/*
 * shim_io.h - what the socket, os and select modules (socket.c, os.c,
 * select.c) and the fd table (fd.c) share beyond shim.h: signal-interrupted
 * waits (EINTR), the "alone on the hub" fast path, and the per-kind I/O
 * helpers that read()/write() dispatch to.
 */
#ifndef GREEN_SHIM_IO_H
#define GREEN_SHIM_IO_H

#include "shim.h"

#include <sys/types.h>
#include <sys/uio.h>

/* ---- EINTR (signal.c) -------------------------------------------------------
 *
 * The shim wraps every handler the program installs with sigaction/signal.
 * The wrapper counts the signals it delivers on each OS thread (and whether
 * the handler asked for SA_RESTART), then pokes that thread's hub with an
 * ev_async.  A parked call that began before the signal is woken with EINTR
 * if the kernel would have interrupted it: always for sleep-type calls
 * (poll, select, epoll_wait, nanosleep, socket calls with SO_*TIMEO set),
 * only without SA_RESTART for the rest, which are woken to look again
 * (as the kernel restarts them).
 *
 * Use: shim_intr_begin() when the call starts (before its first attempt),
 * shim_intr_arm() just before parking, shim_intr_disarm() after the park,
 * whatever it returned.  A park that fails with EINTR should try its
 * operation once more without blocking: the kernel, too, prefers a result
 * that is ready to the signal.
 */
struct shim_intr {
	struct shim_intr *next, *prev;
	green_t *g;
	unsigned int seen; /* the thread's counter when the call began */
	unsigned int seen_any; /* handlers of any kind seen so far */
	bool always;       /* interrupted even by SA_RESTART handlers */
	bool linked;
};

void shim_intr_begin(struct shim_intr *w, bool always);
/* True if a handler that interrupts this call ran since begin. */
bool shim_intr_pending(const struct shim_intr *w);
/* Link w so the signal wake-up finds it; -1/EINTR if one is pending. */
int shim_intr_arm(struct green_hub *h, struct shim_intr *w);
void shim_intr_disarm(struct shim_intr *w);

/* read() on a signalfd the program made blocking: parks until readable. */
ssize_t shim_signalfd_read(struct green_hub *h, struct shim_fd *e, int fd,
                           void *buf, size_t len);

/* Sleep until the deadline (green_sleep's meaning) unless a signal handler
 * runs first: 0, or -1 with EINTR (or ECANCELED).  For the time module. */
int shim_sleep_until(struct green_hub *h, int64_t deadline);

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
