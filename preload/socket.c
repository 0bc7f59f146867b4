/*
 * socket.c - the "socket" module: blocking socket calls become waits on the
 * hub; plus the calls that keep the fd table right whatever is patched
 * (close, dup*, fcntl, ioctl FIONBIO) and read/write, which dispatch on the
 * kind of fd to this module or to os.c.
 *
 * O_NONBLOCK lives on the open file description, which a child after exec,
 * stdio (fdopen) and other processes share, so the shim keeps data sockets
 * blocking in the kernel and asks for non-blocking per call (MSG_DONTWAIT;
 * read and write on a socket are recv and send).  Only two calls have no
 * per-call flag: connect, and accept.  A socket the program creates is made
 * non-blocking for real (shim_nonblock) until it carries data: a connect,
 * or the first send or receive, makes it blocking again, so what keeps the
 * flag is a listening socket, whose accept then never blocks even when a
 * sibling process took the connection.  connect on a socket of unknown
 * origin sets O_NONBLOCK around the call only; accept on an unknown listener
 * waits for readiness first.  What the program set itself (fcntl, FIONBIO,
 * SOCK_NONBLOCK, accept4 flags) is what F_GETFL shows, and such a socket is
 * passed straight through.  Once fork shares a description the shim made
 * non-blocking, the other process's exec may clear the flag (exec.c):
 * accept and connect then check instead of trusting it.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "shim_io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <linux/close_range.h>

#define CONNECT_RETRY_MIN (1 * GREEN_MSEC)
#define CONNECT_RETRY_MAX (64 * GREEN_MSEC)

int __close(int fd);
ssize_t __read_chk(int fd, void *buf, size_t nbytes, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
                       struct sockaddr *addr, socklen_t *alen);

static bool would_block(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK;
}

/* Whether close/dup/fcntl/ioctl should keep the table: the table is only
 * read when a module that uses it is patched, and never for the shim's own
 * threads (libev's fds). */
static bool table_active(void)
{
	return !shim_passthrough && (shim_patched[SHIM_SOCKET] || shim_patched[SHIM_OS]);
}

/* The greened entry for a socket call on fd, or NULL to pass it through. */
static struct shim_fd *sock_entry(int fd, struct green_hub **hp)
{
	struct shim_fd *e;

	*hp = shim_hub_for(SHIM_SOCKET);
	if (!*hp)
		return NULL;
	e = shim_fd_get(fd);
	if (!e || e->kind != SHIM_FD_SOCKET || e->user_nonblock)
		return NULL;
	return e;
}

/* A socket made non-blocking by the shim starts carrying data: from now on
 * the kernel sees it blocking and each call says MSG_DONTWAIT. */
static void make_blocking(struct shim_fd *e, int fd)
{
	int off = 0;

	if (likely(!e->shim_nonblock) || e->is_listener)
		return;
	if (SHIM_REAL(ioctl)(fd, FIONBIO, &off) == 0)
		e->shim_nonblock = false;
}

/* Whether the kernel surely has the O_NONBLOCK the shim set: not once a
 * forked process, whose exec clears it (exec.c), shares the description. */
static bool nonblock_sure(const struct shim_fd *e)
{
	return (e->shim_nonblock && !e->desc_shared) || e->greend_nonblock;
}

static int64_t timeo_deadline(int64_t timeo_ns)
{
	return shim_deadline_after(timeo_ns);
}

/* ---- receiving ------------------------------------------------------------------ */

