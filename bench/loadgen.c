/*
 * loadgen.c - echo load generator for the benchmarks. One libev loop drives
 * every connection: connect them all (in batches, so the server's listen
 * backlog is not overrun), then send messages with a bounded number in
 * flight, check every echoed byte and time each message. Prints one JSON line.
 *
 * -H PATH is the HTTP mode instead: -c clients (threads), each sending
 * "GET PATH" with "Connection: close" on a new connection, one after the
 * other without pause, and reading the answer to EOF; every answer must be
 * 200 and hold -e TEXT.  It runs until -n requests per client are done, -t
 * seconds passed, or SIGINT/SIGTERM, and counts refused, reset and otherwise
 * failed requests apart: what a rolling restart must keep at zero.
 *
 * The bytes of a connection are a pure function of (connection seed, stream
 * offset), so neither the sender nor the checker keeps a copy of what was
 * sent, and memory stays O(connections), whatever the message count.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ev.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IO_CHUNK		(64 * 1024)
#define CONNECT_RETRIES		5
#define RETRY_DELAY_S		0.05	/* times the attempt number */
#define DEFAULT_BATCH		256
#define MAX_LOGGED_ERRORS	20
#define FD_SPARE		32	/* stdio, libev, resolver */

/*
 * Latency histogram, log-linear: values below 2^SUB_BITS ns get a bucket
 * each; above, every power of two is split into 2^SUB_BITS equal buckets, so
 * a bucket is at most 1/32 of its value wide (reported at its midpoint: error
 * under 1.6%). 1920 counters cover the whole uint64 range.
 */
#define HIST_SUB_BITS	5
#define HIST_SUB	(1u << HIST_SUB_BITS)
#define HIST_BUCKETS	((64 - HIST_SUB_BITS + 1) * HIST_SUB)

enum conn_state {
	CONN_IDLE,		/* not yet started */
	CONN_CONNECTING,	/* connect in progress, wio waits for it */
	CONN_RETRY_WAIT,	/* refused; retry timer running */
	CONN_READY,		/* connected, waiting for the others */
	CONN_RUNNING,		/* exchanging messages */
	CONN_DONE,
	CONN_FAILED,
};

struct conn {
	ev_io		 rio;
	ev_io		 wio;
	ev_timer	 retry;
	int		 fd;
	unsigned	 idx;
	unsigned	 attempts;
	enum conn_state	 state;
	uint64_t	 seed;
	uint64_t	 msgs_started;
	uint64_t	 msgs_done;
	uint64_t	 sent;		/* stream bytes written */
	uint64_t	 received;	/* stream bytes read and checked */
	uint64_t	*t_start;	/* send time (ns) of message i at i % inflight */
};

struct loadgen {
	/* options */
	const char	*addr;
	const char	*port;
	unsigned	 nconns;
	uint64_t	 msgs;		/* per connection */
	size_t		 size;
	unsigned	 inflight;
	double		 timeout_s;
	unsigned	 batch;

	struct addrinfo	*ai;
	struct conn	*conns;
	uint64_t	*t_start_pool;

	/* connect phase */
	unsigned	 next_conn;
	unsigned	 batch_left;
	ev_timer	 next_batch;
	bool		 traffic;

	/* results */
	unsigned	 remaining;	/* neither done nor failed */
	uint64_t	 msgs_done;
	uint64_t	 errors;
	uint64_t	 bad_bytes;
	unsigned	 logged;
	bool		 timed_out;
	uint64_t	 t_begin;
	uint64_t	 t_traffic;
	uint64_t	 t_end;
	uint64_t	 hist[HIST_BUCKETS];

	ev_timer	 deadline;
	unsigned char	 sendbuf[IO_CHUNK];
	unsigned char	 recvbuf[IO_CHUNK];
	unsigned char	 expect[IO_CHUNK];

	/* HTTP mode */
	const char	*http_path;
	const char	*http_expect;
};

static struct loadgen lg;

