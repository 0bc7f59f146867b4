/*
 * addr.h - listen addresses as greend's config writes them: "HOST:PORT"
 * with a numeric IPv4 host, "[V6]:PORT", or "unix:PATH".  Parsing is
 * separate from opening so that `greend --check` can validate an address
 * without binding it.
 */
#ifndef GREEND_ADDR_H
#define GREEND_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct gd_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	bool is_unix;
};

/* Parse TEXT into A.  On error -1, EINVAL and a reason in ERR. */
int gd_addr_parse(const char *text, struct gd_addr *a, char *err, size_t errlen);

/*
 * A non-blocking, close-on-exec listening socket on A.  A Unix socket is
 * bound owner-only and widened to MODE (and GID unless it is -1) before
 * listen(); a stale socket file nobody answers on is replaced, a live one
 * is EADDRINUSE.  On error -1, errno and a reason in ERR.
 */
int gd_addr_listen(const struct gd_addr *a, int backlog, int mode, long gid,
		   char *err, size_t errlen);

/* "127.0.0.1:9464", "[::1]:9464" or "unix:/run/x.sock", for messages. */
void gd_addr_format(const struct gd_addr *a, char *buf, size_t len);

#endif
