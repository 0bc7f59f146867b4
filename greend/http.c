/*
 * http.c - the read-only HTTP endpoint, built on GNU libmicrohttpd driven
 * from greend's libev loop: the library runs in its "external" epoll mode,
 * with no thread of its own, so every answer is built on the loop from the
 * supervisor's state as it is, and no lock is needed.  An ev_io watches the
 * library's epoll fd, an ev_timer its own timeouts; both call MHD_run.
 *
 * The library bounds request size and idle time.  Two things it does not
 * do are done here, by shutting a connection's socket down (which the
 * library then sees as the client going away): a client that trickles its
 * request one byte at a time is cut at a deadline for its request head,
 * and when every slot is taken a new connection evicts the oldest one
 * that has not sent a request, so idle connections cannot lock a scraper
 * out.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "addr.h"
#include "http.h"
#include "log.h"

struct gd_http_conn {
	struct gd_http_conn *next, *prev;
	int fd;
	double deadline;        /* for the next request head; 0: none */
};

static void drive(struct gd_http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;

	MHD_run(h->mhd);
	ev_timer_stop(h->loop, &h->timer);
	if (MHD_get_timeout(h->mhd, &ms) == MHD_YES) {
		ev_timer_set(&h->timer, (double)ms / 1000.0, 0.);
		ev_timer_start(h->loop, &h->timer);
	}
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	drive(w->data);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	drive(w->data);
}

/* The library sees the client go and closes the connection. */
static void cut(struct gd_http *h, struct gd_http_conn *c)
{
	c->deadline = 0;
	shutdown(c->fd, SHUT_RDWR);
	h->info->http_cut++;
}

static void reaper_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gd_http *h = w->data;
	double now = ev_now(loop);

	for (struct gd_http_conn *c = h->conns; c; c = c->next) {
		if (c->deadline > 0 && now >= c->deadline)
			cut(h, c);
	}
}

/* The oldest connection still waiting for its request head goes. */
static void evict_idle(struct gd_http *h)
{
	struct gd_http_conn *victim = NULL;

	for (struct gd_http_conn *c = h->conns; c; c = c->next)
		if (c->deadline > 0)
			victim = c;     /* the list is newest first */
	if (victim)
		cut(h, victim);
}

static void on_conn(void *cls, struct MHD_Connection *conn, void **ctx,
		    enum MHD_ConnectionNotificationCode what)
{
	struct gd_http *h = cls;
	struct gd_http_conn *c = *ctx;
	const union MHD_ConnectionInfo *ci;

	if (what == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		/* Without memory the connection still has the idle timeout. */
		if (!ci || !(c = calloc(1, sizeof(*c))))
			return;
		c->fd = ci->connect_fd;
		c->deadline = ev_now(h->loop) + GD_HTTP_REQUEST_DEADLINE_S;
		if (h->nconns >= GD_HTTP_MAX_CONNECTIONS)
			evict_idle(h);
		c->next = h->conns;
		if (h->conns)
			h->conns->prev = c;
		h->conns = c;
		h->nconns++;
		h->info->http_connections = h->nconns;
		*ctx = c;
		if (!ev_is_active(&h->reaper))
			ev_timer_again(h->loop, &h->reaper);
		return;
	}
	if (!c)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
	h->nconns--;
	h->info->http_connections = h->nconns;
	*ctx = NULL;
	if (!h->conns)
		ev_timer_stop(h->loop, &h->reaper);
}

static struct gd_http_conn *conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

/* An answer is out: a kept-alive connection has a new deadline. */
static void on_done(void *cls, struct MHD_Connection *conn, void **req,
		    enum MHD_RequestTerminationCode toe)
{
	struct gd_http *h = cls;
	struct gd_http_conn *c = conn_of(conn);

	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		h->info->http_requests++;
	if (c)
		c->deadline = ev_now(h->loop) + GD_HTTP_REQUEST_DEADLINE_S;
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
	struct gd_http *h = cls;
	double now = ev_now(h->loop);
	char msg[512];
	size_t n;