static void conn_start_connect(struct ev_loop *, struct conn *);
static void batch_member_done(struct ev_loop *);

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
logx(const char *fmt, ...)
{
	va_list ap;

	if (lg.logged++ >= MAX_LOGGED_ERRORS) {
		if (lg.logged == MAX_LOGGED_ERRORS + 2)
			fprintf(stderr, "loadgen: further errors not shown\n");
		return;
	}
	fputs("loadgen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- byte pattern -------------------------------------------------------- */

/* splitmix64's finaliser: a cheap bijection with good avalanche. */
static uint64_t
mix64(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static void
pattern_fill(uint64_t seed, uint64_t off, unsigned char *dst, size_t len)
{
	unsigned char word[8];
	size_t skip, n;
	uint64_t w;

	while (len > 0) {
		w = mix64(seed + (off >> 3) * 0x9e3779b97f4a7c15ULL);
		memcpy(word, &w, sizeof(word));
		skip = (size_t)(off & 7);
		n = sizeof(word) - skip;
		if (n > len)
			n = len;
		memcpy(dst, word + skip, n);
		dst += n;
		off += n;
		len -= n;
	}
}

/* Number of bytes of got[0, len) that differ from the stream at off. */
static uint64_t
pattern_check(uint64_t seed, uint64_t off, const unsigned char *got, size_t len)
{
	uint64_t bad = 0;
	size_t i;

	pattern_fill(seed, off, lg.expect, len);
	if (memcmp(got, lg.expect, len) == 0)
		return 0;
	for (i = 0; i < len; i++)
		bad += got[i] != lg.expect[i];
	return bad;
}

/* ---- histogram ------------------------------------------------------------ */

static unsigned
hist_index(uint64_t v)
{
	unsigned e, shift;

	if (v < HIST_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	shift = e - HIST_SUB_BITS;
	return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

static double
hist_value(unsigned i)
{
	unsigned shift;
	uint64_t low, width;

	if (i < HIST_SUB)
		return i;
	shift = i / HIST_SUB - 1;
	low = (uint64_t)(HIST_SUB + i % HIST_SUB) << shift;
	width = (uint64_t)1 << shift;
	return (double)low + (double)(width - 1) / 2.0;
}

static void
hist_add(uint64_t v)
{
	lg.hist[hist_index(v)]++;
}

/* The p-th percentile (0 < p <= 100) in ns; 0 when nothing was recorded. */
static double
hist_percentile(double p)
{
	uint64_t total = 0, rank, seen = 0;
	unsigned i;

	for (i = 0; i < HIST_BUCKETS; i++)
		total += lg.hist[i];
	if (total == 0)
		return 0;
	rank = (uint64_t)((double)total * p / 100.0 + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > total)
		rank = total;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += lg.hist[i];
		if (seen >= rank)
			return hist_value(i);
	}
	return hist_value(HIST_BUCKETS - 1);
}

/* ---- connections ---------------------------------------------------------- */

static void
conn_release(struct ev_loop *loop, struct conn *c)
{
	ev_io_stop(loop, &c->rio);
	ev_io_stop(loop, &c->wio);
	ev_timer_stop(loop, &c->retry);
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
	}
	if (--lg.remaining == 0 && lg.traffic) {
		lg.t_end = now_ns();
		ev_break(loop, EVBREAK_ALL);
	}
}

static void
conn_fail(struct ev_loop *loop, struct conn *c, const char *what, int err)
{
	bool connecting = c->state == CONN_CONNECTING ||
	    c->state == CONN_RETRY_WAIT || c->state == CONN_IDLE;

	if (err != 0)
		logx("connection %u: %s: %s", c->idx, what, strerror(err));
	else
		logx("connection %u: %s", c->idx, what);
	lg.errors++;
	c->state = CONN_FAILED;
	conn_release(loop, c);
	if (connecting)
		batch_member_done(loop);
}

static void
conn_finish(struct ev_loop *loop, struct conn *c)
{
	c->state = CONN_DONE;
	conn_release(loop, c);
}

/* Start the messages the window allows and write until done or EAGAIN. */
static void
conn_pump(struct ev_loop *loop, struct conn *c)
{
	uint64_t target;
	size_t len;
	ssize_t n;

	while (c->msgs_started < lg.msgs &&
	    c->msgs_started - c->msgs_done < lg.inflight) {
		c->t_start[c->msgs_started % lg.inflight] = now_ns();
		c->msgs_started++;
	}
	target = c->msgs_started * lg.size;
	while (c->sent < target) {
		len = target - c->sent > IO_CHUNK ? IO_CHUNK :
		    (size_t)(target - c->sent);
		pattern_fill(c->seed, c->sent, lg.sendbuf, len);
		n = send(c->fd, lg.sendbuf, len, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				ev_io_start(loop, &c->wio);
				return;
			}
			conn_fail(loop, c, "send", errno);
			return;
		}
		c->sent += (uint64_t)n;
	}
	ev_io_stop(loop, &c->wio);
}

static void
on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	uint64_t bad, now, end;
	ssize_t n;

	n = recv(c->fd, lg.recvbuf, sizeof(lg.recvbuf), 0);
	if (n == -1) {
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		conn_fail(loop, c, "recv", errno);
		return;
	}
	if (n == 0) {
		conn_fail(loop, c, "server closed the connection early", 0);
		return;
	}
	if (c->received + (uint64_t)n > c->sent) {
		lg.bad_bytes += c->received + (uint64_t)n - c->sent;
		conn_fail(loop, c, "more bytes echoed than sent", 0);
		return;
	}
	bad = pattern_check(c->seed, c->received, lg.recvbuf, (size_t)n);
	if (bad != 0) {
		logx("connection %u: %" PRIu64 " bad bytes in [%" PRIu64
		    ", %" PRIu64 ")", c->idx, bad, c->received,
		    c->received + (uint64_t)n);
		lg.bad_bytes += bad;
	}
	c->received += (uint64_t)n;

	now = now_ns();
	while (c->msgs_done < c->msgs_started) {
		end = (c->msgs_done + 1) * lg.size;
		if (c->received < end)
			break;
		hist_add(now - c->t_start[c->msgs_done % lg.inflight]);
		c->msgs_done++;
		lg.msgs_done++;
	}
	if (c->msgs_done == lg.msgs)
		conn_finish(loop, c);
	else
		conn_pump(loop, c);
}

static void
conn_connected(struct ev_loop *loop, struct conn *c)
{
	ev_io_stop(loop, &c->wio);
	c->state = CONN_READY;
	batch_member_done(loop);
}

static void
conn_connect_error(struct ev_loop *loop, struct conn *c, int err)
{
	ev_io_stop(loop, &c->wio);
	close(c->fd);
	c->fd = -1;
	if ((err == ECONNREFUSED || err == EAGAIN || err == ETIMEDOUT ||
	    err == EADDRNOTAVAIL) && c->attempts < CONNECT_RETRIES) {
		c->state = CONN_RETRY_WAIT;
		ev_timer_set(&c->retry, RETRY_DELAY_S * c->attempts, 0.);
		ev_timer_start(loop, &c->retry);
		return;
	}
	conn_fail(loop, c, "connect", err);
}

static void
on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	socklen_t len;
	int err;

	if (c->state == CONN_RUNNING) {
		conn_pump(loop, c);
		return;
	}
	len = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err == 0)
		conn_connected(loop, c);
	else
		conn_connect_error(loop, c, err);
}