static bool is_stream(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

/*
 * recv/recvfrom/read on a socket.  MSG_WAITALL on a stream socket gathers
 * until the buffer is full, EOF, an error or a signal (the kernel's rule:
 * what was received is returned).
 */
static ssize_t sock_recvfrom(struct green_hub *h, struct shim_fd *e, int fd,
                             void *buf, size_t len, int flags,
                             struct sockaddr *addr, socklen_t *alen, bool as_read)
{
	bool waitall, wait_first;
	size_t done = 0;
	int64_t deadline;
	struct shim_intr in;

	make_blocking(e, fd);
	if (shim_alone(h)) {
		if (as_read)
			return SHIM_REAL(read)(fd, buf, len);
		return SHIM_REAL(recvfrom)(fd, buf, len, flags, addr, alen);
	}
	waitall = (flags & MSG_WAITALL) && len > 0 && is_stream(fd);
	/*
	 * When the last receive on a stream socket emptied its queue, wait
	 * for readiness before asking again: in request and response the
	 * peer has rarely answered yet, and the receive that fails with
	 * EAGAIN is one system call in three on an echo server's path.  The
	 * result is the same either way; data that did come meanwhile makes
	 * the wait return at the hub's next poll.
	 */
	wait_first = e->rx_drained && !(flags & MSG_PEEK);
	e->rx_drained = false;
	deadline = timeo_deadline(e->rcvtimeo_ns);
	shim_intr_begin(&in, e->rcvtimeo_ns > 0);
	for (;;) {
		ssize_t n;
		int err;

		if (!wait_first) {
			n = SHIM_REAL(recvfrom)(fd, (char *)buf + done, len - done,
			                        flags | MSG_DONTWAIT, addr, alen);
			if (n > 0 && waitall) {
				done += (size_t)n;
				if (done == len)
					return (ssize_t)done;
				continue;
			}
			if (n >= 0) {
				e->rx_drained = e->stream && n > 0 && (size_t)n < len &&
				                !(flags & MSG_PEEK);
				return (ssize_t)done + n;
			}
			if (!would_block(errno))
				return done ? (ssize_t)done : -1;
		}
		if (shim_wait_fd_intr(h, fd, GREEN_READ, deadline, &in, !wait_first) == 0) {
			wait_first = false;
			continue;
		}
		err = errno;
		if (err == EINTR) {
			n = SHIM_REAL(recvfrom)(fd, (char *)buf + done, len - done,
			                        flags | MSG_DONTWAIT, addr, alen);
			if (n >= 0)
				return (ssize_t)done + n;
			if (!would_block(errno))
				err = errno;
		}
		if (done)
			return (ssize_t)done;
		errno = err;
		return -1;
	}
}

static ssize_t sock_recvmsg(struct green_hub *h, struct shim_fd *e, int fd,
                            struct msghdr *msg, int flags, bool as_readv)
{
	int64_t deadline;
	struct shim_intr in;

	make_blocking(e, fd);
	if (shim_alone(h)) {
		if (as_readv)
			return SHIM_REAL(readv)(fd, msg->msg_iov, (int)msg->msg_iovlen);
		return SHIM_REAL(recvmsg)(fd, msg, flags);
	}
	deadline = timeo_deadline(e->rcvtimeo_ns);
	shim_intr_begin(&in, e->rcvtimeo_ns > 0);
	for (;;) {
		ssize_t n = SHIM_REAL(recvmsg)(fd, msg, flags | MSG_DONTWAIT);
		int err;

		if (n >= 0 || !would_block(errno))
			return n;
		if (shim_wait_fd_intr(h, fd, GREEN_READ, deadline, &in, true) == 0)
			continue;
		err = errno;
		if (err == EINTR) {
			n = SHIM_REAL(recvmsg)(fd, msg, flags | MSG_DONTWAIT);
			if (n >= 0 || !would_block(errno))
				return n;
		}
		errno = err;
		return -1;
	}
}

ssize_t shim_sock_read(struct green_hub *h, struct shim_fd *e, int fd, void *buf,
                       size_t len)
{
	return sock_recvfrom(h, e, fd, buf, len, 0, NULL, NULL, true);
}

ssize_t shim_sock_readv(struct green_hub *h, struct shim_fd *e, int fd,
                        const struct iovec *iov, int iovcnt)
{
	struct msghdr msg;

	if (iovcnt < 0 || iovcnt > IOV_MAX)
		return SHIM_REAL(readv)(fd, iov, iovcnt); /* EINVAL, as the kernel says */
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = (struct iovec *)(uintptr_t)iov;
	msg.msg_iovlen = (size_t)iovcnt;
	return sock_recvmsg(h, e, fd, &msg, 0, true);
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                 socklen_t *alen)
{
	struct green_hub *h;
	struct shim_fd *e = sock_entry(fd, &h);

	if (!e || (flags & MSG_DONTWAIT))
		return SHIM_REAL(recvfrom)(fd, buf, len, flags, addr, alen);
	return shim_cancel_after(sock_recvfrom(h, e, fd, buf, len, flags, addr, alen, false));
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	struct green_hub *h;
	struct shim_fd *e = sock_entry(fd, &h);

	if (!e || (flags & MSG_DONTWAIT))
		return SHIM_REAL(recv)(fd, buf, len, flags);
	return shim_cancel_after(sock_recvfrom(h, e, fd, buf, len, flags, NULL, NULL, false));
}

ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	if (len > buflen)
		__chk_fail();
	return recv(fd, buf, len, flags);
}

ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
                       struct sockaddr *addr, socklen_t *alen)
{
	if (len > buflen)
		__chk_fail();
	return recvfrom(fd, buf, len, flags, addr, alen);
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct green_hub *h;
	struct shim_fd *e = sock_entry(fd, &h);

	if (!e || (flags & MSG_DONTWAIT))
		return SHIM_REAL(recvmsg)(fd, msg, flags);
	return shim_cancel_after(sock_recvmsg(h, e, fd, msg, flags, false));
}

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * GREEN_SEC + ts->tv_nsec;
}

/*
 * Blocks until vlen messages are in, as the kernel does; its timeout is
 * looked at only once a message has arrived (the kernel's documented
 * behaviour), MSG_WAITFORONE stops after the first.
 */
int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
             struct timespec *tmo)
{
	struct green_hub *h;
	struct shim_fd *e = sock_entry(fd, &h);
	unsigned int got = 0;
	int64_t deadline, until = GREEN_FOREVER;
	struct shim_intr in;
	int err = 0;

