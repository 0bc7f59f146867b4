/*
 * stats.c - counters and the walk over greenlets that greend's `dump` shows
 * (gevent's format_run_info).  Counters are written by their hub's thread
 * only and read with relaxed atomics from anywhere.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

static void add_hub(struct green_stats *out, struct green_hub *h)
{
	double ms = (double)GREEN__LOAD(h->stats.max_blocking_ns) / 1e6;

	out->alive += GREEN__LOAD(h->alive);
	out->spawned += GREEN__LOAD(h->stats.spawned);
	out->finished += GREEN__LOAD(h->stats.finished);
	out->switches += GREEN__LOAD(h->stats.switches);
	out->timeouts += GREEN__LOAD(h->stats.timeouts);
	out->iterations += GREEN__LOAD(h->stats.iterations);
	out->blocked += GREEN__LOAD(h->stats.blocked);
	if (ms > out->max_blocking_ms)
		out->max_blocking_ms = ms;
	out->hubs++;
}

void green_stats(struct green_stats *out)
{
	struct green_hub *h = green__hub_peek();

	memset(out, 0, sizeof(*out));
	if (h)
		add_hub(out, h);
}

void green_stats_all(struct green_stats *out)
{
	memset(out, 0, sizeof(*out));
	green__registry_sum(out, add_hub);
}

void green_set_max_blocking(int64_t ns)
{
	__atomic_store_n(&green__max_blocking_ns, ns < 0 ? 0 : ns, __ATOMIC_RELAXED);
}

const char *green_wait_kind_name(enum green_wait_kind kind)
{
	switch (kind) {
	case GREEN_WAIT_NONE: return "none";
	case GREEN_WAIT_FD: return "fd";
	case GREEN_WAIT_TIMER: return "timer";
	case GREEN_WAIT_EVENT: return "event";
	case GREEN_WAIT_LOCK: return "lock";
	case GREEN_WAIT_SEM: return "semaphore";
	case GREEN_WAIT_COND: return "condition";
	case GREEN_WAIT_QUEUE: return "queue";
	case GREEN_WAIT_JOIN: return "join";
	case GREEN_WAIT_GROUP: return "group";
	case GREEN_WAIT_OTHER: return "other";
	}
	return "unknown";
}

/* At most max greenlets (0: no bound). */
static int walk_hub(struct green_hub *h, uint64_t max,
                    int (*cb)(const struct green_info *info, void *arg), void *arg)
{
	int64_t now = green_now();
	uint64_t seen = 0;
	green_t *g;

	for (g = h->all_head; g && (!max || seen < max); g = g->all_next, seen++) {
		struct green_info info;
		int rc;

		if (g->state == GREEN_DEAD)
			continue;
		memset(&info, 0, sizeof(info));
		info.id = g->id;
		info.name = green_name(g);
		info.state = g->state;
		info.wait = g->wait_kind;
		info.fd = g->wait_kind == GREEN_WAIT_FD ? g->wait_fd : -1;
		info.events = g->wait_kind == GREEN_WAIT_FD ? g->wait_events : 0;
		info.object = g->wait_obj;
		info.deadline = g->wait_kind == GREEN_WAIT_NONE ? GREEN_FOREVER
		                                                : g->wait_deadline;
		info.age_ns = now - g->born_ns;
		info.stack_size = g->stack.size;
		info.main = g->is_main;
		info.current = g == h->current;
		rc = cb(&info, arg);
		if (rc)
			return rc;
	}
	return 0;
}

int green_walk(int (*cb)(const struct green_info *info, void *arg), void *arg)
{
	struct green_hub *h = green__hub_peek();

	if (!cb) {
		errno = EINVAL;
		return -1;
	}
	return h ? walk_hub(h, 0, cb, arg) : 0;
}

int green__walk_asleep(struct green_hub *h,
                       int (*cb)(const struct green_info *info, void *arg), void *arg)
{
	/* The list may grow meanwhile: the bound ends the walk whatever
	 * happens to it. */
	return walk_hub(h, __atomic_load_n(&h->alive, __ATOMIC_RELAXED) + 64, cb, arg);
}

green_t *green__find(struct green_hub *h, uint64_t id)
{
	green_t *g;

	for (g = h->all_head; g; g = g->all_next) {
		if (g->id == id)
			return g;
	}
	return NULL;
}
