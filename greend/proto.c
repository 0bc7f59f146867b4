/*
 * proto.c - the control protocol's shared half: socket location, line
 * framing with a hard bound, answers, and a blocking request helper for
 * greenctl.  greend's non-blocking server side reuses the framing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

int gd_snprintf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return n;
}

int gd_default_socket_path(char *buf, size_t len)
{
	const char *xdg;

	if (geteuid() == 0)
		return gd_snprintf(buf, len, "/run/greend/control.sock") < 0 ? -1 : 0;
	xdg = getenv("XDG_RUNTIME_DIR");
	if (xdg && xdg[0] == '/')
		return gd_snprintf(buf, len, "%s/greend/control.sock", xdg) < 0 ? -1 : 0;
	return gd_snprintf(buf, len, "/run/user/%u/greend/control.sock",
			   (unsigned)geteuid()) < 0 ? -1 : 0;
}

int gd_client_socket_path(const char *opt, char *buf, size_t len)
{
	const char *env = getenv("GREEND_SOCKET");

	if (opt && *opt)
		return gd_snprintf(buf, len, "%s", opt) < 0 ? -1 : 0;
	if (env && *env)
		return gd_snprintf(buf, len, "%s", env) < 0 ? -1 : 0;
	return gd_default_socket_path(buf, len);
}

int gd_find_preload(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n;
	char *slash;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			if (gd_snprintf(buf, len, "%s/%s", exe, GD_PRELOAD_NAME) >= 0 &&
			    access(buf, R_OK) == 0)
				return 0;
		}
	}
	if (gd_snprintf(buf, len, "%s", GREEND_PRELOAD_PATH) < 0)
		return -1;
	if (access(buf, R_OK) == 0)
		return 0;
	errno = ENOENT;
	return -1;
}

void gd_linebuf_init(struct gd_linebuf *lb, size_t max)
{
	lb->data = NULL;
	lb->len = lb->cap = 0;
	lb->max = max;
}

void gd_linebuf_free(struct gd_linebuf *lb)
{
	free(lb->data);
	lb->data = NULL;
	lb->len = lb->cap = 0;
}

int gd_linebuf_append(struct gd_linebuf *lb, const char *p, size_t n)
{
	/* Nothing to add; and an empty buffer has no data to offset (UB). */
	if (n == 0)
		return 0;
	if (lb->len + n > lb->cap) {
		size_t cap = lb->cap ? lb->cap : 1024;
		char *d;

		while (cap < lb->len + n)
			cap *= 2;
		d = realloc(lb->data, cap);
		if (!d)
			return -1;
		lb->data = d;
		lb->cap = cap;
	}
	memcpy(lb->data + lb->len, p, n);
	lb->len += n;
	return 0;
}

int gd_linebuf_next(struct gd_linebuf *lb, char **line)
{
	char *nl, *out;
	size_t n;

	nl = lb->len ? memchr(lb->data, '\n', lb->len) : NULL;
	if (!nl) {
		if (lb->len > lb->max) {
			errno = EMSGSIZE;
			return -1;
		}
		return 0;
	}
	n = (size_t)(nl - lb->data);
	if (n > lb->max) {
		errno = EMSGSIZE;
		return -1;
	}
	out = malloc(n + 1);
	if (!out)
		return -1;
	memcpy(out, lb->data, n);
	out[n] = '\0';
	if (n > 0 && out[n - 1] == '\r')
		out[n - 1] = '\0';
	memmove(lb->data, nl + 1, lb->len - n - 1);
	lb->len -= n + 1;
	*line = out;
	return 1;
}

char *gd_json_line(const json_t *obj, size_t *len)
{
	char *s, *out;
	size_t n;

	s = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	n = strlen(s);
	out = realloc(s, n + 2);
	if (!out) {
		free(s);
		errno = ENOMEM;
		return NULL;
	}
	out[n] = '\n';
	out[n + 1] = '\0';
	if (len)
		*len = n + 1;
	return out;
}

/* Bytes in the UTF-8 character at S (1 to 4); 0 when S does not start a
 * valid one (overlong forms, surrogates and code points past U+10FFFF are
 * invalid, as jansson says); -1 when the string ends inside it. */
static int utf8_char(const unsigned char *s)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	int n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	for (int i = 1; i < n; i++) {
		if (s[i] == '\0')
			return -1;
		if (s[i] < lo || s[i] > hi)
			return 0;
		lo = 0x80;
		hi = 0xbf;
	}
	return n;
}