	if (!e || (flags & MSG_DONTWAIT) || vlen == 0)
		return SHIM_REAL(recvmmsg)(fd, vec, vlen, flags, tmo);
	make_blocking(e, fd);
	if (shim_alone(h))
		return SHIM_REAL(recvmmsg)(fd, vec, vlen, flags, tmo);
	if (tmo) {
		if (tmo->tv_sec < 0 || tmo->tv_nsec < 0 || tmo->tv_nsec >= 1000000000L) {
			errno = EINVAL;
			return -1;
		}
		until = green_now() + ts_ns(tmo);
	}
	deadline = timeo_deadline(e->rcvtimeo_ns);
	shim_intr_begin(&in, e->rcvtimeo_ns > 0);
	for (;;) {
		int n = SHIM_REAL(recvmmsg)(fd, vec + got, vlen - got,
		                            (flags & ~MSG_WAITFORONE) | MSG_DONTWAIT, NULL);
		int64_t wait_until;

		if (n > 0) {
			got += (unsigned int)n;
			if (got == vlen || (flags & MSG_WAITFORONE) ||
			    (tmo && green_now() >= until))
				break;
			continue;
		}
		if (n == 0)
			break;
		if (!would_block(errno)) {
			err = errno;
			break;
		}
		wait_until = deadline;
		if (got && tmo && (wait_until < 0 || until < wait_until))
			wait_until = until;
		if (shim_wait_fd_intr(h, fd, GREEN_READ, wait_until, &in, true) < 0) {
			err = errno;
			break;
		}
	}
	if (tmo) {
		int64_t left = until - green_now();

		if (left < 0)
			left = 0;
		tmo->tv_sec = (time_t)(left / GREEN_SEC);
		tmo->tv_nsec = (long)(left % GREEN_SEC);
	}
	if (got)
		return (int)got;
	errno = err;
	return -1;
}

/* ---- sending -------------------------------------------------------------------- */

/*
 * A blocking send on a stream socket returns when everything is queued; a
 * signal, the SO_SNDTIMEO deadline or an error after some progress returns
 * the progress.  (On a datagram socket the first call sends it all.)
 */
static ssize_t sock_sendto(struct green_hub *h, struct shim_fd *e, int fd,
                           const void *buf, size_t len, int flags,
                           const struct sockaddr *addr, socklen_t alen, bool as_write)
{
	size_t done = 0;
	int64_t deadline;
	struct shim_intr in;

	make_blocking(e, fd);
	if (shim_alone(h)) {
		if (as_write)
			return SHIM_REAL(write)(fd, buf, len);
		return SHIM_REAL(sendto)(fd, buf, len, flags, addr, alen);
	}
	deadline = timeo_deadline(e->sndtimeo_ns);
	shim_intr_begin(&in, e->sndtimeo_ns > 0);
	for (;;) {
		ssize_t n = SHIM_REAL(sendto)(fd, (const char *)buf + done, len - done,
		                              flags | MSG_DONTWAIT, addr, alen);
		int err;

		if (n >= 0) {
			done += (size_t)n;
			if (done >= len || n == 0)
				return (ssize_t)done;
			continue;
		}
		if (!would_block(errno))
			return done ? (ssize_t)done : -1;
		if (shim_wait_fd_intr(h, fd, GREEN_WRITE, deadline, &in, true) == 0)
			continue;
		err = errno;
		if (done)
			return (ssize_t)done;
		errno = err;
		return -1;
	}
}

/* Skip n bytes of msg's iov: msg->msg_iov is made to point at `space`
 * (copies of the remaining entries, the first one trimmed). */
static void msg_advance(struct msghdr *msg, size_t n, struct iovec *space)
{
	size_t i = 0, k = 0;

	while (i < msg->msg_iovlen && n >= msg->msg_iov[i].iov_len) {
		n -= msg->msg_iov[i].iov_len;
		i++;
	}
	for (; i < msg->msg_iovlen; i++, k++) {
		space[k] = msg->msg_iov[i];
		if (n) {
			space[k].iov_base = (char *)space[k].iov_base + n;
			space[k].iov_len -= n;
			n = 0;
		}
	}
	msg->msg_iov = space;
	msg->msg_iovlen = k;
	/* Ancillary data and the address went with the first part. */
	msg->msg_control = NULL;
	msg->msg_controllen = 0;
}

