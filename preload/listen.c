/*
 * listen.c - the listening sockets greend hands over (LISTEN_FDS, fds 3...),
 * and how an unmodified program comes to use them.
 *
 * A program written for socket activation reads LISTEN_FDS itself; any
 * other program makes its own socket, binds it and listens.  bind() of an
 * address greend holds (same family, address and port, or the same path;
 * or a wildcard address on the port of exactly one held TCP listener, as
 * `python3 -m http.server 8080` binds [::]:8080) makes the program's fd the
 * inherited socket instead: dup3 onto the program's number, keeping its
 * close-on-exec flag, and the spare closed.  listen() on it keeps greend's
 * backlog.  Every instance then shares one socket and one accept queue.
 *
 * Draining (greend's {"type":"drain"} before a rolling restart stops this
 * instance): closing the program's fds would not do, because the program
 * would then see EBADF from accept and poll, and a shared queue goes on
 * queueing whatever one process does.  Instead an inert socket, an unbound
 * Unix listener nobody can name, is put under every such fd number.  The
 * process then holds no reference to the shared socket, so it can take no
 * connection from the queue the other instances serve; its own accept
 * waits on the inert socket for good, its poll never sees it ready, and
 * the connections it already accepted finish.  An epoll set the program
 * registered the shared socket in keeps reporting it (epoll follows the
 * open file, which the other instances keep open): such a program sees
 * EAGAIN from accept until greend stops it.
 */
#define _GNU_SOURCE
#include "shim_io.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define HELD_MAX 64

enum listen_state { IDLE, ACCEPTING, DRAINING };

struct held {
	int fd;                 /* its number now: 3..., or the program's after bind */
	struct sockaddr_storage ss;
	socklen_t len;
};

static struct held held[HELD_MAX];
static int nheld;
static int state;                       /* enum listen_state, atomic */
int shim_listen_drain_pending;          /* atomic */
static unsigned long long n_accepted;   /* atomic */
static long long n_open;                /* atomic */
static struct {
	int state;
	unsigned long long accepted;
	long long open;
	bool sent;
} last;                                 /* the reporter thread's own */

int bind(int fd, const struct sockaddr *addr, socklen_t len);
int listen(int fd, int backlog);

bool shim_listen_any(void)
{
	return nheld > 0;
}

void shim_listen_init(void)
{
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
	char *end;
	long n, p;

	if (!fds || !pid || !shim_patched[SHIM_SOCKET])
		return;
	p = strtol(pid, &end, 10);
	if (*end || p != (long)getpid())
		return; /* meant for another process (a parent that exec'd us) */
	n = strtol(fds, &end, 10);
	if (*end || n <= 0 || n > HELD_MAX)
		return;
	for (int i = 0; i < n; i++) {
		int fd = 3 + i, type = 0, on = 0;
		socklen_t tl = sizeof(type), ol = sizeof(on);
		struct shim_fd *e;
		struct held *h = &held[nheld];

		h->len = sizeof(h->ss);
		if (getsockname(fd, (struct sockaddr *)&h->ss, &h->len) < 0 ||
		    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM ||
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol) < 0 || !on)
			continue;
		shim_fd_created(fd, SHIM_FD_SOCKET, false, false);
		e = shim_fd_get(fd);
		if (!e)
			continue;
		e->stream = e->is_listener = e->greend_listener = true;
		e->greend_nonblock = (SHIM_REAL(fcntl)(fd, F_GETFL) & O_NONBLOCK) != 0;
		h->fd = fd;
		nheld++;
	}
	SHIM_DEBUG("listen: %d listener(s) from greend", nheld);
}

static in_port_t port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_port;
	if (ss->ss_family == AF_INET6)
		return ((const struct sockaddr_in6 *)ss)->sin6_port;
	return 0;
}

static bool wildcard(const struct sockaddr *a)
{
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (a->sa_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr);
	return false;
}

static bool same(const struct held *h, const struct sockaddr *a, socklen_t len)
{
	if (h->ss.ss_family != a->sa_family)
		return false;
	switch (a->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *x = (const struct sockaddr_in *)&h->ss;
		const struct sockaddr_in *y = (const struct sockaddr_in *)a;

		return len >= sizeof(*y) && x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&h->ss;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)a;

		return len >= sizeof(*y) && x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(y->sin6_addr)) == 0;
	}
	case AF_UNIX: {
		const struct sockaddr_un *x = (const struct sockaddr_un *)&h->ss;
		const struct sockaddr_un *y = (const struct sockaddr_un *)a;
		size_t n = len > offsetof(struct sockaddr_un, sun_path)
			   ? len - offsetof(struct sockaddr_un, sun_path) : 0;

		return n > 1 && y->sun_path[0] &&
		       strncmp(x->sun_path, y->sun_path, n) == 0 &&
		       strnlen(y->sun_path, n) == strlen(x->sun_path);
	}
	default:
		return false;
	}
}

/* The held listener bind(ADDR) means, if any. */
static struct held *match(const struct sockaddr *a, socklen_t len)
{
	struct held *found = NULL;
	int count = 0;

	for (int i = 0; i < nheld; i++)
		if (same(&held[i], a, len))
			return &held[i];
	if (!wildcard(a) || len < sizeof(struct sockaddr_in))
		return NULL;
	{
		in_port_t port = a->sa_family == AF_INET
				 ? ((const struct sockaddr_in *)a)->sin_port
				 : ((const struct sockaddr_in6 *)a)->sin6_port;

		for (int i = 0; i < nheld; i++) {
			if (port_of(&held[i].ss) == port) {
				found = &held[i];
				count++;
			}
		}
	}
	return count == 1 ? found : NULL;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct held *h;
	struct shim_fd *e, *he;
	int type = 0, fdflags, spare;
	socklen_t tl = sizeof(type);
	bool user_nb;

