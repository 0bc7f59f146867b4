/*
 * report.c - the worker's side of the channel to greend (GREEN_CONTROL_FD).
 *
 * A shim-owned OS thread sends hello once, stats every
 * GREEN_STATS_INTERVAL_MS, and watches the hub like gevent's monitor thread:
 * if the hub has not polled for longer than GREEN_MAX_BLOCKING_MS it reports
 * the greenlet that holds it, even while the hub is stuck.  A dump request is
 * handed to the hub (green_walk must run on the hub's own thread) through
 * its before_poll hook, with an ev_async to wake it and green__hooks.due to
 * take a lone greenlet off the fast path until it is done: the hook being
 * installed costs nothing, so a worker keeps the fast path.  Nothing here ever
 * blocks the program: every send is MSG_DONTWAIT and dropped on EAGAIN.
 */
#define _GNU_SOURCE
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MSG_MAX (64 * 1024)

static int channel_fd = -1;
static bool channel_dead;
static pid_t channel_pid;
static struct green_hub *dump_hub; /* the first hub: the program's main one */
static int dump_requested;

/* Whether the message went out (a full channel drops it). */
static bool channel_send(const char *msg, size_t len)
{
	if (__atomic_load_n(&channel_dead, __ATOMIC_ACQUIRE) || getpid() != channel_pid)
		return false;
	if (SHIM_REAL(send)(channel_fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
		return true;
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS)
		__atomic_store_n(&channel_dead, true, __ATOMIC_RELEASE);
	return false;
}

void shim_report_fd_closing(int fd)
{
	if (fd >= 0 && fd == channel_fd)
		__atomic_store_n(&channel_dead, true, __ATOMIC_RELEASE);
}

void shim_report_range_closing(unsigned int first, unsigned int last)
{
	if (channel_fd >= 0 && (unsigned int)channel_fd >= first &&
	    (unsigned int)channel_fd <= last)
		__atomic_store_n(&channel_dead, true, __ATOMIC_RELEASE);
}

/* Append s as a JSON string. */
static size_t put_json_string(char *buf, size_t at, size_t cap, const char *s)
{
	if (at + 2 >= cap)
		return cap;
	buf[at++] = '"';
	for (; *s && at + 8 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			buf[at++] = '\\';
			buf[at++] = (char)c;
		} else if (c < 0x20) {
			at += (size_t)snprintf(buf + at, cap - at, "\\u%04x", c);
		} else {
			buf[at++] = (char)c;
		}
	}
	buf[at++] = '"';
	return at;
}

/* Few, short and made at start: a fixed table, sent with hello. */
#define WARNINGS_MAX 4
static char warnings[WARNINGS_MAX][200];
static int nwarnings;

