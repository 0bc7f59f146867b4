/*
 * chan.c - reading and judging what a worker reports.  A message that fails
 * any check is counted as malformed and ignored as a whole, so a lying
 * worker can make its own numbers stale but never wrong in a way greend
 * would pass on as fact (negative counts, strings for numbers, 1e300 ms).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan.h"
#include "config.h"
#include "jsonpath.h"
#include "log.h"
#include "proto.h"

/* Counters above this are lies: 2^53 keeps them exact in every JSON reader. */
#define COUNT_MAX 9007199254740992LL
#define MS_MAX 1e12
#define DUMP_MAX_GREENLETS 100000

void gd_chan_init(struct gd_chan *ch, void *owner)
{
	memset(ch, 0, sizeof(*ch));
	ch->fd = -1;
	ch->owner = owner;
	ch->tokens = GD_CHAN_BURST;
	ch->bytes = GD_CHAN_BYTES_BURST;
}

void gd_chan_reset(struct gd_chan *ch)
{
	void *owner = ch->owner;
	void (*on_dump)(void *, json_t *) = ch->on_dump;
	void (*on_listen)(void *) = ch->on_listen;

	if (ch->loop)
		ev_timer_stop(ch->loop, &ch->resume);
	json_decref(ch->patched);
	json_decref(ch->warnings);
	json_decref(ch->last_blocked);
	gd_chan_init(ch, owner);
	ch->on_dump = on_dump;
	ch->on_listen = on_listen;
}

/*
 * The config's validators, so a worker's numbers and the config's obey
 * one rule.  A bad message is only counted as malformed, so the text the
 * validators would write is not asked for (snprintf into no buffer).
 */
static struct gd_jctx quiet = { .name = "channel" };

static bool get_count(json_t *obj, const char *key, long long *out)
{
	return gd_jint(&quiet, key, json_object_get(obj, key), 0, COUNT_MAX, out) == 0;
}

static bool get_ms(json_t *obj, const char *key, double *out)
{
	return gd_jnumber(&quiet, key, json_object_get(obj, key), 0, MS_MAX, out) == 0;
}

/* hello's "warnings" (absent: none): a few strings of bounded length, as
 * the shim sends; anything else makes the hello malformed (NULL). */
static json_t *hello_warnings(json_t *w)
{
	json_t *out = json_array(), *item;
	size_t i;

	if (!out || !w)
		return out;
	if (!json_is_array(w) || json_array_size(w) > 16) {
		json_decref(out);
		return NULL;
	}
	json_array_foreach(w, i, item) {
		if (!json_is_string(item) || json_string_length(item) > 512) {
			json_decref(out);
			return NULL;
		}
		json_array_append(out, item);
	}
	return out;
}

static enum gd_msg parse_hello(struct gd_chan *ch, json_t *m)
{
	json_t *v = json_object_get(m, "version"), *p, *item, *out, *warnings;
	long long pid;
	size_t i;

	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return GD_MSG_MALFORMED;
	if (!get_count(m, "pid", &pid) || pid < 1 || pid > 0x7fffffff)
		return GD_MSG_MALFORMED;
	p = json_object_get(m, "patched");
	if (!json_is_array(p) || json_array_size(p) > 32)
		return GD_MSG_MALFORMED;
	out = json_array();
	if (!out)
		return GD_MSG_MALFORMED;
	json_array_foreach(p, i, item) {
		if (!json_is_string(item) || !gd_module_known(json_string_value(item))) {
			json_decref(out);
			return GD_MSG_MALFORMED;
		}
		json_array_append(out, item);
	}
	warnings = hello_warnings(json_object_get(m, "warnings"));
	if (!warnings) {
		json_decref(out);
		return GD_MSG_MALFORMED;
	}
	json_decref(ch->patched);
	ch->patched = out;
	json_decref(ch->warnings);
	ch->warnings = warnings;
	ch->hello = true;
	ch->hello_pid = pid;
	return GD_MSG_HELLO;
}

static enum gd_msg parse_stats(struct gd_chan *ch, json_t *m, double now)
{
	long long alive, spawned, finished, switches, timeouts, iterations = 0,
		  blocked = 0;
	json_t *g = json_object_get(m, "greenlets"), *hub = json_object_get(m, "hub");
	double maxb = 0;

	if (!json_is_object(g) || !get_count(g, "alive", &alive) ||
	    !get_count(g, "spawned", &spawned) || !get_count(g, "finished", &finished))
		return GD_MSG_MALFORMED;
	if (!get_count(m, "switches", &switches) || !get_count(m, "timeouts", &timeouts))
		return GD_MSG_MALFORMED;
	if (hub) {
		if (!json_is_object(hub) || !get_count(hub, "iterations", &iterations) ||
		    !get_count(hub, "blocked", &blocked) ||
		    !get_ms(hub, "max_blocking_ms", &maxb))
			return GD_MSG_MALFORMED;
	}
	if (ch->have_stats && switches >= ch->switches && now > ch->stats_at) {
		ch->prev_at = ch->stats_at;
		ch->prev_switches = ch->switches;
		ch->switches_per_s = (double)(switches - ch->switches) / (now - ch->stats_at);
	} else {
		ch->switches_per_s = 0;
	}
	ch->have_stats = true;
	ch->stats_at = now;
	ch->alive = alive;
	ch->spawned = spawned;
	ch->finished = finished;
	ch->switches = switches;
	ch->timeouts = timeouts;
	ch->iterations = iterations;
	ch->hub_blocked = blocked;
	ch->max_blocking_ms = maxb;
	return GD_MSG_STATS;
}