static ssize_t sock_sendmsg(struct green_hub *h, struct shim_fd *e, int fd,
                            const struct msghdr *msg0, int flags, bool as_writev)
{
	struct msghdr msg = *msg0;
	struct iovec small[16], *space = NULL;
	size_t total = 0, done = 0;
	int64_t deadline;
	struct shim_intr in;
	ssize_t result;

	make_blocking(e, fd);
	if (shim_alone(h)) {
		if (as_writev)
			return SHIM_REAL(writev)(fd, msg0->msg_iov, (int)msg0->msg_iovlen);
		return SHIM_REAL(sendmsg)(fd, msg0, flags);
	}
	for (size_t i = 0; i < msg.msg_iovlen; i++)
		total += msg.msg_iov[i].iov_len;
	deadline = timeo_deadline(e->sndtimeo_ns);
	shim_intr_begin(&in, e->sndtimeo_ns > 0);
	for (;;) {
		ssize_t n = SHIM_REAL(sendmsg)(fd, &msg, flags | MSG_DONTWAIT);

		if (n >= 0) {
			done += (size_t)n;
			if (done >= total || n == 0) {
				result = (ssize_t)done;
				break;
			}
			if (!space) {
				space = msg0->msg_iovlen <= 16 ? small
				                               : malloc(msg0->msg_iovlen * sizeof(*space));
				if (!space) {
					result = (ssize_t)done; /* a short write */
					break;
				}
			}
			msg.msg_iov = msg0->msg_iov;
			msg.msg_iovlen = msg0->msg_iovlen;
			msg_advance(&msg, done, space);
			continue;
		}
		if (!would_block(errno)) {
			result = done ? (ssize_t)done : -1;
			break;
		}
		if (shim_wait_fd_intr(h, fd, GREEN_WRITE, deadline, &in, true) == 0)
			continue;
		result = done ? (ssize_t)done : -1;
		break;
	}
	if (space && space != small) {
		int err = errno;

		free(space);
		errno = err;
	}
	return result;
}

ssize_t shim_sock_write(struct green_hub *h, struct shim_fd *e, int fd,
                        const void *buf, size_t len)
{
	return sock_sendto(h, e, fd, buf, len, 0, NULL, 0, true);
}

ssize_t shim_sock_writev(struct green_hub *h, struct shim_fd *e, int fd,
                         const struct iovec *iov, int iovcnt)
{
	struct msghdr msg;

	if (iovcnt < 0 || iovcnt > IOV_MAX)
		return SHIM_REAL(writev)(fd, iov, iovcnt);
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = (struct iovec *)(uintptr_t)iov;
	msg.msg_iovlen = (size_t)iovcnt;
	return sock_sendmsg(h, e, fd, &msg, 0, true);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags,
               const struct sockaddr *addr, socklen_t alen)
{
	struct green_hub *h;
	struct shim_fd *e = sock_entry(fd, &h);

	if (!e || (flags & MSG_DONTWAIT))
		return SHIM_REAL(sendto)(fd, buf, len, flags, addr, alen);
	return shim_cancel_after(sock_sendto(h, e, fd, buf, len, flags, addr, alen, false));
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	struct green_hub *h;
	struct shim_fd *e = sock_entry(fd, &h);

	if (!e || (flags & MSG_DONTWAIT))
		return SHIM_REAL(send)(fd, buf, len, flags);
	return shim_cancel_after(sock_sendto(h, e, fd, buf, len, flags, NULL, 0, false));
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct green_hub *h;
	struct shim_fd *e = sock_entry(fd, &h);

	if (!e || (flags & MSG_DONTWAIT) || !msg)
		return SHIM_REAL(sendmsg)(fd, msg, flags);
	return shim_cancel_after(sock_sendmsg(h, e, fd, msg, flags, false));
}

int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	struct green_hub *h;
	struct shim_fd *e = sock_entry(fd, &h);
	unsigned int sent = 0;
	int64_t deadline;
	struct shim_intr in;

	if (!e || (flags & MSG_DONTWAIT) || vlen == 0)
		return SHIM_REAL(sendmmsg)(fd, vec, vlen, flags);
	make_blocking(e, fd);
	if (shim_alone(h))
		return SHIM_REAL(sendmmsg)(fd, vec, vlen, flags);
	deadline = timeo_deadline(e->sndtimeo_ns);
	shim_intr_begin(&in, e->sndtimeo_ns > 0);
	for (;;) {
		int n = SHIM_REAL(sendmmsg)(fd, vec + sent, vlen - sent, flags | MSG_DONTWAIT);

		if (n > 0) {
			sent += (unsigned int)n;
			if (sent == vlen)
				return (int)sent;
			continue;
		}
		if (n == 0 || !would_block(errno) ||
		    shim_wait_fd_intr(h, fd, GREEN_WRITE, deadline, &in, true) < 0)
			return sent ? (int)sent : -1;
	}
}

/* ---- read/write on any fd: dispatch by kind --------------------------------- */

/* The entry and hub for a read/write on fd, or NULL to pass it through. */
static struct shim_fd *io_entry(int fd, struct green_hub **hp)
{
	struct shim_fd *e;
	int module;

	if (shim_passthrough || !(shim_patched[SHIM_SOCKET] || shim_patched[SHIM_OS]))
		return NULL;
	e = shim_fd_get(fd);
	if (!e || e->user_nonblock)
		return NULL;
	module = shim_module_of(e);
	if (module < 0)
		return NULL;
	*hp = shim_hub_for((enum shim_module)module);
	return *hp ? e : NULL;
}

