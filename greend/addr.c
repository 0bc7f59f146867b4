/*
 * addr.c - parsing and opening listen addresses.  Hosts must be numeric:
 * greend resolves no names, so a config means the same on every start and
 * a slow resolver cannot hold up the daemon.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "addr.h"

static int bad(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	errno = EINVAL;
	return -1;
}

static int parse_port(const char *s, in_port_t *port)
{
	char *end;
	long v;

	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 5)
		return -1;
	v = strtol(s, &end, 10);
	if (*end || v < 1 || v > 65535)
		return -1;
	*port = htons((in_port_t)v);
	return 0;
}

int gd_addr_parse(const char *text, struct gd_addr *a, char *err, size_t errlen)
{
	char host[64];
	const char *colon;
	in_port_t port;

	memset(a, 0, sizeof(*a));
	if (strncmp(text, "unix:", 5) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&a->ss;
		const char *path = text + 5;

		if (path[0] != '/')
			return bad(err, errlen, "unix: needs an absolute path");
		if (strlen(path) >= sizeof(sun->sun_path))
			return bad(err, errlen, "unix socket path longer than 107 bytes");
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, path);
		a->len = sizeof(*sun);
		a->is_unix = true;
		return 0;
	}
	colon = text[0] == '[' ? strstr(text, "]:") : strrchr(text, ':');
	if (colon && text[0] == '[')
		colon++;
	if (!colon || colon == text)
		return bad(err, errlen, text[0] == '['
			   ? "expected \"[IPV6]:PORT\""
			   : "expected \"HOST:PORT\", \"[IPV6]:PORT\" or \"unix:PATH\"");
	if (parse_port(colon + 1, &port) < 0)
		return bad(err, errlen, "the port must be a number from 1 to 65535");
	if (text[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
		size_t n = (size_t)(colon - text);

		if (n < 3 || text[n - 1] != ']' || n - 2 >= sizeof(host))
			return bad(err, errlen, "expected \"[IPV6]:PORT\"");
		memcpy(host, text + 1, n - 2);
		host[n - 2] = '\0';
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return bad(err, errlen, "not a numeric IPv6 address between the brackets");
		s6->sin6_family = AF_INET6;
		s6->sin6_port = port;
		a->len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
		size_t n = (size_t)(colon - text);

		if (n >= sizeof(host))
			return bad(err, errlen, "the host is not a numeric IPv4 address");
		memcpy(host, text, n);
		host[n] = '\0';
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return bad(err, errlen, strchr(host, ':')
				   ? "an IPv6 address needs brackets: \"[::1]:PORT\""
				   : "the host must be a numeric IPv4 address (greend resolves no names)");
		s4->sin_family = AF_INET;
		s4->sin_port = port;
		a->len = sizeof(*s4);
	}
	return 0;
}

void gd_addr_format(const struct gd_addr *a, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (a->is_unix) {
		snprintf(buf, len, "unix:%s", ((const struct sockaddr_un *)&a->ss)->sun_path);
	} else if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(s4->sin_port));
	}
}

/* Remove a socket file left by a greend that is gone; refuse a live one. */
static int clear_stale(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd, rc, e;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket", path);
		errno = EEXIST;
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	e = errno;
	close(fd);
	if (rc == 0 || e == EAGAIN) {
		snprintf(err, errlen, "something is already listening on %s", path);
		errno = EADDRINUSE;
		return -1;
	}
	if (e != ECONNREFUSED) {
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		errno = e;
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT)
		return -1;
	return 0;
}

int gd_addr_listen(const struct gd_addr *a, int backlog, int mode, long gid,
		   char *err, size_t errlen)
{
	const char *path = a->is_unix ? ((const struct sockaddr_un *)&a->ss)->sun_path : NULL;
	char name[160];
	int fd, e, one = 1;
	mode_t old = 0;

	gd_addr_format(a, name, sizeof(name));
	if (path && clear_stale(path, err, errlen) < 0) {
		if (!*err)
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "%s: socket: %s", name, strerror(e));
		errno = e;
		return -1;
	}
	if (!path)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* Owner-only until chmod, so the file is never wider than asked. */
	if (path)
		old = umask(0177);
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
		e = errno;
		if (path)
			umask(old);
		snprintf(err, errlen, "%s: bind: %s", name, strerror(e));
		goto fail;
	}
	if (path)
		umask(old);
	if (path && (chmod(path, (mode_t)mode) < 0 ||
		     (gid >= 0 && chown(path, (uid_t)-1, (gid_t)gid) < 0))) {
		e = errno;
		snprintf(err, errlen, "%s: setting mode and group: %s", path, strerror(e));
		unlink(path);
		goto fail;
	}
	if (listen(fd, backlog) < 0) {
		e = errno;
		snprintf(err, errlen, "%s: listen: %s", name, strerror(e));
		if (path)
			unlink(path);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	errno = e;
	return -1;
}