static void
on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	conn_start_connect(loop, w->data);
}

static void
conn_start_connect(struct ev_loop *loop, struct conn *c)
{
	const struct addrinfo *ai = lg.ai;
	int fd, on = 1;

	c->attempts++;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    ai->ai_protocol);
	if (fd == -1) {
		conn_fail(loop, c, "socket", errno);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	c->fd = fd;
	ev_io_set(&c->rio, fd, EV_READ);
	ev_io_set(&c->wio, fd, EV_WRITE);
	c->state = CONN_CONNECTING;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
		conn_connected(loop, c);
		return;
	}
	if (errno == EINPROGRESS || errno == EINTR) {
		ev_io_start(loop, &c->wio);
		return;
	}
	conn_connect_error(loop, c, errno);
}

/* ---- phases --------------------------------------------------------------- */

static void
start_traffic(struct ev_loop *loop)
{
	unsigned i;

	lg.traffic = true;
	lg.t_traffic = now_ns();
	if (lg.remaining == 0) {
		lg.t_end = lg.t_traffic;
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	for (i = 0; i < lg.nconns; i++) {
		struct conn *c = &lg.conns[i];

		if (c->state != CONN_READY)
			continue;
		c->state = CONN_RUNNING;
		if (lg.msgs == 0) {
			conn_finish(loop, c);
			continue;
		}
		ev_io_start(loop, &c->rio);
		conn_pump(loop, c);
	}
}

/*
 * Connect the next batch; the one after starts only when every member of
 * this one has connected or given up. A sentinel member keeps batch_left
 * above zero while the batch is being started, since a loopback connect may
 * complete (or fail) synchronously.
 */
static void
on_next_batch(struct ev_loop *loop, ev_timer *w, int revents)
{
	unsigned n;

	if (lg.next_conn == lg.nconns) {
		start_traffic(loop);
		return;
	}
	lg.batch_left = 1;
	for (n = 0; n < lg.batch && lg.next_conn < lg.nconns; n++) {
		lg.batch_left++;
		conn_start_connect(loop, &lg.conns[lg.next_conn++]);
	}
	batch_member_done(loop);
}

static void
batch_member_done(struct ev_loop *loop)
{
	if (--lg.batch_left == 0) {
		/* From a fresh loop iteration, not from inside this batch. */
		ev_timer_set(&lg.next_batch, 0., 0.);
		ev_timer_start(loop, &lg.next_batch);
	}
}

static void
on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	unsigned i, unfinished = 0;

	for (i = 0; i < lg.nconns; i++) {
		enum conn_state s = lg.conns[i].state;

		if (s != CONN_DONE && s != CONN_FAILED)
			unfinished++;
	}
	fprintf(stderr, "loadgen: timeout after %.1f s: %u connections "
	    "unfinished\n", lg.timeout_s, unfinished);
	lg.errors += unfinished;
	lg.timed_out = true;
	lg.t_end = now_ns();
	ev_break(loop, EVBREAK_ALL);
}