/*
 * A stale "socket" entry (the fd closed by fclose or close_range, which the
 * shim does not see, and the number reused) shows as ENOTSOCK: look again
 * and redo the call once for what the fd is now.
 */
static bool stale_socket(int fd, ssize_t n)
{
	if (n >= 0 || errno != ENOTSOCK)
		return false;
	SHIM_DEBUG("fd %d is no longer a socket: looking at it again", fd);
	return shim_fd_rediscover(fd) != NULL;
}

/*
 * read, write, readv and writev: to the module that greens the fd's kind, or
 * straight to libc.  A call that finds its socket entry stale is redone once
 * for what the fd is now.
 */
#define DISPATCH_IO(real, os_call, sock_call, ...)                           \
	for (int tries_ = 0;; tries_++) {                                    \
		struct green_hub *h_;                                        \
		struct shim_fd *e_ = io_entry(fd, &h_);                      \
		ssize_t n_;                                                  \
                                                                             \
		if (!e_)                                                     \
			return SHIM_REAL(real)(fd, __VA_ARGS__);             \
		if (e_->kind != SHIM_FD_SOCKET)                              \
			return shim_cancel_after(os_call(h_, e_, fd, __VA_ARGS__)); \
		n_ = shim_cancel_after(sock_call(h_, e_, fd, __VA_ARGS__));  \
		if (tries_ > 0 || !stale_socket(fd, n_))                     \
			return n_;                                           \
	}

/* A blocking read on a signalfd, which the os module greens (signal.c). */
static struct shim_fd *signalfd_entry(int fd, struct green_hub **hp)
{
	struct shim_fd *e;

	if (shim_passthrough || !shim_patched[SHIM_OS])
		return NULL;
	e = shim_fd_get(fd);
	if (!e || e->kind != SHIM_FD_SIGNAL || e->user_nonblock)
		return NULL;
	*hp = shim_hub_for(SHIM_OS);
	return *hp ? e : NULL;
}

static ssize_t do_read(int fd, void *buf, size_t len)
{
	struct green_hub *sh;
	struct shim_fd *se = signalfd_entry(fd, &sh);

	if (se)
		return shim_cancel_after(shim_signalfd_read(sh, se, fd, buf, len));
	DISPATCH_IO(read, shim_os_read, shim_sock_read, buf, len)
}

ssize_t read(int fd, void *buf, size_t len)
{
	return do_read(fd, buf, len);
}

ssize_t __read_chk(int fd, void *buf, size_t nbytes, size_t buflen)
{
	if (nbytes > buflen)
		__chk_fail();
	return do_read(fd, buf, nbytes);
}

ssize_t write(int fd, const void *buf, size_t len)
{
	DISPATCH_IO(write, shim_os_write, shim_sock_write, buf, len)
}

ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	DISPATCH_IO(readv, shim_os_readv, shim_sock_readv, iov, iovcnt)
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	DISPATCH_IO(writev, shim_os_writev, shim_sock_writev, iov, iovcnt)
}

/* ---- creating, accepting, connecting -------------------------------------------- */

static void note_stream(int fd, int type)
{
	struct shim_fd *e = shim_fd_get(fd);

	if (e)
		e->stream = (type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) == SOCK_STREAM;
}

int socket(int domain, int type, int protocol)
{
	struct green_hub *h = shim_hub_for(SHIM_SOCKET);
	bool user_nb = (type & SOCK_NONBLOCK) != 0;
	int fd;

	if (!h)
		return SHIM_REAL(socket)(domain, type, protocol);
	fd = SHIM_REAL(socket)(domain, type | SOCK_NONBLOCK, protocol);
	if (fd >= 0) {
		shim_fd_created(fd, SHIM_FD_SOCKET, user_nb, !user_nb);
		note_stream(fd, type);
	}
	return fd;
}

int socketpair(int domain, int type, int protocol, int sv[2])
{
	struct green_hub *h = shim_hub_for(SHIM_SOCKET);
	bool user_nb = (type & SOCK_NONBLOCK) != 0;
	int rc;

	if (!h)
		return SHIM_REAL(socketpair)(domain, type, protocol, sv);
	/* Both ends carry data at once: they stay blocking in the kernel. */
	rc = SHIM_REAL(socketpair)(domain, type, protocol, sv);
	if (rc == 0) {
		shim_fd_created(sv[0], SHIM_FD_SOCKET, user_nb, false);
		shim_fd_created(sv[1], SHIM_FD_SOCKET, user_nb, false);
		note_stream(sv[0], type);
		note_stream(sv[1], type);
	}
	return rc;
}

/* Not listening: the real accept fails at once (EINVAL, EOPNOTSUPP). */
static bool is_listening(int fd)
{
	int on = 0;
	socklen_t len = sizeof(on);

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0 || on;
}