size_t gd_utf8_prefix(const char *s, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t at = 0;

	while (at < max && u[at]) {
		int n = utf8_char(u + at);

		if (n <= 0)
			n = 1; /* one byte that gd_utf8_fix would replace */
		if (at + (size_t)n > max)
			break;
		at += (size_t)n;
	}
	return at;
}

size_t gd_utf8_fix(char *s)
{
	unsigned char *u = (unsigned char *)s;
	size_t at = 0;

	while (u[at]) {
		int n = utf8_char(u + at);

		if (n < 0) {
			/* Cut inside a character: drop the piece. */
			u[at] = '\0';
			break;
		}
		if (n == 0) {
			u[at] = '?';
			n = 1;
		}
		at += (size_t)n;
	}
	return at;
}

json_t *gd_json_text(const char *s)
{
	char *copy;
	json_t *j;

	if (!s)
		return json_null();
	j = json_string(s);
	if (j)
		return j;
	copy = strdup(s);
	if (!copy)
		return NULL;
	gd_utf8_fix(copy);
	j = json_string(copy);
	free(copy);
	return j;
}

json_t *gd_answer_ok(void)
{
	return json_pack("{s:b}", "ok", 1);
}

json_t *gd_answer_error(const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		snprintf(msg, sizeof(msg), "%s", code);
	va_end(ap);
	/* The text may quote what a peer sent or a file held, cut to fit: it
	 * must still be a JSON string, or the peer would get no answer. */
	gd_utf8_fix(msg);
	return json_pack("{s:b,s:s,s:s}", "ok", 0, "code", code, "error", msg);
}

int gd_connect(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	int fd, e;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: socket path too long", path);
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = errno;
		snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(e));
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

double gd_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double gd_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int gd_request(int fd, const json_t *req, int timeout_ms, json_t **answer,
	       char *err, size_t errlen)
{
	struct gd_linebuf lb;
	double deadline = gd_mono() + timeout_ms / 1000.0;
	char chunk[16384], *line = NULL, *out;
	json_error_t jerr;
	size_t n;
	int e, r, send_err = 0;

	*answer = NULL;
	gd_linebuf_init(&lb, GD_LINE_MAX * 64);
	out = gd_json_line(req, &n);
	if (!out) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (send_all(fd, out, n) < 0) {
		e = errno;
		/* A greend that refuses (busy) answers and hangs up at once,
		 * maybe before the request is out: its answer is still there. */
		if (e != EPIPE && e != ECONNRESET) {
			snprintf(err, errlen, "send: %s", strerror(e));
			goto fail;
		}
		send_err = e;
	}
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int wait_ms = -1;
		ssize_t got;

		r = gd_linebuf_next(&lb, &line);
		if (r < 0) {
			e = errno;
			snprintf(err, errlen, "answer: %s", strerror(e));
			goto fail;
		}
		if (r == 1)
			break;
		if (timeout_ms >= 0) {
			double left = deadline - gd_mono();

			if (left <= 0) {
				e = ETIMEDOUT;
				snprintf(err, errlen, "no answer from greend within %d ms",
					 timeout_ms);
				goto fail;
			}
			wait_ms = (int)(left * 1000) + 1;
		}
		r = poll(&pfd, 1, wait_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = errno;
			snprintf(err, errlen, "poll: %s", strerror(e));
			goto fail;
		}
		if (r == 0)
			continue;
		got = recv(fd, chunk, sizeof(chunk), 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			e = got < 0 ? errno : ECONNRESET;
			if (send_err)
				snprintf(err, errlen, "send: %s", strerror(e = send_err));
			else
				snprintf(err, errlen, "greend closed the connection without an answer");
			goto fail;
		}
		if (gd_linebuf_append(&lb, chunk, (size_t)got) < 0) {
			e = ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	*answer = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
	if (!*answer || !json_is_object(*answer)) {
		json_decref(*answer);
		*answer = NULL;
		e = EPROTO;
		snprintf(err, errlen, "greend sent an answer that is not a JSON object");
		goto fail;
	}
	free(line);
	free(out);
	gd_linebuf_free(&lb);
	return 0;
fail:
	free(line);
	free(out);
	gd_linebuf_free(&lb);
	errno = e;
	return -1;
}