void shim_report_warning(const char *fmt, ...)
{
	va_list ap;

	if (nwarnings == WARNINGS_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(warnings[nwarnings], sizeof(warnings[0]), fmt, ap);
	va_end(ap);
	nwarnings++;
}

static void send_hello(void)
{
	char msg[2048];
	size_t n;
	bool first = true;

	n = (size_t)snprintf(msg, sizeof(msg),
	                     "{\"type\":\"hello\",\"version\":1,\"pid\":%d,\"patched\":[",
	                     (int)getpid());
	for (int i = 0; i < SHIM_NMODULES; i++) {
		if (!shim_patched[i])
			continue;
		n += (size_t)snprintf(msg + n, sizeof(msg) - n, "%s\"%s\"",
		                      first ? "" : ",", green__module_names[i]);
		first = false;
	}
	n += (size_t)snprintf(msg + n, sizeof(msg) - n, "]");
	if (nwarnings) {
		n += (size_t)snprintf(msg + n, sizeof(msg) - n, ",\"warnings\":[");
		for (int i = 0; i < nwarnings; i++) {
			if (i)
				msg[n++] = ',';
			n = put_json_string(msg, n, sizeof(msg) - 4, warnings[i]);
		}
		msg[n++] = ']';
	}
	msg[n++] = '}';
	channel_send(msg, n);
}

static void send_stats(void)
{
	struct green_stats st;
	char msg[512];
	int n;

	green_stats_all(&st);
	n = snprintf(msg, sizeof(msg),
	             "{\"type\":\"stats\",\"greenlets\":{\"alive\":%llu,\"spawned\":%llu,"
	             "\"finished\":%llu},\"switches\":%llu,\"timeouts\":%llu,"
	             "\"hub\":{\"iterations\":%llu,\"blocked\":%llu,\"max_blocking_ms\":%.3f,"
	             "\"hubs\":%llu}}",
	             (unsigned long long)st.alive, (unsigned long long)st.spawned,
	             (unsigned long long)st.finished, (unsigned long long)st.switches,
	             (unsigned long long)st.timeouts, (unsigned long long)st.iterations,
	             (unsigned long long)st.blocked, st.max_blocking_ms,
	             (unsigned long long)st.hubs);
	if (n > 0)
		channel_send(msg, (size_t)n);
}

struct dump_buf {
	char *buf;
	size_t len, cap;
	bool truncated;
	int count;
	unsigned long long left_out; /* greenlets past the cut, counted not written */
};

static int dump_one(const struct green_info *gi, void *arg)
{
	struct dump_buf *d = arg;
	char *b = d->buf;
	size_t at = d->len, cap = d->cap - 64; /* room for the closing text */
	int64_t now = green_now();

	if (d->truncated || at + 512 > cap) {
		/* Keep walking: the dump says how many did not fit. */
		d->truncated = true;
		d->left_out++;
		return 0;
	}
	at += (size_t)snprintf(b + at, cap - at, "%s{\"id\":%llu,\"name\":",
	                       d->count ? "," : "", (unsigned long long)gi->id);
	at = put_json_string(b, at, cap, gi->name);
	at += (size_t)snprintf(b + at, cap - at,
	                       ",\"state\":\"%s\",\"age_ms\":%.1f,"
	                       "\"main\":%s,\"stack_size\":%zu,\"wait\":",
	                       green_state_name(gi->state), (double)gi->age_ns / 1e6,
	                       gi->main ? "true" : "false", gi->stack_size);
	if (gi->wait == GREEN_WAIT_FD)
		at += (size_t)snprintf(b + at, cap - at,
		                       "{\"kind\":\"fd\",\"fd\":%d,\"events\":\"%s%s\"}",
		                       gi->fd, gi->events & GREEN_READ ? "r" : "",
		                       gi->events & GREEN_WRITE ? "w" : "");
	else if (gi->wait == GREEN_WAIT_NONE)
		at += (size_t)snprintf(b + at, cap - at, "null");
	else
		at += (size_t)snprintf(b + at, cap - at, "\"%s\"",
		                       green_wait_kind_name(gi->wait));
	if (gi->deadline > 0)
		at += (size_t)snprintf(b + at, cap - at, ",\"timeout_ms\":%.1f",
		                       (double)(gi->deadline - now) / 1e6);
	b[at++] = '}';
	d->len = at;
	d->count++;
	return 0;
}

/* asleep: the hub, walked from the reporting thread (green__walk_asleep);
 * NULL on the hub's own thread. */
static void send_dump(struct green_hub *asleep)
{
	struct dump_buf d = {.cap = MSG_MAX};

	d.buf = malloc(d.cap);
	if (!d.buf)
		return;
	d.len = (size_t)snprintf(d.buf, d.cap, "{\"type\":\"dump\",\"pid\":%d,\"greenlets\":[",
	                         (int)getpid());
	if (asleep)
		green__walk_asleep(asleep, dump_one, &d);
	else
		green_walk(dump_one, &d);
	d.len += (size_t)snprintf(d.buf + d.len, d.cap - d.len,
	                          "],\"truncated\":%s,\"left_out\":%llu}",
	                          d.truncated ? "true" : "false", d.left_out);
	channel_send(d.buf, d.len);
	free(d.buf);
}

/* Runs on the hub's thread before every poll; has work only when
 * green__hooks.due says so (the fast path watches that flag, not the hook). */
static void hub_before_poll(struct green_hub *h)
{
	if (h != dump_hub)
		return;
	__atomic_store_n(&green__hooks.due, 0, __ATOMIC_RELEASE);
	if (__atomic_exchange_n(&dump_requested, 0, __ATOMIC_ACQ_REL))
		send_dump(NULL);
	/* The table and the hub's watchers belong to the hub's thread. */
	if (__atomic_load_n(&shim_listen_drain_pending, __ATOMIC_ACQUIRE))
		shim_listen_drain();
}

/* Hand the hub a duty (a dump, a drain): the next call of the program
 * that could block goes through the hub instead of the fast path, and a
 * hub that sleeps in its loop is woken. */
static void hub_duty(struct green_hub *h)
{
	__atomic_store_n(&green__hooks.due, 1, __ATOMIC_RELEASE);
	ev_async_send(h->loop, &h->async);
}

/* Whether the hub's thread sleeps in a system call right now (its state in
 * /proc is not R).  Asked only of a hub that looks stuck while nobody else
 * could use it: fast-path calls wait in the kernel without it polling. */
static bool hub_thread_sleeps(struct green_hub *h)
{
	char path[64], buf[256], *paren;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)h->tid);
	fd = SHIM_REAL(open)(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = SHIM_REAL(read)(fd, buf, sizeof(buf) - 1);
	SHIM_REAL(close)(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* "tid (comm) S ...": comm may hold spaces and parentheses. */
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && paren[2] && paren[2] != 'R';
}

/* The hub's thread sleeps in a fast-path call: nothing is ready or
 * watched, so the hub will not run until that call returns. */
static bool hub_asleep_alone(struct green_hub *h)
{
	return !__atomic_load_n(&h->run_head, __ATOMIC_RELAXED) &&
	       !__atomic_load_n(&h->watchers, __ATOMIC_RELAXED) &&
	       !__atomic_load_n(&h->remote_pending, __ATOMIC_RELAXED) &&
	       __atomic_load_n(&h->current, __ATOMIC_RELAXED) == &h->main && hub_thread_sleeps(h);
}

/*
 * A dump the hub has not taken within DUMP_WAIT_MS while its thread sleeps
 * in a fast-path call (an idle node or a blocking accept may sleep there
 * for ever) is made from here instead.
 */
#define DUMP_WAIT_MS 100

static void dump_if_asleep(int64_t asked_at)
{
	struct green_hub *h = __atomic_load_n(&dump_hub, __ATOMIC_ACQUIRE);

	if (!h || green_now() - asked_at < DUMP_WAIT_MS * GREEN_MSEC ||
	    !__atomic_load_n(&dump_requested, __ATOMIC_ACQUIRE) || !hub_asleep_alone(h))
		return;
	if (__atomic_exchange_n(&dump_requested, 0, __ATOMIC_ACQ_REL))
		send_dump(h);
}

static void check_blocking(void)
{
	struct green_hub *h = __atomic_load_n(&dump_hub, __ATOMIC_ACQUIRE);
	static uint64_t reported_switches = UINT64_MAX, seen_alone;
	static int64_t seen_alone_at;
	uint64_t id, switches, alone;
	int64_t poll_end, busy, now = green_now();
	char msg[256];
	size_t n;

	if (!h || shim_max_blocking_ms <= 0)
		return;
	green__hub_snapshot(h, &id, &poll_end, &switches);
	if (!poll_end)
		return;
	/* A call made while nobody else could use the hub (a fast-path call,
	 * a fair point with nothing else to run) is progress, like a poll. */
	alone = __atomic_load_n(&h->alone_calls, __ATOMIC_RELAXED);
	if (alone != seen_alone) {
		seen_alone = alone;
		seen_alone_at = now;
	}
	if (seen_alone_at > poll_end)
		poll_end = seen_alone_at;
	busy = now - poll_end;
	/* Between polls the hub sleeps in epoll only when nothing is ready:
	 * then poll_end is old but the hub is idle, not blocked.  An idle hub
	 * has its hub greenlet current. */
	if (id == h->hub_g->id || busy < shim_max_blocking_ms * GREEN_MSEC ||
	    switches == reported_switches)
		return;
	/* A greenlet waiting in the kernel while nobody else could use the
	 * hub (the fast path: shim_alone) holds up no one. */
	if (hub_asleep_alone(h))
		return;
	reported_switches = switches;
	n = (size_t)snprintf(msg, sizeof(msg),
	                     "{\"type\":\"blocked\",\"greenlet\":%llu,\"name\":",
	                     (unsigned long long)id);
	{
		green_t *cur = __atomic_load_n(&h->current, __ATOMIC_RELAXED);
		char name[32];

		/* Greenlet structs are never freed while the hub lives, so
		 * this read is safe even if the greenlet just moved on. */
		memcpy(name, cur->name, sizeof(name));
		name[sizeof(name) - 1] = '\0';
		n = put_json_string(msg, n, sizeof(msg) - 40, name[0] ? name : "");
	}
	n += (size_t)snprintf(msg + n, sizeof(msg) - n, ",\"ms\":%.1f}", (double)busy / 1e6);
	channel_send(msg, n);
}

static void *reporter(void *arg)
{
	int64_t next_stats = green_now();
	int64_t tick = shim_stats_interval_ms;

	shim_passthrough = 1;
	if (shim_max_blocking_ms > 0 && shim_max_blocking_ms / 2 < tick)
		tick = shim_max_blocking_ms / 2 > 0 ? shim_max_blocking_ms / 2 : 1;
	/* A rolling restart waits on these reports: they go out within 50 ms. */
	if (shim_listen_any() && tick > 50)
		tick = 50;
	int64_t dump_asked_at = 0;

	send_hello();
	while (!__atomic_load_n(&channel_dead, __ATOMIC_ACQUIRE)) {
		struct pollfd pfd = {.fd = channel_fd, .events = POLLIN};
		int64_t now = green_now();
		int rc, wait_ms = (int)tick;

		if (!dump_hub)
			__atomic_store_n(&dump_hub, shim_main_hub, __ATOMIC_RELEASE);
		if (now >= next_stats) {
			send_stats();
			next_stats = now + shim_stats_interval_ms * GREEN_MSEC;
		}
		check_blocking();
		{
			/* A dropped listener report is sent again: greend's
			 * rolling restart waits on the last one. */
			static bool unsent;
			char lm[256];
			size_t ln = shim_listen_report(lm, sizeof(lm), unsent);

			if (ln)
				unsent = !channel_send(lm, ln);
		}
		if (__atomic_load_n(&dump_requested, __ATOMIC_ACQUIRE)) {
			dump_if_asleep(dump_asked_at);
			if (wait_ms > DUMP_WAIT_MS / 2)
				wait_ms = DUMP_WAIT_MS / 2;
		}
		rc = SHIM_REAL(poll)(&pfd, 1, wait_ms);
		if (rc > 0 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL))) {
			__atomic_store_n(&channel_dead, true, __ATOMIC_RELEASE);
			break;
		}
		if (rc > 0 && (pfd.revents & POLLIN)) {
			char req[512];
			ssize_t got = SHIM_REAL(recv)(channel_fd, req, sizeof(req) - 1, MSG_DONTWAIT);

			if (got == 0) {
				__atomic_store_n(&channel_dead, true, __ATOMIC_RELEASE);
				break;
			}
			if (got > 0) {
				req[got] = '\0';
				if (strstr(req, "\"drain\"")) {
					struct green_hub *h = __atomic_load_n(&dump_hub, __ATOMIC_ACQUIRE);

					SHIM_DEBUG("listen: greend asks for a drain");
					__atomic_store_n(&shim_listen_drain_pending, 1, __ATOMIC_RELEASE);
					if (h)
						hub_duty(h);
				} else if (strstr(req, "\"dump\"")) {
					struct green_hub *h = __atomic_load_n(&dump_hub, __ATOMIC_ACQUIRE);

					if (h) {
						dump_asked_at = green_now();
						__atomic_store_n(&dump_requested, 1, __ATOMIC_RELEASE);
						hub_duty(h);
					} else {
						static const char empty[] =
						    "{\"type\":\"dump\",\"greenlets\":[],\"truncated\":false,\"left_out\":0}";
						channel_send(empty, sizeof(empty) - 1);
					}
				}
			}
		}
	}
	return NULL;
}