static void accepted(struct shim_fd *listener, int fd, int flags)
{
	struct shim_fd *e;

	shim_fd_created(fd, SHIM_FD_SOCKET, (flags & SOCK_NONBLOCK) != 0, false);
	/* Linux copies the listener's timeouts to the new socket. */
	e = shim_fd_get(fd);
	if (e) {
		e->rcvtimeo_ns = listener->rcvtimeo_ns;
		e->sndtimeo_ns = listener->sndtimeo_ns;
		e->stream = listener->stream;
		if (listener->greend_listener) {
			e->greend_conn = true;
			shim_listen_accepted();
		}
	}
}

static int sock_accept(int fd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	struct green_hub *h;
	struct shim_fd *e = sock_entry(fd, &h);
	int64_t deadline;
	struct shim_intr in;

	if (!e) {
		int c = SHIM_REAL(accept4)(fd, addr, alen, flags);

		/* Passed through (a non-blocking listener): still tell the
		 * table what the new fd is. */
		if (c >= 0 && table_active()) {
			struct shim_fd *l = shim_fd_get(fd);

			if (l && l->greend_listener)
				accepted(l, c, flags);
			else
				shim_fd_created(c, SHIM_FD_SOCKET, (flags & SOCK_NONBLOCK) != 0, false);
		}
		return c;
	}
	e->is_listener = true;
	if (e->greend_listener)
		shim_listen_serving();
	if (!e->shim_nonblock && !e->greend_nonblock && shim_alone(h)) {
		int c = SHIM_REAL(accept4)(fd, addr, alen, flags);

		if (c >= 0)
			accepted(e, c, flags);
		return c;
	}
	deadline = timeo_deadline(e->rcvtimeo_ns);
	shim_intr_begin(&in, e->rcvtimeo_ns > 0);
	for (;;) {
		int c, err;

		if (unlikely(__atomic_load_n(&shim_listen_drain_pending, __ATOMIC_RELAXED)))
			shim_listen_drain();
		/* A blocking listener of unknown origin: readiness first (a
		 * sibling process may still take the connection, and then the
		 * real accept blocks until the next one). */
		if (nonblock_sure(e) || shim_ready_now(fd, GREEN_READ) != 0 ||
		    !is_listening(fd)) {
			c = SHIM_REAL(accept4)(fd, addr, alen, flags);
			if (c >= 0) {
				accepted(e, c, flags);
				return c;
			}
			if (!would_block(errno))
				return -1;
		}
		if (shim_wait_fd_intr(h, fd, GREEN_READ, deadline, &in, false) == 0)
			continue;
		err = errno;
		/* A drain put another socket under this number (listen.c):
		 * wait on that one, which never takes a connection. */
		if (err == EAGAIN && e->greend_listener &&
		    (deadline == GREEN_FOREVER || green_now() < deadline))
			continue;
		if (err == EINTR && (nonblock_sure(e) || shim_ready_now(fd, GREEN_READ) > 0)) {
			c = SHIM_REAL(accept4)(fd, addr, alen, flags);
			if (c >= 0) {
				accepted(e, c, flags);
				return c;
			}
			if (!would_block(errno))
				return -1;
		}
		errno = err;
		return -1;
	}
}

int accept(int fd, struct sockaddr *addr, socklen_t *alen)
{
	return (int)shim_cancel_after(sock_accept(fd, addr, alen, 0));
}

int accept4(int fd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	return (int)shim_cancel_after(sock_accept(fd, addr, alen, flags));
}

/* One connect attempt that cannot block: the socket is non-blocking for the
 * length of the call only, and blocking (a data socket) afterwards. */
static int connect_once(struct shim_fd *e, int fd, const struct sockaddr *addr,
                        socklen_t alen)
{
	int fl = -1, rc, err;

	if (!nonblock_sure(e)) {
		fl = SHIM_REAL(fcntl)(fd, F_GETFL);
		if (fl >= 0 && !(fl & O_NONBLOCK))
			SHIM_REAL(fcntl)(fd, F_SETFL, fl | O_NONBLOCK);
		else
			fl = -1;
	}
	rc = SHIM_REAL(connect)(fd, addr, alen);
	err = errno;
	if (fl >= 0) {
		SHIM_REAL(fcntl)(fd, F_SETFL, fl);
		e->shim_nonblock = false; /* blocking, as it was */
	} else {
		make_blocking(e, fd);
	}
	errno = err;
	return rc;
}

/*
 * A blocking connect never shows EINPROGRESS: wait until writable, then
 * connect again says how it went.  SO_SNDTIMEO expiry gives EINPROGRESS, as the
 * kernel does.  A Unix socket whose listener's backlog is full says EAGAIN
 * where a blocking connect would wait: retry on a backing-off timer.
 */
