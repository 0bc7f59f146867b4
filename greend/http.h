/*
 * http.h - greend's read-only HTTP endpoint (http_listen): /metrics for
 * Prometheus, /healthz and /readyz for probes, /status.  It runs on
 * greend's own libev loop and can never change the supervisor's state.
 */
#ifndef GREEND_HTTP_H
#define GREEND_HTTP_H

#include <ev.h>

#include "status.h"
#include "sup.h"

/* Bounds that keep a misbehaving client from costing greend more than a
 * few connections' worth of memory and file descriptors. */
#define GD_HTTP_MAX_CONNECTIONS 64
#define GD_HTTP_IDLE_TIMEOUT_S 10       /* no byte either way for this long */
#define GD_HTTP_REQUEST_DEADLINE_S 5    /* from connect (or the last answer) to a whole request head */
#define GD_HTTP_REQUEST_MAX 16384       /* request line and headers, bytes */

struct gd_http_conn;

struct gd_http {
	struct ev_loop *loop;
	struct gd_sup *sup;
	struct gd_daemon_info *info;
	struct MHD_Daemon *mhd;
	char *addr;             /* as configured, so a reload can tell a change */
	char *unix_path;        /* removed on close */
	ev_io io;               /* the library's epoll fd */
	ev_timer timer;         /* the library's own timeouts */
	ev_timer reaper;        /* request deadlines */
	struct gd_http_conn *conns;     /* newest first */
	size_t nconns;
	double log_at;          /* rate limit for the library's messages */
	unsigned long log_dropped;
};

/* Listen on ADDR (config syntax).  A Unix socket gets MODE and GID (-1:
 * greend's).  On error -1, errno, and a message in ERR. */
int gd_http_open(struct gd_http *h, struct ev_loop *loop, struct gd_sup *sup,
		 struct gd_daemon_info *info, const char *addr, int mode, long gid,
		 char *err, size_t errlen);
/* Close every connection and the listener; H may be one never opened
 * (zeroed). */
void gd_http_close(struct gd_http *h);
bool gd_http_is_open(const struct gd_http *h);

#endif