	/* A flood of refused connections must not become a flood of lines. */
	if (now - h->log_at < 1.0) {
		h->log_dropped++;
		return;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	if (h->log_dropped)
		log_notice("http: %s (and %lu more messages)", msg, h->log_dropped);
	else
		log_notice("http: %s", msg);
	h->log_at = now;
	h->log_dropped = 0;
}

/* Whether ACCEPT prefers OpenMetrics to the text format. */
static bool wants_openmetrics(const char *accept)
{
	double om = 0, text = -1;
	char buf[1024], *save = NULL, *item;

	if (!accept)
		return false;
	snprintf(buf, sizeof(buf), "%s", accept);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *semi = strchr(item, ';'), *param;
		double qv = 1;
		size_t n;

		item += strspn(item, " \t");
		n = semi ? (size_t)(semi - item) : strlen(item);
		while (n && (item[n - 1] == ' ' || item[n - 1] == '\t'))
			n--;
		for (param = semi; param; param = strchr(param + 1, ';')) {
			const char *p = param + 1 + strspn(param + 1, " \t");

			if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=')
				qv = strtod(p + 2, NULL);
		}
		if (n == 28 && strncasecmp(item, "application/openmetrics-text", n) == 0)
			om = qv > om ? qv : om;
		else if (n == 10 && strncasecmp(item, "text/plain", n) == 0)
			text = qv > text ? qv : text;
	}
	return om > 0 && om >= text;
}

/* Queue BODY (malloc'ed, taken; NULL means out of memory). */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
			     const char *type, char *body)
{
	static char oom[] = "out of memory\n";
	struct MHD_Response *r;
	enum MHD_Result rc;

	if (!body) {
		status = MHD_HTTP_SERVICE_UNAVAILABLE;
		type = "text/plain; charset=utf-8";
		r = MHD_create_response_from_buffer(strlen(oom), oom, MHD_RESPMEM_PERSISTENT);
	} else {
		r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
		if (!r)
			free(body);
	}
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static char *json_text(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL, *out = NULL;

	json_decref(j);
	if (s && asprintf(&out, "%s\n", s) < 0)
		out = NULL;
	free(s);
	return out;
}

static char *text(const char *s)
{
	return strdup(s);
}

static bool has_body(struct MHD_Connection *conn)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);

	return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) ||
	       (cl && strcmp(cl, "0") != 0);
}

#define JSON_TYPE "application/json"
#define TEXT_TYPE "text/plain; charset=utf-8"

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload, size_t *upload_size, void **req)
{
	struct gd_http *h = cls;
	struct gd_http_conn *c = conn_of(conn);
	double now = ev_now(h->loop);

	/* The first call has the head.  Refusals are answered at once, which
	 * closes the connection, so a body is never read; the answer proper
	 * waits for the second call, which lets the connection be kept alive. */
	if (!*req) {
		*req = h;
		if (c)
			c->deadline = 0;
		if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
		    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
			return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, TEXT_TYPE,
				     text("only GET and HEAD: this endpoint is read-only\n"));
		if (has_body(conn))
			return reply(conn, MHD_HTTP_CONTENT_TOO_LARGE, TEXT_TYPE,
				     text("a request here has no body\n"));
		return MHD_YES;
	}
	if (*upload_size)
		return MHD_NO;
	if (strcmp(url, "/metrics") == 0) {
		bool om = wants_openmetrics(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					    MHD_HTTP_HEADER_ACCEPT));

		return reply(conn, MHD_HTTP_OK, om
			     ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
			     : "text/plain; version=0.0.4; charset=utf-8",
			     gd_metrics_render(h->sup, h->info, now,
					       om ? GD_METRICS_OPENMETRICS : GD_METRICS_TEXT));
	}
	if (strcmp(url, "/healthz") == 0)
		return reply(conn, MHD_HTTP_OK, TEXT_TYPE, text("ok\n"));
	if (strcmp(url, "/readyz") == 0) {
		json_t *r = gd_status_readiness(h->sup);
		unsigned status = json_is_true(json_object_get(r, "ready"))
				  ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;

		return reply(conn, status, JSON_TYPE, json_text(r));
	}
	if (strcmp(url, "/status") == 0)
		return reply(conn, MHD_HTTP_OK, JSON_TYPE, json_text(gd_status_all(h->sup, h->info, now)));
	return reply(conn, MHD_HTTP_NOT_FOUND, TEXT_TYPE,
		     text("not found: try /metrics, /healthz, /readyz or /status\n"));
}