	if (!nheld || !shim_active(SHIM_SOCKET) || !addr ||
	    !(h = match(addr, len)) || h->fd == fd)
		return SHIM_REAL(bind)(fd, addr, len);
	he = shim_fd_get(h->fd);
	if (!he || !he->greend_listener ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM)
		return SHIM_REAL(bind)(fd, addr, len);
	fdflags = SHIM_REAL(fcntl)(fd, F_GETFD);
	if (fdflags < 0)
		return -1;
	/* What the program set stays its view; the kernel's flag is greend's. */
	e = shim_fd_get(fd);
	user_nb = e && e->user_nonblock;
	shim_fd_closing(fd);
	if (SHIM_REAL(dup3)(h->fd, fd, (fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
		return -1;
	shim_fd_duped(h->fd, fd, (fdflags & FD_CLOEXEC) != 0);
	e = shim_fd_get(fd);
	if (e)
		e->user_nonblock = user_nb;
	spare = h->fd;
	h->fd = fd;
	shim_fd_closing(spare);
	SHIM_REAL(close)(spare);
	SHIM_DEBUG("listen: bind on fd %d adopted greend's listener (was fd %d)", fd, spare);
	return 0;
}

int listen(int fd, int backlog)
{
	struct shim_fd *e;

	if (nheld && shim_active(SHIM_SOCKET) && (e = shim_fd_get(fd)) && e->greend_listener) {
		/* greend's backlog stands: this socket is every instance's. */
		shim_listen_serving();
		return 0;
	}
	return SHIM_REAL(listen)(fd, backlog);
}

void shim_listen_serving(void)
{
	int idle = IDLE;

	__atomic_compare_exchange_n(&state, &idle, ACCEPTING, false, __ATOMIC_ACQ_REL,
	                            __ATOMIC_ACQUIRE);
}

void shim_listen_accepted(void)
{
	shim_listen_serving();
	__atomic_add_fetch(&n_accepted, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&n_open, 1, __ATOMIC_RELAXED);
}

void shim_listen_conn_closed(void)
{
	__atomic_sub_fetch(&n_open, 1, __ATOMIC_RELAXED);
}

struct drain_list {
	int fds[HELD_MAX * 4];
	int n;
};

static void collect(int fd, struct shim_fd *e, void *arg)
{
	struct drain_list *d = arg;

	if (e->greend_listener && d->n < (int)(sizeof(d->fds) / sizeof(d->fds[0])))
		d->fds[d->n++] = fd;
}

void shim_listen_drain(void)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct green_hub *hub = green__hub_peek();
	struct drain_list d = {.n = 0};
	int inert;

	if (!__atomic_exchange_n(&shim_listen_drain_pending, 0, __ATOMIC_ACQ_REL) ||
	    __atomic_load_n(&state, __ATOMIC_ACQUIRE) == DRAINING)
		return;
	inert = SHIM_REAL(socket)(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* Bound to an autobind name and listening: accept says EAGAIN, poll
	 * never says readable. */
	if (inert < 0 || SHIM_REAL(bind)(inert, (struct sockaddr *)&un, sizeof(sa_family_t)) < 0 ||
	    SHIM_REAL(listen)(inert, 1) < 0) {
		shim_log("listen: cannot drain (%s); greend stops this instance at drain_timeout_s",
		         strerror(errno));
		if (inert >= 0)
			SHIM_REAL(close)(inert);
		return;
	}
	shim_fd_each(0, ~0U, collect, &d);
	for (int i = 0; i < d.n; i++) {
		int fd = d.fds[i], fdflags = SHIM_REAL(fcntl)(fd, F_GETFD);

		/* Waiters in accept wake with EAGAIN and wait again on the
		 * inert socket; poll waiters lose their watcher. */
		if (hub)
			green__fd_wake_all(hub, fd, EAGAIN);
		shim_select_fd_closing(fd);
		if (SHIM_REAL(dup3)(inert, fd, fdflags >= 0 && (fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
			continue;
		if (hub)
			green__fd_renew(hub, fd);
	}
	SHIM_REAL(close)(inert);
	/* Only now: an open count reported as draining must be final but for
	 * closes, or greend could stop a process that still takes one. */
	__atomic_store_n(&state, DRAINING, __ATOMIC_RELEASE);
	SHIM_DEBUG("listen: draining; %d fd(s) no longer take connections", d.n);
}

size_t shim_listen_report(char *buf, size_t cap, bool again)
{
	int st = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
	unsigned long long acc = __atomic_load_n(&n_accepted, __ATOMIC_RELAXED);
	long long open = __atomic_load_n(&n_open, __ATOMIC_RELAXED);
	static const char *const names[] = {"idle", "accepting", "draining"};
	int n;

	if (!nheld || (!again && last.sent && last.state == st && last.accepted == acc &&
	               last.open == open))
		return 0;
	n = snprintf(buf, cap, "{\"type\":\"listen\",\"state\":\"%s\",\"listeners\":%d,"
	             "\"accepted\":%llu,\"open\":%lld}",
	             names[st], nheld, acc, open < 0 ? 0 : open);
	if (n <= 0 || (size_t)n >= cap)
		return 0;
	last.sent = true;
	last.state = st;
	last.accepted = acc;
	last.open = open;
	return (size_t)n;
}
