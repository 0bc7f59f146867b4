/*
 * log.c - greend's diagnostics and the worker output it forwards to its
 * stderr.  Each line goes out with one write(2), so lines never interleave
 * mid-line, and never blocks: stderr gets a file description of its own
 * opened non-blocking (a pipe or tty reopened through /proc/self/fd, so
 * the shell's shared one keeps its flags), or send(MSG_DONTWAIT) when it
 * is a socket (journald's stream).  What the reader does not take waits in
 * a bounded buffer; past that, whole lines are dropped and counted, and a
 * line saying how many is written once the reader is back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static struct {
	const char *prog;
	bool journal;
	int fd;                 /* where lines go: 2, or our own reopened copy */
	bool own_fd;
	bool is_socket;
	char buf[GD_LOG_BUFFER];
	size_t len;             /* bytes waiting in buf */
	long long dropped;      /* lines dropped since start */
	long long unreported;   /* dropped lines not yet told about */
	struct ev_loop *loop;
	ev_io drain;
} lg = { .prog = "greend", .fd = STDERR_FILENO };

static void open_output(void)
{
	struct stat st;
	int fd;

	lg.fd = STDERR_FILENO;
	lg.own_fd = lg.is_socket = false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return;
	if (S_ISSOCK(st.st_mode)) {
		lg.is_socket = true;
		return;
	}
	if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode))
		return; /* a regular file: writes do not wait for a reader */
	fd = open("/proc/self/fd/2", O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd >= 0) {
		lg.fd = fd;
		lg.own_fd = true;
		return;
	}
	/* No /proc: make fd 2 itself non-blocking.  Whoever shares it sees the
	 * flag too, but a greend that stops supervising is worse. */
	fd = fcntl(STDERR_FILENO, F_GETFL);
	if (fd >= 0)
		fcntl(STDERR_FILENO, F_SETFL, fd | O_NONBLOCK);
}

/* systemd.exec(5): JOURNAL_STREAM is "DEV:INODE" of the stream systemd
 * connected; it may have been inherited past a redirection, so the
 * prefixes are used only while stderr is still that stream. */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void gd_log_init(const char *prog)
{
	lg.prog = prog;
	lg.journal = stderr_is_journal();
	open_output();
}

static void watch(bool on)
{
	if (!lg.loop)
		return;
	if (on && !ev_is_active(&lg.drain)) {
		ev_io_set(&lg.drain, lg.fd, EV_WRITE);
		ev_io_start(lg.loop, &lg.drain);
	} else if (!on && ev_is_active(&lg.drain)) {
		ev_io_stop(lg.loop, &lg.drain);
	}
}

void gd_log_reopen(void)
{
	watch(false);
	if (lg.own_fd)
		close(lg.fd);
	lg.journal = stderr_is_journal();
	open_output();
	watch(lg.len > 0);
}

/* Bytes the reader took, 0 when it takes none now, -1 when it never will. */
static ssize_t put(const char *p, size_t n)
{
	ssize_t w;

	do {
		w = lg.is_socket ? send(lg.fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL)
				 : write(lg.fd, p, n);
	} while (w < 0 && errno == EINTR);
	if (w < 0 && errno == ENOTSOCK && lg.is_socket) {
		lg.is_socket = false;
		return put(p, n);
	}
	if (w < 0)
		return errno == EAGAIN ? 0 : -1;
	return w;
}

static void report_drops(void);

/* Write out what is queued; stop watching once it is all out. */
static void flush(void)
{
	while (lg.len > 0) {
		ssize_t w = put(lg.buf, lg.len);

		if (w == 0) {
			watch(true);
			return;
		}
		if (w < 0) {
			/* Nobody will ever read (EPIPE, EBADF): the rest is lost. */
			lg.len = 0;
			break;
		}
		memmove(lg.buf, lg.buf + w, lg.len - (size_t)w);
		lg.len -= (size_t)w;
	}
	watch(false);
	report_drops();
}

static void drain_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	flush();
}

void gd_log_attach(struct ev_loop *loop)
{
	watch(false);
	lg.loop = loop;
	if (loop) {
		ev_io_init(&lg.drain, drain_cb, lg.fd, EV_WRITE);
		watch(lg.len > 0);
	}
}

static void queue(const char *line, size_t n)
{
	if (lg.len + n > sizeof(lg.buf)) {
		lg.dropped++;
		lg.unreported++;
		return;
	}
	memcpy(lg.buf + lg.len, line, n);
	lg.len += n;
	watch(true);
}

void gd_log_emit(const char *line, size_t n)
{
	int saved = errno;

	if (lg.len == 0) {
		ssize_t w = put(line, n);

		if (w < 0) {
			lg.dropped++;
			goto out;
		}
		/* The unwritten rest of a line waits, so the line stays whole. */
		if ((size_t)w < n)
			queue(line + w, n - (size_t)w);
	} else {
		queue(line, n);
	}
out:
	errno = saved;
}

static size_t format(char *buf, size_t size, int prio, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static size_t format(char *buf, size_t size, int prio, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = gd_log_format(buf, size, prio, fmt, ap);
	va_end(ap);
	return n;
}

/* Runs once the queue is empty again, so the line itself gets through. */
static void report_drops(void)
{
	char line[256];
	long long lost = lg.unreported;

	if (!lost)
		return;
	lg.unreported = 0;
	gd_log_emit(line, format(line, sizeof(line), LOG_WARNING,
				 "%lld lines dropped: stderr was not read (%lld in all)", lost,
				 lg.dropped));
}

long long gd_log_dropped(void)
{
	return lg.dropped;
}

size_t gd_log_format(char *buf, size_t size, int prio, const char *fmt, va_list ap)
{
	int n;

	if (size < 2)
		return 0;
	if (lg.journal)
		n = snprintf(buf, size, "<%d>", prio);
	else
		n = snprintf(buf, size, "%s: ", lg.prog);
	if (n < 0 || (size_t)n >= size)
		n = 0;
	vsnprintf(buf + n, size - (size_t)n, fmt, ap);
	n = (int)strlen(buf);
	if ((size_t)n >= size - 1)
		n = (int)size - 2;
	buf[n++] = '\n';
	buf[n] = '\0';
	return (size_t)n;
}

void gd_log(int prio, const char *fmt, ...)
{
	char line[GD_LOG_LINE_MAX];
	int saved = errno;
	va_list ap;
	size_t n;

	if (prio > LOG_INFO && !getenv("GREEND_DEBUG"))
		goto out;
	va_start(ap, fmt);
	n = gd_log_format(line, sizeof(line), prio, fmt, ap);
	va_end(ap);
	gd_log_emit(line, n);
out:
	errno = saved;
}
