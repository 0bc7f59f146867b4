/*
 * bench_libgreen.c - libgreen's micro-benchmarks, each measured beside its
 * baseline in the same run so that a noisy VM slows both alike: switch vs a
 * bare register swap, spawn+join vs pthreads, event ping-pong vs a condition
 * variable, and a million parked greenlets (time and RSS).
 *
 * Prints one table with the targets of issue 2 and PASS/MISS per row.  Exit
 * status: 0 when every benchmark ran (a MISS is a result, not a failure), 1
 * when one of them failed.  QUICK=1 in the environment cuts the iterations
 * and parks 100,000 greenlets instead of 1,000,000.
 */
#define _GNU_SOURCE
#include <green.h>

#include "arch/ctx.h" /* green__ctx_*: the bare swap baseline */

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * Stacks of the parked greenlets: the smallest libgreen accepts, carved from
 * slabs.  If a run with it crashes, the table is measured again with the
 * fallback and says so: a million 4 KiB stacks alone take 3.8 GiB, so the
 * fallback cannot meet the RSS target.
 */
#define PARKED_STACK GREEN_STACK_MIN
#define PARKED_STACK_FALLBACK ((size_t)4096)
#define PARKED_RSS_TARGET_KIB (4.0 * 1024 * 1024) /* 4 GiB per million */
#define SWITCH_TARGET 2.0  /* green switch <= 2x the bare swap */
#define SPAWN_TARGET 200.0 /* spawn+join >= 200x faster than pthreads */
#define BARE_STACK ((size_t)64 * 1024)

struct config {
	int reps;            /* best of this many runs */
	long switch_iters;   /* one-way switches per side, each run */
	long spawn_iters;
	long pthread_spawn_iters;
	long ping_iters;     /* round trips */
	long cond_ping_iters;
	long parked;         /* greenlets parked at once */
	int parked_reps;     /* each in a fresh process */
	long pthread_parked; /* threads parked for the per-thread baseline */
};

static const struct config full_config = {
	.reps = 5,
	.switch_iters = 10000000,
	.spawn_iters = 500000,
	.pthread_spawn_iters = 10000,
	.ping_iters = 2000000,
	.cond_ping_iters = 20000,
	.parked = 1000000,
	.parked_reps = 3,
	.pthread_parked = 1000,
};

static const struct config quick_config = {
	.reps = 3,
	.switch_iters = 1000000,
	.spawn_iters = 50000,
	.pthread_spawn_iters = 2000,
	.ping_iters = 200000,
	.cond_ping_iters = 4000,
	.parked = 100000,
	.parked_reps = 2,
	.pthread_parked = 200,
};

static bool failed;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Report a benchmark that could not run; the table shows FAIL for it. */
static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bench_libgreen: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	failed = true;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* VmRSS of this process in KiB, or -1. */
static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	}
	fclose(f);
	return kib;
}

/* ---- (a) switch: green_yield ping-pong vs the bare swap ------------------- */

/*
 * Both raw contexts run the same loop, so every switch returns to the same
 * instruction, as it does for two greenlets (which both switch from inside
 * green__switch).  Two different loops would make the CPU mispredict every
 * return and double the cost of the "bare" swap.
 */
struct bare_side {
	struct green__ctx ctx;
	struct bare_side *peer;
};

static struct green__ctx bare_main;
static struct bare_side bare_a, bare_b;
static long bare_left;

static void bare_entry(void *arg)
{
	struct bare_side *me = arg;

	while (bare_left-- > 0)
		green__ctx_switch(&me->ctx, &me->peer->ctx);
	green__ctx_switch(&me->ctx, &bare_main);
	abort(); /* never resumed */
}

