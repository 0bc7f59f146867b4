/*
 * proto.h - what greend and greenctl share: the control socket's location,
 * JSON-per-line framing, answer construction, and the exit codes.  Both
 * programs link this one implementation so the two sides cannot drift.
 */
#ifndef GREEND_PROTO_H
#define GREEND_PROTO_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define GREEND_VERSION "0.1.0"
#define GD_PROTOCOL_VERSION 1

/* Longest request or answer line, without its newline. */
#define GD_LINE_MAX (64 * 1024)
/* Longest message on a worker channel. */
#define GD_CHAN_MSG_MAX (64 * 1024)

/* Where `make install` puts the shim (the Makefile passes PKGLIBDIR's). */
#ifndef GREEND_PRELOAD_PATH
#define GREEND_PRELOAD_PATH "/usr/local/lib/greend/libgreen-preload.so"
#endif
#define GD_PRELOAD_NAME "libgreen-preload.so"

/* Exit codes of greenctl (and of greend where they apply). */
enum {
	GD_EXIT_OK = 0,
	GD_EXIT_REFUSED = 1,     /* the daemon said no, or an error */
	GD_EXIT_USAGE = 2,       /* bad command line */
	GD_EXIT_UNREACHABLE = 3, /* greend not reachable, as systemctl's 3 */
};

/*
 * The default control socket: /run/greend/control.sock for root, else
 * $XDG_RUNTIME_DIR/greend/control.sock (/run/user/UID/... when unset).
 */
int gd_default_socket_path(char *buf, size_t len);
/* greenctl's choice: OPT if given, else $GREEND_SOCKET, else the default. */
int gd_client_socket_path(const char *opt, char *buf, size_t len);

/* Find libgreen-preload.so next to the running binary, then at
 * GREEND_PRELOAD_PATH.  Returns 0 and the path, or -1/ENOENT with the place the
 * library was expected in BUF. */
int gd_find_preload(char *buf, size_t len);

/*
 * A line accumulator with a bound: a line longer than MAX bytes is an error
 * (EMSGSIZE) as soon as that is known, not when its newline finally comes.
 */
struct gd_linebuf {
	char *data;
	size_t len, cap, max;
};

void gd_linebuf_init(struct gd_linebuf *lb, size_t max);
void gd_linebuf_free(struct gd_linebuf *lb);
int gd_linebuf_append(struct gd_linebuf *lb, const char *p, size_t n);
/* 1: *LINE is a malloc'ed line without its newline; 0: need more;
 * -1: errno EMSGSIZE (line too long) or ENOMEM. */
int gd_linebuf_next(struct gd_linebuf *lb, char **line);

/* One compact JSON line with its newline, malloc'ed; NULL on ENOMEM. */
char *gd_json_line(const json_t *obj, size_t *len);

/*
 * Text copied into an answer must be valid UTF-8 or jansson refuses it.
 * gd_utf8_prefix: how many bytes of S, at most MAX, end on a character
 * boundary (for "%.*s").  gd_utf8_fix: make S valid in place (a character
 * cut at the end is dropped, any other invalid byte becomes '?'); returns
 * the new length.  gd_json_text: a JSON string of S, fixed if need be
 * (NULL only on ENOMEM; S NULL gives JSON null).
 */
size_t gd_utf8_prefix(const char *s, size_t max);
size_t gd_utf8_fix(char *s);
json_t *gd_json_text(const char *s);

/* {"ok":false,"code":CODE,"error":"..."}, the text made valid UTF-8. */
json_t *gd_answer_error(const char *code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
json_t *gd_answer_ok(void);

/* Blocking client side: connect to PATH (CLOEXEC). */
int gd_connect(const char *path, char *err, size_t errlen);

/* The privileged socket is the control socket's path with this added:
 * only users who may change things can open it, and greend serves it
 * first (see control.c). */
#define GD_OPERATOR_SUFFIX ".priv"
/* Send REQ and wait up to TIMEOUT_MS (-1 forever) for one answer line.
 * Errors: ETIMEDOUT, ECONNRESET (closed without an answer), EPROTO (not a
 * JSON object), EMSGSIZE. */
int gd_request(int fd, const json_t *req, int timeout_ms, json_t **answer,
	       char *err, size_t errlen);

/* Monotonic and wall clocks in seconds. */
double gd_mono(void);
double gd_wall(void);

/* snprintf that reports truncation as -1/ENAMETOOLONG. */
int gd_snprintf(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