bool gd_http_is_open(const struct gd_http *h)
{
	return h->mhd != NULL;
}

int gd_http_open(struct gd_http *h, struct ev_loop *loop, struct gd_sup *sup,
		 struct gd_daemon_info *info, const char *addr, int mode, long gid,
		 char *err, size_t errlen)
{
	const union MHD_DaemonInfo *di;
	struct gd_addr a;
	char why[512];
	int fd, e;

	memset(h, 0, sizeof(*h));
	h->loop = loop;
	h->sup = sup;
	h->info = info;
	h->log_at = -1;
	if (gd_addr_parse(addr, &a, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "http_listen: %s", why);
		return -1;
	}
	why[0] = '\0';
	fd = gd_addr_listen(&a, 128, mode, gid, why, sizeof(why));
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "http_listen: %s", why);
		errno = e;
		return -1;
	}
	h->addr = strdup(addr);
	if (a.is_unix)
		h->unix_path = strdup(((struct sockaddr_un *)&a.ss)->sun_path);
	if (!h->addr || (a.is_unix && !h->unix_path)) {
		e = ENOMEM;
		snprintf(err, errlen, "http_listen: out of memory");
		goto fail;
	}
	h->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
				  on_request, h,
				  MHD_OPTION_EXTERNAL_LOGGER, on_log, h,
				  MHD_OPTION_LISTEN_SOCKET, fd,
				  /* Room above ours for the evicted until the
				   * library has closed them. */
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)GD_HTTP_MAX_CONNECTIONS * 2,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)GD_HTTP_IDLE_TIMEOUT_S,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)GD_HTTP_REQUEST_MAX,
				  MHD_OPTION_NOTIFY_CONNECTION, on_conn, h,
				  MHD_OPTION_NOTIFY_COMPLETED, on_done, h,
				  MHD_OPTION_END);
	if (!h->mhd) {
		e = EIO;
		snprintf(err, errlen, "http_listen: %s: the HTTP library would not start", addr);
		goto fail;
	}
	di = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!di) {
		e = EIO;
		snprintf(err, errlen, "http_listen: the HTTP library has no epoll fd");
		MHD_stop_daemon(h->mhd);
		h->mhd = NULL;
		fd = -1;        /* the library closed it */
		goto fail;
	}
	ev_io_init(&h->io, io_cb, di->epoll_fd, EV_READ);
	ev_timer_init(&h->timer, timer_cb, 0., 0.);
	ev_init(&h->reaper, reaper_cb);
	h->reaper.repeat = 0.5;
	h->io.data = h->timer.data = h->reaper.data = h;
	ev_io_start(loop, &h->io);
	info->http_open = true;
	drive(h);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	if (h->unix_path)
		unlink(h->unix_path);
	free(h->unix_path);
	free(h->addr);
	h->unix_path = h->addr = NULL;
	errno = e;
	return -1;
}

void gd_http_close(struct gd_http *h)
{
	if (!h->mhd)
		return;
	ev_io_stop(h->loop, &h->io);
	ev_timer_stop(h->loop, &h->timer);
	ev_timer_stop(h->loop, &h->reaper);
	/* Closes the connections (on_conn frees ours) and the listener. */
	MHD_stop_daemon(h->mhd);
	h->mhd = NULL;
	h->info->http_open = false;
	if (h->unix_path)
		unlink(h->unix_path);
	free(h->unix_path);
	free(h->addr);
	h->unix_path = h->addr = NULL;
}