/* ---- setup ---------------------------------------------------------------- */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen [-a ADDR] -p PORT [-c CONNS] [-n MSGS] [-s SIZE]\n"
	    "               [-w INFLIGHT] [-t TIMEOUT_S] [-b BATCH]\n"
	    "  -a ADDR      server address (default 127.0.0.1)\n"
	    "  -p PORT      server port\n"
	    "  -c CONNS     connections (default 100)\n"
	    "  -n MSGS      messages per connection (default 1000)\n"
	    "  -s SIZE      bytes per message (default 64)\n"
	    "  -w INFLIGHT  messages in flight per connection (default 1)\n"
	    "  -t TIMEOUT_S give up after this many seconds (default 60)\n"
	    "  -b BATCH     connections opened at a time (default %d)\n"
	    "  -H PATH      HTTP mode: GET PATH, Connection: close, one per connection\n"
	    "  -e TEXT      HTTP mode: every answer's body must contain TEXT\n",
	    DEFAULT_BATCH);
	exit(2);
}

static uint64_t
parse_num(const char *s, uint64_t min, uint64_t max, char opt)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || *s == '-' ||
	    v < min || v > max) {
		fprintf(stderr, "loadgen: -%c: expected an integer from %" PRIu64
		    " to %" PRIu64 "\n", opt, min, max);
		exit(2);
	}
	return v;
}

static void
parse_args(int argc, char **argv)
{
	char *end;
	int ch;

	lg.addr = "127.0.0.1";
	lg.port = NULL;
	lg.nconns = 100;
	lg.msgs = 1000;
	lg.size = 64;
	lg.inflight = 1;
	lg.timeout_s = 60;
	lg.batch = DEFAULT_BATCH;
	while ((ch = getopt(argc, argv, "a:p:c:n:s:w:t:b:H:e:h")) != -1) {
		switch (ch) {
		case 'a':
			lg.addr = optarg;
			break;
		case 'p':
			lg.port = optarg;
			break;
		case 'c':
			lg.nconns = (unsigned)parse_num(optarg, 1, 1000000, 'c');
			break;
		case 'n':
			lg.msgs = parse_num(optarg, 0, UINT64_MAX / 2, 'n');
			break;
		case 's':
			lg.size = (size_t)parse_num(optarg, 1, 16 << 20, 's');
			break;
		case 'w':
			lg.inflight = (unsigned)parse_num(optarg, 1, 4096, 'w');
			break;
		case 'b':
			lg.batch = (unsigned)parse_num(optarg, 1, 65536, 'b');
			break;
		case 'H':
			lg.http_path = optarg;
			break;
		case 'e':
			lg.http_expect = optarg;
			break;
		case 't':
			errno = 0;
			lg.timeout_s = strtod(optarg, &end);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    !(lg.timeout_s > 0)) {
				fprintf(stderr, "loadgen: -t: expected a "
				    "positive number of seconds\n");
				exit(2);
			}
			break;
		default:
			usage();
		}
	}
	if (optind != argc || lg.port == NULL)
		usage();
	if (lg.msgs > UINT64_MAX / 2 / lg.size) {
		fprintf(stderr, "loadgen: -n times -s is too large\n");
		exit(2);
	}
}

