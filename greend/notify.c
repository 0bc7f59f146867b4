/*
 * notify.c - sd_notify(3)'s datagram protocol and the watchdog.
 *
 * The watchdog is not petted from its timer: the timer only marks a pet as
 * due, and a prepare watcher (run when the loop has handled everything
 * pending and is about to block) sends WATCHDOG=1.  A callback stuck
 * forever thus stops the pets and systemd restarts greend.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"

static struct sockaddr_un notify_addr;
static socklen_t notify_len;
static uint64_t watchdog_usec;
static ev_timer wd_timer;
static ev_prepare wd_prepare;
static bool wd_due;

void gd_notify_init(void)
{
	const char *p = getenv("NOTIFY_SOCKET"), *u = getenv("WATCHDOG_USEC"),
		   *pid = getenv("WATCHDOG_PID");
	size_t n;

	notify_len = 0;
	if (p && (p[0] == '/' || p[0] == '@') && (n = strlen(p)) < sizeof(notify_addr.sun_path)) {
		memset(&notify_addr, 0, sizeof(notify_addr));
		notify_addr.sun_family = AF_UNIX;
		memcpy(notify_addr.sun_path, p, n);
		if (p[0] == '@')
			notify_addr.sun_path[0] = '\0';
		notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
					 (p[0] == '/' ? 1 : 0));
	} else if (p) {
		log_warnx("ignoring NOTIFY_SOCKET=%s: not an absolute path or @name", p);
	}
	watchdog_usec = 0;
	if (u && (!pid || strtol(pid, NULL, 10) == (long)getpid()))
		watchdog_usec = strtoull(u, NULL, 10);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

bool gd_notify_enabled(void)
{
	return notify_len > 0;
}

int gd_notify(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int fd, n, e;

	if (!notify_len)
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg)) {
		errno = EMSGSIZE;
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&notify_addr,
		   notify_len) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

uint64_t gd_notify_watchdog_usec(void)
{
	return watchdog_usec;
}

static void wd_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	wd_due = true;
}

static void wd_prepare_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	if (!wd_due)
		return;
	wd_due = false;
	if (gd_notify("WATCHDOG=1") < 0)
		log_warnx("sd_notify WATCHDOG=1: %s", strerror(errno));
}

void gd_notify_watchdog_start(struct ev_loop *loop)
{
	double every;

	if (!watchdog_usec || !notify_len)
		return;
	every = (double)watchdog_usec / 1e6 / 2;
	ev_timer_init(&wd_timer, wd_timer_cb, 0, every);
	ev_timer_start(loop, &wd_timer);
	ev_prepare_init(&wd_prepare, wd_prepare_cb);
	ev_prepare_start(loop, &wd_prepare);
	wd_due = true;
}

void gd_notify_watchdog_stop(struct ev_loop *loop)
{
	if (!watchdog_usec || !notify_len)
		return;
	ev_timer_stop(loop, &wd_timer);
	ev_prepare_stop(loop, &wd_prepare);
}