int connect(int fd, const struct sockaddr *addr, socklen_t alen)
{
	struct green_hub *h;
	struct shim_fd *e = sock_entry(fd, &h);
	int64_t deadline, retry = CONNECT_RETRY_MIN;
	struct shim_intr in;
	int rc;

	if (!e)
		return SHIM_REAL(connect)(fd, addr, alen);
	if (shim_alone(h)) {
		e->is_listener = false;
		make_blocking(e, fd);
		return SHIM_REAL(connect)(fd, addr, alen);
	}
	e->is_listener = false;
	deadline = timeo_deadline(e->sndtimeo_ns);
	shim_intr_begin(&in, e->sndtimeo_ns > 0);
	for (;;) {
		rc = connect_once(e, fd, addr, alen);
		if (rc == 0)
			return 0;
		if (errno != EAGAIN || !addr || addr->sa_family != AF_UNIX)
			break;
		/* Backlog full: wait a little and try again. */
		if (shim_intr_arm(h, &in) < 0)
			return -1;
		{
			int64_t until = green_now() + retry;

			if (deadline >= 0 && deadline < until)
				until = deadline;
			rc = green__park(h, GREEN_WAIT_TIMER, NULL, until, 0);
		}
		shim_intr_disarm(&in);
		if (rc < 0)
			return -1;
		if (deadline >= 0 && green_now() >= deadline) {
			errno = EAGAIN;
			return -1;
		}
		if (retry < CONNECT_RETRY_MAX)
			retry *= 2;
	}
	if (errno != EINPROGRESS)
		return -1;
	/*
	 * Once writable, connect again for the verdict rather than reading
	 * SO_ERROR: the kernel then leaves the socket exactly as a blocking
	 * connect would (a refused one unconnected, ready for another try).
	 */
	for (;;) {
		if (shim_wait_fd_intr(h, fd, GREEN_WRITE, deadline, &in, true) < 0) {
			if (errno == EAGAIN)
				errno = EINPROGRESS;
			return -1;
		}
		/* Woken to look again (an SA_RESTART signal): still going? */
		if (shim_ready_now(fd, GREEN_WRITE) == 0)
			continue;
		rc = connect_once(e, fd, addr, alen);
		if (rc == 0 || errno == EISCONN)
			return 0;
		if (errno != EALREADY && errno != EINPROGRESS)
			return -1;
	}
}

int shutdown(int fd, int how)
{
	/* Never blocks; a reader parked on fd wakes through epoll (EOF). */
	return SHIM_REAL(shutdown)(fd, how);
}

/* ---- socket options ------------------------------------------------------------- */

#ifndef SO_RCVTIMEO_OLD
#define SO_RCVTIMEO_OLD 20
#define SO_SNDTIMEO_OLD 21
#endif
#ifndef SO_RCVTIMEO_NEW
#define SO_RCVTIMEO_NEW 66
#define SO_SNDTIMEO_NEW 67
#endif

/* The timeout in a SO_*TIMEO option as the kernel reads it: 0 = none. */
static int64_t timeo_ns(int optname, const void *val, socklen_t len)
{
	int64_t sec, usec;

	if (optname == SO_RCVTIMEO_NEW || optname == SO_SNDTIMEO_NEW || len >= 16) {
		int64_t v[2];

		if (len < sizeof(v))
			return 0;
		memcpy(v, val, sizeof(v));
		sec = v[0];
		usec = v[1];
	} else {
		int32_t v[2];

		if (len < sizeof(v))
			return 0;
		memcpy(v, val, sizeof(v));
		sec = v[0];
		usec = v[1];
	}
	if (sec < 0)
		return 1; /* the kernel's "do not wait at all" */
	if (sec == 0 && usec == 0)
		return 0;
	if (sec > INT64_MAX / GREEN_SEC - 1)
		return 0;
	return sec * GREEN_SEC + usec * GREEN_USEC;
}

int setsockopt(int fd, int level, int optname, const void *val, socklen_t len)
{
	int rc = SHIM_REAL(setsockopt)(fd, level, optname, val, len);

	if (rc == 0 && level == SOL_SOCKET && val && table_active() &&
	    (optname == SO_RCVTIMEO_OLD || optname == SO_SNDTIMEO_OLD ||
	     optname == SO_RCVTIMEO_NEW || optname == SO_SNDTIMEO_NEW)) {
		struct shim_fd *e = shim_fd_get(fd);

		if (e) {
			if (optname == SO_RCVTIMEO_OLD || optname == SO_RCVTIMEO_NEW)
				e->rcvtimeo_ns = timeo_ns(optname, val, len);
			else
				e->sndtimeo_ns = timeo_ns(optname, val, len);
		}
	}
	return rc;
}

/* ---- close, dup, fcntl, ioctl: the fd table ------------------------------------- */

int close(int fd)
{
	/* Always, whatever is patched: waiters must hear of it, and a reused
	 * number must not inherit what the table knew. */
	shim_fd_closing(fd);
	return SHIM_REAL(close)(fd);
}

int __close(int fd)
{
	shim_fd_closing(fd);
	return SHIM_REAL(__close)(fd);
}