/* Every connection is an fd: raise the soft limit, and the hard one if root. */
static void
ensure_fds(void)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)lg.nconns + FD_SPARE;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		perror("loadgen: getrlimit");
		exit(1);
	}
	if (rl.rlim_cur >= need)
		return;
	if (rl.rlim_max < need) {
		struct rlimit want = { need, need };

		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			return;
	} else {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			return;
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	fprintf(stderr, "loadgen: %u connections need %llu fds but "
	    "RLIMIT_NOFILE is %llu (hard %llu); raise it with ulimit -n\n",
	    lg.nconns, (unsigned long long)need,
	    (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
	exit(1);
}

static void
resolve(void)
{
	struct addrinfo hints;
	int err;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((err = getaddrinfo(lg.addr, lg.port, &hints, &lg.ai)) != 0) {
		fprintf(stderr, "loadgen: %s port %s: %s\n", lg.addr, lg.port,
		    gai_strerror(err));
		exit(1);
	}
}

static void
setup_conns(void)
{
	uint64_t salt = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);
	unsigned i;

	lg.conns = calloc(lg.nconns, sizeof(*lg.conns));
	lg.t_start_pool = calloc((size_t)lg.nconns * lg.inflight,
	    sizeof(*lg.t_start_pool));
	if (lg.conns == NULL || lg.t_start_pool == NULL) {
		fprintf(stderr, "loadgen: out of memory\n");
		exit(1);
	}
	for (i = 0; i < lg.nconns; i++) {
		struct conn *c = &lg.conns[i];

		c->fd = -1;
		c->idx = i;
		c->state = CONN_IDLE;
		c->seed = mix64(salt + i);
		c->t_start = lg.t_start_pool + (size_t)i * lg.inflight;
		ev_io_init(&c->rio, on_readable, -1, EV_READ);
		ev_io_init(&c->wio, on_writable, -1, EV_WRITE);
		ev_timer_init(&c->retry, on_retry, 0., 0.);
		c->rio.data = c->wio.data = c->retry.data = c;
	}
	lg.remaining = lg.nconns;
}

static void
report(void)
{
	double elapsed = 0, connect_s, rate = 0;

	if (lg.traffic && lg.t_end > lg.t_traffic)
		elapsed = (double)(lg.t_end - lg.t_traffic) / 1e9;
	connect_s = (double)((lg.traffic ? lg.t_traffic : lg.t_end) -
	    lg.t_begin) / 1e9;
	if (elapsed > 0)
		rate = (double)lg.msgs_done / elapsed;
	printf("{\"conns\":%u,\"msgs\":%" PRIu64 ",\"size\":%zu,"
	    "\"elapsed_s\":%.3f,\"msgs_per_s\":%.1f,"
	    "\"p50_us\":%.1f,\"p99_us\":%.1f,"
	    "\"errors\":%" PRIu64 ",\"bad_bytes\":%" PRIu64 ","
	    "\"msgs_per_conn\":%" PRIu64 ",\"inflight\":%u,"
	    "\"connect_s\":%.3f,\"p999_us\":%.1f,\"timed_out\":%s}\n",
	    lg.nconns, lg.msgs_done, lg.size, elapsed, rate,
	    hist_percentile(50) / 1e3, hist_percentile(99) / 1e3,
	    lg.errors, lg.bad_bytes, lg.msgs, lg.inflight, connect_s,
	    hist_percentile(99.9) / 1e3, lg.timed_out ? "true" : "false");
	fflush(stdout);
}

/* ---- HTTP mode ---------------------------------------------------------------- */

#define HTTP_MAX_ANSWER	(1 << 20)
#define HTTP_IO_TIMEOUT_S 10

struct http_totals {
	pthread_mutex_t	 lock;
	uint64_t	 ok, refused, reset, failed;
	unsigned	 logged;
};

static struct http_totals ht = { .lock = PTHREAD_MUTEX_INITIALIZER };
static volatile sig_atomic_t http_stop;

static void
http_on_signal(int sig)
{
	(void)sig;
	http_stop = 1;
}

static void
http_count(uint64_t *what, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&ht.lock);
	(*what)++;
	if (fmt && ht.logged < MAX_LOGGED_ERRORS) {
		ht.logged++;
		fputs("loadgen: ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	pthread_mutex_unlock(&ht.lock);
}

/* An errno to the counter it belongs to. */
static void
http_count_errno(int err, const char *stage)
{
	if (err == ECONNREFUSED)
		http_count(&ht.refused, "%s: %s", stage, strerror(err));
	else if (err == ECONNRESET || err == EPIPE)
		http_count(&ht.reset, "%s: %s", stage, strerror(err));
	else
		http_count(&ht.failed, "%s: %s", stage, strerror(err));
}

static void
http_one(const char *req, size_t reqlen, char *buf)
{
	struct timeval tv = { HTTP_IO_TIMEOUT_S, 0 };
	size_t got = 0, off = 0;
	ssize_t n;
	int fd;

	fd = socket(lg.ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		http_count_errno(errno, "socket");
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, lg.ai->ai_addr, lg.ai->ai_addrlen) < 0) {
		http_count_errno(errno, "connect");
		goto out;
	}
	while (off < reqlen) {
		n = send(fd, req + off, reqlen - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			http_count_errno(errno, "send");
			goto out;
		}
		off += (size_t)n;
	}
	for (;;) {
		n = recv(fd, buf + got, HTTP_MAX_ANSWER - 1 - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			http_count_errno(errno == EAGAIN ? ETIMEDOUT : errno, "receive");
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == HTTP_MAX_ANSWER - 1) {
			http_count(&ht.failed, "answer longer than %d bytes", HTTP_MAX_ANSWER);
			goto out;
		}
	}
	buf[got] = '\0';
	if (got == 0)
		http_count(&ht.failed, "closed without an answer");
	else if (strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 8, " 200 ", 5) != 0)
		http_count(&ht.failed, "answer not 200: %.40s", buf);
	else if (lg.http_expect && !strstr(buf, lg.http_expect))
		http_count(&ht.failed, "answer without \"%s\"", lg.http_expect);
	else
		http_count(&ht.ok, NULL);
out:
	close(fd);
}