/* ns per one-way green__ctx_switch between two raw contexts. */
static double bare_swap_ns(long iters)
{
	static void *stacks[2];
	int64_t t0, t1;

	for (int i = 0; i < 2; i++) {
		if (stacks[i])
			continue;
		stacks[i] = mmap(NULL, BARE_STACK, PROT_READ | PROT_WRITE,
		                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (stacks[i] == MAP_FAILED) {
			stacks[i] = NULL;
			fail("bare swap: mmap: %s", strerror(errno));
			return NAN;
		}
	}
	/* Each run starts both contexts afresh; the loser is abandoned. */
	bare_a.peer = &bare_b;
	bare_b.peer = &bare_a;
	green__ctx_init(&bare_a.ctx, stacks[0], BARE_STACK, bare_entry, &bare_a);
	green__ctx_init(&bare_b.ctx, stacks[1], BARE_STACK, bare_entry, &bare_b);
	bare_left = 2 * iters;
	t0 = now_ns();
	green__ctx_switch(&bare_main, &bare_a.ctx);
	t1 = now_ns();
	return (double)(t1 - t0) / (2.0 * (double)iters);
}

static void *yielder(void *arg)
{
	long n = *(const long *)arg;

	for (long i = 0; i < n; i++) {
		if (green_yield() < 0)
			return (void *)(intptr_t)errno;
	}
	return NULL;
}

/* Join g and check that it returned NULL (or an errno cast to a pointer). */
static int join_ok(green_t *g, const char *what)
{
	void *res = NULL;
	int rc = green_join(g, &res, GREEN_FOREVER);

	if (rc < 0)
		fail("%s: green_join: %s", what, strerror(errno));
	else if (res)
		fail("%s: greenlet failed: %s", what, strerror((int)(intptr_t)res));
	green_release(g);
	return rc < 0 || res ? -1 : 0;
}

/* ns per one-way switch: two greenlets handing over with green_yield. */
static double green_switch_ns(long iters)
{
	green_t *a, *b;
	int64_t t0, t1;
	int rc;

	a = green_spawn(yielder, &iters, NULL);
	b = a ? green_spawn(yielder, &iters, NULL) : NULL;
	if (!b) {
		fail("switch: green_spawn: %s", strerror(errno));
		if (a)
			join_ok(a, "switch");
		return NAN;
	}
	t0 = now_ns();
	rc = join_ok(a, "switch");
	rc |= join_ok(b, "switch");
	t1 = now_ns();
	return rc ? NAN : (double)(t1 - t0) / (2.0 * (double)iters);
}

/* ---- (b) spawn+join vs pthread_create+pthread_join ------------------------ */

static void *nothing(void *arg)
{
	return arg;
}

static double green_spawn_join_ns(long iters)
{
	int64_t t0, t1;

	t0 = now_ns();
	for (long i = 0; i < iters; i++) {
		green_t *g = green_spawn(nothing, NULL, NULL);

		if (!g) {
			fail("spawn+join: green_spawn: %s", strerror(errno));
			return NAN;
		}
		if (join_ok(g, "spawn+join") < 0)
			return NAN;
	}
	t1 = now_ns();
	return (double)(t1 - t0) / (double)iters;
}

static double pthread_spawn_join_ns(long iters)
{
	int64_t t0, t1;

	t0 = now_ns();
	for (long i = 0; i < iters; i++) {
		pthread_t t;
		int err = pthread_create(&t, NULL, nothing, NULL);

		if (err) {
			fail("spawn+join: pthread_create: %s", strerror(err));
			return NAN;
		}
		err = pthread_join(t, NULL);
		if (err) {
			fail("spawn+join: pthread_join: %s", strerror(err));
			return NAN;
		}
	}
	t1 = now_ns();
	return (double)(t1 - t0) / (double)iters;
}

/* ---- (c) event ping-pong vs a mutex+condvar ping-pong ---------------------- */

struct green_pingpong {
	green_event_t to_a, to_b;
	long n;
};

static void *green_ping(void *arg)
{
	struct green_pingpong *p = arg;

	for (long i = 0; i < p->n; i++) {
		green_event_set(&p->to_b);
		if (green_event_wait(&p->to_a, GREEN_FOREVER) < 0)
			return (void *)(intptr_t)errno;
		green_event_clear(&p->to_a);
	}
	return NULL;
}

static void *green_pong(void *arg)
{
	struct green_pingpong *p = arg;

	for (long i = 0; i < p->n; i++) {
		if (green_event_wait(&p->to_b, GREEN_FOREVER) < 0)
			return (void *)(intptr_t)errno;
		green_event_clear(&p->to_b);
		green_event_set(&p->to_a);
	}
	return NULL;
}

/* ns per round trip (a wakes b, b wakes a). */
static double green_pingpong_ns(long iters)
{
	struct green_pingpong p = {GREEN_EVENT_INIT, GREEN_EVENT_INIT, iters};
	green_t *a, *b;
	int64_t t0, t1;
	int rc;

	b = green_spawn(green_pong, &p, NULL);
	a = b ? green_spawn(green_ping, &p, NULL) : NULL;
	if (!a) {
		fail("event ping-pong: green_spawn: %s", strerror(errno));
		if (b) {
			green_kill(b);
			join_ok(b, "event ping-pong");
		}
		return NAN;
	}
	t0 = now_ns();
	rc = join_ok(a, "event ping-pong");
	rc |= join_ok(b, "event ping-pong");
	t1 = now_ns();
	return rc ? NAN : (double)(t1 - t0) / (double)iters;
}

struct cond_pingpong {
	pthread_mutex_t lock;
	pthread_cond_t cond[2];
	int turn;
	long n;
};

struct cond_side {
	struct cond_pingpong *p;
	int me;
};

static void *cond_player(void *arg)
{
	struct cond_side *s = arg;
	struct cond_pingpong *p = s->p;

	pthread_mutex_lock(&p->lock);
	for (long i = 0; i < p->n; i++) {
		while (p->turn != s->me)
			pthread_cond_wait(&p->cond[s->me], &p->lock);
		p->turn = !s->me;
		pthread_cond_signal(&p->cond[!s->me]);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static double cond_pingpong_ns(long iters)
{
	struct cond_pingpong p = {
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = {PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER},
		.turn = 0,
		.n = iters,
	};
	struct cond_side sides[2] = {{&p, 0}, {&p, 1}};
	pthread_t t[2];
	int64_t t0, t1;
	int err;

	t0 = now_ns();
	err = pthread_create(&t[0], NULL, cond_player, &sides[0]);
	if (err) {
		fail("cond ping-pong: pthread_create: %s", strerror(err));
		return NAN;
	}
	err = pthread_create(&t[1], NULL, cond_player, &sides[1]);
	if (err) {
		/* Let the first player finish on its own. */
		fail("cond ping-pong: pthread_create: %s", strerror(err));
		pthread_mutex_lock(&p.lock);
		p.n = 0;
		p.turn = 0;
		pthread_cond_signal(&p.cond[0]);
		pthread_mutex_unlock(&p.lock);
		pthread_join(t[0], NULL);
		return NAN;
	}
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	t1 = now_ns();
	return (double)(t1 - t0) / (double)iters;
}

/* ---- (d) parked greenlets, each run in a fresh process ------------------- */

struct parked_result {
	bool ok;
	int signal;      /* the child died of it */
	double spawn_ns; /* spawn them all until every one is parked */
	double wake_ns;  /* wake them all and join every one */
	long rss_base_kib;
	long rss_kib;    /* while all are parked */
	char err[160];
};

static void parked_fail(struct parked_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void parked_fail(struct parked_result *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	r->ok = false;
}

static size_t parked_stack = PARKED_STACK;
static green_event_t parked_event;
static long parked_count;

static void *parked_greenlet(void *arg)
{
	(void)arg;
	parked_count++;
	if (green_event_wait(&parked_event, GREEN_FOREVER) < 0)
		return (void *)(intptr_t)errno;
	parked_count--;
	return NULL;
}

static void parked_green(long n, struct parked_result *r)
{
	green_attr_t attr = {.name = NULL, .stack_size = parked_stack};
	green_t **gs = malloc((size_t)n * sizeof(*gs));
	int64_t t0, t1, t2, t3;

	if (!gs || !green_current()) {
		parked_fail(r, "setup: %s", strerror(errno));
		return;
	}
	r->rss_base_kib = rss_kib();
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		gs[i] = green_spawn(parked_greenlet, NULL, &attr);
		if (!gs[i]) {
			parked_fail(r, "green_spawn #%ld: %s", i, strerror(errno));
			return; /* the process exits: nothing to clean up */
		}
	}
	/* The ready queue is FIFO: one yield runs every new greenlet up to
	 * its wait before main runs again. */
	if (green_yield() < 0 || parked_count != n) {
		parked_fail(r, "%ld of %ld greenlets parked", parked_count, n);
		return;
	}
	t1 = now_ns();
	r->rss_kib = rss_kib();
	t2 = now_ns();
	green_event_set(&parked_event);
	for (long i = 0; i < n; i++) {
		void *res = NULL;

		if (green_join(gs[i], &res, GREEN_FOREVER) < 0 || res) {
			parked_fail(r, "greenlet #%ld: %s", i,
			            strerror(res ? (int)(intptr_t)res : errno));
			return;
		}
		green_release(gs[i]);
	}
	t3 = now_ns();
	free(gs);
	if (parked_count != 0) {
		parked_fail(r, "%ld greenlets still parked", parked_count);
		return;
	}
	r->spawn_ns = (double)(t1 - t0);
	r->wake_ns = (double)(t3 - t2);
	r->ok = true;
}

struct thread_park {
	pthread_mutex_t lock;
	pthread_cond_t parked_cond, go_cond;
	long parked;
	bool go;
};

static struct thread_park thread_park = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.parked_cond = PTHREAD_COND_INITIALIZER,
	.go_cond = PTHREAD_COND_INITIALIZER,
};

static void *parked_thread(void *arg)
{
	struct thread_park *p = arg;

	pthread_mutex_lock(&p->lock);
	p->parked++;
	pthread_cond_signal(&p->parked_cond);
	while (!p->go)
		pthread_cond_wait(&p->go_cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* The same with default pthreads: the per-thread baseline. */
static void parked_pthread(long n, struct parked_result *r)
{
	struct thread_park *p = &thread_park;
	pthread_t *ts = malloc((size_t)n * sizeof(*ts));
	int64_t t0, t1, t2, t3;
	long made;
	int err = 0;

	if (!ts) {
		parked_fail(r, "setup: %s", strerror(errno));
		return;
	}
	r->rss_base_kib = rss_kib();
	t0 = now_ns();
	for (made = 0; made < n; made++) {
		err = pthread_create(&ts[made], NULL, parked_thread, p);
		if (err)
			break;
	}
	pthread_mutex_lock(&p->lock);
	while (p->parked < made)
		pthread_cond_wait(&p->parked_cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
	t1 = now_ns();
	r->rss_kib = rss_kib();
	t2 = now_ns();
	pthread_mutex_lock(&p->lock);
	p->go = true;
	pthread_cond_broadcast(&p->go_cond);
	pthread_mutex_unlock(&p->lock);
	for (long i = 0; i < made; i++)
		pthread_join(ts[i], NULL);
	t3 = now_ns();
	free(ts);
	if (err) {
		parked_fail(r, "pthread_create #%ld: %s", made, strerror(err));
		return;
	}
	r->spawn_ns = (double)(t1 - t0);
	r->wake_ns = (double)(t3 - t2);
	r->ok = true;
}

/*
 * Run fn in a child process, so that every run starts without a hub and
 * its RSS is its own.  Fills *r; r->ok is false (with r->err or r->signal)
 * if the run failed.  Only call this while the parent has no hub: a child
 * would inherit it, libev loop included.
 */
static void in_child(void (*fn)(long, struct parked_result *), long n,
                     struct parked_result *r)
{
	int fds[2], status;
	pid_t pid;
	ssize_t got;

	memset(r, 0, sizeof(*r));
	if (pipe(fds) < 0) {
		parked_fail(r, "pipe: %s", strerror(errno));
		return;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		parked_fail(r, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return;
	}
	if (pid == 0) {
		close(fds[0]);
		fn(n, r);
		if (write(fds[1], r, sizeof(*r)) != (ssize_t)sizeof(*r))
			_exit(2);
		_exit(r->ok ? 0 : 1); /* skip freeing a million greenlets */
	}
	close(fds[1]);
	do {
		got = read(fds[0], r, sizeof(*r));
	} while (got < 0 && errno == EINTR);
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (got == (ssize_t)sizeof(*r))
		return;
	memset(r, 0, sizeof(*r));
	if (WIFSIGNALED(status)) {
		r->signal = WTERMSIG(status);
		parked_fail(r, "the child died of signal %d (%s)", r->signal,
		            strsignal(r->signal));
	} else {
		parked_fail(r, "the child exited with status %d and no result",
		            WEXITSTATUS(status));
	}
}

/* Best times of several runs; RSS is the largest seen (it is not noise). */
static void parked_best(void (*fn)(long, struct parked_result *), long n,
                        int reps, struct parked_result *best)
{
	struct parked_result r;

	memset(best, 0, sizeof(*best));
	best->spawn_ns = best->wake_ns = NAN;
	for (int i = 0; i < reps; i++) {
		in_child(fn, n, &r);
		if (!r.ok) {
			*best = r;
			best->spawn_ns = best->wake_ns = NAN;
			return;
		}
		if (isnan(best->spawn_ns) || r.spawn_ns < best->spawn_ns)
			best->spawn_ns = r.spawn_ns;
		if (isnan(best->wake_ns) || r.wake_ns < best->wake_ns)
			best->wake_ns = r.wake_ns;
		if (r.rss_kib > best->rss_kib) {
			best->rss_kib = r.rss_kib;
			best->rss_base_kib = r.rss_base_kib;
		}
	}
	best->ok = true;
}

/* ---- the table -------------------------------------------------------------- */

/* The best of several runs; one failed run fails the row. */
struct best {
	double ns;
	bool bad;
};

static void best_add(struct best *b, double ns)
{
	if (isnan(ns))
		b->bad = true;
	else if (isnan(b->ns) || ns < b->ns)
		b->ns = ns;
}

static double best_ns(const struct best *b)
{
	return b->bad ? NAN : b->ns;
}

#define CELL 64

struct row {
	char name[CELL];
	char green[CELL];
	char base[CELL];
	char ratio[CELL];
	char target[CELL];
	const char *result; /* PASS, MISS, FAIL, or "-" without a target */
};

static void cellf(char *cell, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void cellf(char *cell, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cell, CELL, fmt, ap);
	va_end(ap);
}

/* Formats into one of a few rotating buffers, so that several results can
 * appear in one cellf() call. */
static const char *fmt_time(double ns)
{
	static char bufs[4][24];
	static int next;
	char *buf = bufs[next++ % 4];

	if (isnan(ns))
		snprintf(buf, 24, "-");
	else if (ns < 100)
		snprintf(buf, 24, "%.1f ns", ns);
	else if (ns < 1e4)
		snprintf(buf, 24, "%.0f ns", ns);
	else if (ns < 1e6)
		snprintf(buf, 24, "%.1f us", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, 24, "%.0f ms", ns / 1e6);
	else
		snprintf(buf, 24, "%.2f s", ns / 1e9);
	return buf;
}

static const char *fmt_kib(double kib)
{
	static char bufs[4][24];
	static int next;
	char *buf = bufs[next++ % 4];

	if (isnan(kib))
		snprintf(buf, 24, "-");
	else if (kib < 1024)
		snprintf(buf, 24, "%.1f KiB", kib);
	else if (kib < 1024 * 1024)
		snprintf(buf, 24, "%.0f MiB", kib / 1024);
	else
		snprintf(buf, 24, "%.2f GiB", kib / (1024.0 * 1024));
	return buf;
}

/* "1.6x slower", "250x faster": the baseline's cost over ours. */
static void ratio_cell(char *cell, double green, double base,
                       const char *better, const char *worse)
{
	double r;

	if (isnan(green) || isnan(base) || green <= 0 || base <= 0) {
		cellf(cell, "-");
		return;
	}
	r = base / green;
	if (r >= 1)
		cellf(cell, r < 10 ? "%.2fx %s" : "%.0fx %s", r, better);
	else
		cellf(cell, 1 / r < 10 ? "%.2fx %s" : "%.0fx %s", 1 / r, worse);
}

static const char *verdict(bool ran, bool met)
{
	if (!ran)
		return "FAIL";
	return met ? "PASS" : "MISS";
}

static void print_rows(const struct row *rows, size_t n)
{
	static const struct row head = {"benchmark", "green", "baseline",
	                                 "ratio", "target", "result"};
	int w[5];

	for (size_t i = 0; i <= n; i++) {
		const struct row *r = i ? &rows[i - 1] : &head;
		const char *cells[5] = {r->name, r->green, r->base, r->ratio,
		                        r->target};

		for (int c = 0; c < 5; c++) {
			int len = (int)strlen(cells[c]);

			if (!i || len > w[c])
				w[c] = len;
		}
	}
	for (size_t i = 0; i <= n; i++) {
		const struct row *r = i ? &rows[i - 1] : &head;

		printf("%-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w[0], r->name, w[1],
		       r->green, w[2], r->base, w[3], r->ratio, w[4], r->target,
		       r->result);
	}
}

int main(void)
{
	const char *quick = getenv("QUICK");
	const struct config *cfg = quick && *quick && strcmp(quick, "0") != 0
	                               ? &quick_config
	                               : &full_config;
	struct best sw = {NAN, false}, bare = {NAN, false}, sp = {NAN, false};
	struct best psp = {NAN, false}, pp = {NAN, false}, cpp = {NAN, false};
	struct parked_result gp, tp;
	struct row rows[6], *r = rows;
	char note[300] = "";
	double n = (double)cfg->parked, tn = (double)cfg->pthread_parked;
	double g_each, t_each, rss_target;

	setvbuf(stdout, NULL, _IOLBF, 0);

	/* The parked runs come first, in children, while there is no hub. */
	parked_best(parked_green, cfg->parked, cfg->parked_reps, &gp);
	if (!gp.ok && gp.signal) {
		snprintf(note, sizeof(note),
		         "note: %zu-byte stacks crashed (%s); the parked rows "
		         "use %zu-byte stacks",
		         parked_stack, gp.err, PARKED_STACK_FALLBACK);
		parked_stack = PARKED_STACK_FALLBACK;
		parked_best(parked_green, cfg->parked, cfg->parked_reps, &gp);
	}
	if (!gp.ok)
		fail("parked greenlets: %s", gp.err);
	parked_best(parked_pthread, cfg->pthread_parked, cfg->reps, &tp);
	if (!tp.ok)
		fail("parked pthreads: %s", tp.err);

	/* Warm up: the hub, the stack cache, the page tables. */
	green_switch_ns(cfg->switch_iters / 100);
	green_spawn_join_ns(cfg->spawn_iters / 100);
	bare_swap_ns(cfg->switch_iters / 100);

	/* Interleaved, so that a slow spell of the VM hits both sides. */
	for (int i = 0; i < cfg->reps; i++) {
		best_add(&bare, bare_swap_ns(cfg->switch_iters));
		best_add(&sw, green_switch_ns(cfg->switch_iters));
		best_add(&sp, green_spawn_join_ns(cfg->spawn_iters));
		best_add(&psp, pthread_spawn_join_ns(cfg->pthread_spawn_iters));
		best_add(&pp, green_pingpong_ns(cfg->ping_iters));
		best_add(&cpp, cond_pingpong_ns(cfg->cond_ping_iters));
	}

	memset(rows, 0, sizeof(rows));

	cellf(r->name, "switch (one-way)");
	cellf(r->green, "%s", fmt_time(best_ns(&sw)));
	cellf(r->base, "bare swap %s", fmt_time(best_ns(&bare)));
	ratio_cell(r->ratio, best_ns(&sw), best_ns(&bare), "faster", "slower");
	cellf(r->target, "<= %.0fx slower", SWITCH_TARGET);
	r->result = verdict(!isnan(best_ns(&sw) + best_ns(&bare)),
	                    best_ns(&sw) <= SWITCH_TARGET * best_ns(&bare));
	r++;

	cellf(r->name, "spawn+join");
	cellf(r->green, "%s", fmt_time(best_ns(&sp)));
	cellf(r->base, "pthread %s", fmt_time(best_ns(&psp)));
	ratio_cell(r->ratio, best_ns(&sp), best_ns(&psp), "faster", "slower");
	cellf(r->target, ">= %.0fx faster", SPAWN_TARGET);
	r->result = verdict(!isnan(best_ns(&sp) + best_ns(&psp)),
	                    best_ns(&psp) >= SPAWN_TARGET * best_ns(&sp));
	r++;

	cellf(r->name, "event ping-pong (round trip)");
	cellf(r->green, "%s", fmt_time(best_ns(&pp)));
	cellf(r->base, "mutex+condvar %s", fmt_time(best_ns(&cpp)));
	ratio_cell(r->ratio, best_ns(&pp), best_ns(&cpp), "faster", "slower");
	cellf(r->target, "-");
	r->result = isnan(best_ns(&pp) + best_ns(&cpp)) ? "FAIL" : "-";
	r++;

	/* Ours for every parked greenlet; the pthread baseline per thread,
	 * from fewer threads (a million would not fit). */
	g_each = gp.spawn_ns / n;
	t_each = tp.spawn_ns / tn;
	cellf(r->name, "%ld parked: spawn", cfg->parked);
	cellf(r->green, "%s (%s each)", fmt_time(gp.spawn_ns), fmt_time(g_each));
	cellf(r->base, "pthread %s each", fmt_time(t_each));
	ratio_cell(r->ratio, g_each, t_each, "faster", "slower");
	cellf(r->target, "-");
	r->result = gp.ok && tp.ok ? "-" : "FAIL";
	r++;

	g_each = gp.ok ? (double)(gp.rss_kib - gp.rss_base_kib) / n : NAN;
	t_each = tp.ok ? (double)(tp.rss_kib - tp.rss_base_kib) / tn : NAN;
	rss_target = PARKED_RSS_TARGET_KIB * n / 1e6; /* QUICK: its share */
	cellf(r->name, "%ld parked: RSS", cfg->parked);
	cellf(r->green, "%s (%s each)", fmt_kib(gp.ok ? (double)gp.rss_kib : NAN),
	      fmt_kib(g_each));
	cellf(r->base, "pthread %s each", fmt_kib(t_each));
	ratio_cell(r->ratio, g_each, t_each, "less", "more");
	cellf(r->target, "<= %s", fmt_kib(rss_target));
	r->result = verdict(gp.ok, (double)gp.rss_kib <= rss_target);
	r++;

	g_each = gp.wake_ns / n;
	t_each = tp.wake_ns / tn;
	cellf(r->name, "%ld parked: wake+join", cfg->parked);
	cellf(r->green, "%s (%s each)", fmt_time(gp.wake_ns), fmt_time(g_each));
	cellf(r->base, "pthread %s each", fmt_time(t_each));
	ratio_cell(r->ratio, g_each, t_each, "faster", "slower");
	cellf(r->target, "-");
	r->result = gp.ok && tp.ok ? "-" : "FAIL";
	r++;

	printf("libgreen micro-benchmarks: best of %d runs; parked: best of %d, "
	       "%zu-byte stacks, pthread baseline from %ld threads\n",
	       cfg->reps, cfg->parked_reps, parked_stack, cfg->pthread_parked);
	print_rows(rows, (size_t)(r - rows));
	if (note[0])
		printf("%s\n", note);
	return failed ? 1 : 0;
}