void shim_report_start(void)
{
	const char *env = getenv("GREEN_CONTROL_FD");
	pthread_t tid;
	pthread_attr_t attr;
	sigset_t all;
	struct stat st;
	char *end;
	long fd;
	int rc;

	if (!env || !*env)
		return;
	errno = 0;
	fd = strtol(env, &end, 10);
	if (errno || *end || fd < 0 || fd > 1 << 24 || fstat((int)fd, &st) < 0 ||
	    !S_ISSOCK(st.st_mode)) {
		shim_log("GREEN_CONTROL_FD: '%.20s' is not an open socket; not reporting", env);
		return;
	}
	channel_fd = (int)fd;
	channel_pid = getpid();
	green__hooks.before_poll = hub_before_poll;
	/* The monitor must be a real thread: it has to run while the hub is
	 * stuck. */
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	/* Every signal blocked: one the program's threads all block must stay
	 * pending for them (a sigwait thread), not take its default action
	 * here. */
	sigfillset(&all);
	pthread_attr_setsigmask_np(&attr, &all);
	shim_passthrough++;
	rc = SHIM_REAL(pthread_create)(&tid, &attr, reporter, NULL);
	if (rc != 0) /* the error is the return value; errno is not set */
		shim_log("cannot start the reporting thread: %s", strerror(rc));
	shim_passthrough--;
	pthread_attr_destroy(&attr);
}