static void *
http_client(void *arg)
{
	char req[1024], *buf = malloc(HTTP_MAX_ANSWER);
	uint64_t deadline = *(const uint64_t *)arg;
	int reqlen;

	if (!buf)
		return NULL;
	reqlen = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n"
	    "Connection: close\r\n\r\n", lg.http_path, lg.addr);
	for (uint64_t i = 0; (lg.msgs == 0 || i < lg.msgs) && !http_stop &&
	    now_ns() < deadline; i++)
		http_one(req, (size_t)reqlen, buf);
	free(buf);
	return NULL;
}

static int
http_run(void)
{
	struct sigaction sa;
	pthread_t *tids = calloc(lg.nconns, sizeof(*tids));
	uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(lg.timeout_s * 1e9);
	unsigned started = 0;
	double secs;

	if (!tids) {
		fprintf(stderr, "loadgen: out of memory\n");
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = http_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (; started < lg.nconns; started++)
		if (pthread_create(&tids[started], NULL, http_client, &deadline) != 0)
			break;
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	free(tids);
	secs = (double)(now_ns() - t0) / 1e9;
	printf("{\"mode\":\"http\",\"clients\":%u,\"requests\":%" PRIu64 ",\"ok\":%" PRIu64
	    ",\"refused\":%" PRIu64 ",\"reset\":%" PRIu64 ",\"failed\":%" PRIu64
	    ",\"seconds\":%.3f,\"rps\":%.1f}\n", started,
	    ht.ok + ht.refused + ht.reset + ht.failed, ht.ok, ht.refused, ht.reset,
	    ht.failed, secs, secs > 0 ? (double)ht.ok / secs : 0.0);
	fflush(stdout);
	return started == lg.nconns && ht.refused + ht.reset + ht.failed == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	struct ev_loop *loop;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	ensure_fds();
	resolve();
	if (lg.http_path)
		return http_run();
	setup_conns();

	if ((loop = ev_default_loop(EVFLAG_AUTO)) == NULL) {
		fprintf(stderr, "loadgen: cannot initialise libev\n");
		return 1;
	}
	ev_timer_init(&lg.deadline, on_deadline, lg.timeout_s, 0.);
	ev_timer_start(loop, &lg.deadline);
	ev_timer_init(&lg.next_batch, on_next_batch, 0., 0.);
	ev_timer_start(loop, &lg.next_batch);

	lg.t_begin = now_ns();
	ev_run(loop, 0);
	if (lg.t_end == 0)
		lg.t_end = now_ns();

	report();
	return lg.errors == 0 && lg.bad_bytes == 0 && !lg.timed_out &&
	    lg.msgs_done == (uint64_t)lg.nconns * lg.msgs ? 0 : 1;
}