/* glibc closes a stream's fd internally, where close() above never sees
 * it; so do close_range and closefrom. */
int fclose(FILE *stream)
{
	int fd = stream ? fileno(stream) : -1;

	if (fd >= 0)
		shim_fd_closing(fd);
	return SHIM_REAL(fclose)(stream);
}

int close_range(unsigned int first, unsigned int last, int flags)
{
	if (!(flags & CLOSE_RANGE_CLOEXEC) && first <= last)
		shim_fd_closing_range(first, last);
	return SHIM_REAL(close_range)(first, last, flags);
}

void closefrom(int lowfd)
{
	if (lowfd >= 0)
		shim_fd_closing_range((unsigned int)lowfd, ~0u);
	SHIM_REAL(closefrom)(lowfd);
}

int dup(int fd)
{
	int nfd = SHIM_REAL(dup)(fd);

	if (nfd >= 0 && table_active())
		shim_fd_duped(fd, nfd, false);
	return nfd;
}

/* dup2/dup3 onto an open fd closes it first: the close case. */
static int dup_onto(int oldfd, int newfd, int flags, bool is3)
{
	int rc;

	if (oldfd != newfd && SHIM_REAL(fcntl)(oldfd, F_GETFD) >= 0)
		shim_fd_closing(newfd);
	rc = is3 ? SHIM_REAL(dup3)(oldfd, newfd, flags) : SHIM_REAL(dup2)(oldfd, newfd);
	if (rc >= 0 && oldfd != newfd && table_active())
		shim_fd_duped(oldfd, rc, (flags & O_CLOEXEC) != 0);
	return rc;
}

int dup2(int oldfd, int newfd)
{
	return dup_onto(oldfd, newfd, 0, false);
}

int dup3(int oldfd, int newfd, int flags)
{
	return dup_onto(oldfd, newfd, flags, true);
}

typedef int (*fcntl_fn)(int fd, int cmd, ...);

/*
 * F_GETFL shows the program's own O_NONBLOCK; F_SETFL records it (and keeps
 * the shim's on a listener); F_DUPFD* keep the table.  The third argument
 * is read as a pointer whatever the command, as glibc does: an int passed
 * in a register or stack slot survives the round trip.
 */
static int shim_fcntl(fcntl_fn real, int fd, int cmd, void *arg)
{
	struct shim_fd *e;
	int rc, fl;

	if (!table_active())
		return real(fd, cmd, arg);
	switch (cmd) {
	case F_GETFL:
		rc = real(fd, cmd);
		if (rc >= 0) {
			e = shim_fd_get(fd);
			if (e && (e->shim_nonblock || e->greend_nonblock) && !e->user_nonblock)
				rc &= ~O_NONBLOCK;
		}
		return rc;
	case F_SETFL:
		fl = (int)(intptr_t)arg;
		e = shim_fd_get(fd);
		if (e && e->greend_nonblock) {
			/* Shared by every instance: never blocking again. */
			rc = real(fd, cmd, fl | O_NONBLOCK);
		} else if (e && e->shim_nonblock && !(fl & O_NONBLOCK)) {
			/* Keep the shim's flag, or on a shared description
			 * whatever the kernel has now (a child's exec may
			 * have cleared it for the child's sake). */
			int keep = O_NONBLOCK;

			if (e->desc_shared) {
				int cur = real(fd, F_GETFL);

				keep = cur >= 0 ? (cur & O_NONBLOCK) : 0;
			}
			rc = real(fd, cmd, fl | keep);
		} else {
			rc = real(fd, cmd, fl);
		}
		if (rc == 0 && e) {
			e->user_nonblock = (fl & O_NONBLOCK) != 0;
			if (e->user_nonblock)
				e->shim_nonblock = false;
		}
		return rc;
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		rc = real(fd, cmd, arg);
		if (rc >= 0)
			shim_fd_duped(fd, rc, cmd == F_DUPFD_CLOEXEC);
		return rc;
	default:
		return real(fd, cmd, arg);
	}
}

int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return shim_fcntl(SHIM_REAL(fcntl), fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return shim_fcntl(SHIM_REAL(fcntl64), fd, cmd, arg);
}

/* FIONBIO is F_SETFL's O_NONBLOCK by another name. */
int ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	void *arg;
	struct shim_fd *e;
	int on, rc;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (request != FIONBIO || !arg || !table_active())
		return SHIM_REAL(ioctl)(fd, request, arg);
	memcpy(&on, arg, sizeof(on));
	e = shim_fd_get(fd);
	if (e && (e->shim_nonblock || e->greend_nonblock) && !on) {
		/* The program wants blocking; the kernel stays non-blocking. */
		e->user_nonblock = false;
		return 0;
	}
	rc = SHIM_REAL(ioctl)(fd, request, arg);
	if (rc == 0 && e) {
		e->user_nonblock = on != 0;
		if (on)
			e->shim_nonblock = false;
	}
	return rc;
}