static enum gd_msg parse_blocked(struct gd_chan *ch, json_t *m)
{
	json_t *name = json_object_get(m, "name"), *rec;
	long long id;
	double ms;
	char buf[129];

	if (!get_count(m, "greenlet", &id) || !get_ms(m, "ms", &ms))
		return GD_MSG_MALFORMED;
	if (name && !json_is_string(name))
		return GD_MSG_MALFORMED;
	{
		const char *n = name ? json_string_value(name) : "";

		snprintf(buf, sizeof(buf), "%.*s", (int)gd_utf8_prefix(n, sizeof(buf) - 1), n);
	}
	rec = json_pack("{s:I,s:s,s:f}", "greenlet", (json_int_t)id, "name", buf, "ms", ms);
	if (!rec)
		return GD_MSG_MALFORMED;
	json_decref(ch->last_blocked);
	ch->last_blocked = rec;
	ch->blocked_reports++;
	return GD_MSG_BLOCKED;
}

static enum gd_msg parse_listen(struct gd_chan *ch, json_t *m)
{
	json_t *st = json_object_get(m, "state");
	const char *s = json_is_string(st) ? json_string_value(st) : "";
	long long accepted, open;

	if ((strcmp(s, "idle") != 0 && strcmp(s, "accepting") != 0 &&
	     strcmp(s, "draining") != 0) ||
	    !get_count(m, "accepted", &accepted) || !get_count(m, "open", &open))
		return GD_MSG_MALFORMED;
	ch->have_listen = true;
	snprintf(ch->listen_state, sizeof(ch->listen_state), "%s", s);
	ch->listen_accepted = accepted;
	ch->listen_open = open;
	return GD_MSG_LISTEN;
}

static enum gd_msg parse_dump(struct gd_chan *ch, json_t *m, json_t **dump)
{
	json_t *g = json_object_get(m, "greenlets"), *out, *item;
	json_t *trunc = json_object_get(m, "truncated");
	long long left_out = 0;
	size_t i;

	if (!json_is_array(g) || json_array_size(g) > DUMP_MAX_GREENLETS)
		return GD_MSG_MALFORMED;
	if ((trunc && !json_is_boolean(trunc)) ||
	    (json_object_get(m, "left_out") && !get_count(m, "left_out", &left_out)))
		return GD_MSG_MALFORMED;
	/* A count of the rest means the dump was cut, whatever else it says. */
	ch->dump_truncated = json_is_true(trunc) || left_out > 0;
	ch->dump_left_out = left_out;
	out = json_array();
	if (!out)
		return GD_MSG_MALFORMED;
	json_array_foreach(g, i, item) {
		if (!json_is_object(item)) {
			json_decref(out);
			return GD_MSG_MALFORMED;
		}
		json_array_append(out, item);
	}
	*dump = out;
	return GD_MSG_DUMP;
}

enum gd_msg gd_chan_parse(struct gd_chan *ch, const char *buf, size_t len,
			  double now, json_t **dump)
{
	enum gd_msg r = GD_MSG_MALFORMED;
	json_error_t je;
	json_t *m, *type;
	const char *t;

	if (len > GD_CHAN_MSG_MAX)
		goto out;
	m = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!m)
		goto out;
	type = json_object_get(m, "type");
	t = json_is_string(type) ? json_string_value(type) : "";
	if (strcmp(t, "hello") == 0)
		r = parse_hello(ch, m);
	else if (strcmp(t, "stats") == 0)
		r = parse_stats(ch, m, now);
	else if (strcmp(t, "blocked") == 0)
		r = parse_blocked(ch, m);
	else if (strcmp(t, "dump") == 0)
		r = parse_dump(ch, m, dump);
	else if (strcmp(t, "listen") == 0)
		r = parse_listen(ch, m);
	json_decref(m);
out:
	if (r == GD_MSG_MALFORMED)
		ch->malformed++;
	return r;
}

bool gd_chan_admit(struct gd_chan *ch, double now, bool *flood)
{
	*flood = false;
	if (now > ch->tokens_at) {
		ch->tokens += (now - ch->tokens_at) * GD_CHAN_REFILL_PER_S;
		if (ch->tokens > GD_CHAN_BURST)
			ch->tokens = GD_CHAN_BURST;
		ch->tokens_at = now;
	}
	if (ch->tokens >= 1) {
		ch->tokens -= 1;
		return true;
	}
	ch->dropped++;
	if (now - ch->drop_window_at >= 1.0) {
		ch->drop_window_at = now;
		ch->drop_window = 0;
	}
	if (++ch->drop_window > GD_CHAN_FLOOD_DROPS)
		*flood = true;
	return false;
}

bool gd_chan_admit_bytes(struct gd_chan *ch, double now, size_t len, double *pause_s,
			 bool *flood)
{
	*flood = false;
	*pause_s = 0;
	if (now > ch->bytes_at) {
		ch->bytes += (now - ch->bytes_at) * GD_CHAN_BYTES_PER_S;
		if (ch->bytes > GD_CHAN_BYTES_BURST)
			ch->bytes = GD_CHAN_BYTES_BURST;
		ch->bytes_at = now;
	}
	if (ch->bytes >= (double)len || ch->dump_wanted) {
		ch->dump_wanted = ch->dump_wanted && ch->bytes >= (double)len;
		ch->bytes -= (double)len;
		return true;
	}
	ch->dropped++;
	ch->throttled++;
	*pause_s = ((double)len - ch->bytes) / GD_CHAN_BYTES_PER_S;
	if (*pause_s < 0.05)
		*pause_s = 0.05;
	if (now - ch->pause_window_at >= GD_CHAN_FLOOD_WINDOW_S) {
		ch->pause_window_at = now;
		ch->pause_window = 0;
	}
	if (++ch->pause_window >= GD_CHAN_FLOOD_PAUSES)
		*flood = true;
	return false;
}

static void resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gd_chan *ch = t->data;

	if (ch->fd >= 0)
		ev_io_start(loop, &ch->io);
}

/* recvmsg() gives 0 both for a zero-length message and for the worker's
 * close on SOCK_SEQPACKET; only the close leaves the socket shut down. */
static bool peer_closed(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static void chan_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gd_chan *ch = w->data;
	static char buf[GD_CHAN_MSG_MAX + 1];

	for (int i = 0; i < GD_CHAN_BATCH; i++) {
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		json_t *dump = NULL;
		double pause_s;
		bool flood;
		ssize_t n;

		n = recvmsg(ch->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			gd_chan_close(ch, loop, "receive error");
			return;
		}
		if (n == 0 && peer_closed(ch->fd)) {
			gd_chan_close(ch, loop, "closed by worker");
			return;
		}
		ch->received++;
		if (n == 0) {
			ch->malformed++;
			continue;
		}
		if (!gd_chan_admit(ch, ev_now(loop), &flood)) {
			if (flood) {
				gd_chan_close(ch, loop, "flooding");
				return;
			}
			continue;
		}
		if (!gd_chan_admit_bytes(ch, ev_now(loop), (size_t)n, &pause_s, &flood)) {
			char why[sizeof(ch->closed_why)];

			if (flood) {
				snprintf(why, sizeof(why), "flooding: over %.0f bytes/s",
					 GD_CHAN_BYTES_PER_S);
				gd_chan_close(ch, loop, why);
				return;
			}
			ev_io_stop(loop, &ch->io);
			ev_timer_set(&ch->resume, pause_s, 0);
			ev_timer_start(loop, &ch->resume);
			return;
		}
		if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
			ch->malformed++;
			continue;
		}
		switch (gd_chan_parse(ch, buf, (size_t)n, ev_now(loop), &dump)) {
		case GD_MSG_DUMP:
			if (ch->on_dump)
				ch->on_dump(ch->owner, dump);
			json_decref(dump);
			break;
		case GD_MSG_LISTEN:
			if (ch->on_listen)
				ch->on_listen(ch->owner);
			break;
		default:
			break;
		}
	}
}

void gd_chan_open(struct gd_chan *ch, struct ev_loop *loop, int fd)
{
	ch->fd = fd;
	ch->closed_why[0] = '\0';
	ch->loop = loop;
	ev_io_init(&ch->io, chan_cb, fd, EV_READ);
	ch->io.data = ch;
	ev_io_start(loop, &ch->io);
	ev_timer_init(&ch->resume, resume_cb, 0, 0);
	ch->resume.data = ch;
}

void gd_chan_close(struct gd_chan *ch, struct ev_loop *loop, const char *why)
{
	if (ch->fd < 0)
		return;
	ev_io_stop(loop, &ch->io);
	ev_timer_stop(loop, &ch->resume);
	close(ch->fd);
	ch->fd = -1;
	snprintf(ch->closed_why, sizeof(ch->closed_why), "%s", why);
}

static int chan_request(struct gd_chan *ch, const char *req, size_t len)
{
	if (ch->fd < 0) {
		errno = ENOTCONN;
		return -1;
	}
	if (send(ch->fd, req, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		if (errno != EAGAIN)
			errno = ENOTCONN;
		return -1;
	}
	ch->dump_wanted = true;
	return 0;
}

int gd_chan_request_drain(struct gd_chan *ch)
{
	static const char req[] = "{\"type\":\"drain\"}";

	return chan_request(ch, req, sizeof(req) - 1);
}

int gd_chan_request_dump(struct gd_chan *ch)
{
	static const char req[] = "{\"type\":\"dump\"}";

	return chan_request(ch, req, sizeof(req) - 1);
}
