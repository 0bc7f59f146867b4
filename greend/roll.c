/*
 * roll.c - the rolling restart state machine, one per worker:
 *
 *   idle -> NEW_STARTING (the next slot's new process runs beside the old)
 *        -> OLD_DRAINING (the new one accepts; the old one finishes)
 *        -> the next slot, or idle
 *
 * It drives instances only through sup.c's own operations (start, stop,
 * retire), so the supervisor's state machine stays the one truth about a
 * process; this file only decides when.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "roll.h"

enum phase { NEW_STARTING, OLD_DRAINING };

struct gd_roll {
	struct gd_worker *w;
	enum phase phase;
	bool busy;              /* a slot is being replaced */
	int *queue;             /* slot indexes still to roll */
	size_t nqueue, capqueue;
	struct gd_instance *old, *nu;
	ev_timer timer;
};

static void step(struct gd_roll *r);

const char *gd_roll_phase(const struct gd_worker *w)
{
	if (!w->roll || !w->roll->busy)
		return NULL;
	return w->roll->phase == NEW_STARTING ? "starting-new" : "draining-old";
}

void gd_roll_free(struct gd_worker *w)
{
	struct gd_roll *r = w->roll;

	if (!r)
		return;
	ev_timer_stop(w->sup->loop, &r->timer);
	free(r->queue);
	free(r);
	w->roll = NULL;
}

static void arm(struct gd_roll *r, double secs)
{
	ev_timer_stop(r->w->sup->loop, &r->timer);
	ev_timer_set(&r->timer, secs, 0);
	ev_timer_start(r->w->sup->loop, &r->timer);
}

static void fail(struct gd_roll *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct gd_roll *r, const char *fmt, ...)
{
	struct gd_worker *w = r->w;
	struct gd_instance *nu = r->nu;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->roll_error, sizeof(w->roll_error), fmt, ap);
	va_end(ap);
	log_warnx("%s: rolling restart stopped: %s; the old instances go on serving",
		  w->conf->name, w->roll_error);
	gd_roll_free(w);
	if (nu) {
		nu->retire = true;
		gd_inst_stop(nu);
	}
}

static void stop_old(struct gd_roll *r)
{
	if (r->old && !gd_state_at_rest(r->old->state)) {
		/* gd_roll_on_change steps on once it is at rest. */
		gd_inst_stop(r->old);
		return;
	}
	r->old = NULL;
	step(r);
}

static void drain_old(struct gd_roll *r)
{
	struct gd_instance *old = r->old;

	r->phase = OLD_DRAINING;
	r->nu = NULL; /* the slot's instance from now on */
	if (!old) {
		step(r);
		return;
	}
	old->retire = true; /* never restarted: its successor serves */
	old->draining = true;
	if (r->w->conf->drain_timeout_s <= 0 || gd_chan_request_drain(&old->chan) < 0) {
		stop_old(r);
		return;
	}
	log_info("%s: draining pid %d (its successor accepts)", old->id, (int)old->pid);
	arm(r, r->w->conf->drain_timeout_s);
}

static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gd_roll *r = t->data;

	(void)loop;
	(void)revents;
	if (r->phase == NEW_STARTING) {
		fail(r, "%s: the new process did not accept on its listeners within "
		     "ready_timeout_s (%g s)", r->nu ? r->nu->id : r->w->conf->name,
		     r->w->conf->ready_timeout_s);
		return;
	}
	if (r->old)
		log_warnx("%s: drain_timeout_s (%g s) passed with %lld connections open; stopping it",
			  r->old->id, r->w->conf->drain_timeout_s, r->old->chan.listen_open);
	stop_old(r);
}

/* The live, non-retired instance of slot INDEX other than SKIP. */
static struct gd_instance *slot(struct gd_worker *w, int index, struct gd_instance *skip)
{
	for (size_t i = 0; i < w->ninst; i++)
		if (w->inst[i] != skip && w->inst[i]->index == index && !w->inst[i]->retire)
			return w->inst[i];
	return NULL;
}

static void step(struct gd_roll *r)
{
	struct gd_worker *w = r->w;

	ev_timer_stop(w->sup->loop, &r->timer);
	r->busy = false;
	while (r->nqueue > 0) {
		int index = r->queue[0];
		struct gd_instance *old, *nu;

		memmove(r->queue, r->queue + 1, --r->nqueue * sizeof(int));
		if (w->retire || w->sup->shutting_down)
			break;
		old = slot(w, index, NULL);
		if (!old || (old->state != GD_RUNNING && old->state != GD_STARTING)) {
			/* Nothing serves from this slot: nothing to hand over. */
			if (old)
				gd_inst_restart(old);
			continue;
		}
		nu = gd_sup_inst_add(w, index);
		if (!nu) {
			fail(r, "%s: out of memory", old->id);
			return;
		}
		r->old = old;
		r->nu = nu;
		r->phase = NEW_STARTING;
		r->busy = true;
		log_info("%s: rolling: a new process starts beside pid %d", old->id, (int)old->pid);
		arm(r, w->conf->ready_timeout_s);
		gd_inst_start(nu);
		return;
	}
	log_info("%s: rolling restart done", w->conf->name);
	gd_roll_free(w);
}

void gd_roll_restart(struct gd_instance *in, bool now)
{
	struct gd_worker *w = in->w;
	struct gd_roll *r = w->roll;

	if (now || w->conf->nlisten == 0 || w->sup->shutting_down ||
	    (in->state != GD_RUNNING && in->state != GD_STARTING) || in->retire) {
		gd_inst_restart(in);
		return;
	}
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r) {
			gd_inst_restart(in);
			return;
		}
		r->w = w;
		ev_timer_init(&r->timer, timer_cb, 0, 0);
		r->timer.data = r;
		w->roll = r;
		w->roll_error[0] = '\0';
	}
	for (size_t i = 0; i < r->nqueue; i++)
		if (r->queue[i] == in->index)
			return;
	if (r->busy && r->old == in)
		return;
	if (r->nqueue == r->capqueue) {
		size_t cap = r->capqueue ? r->capqueue * 2 : 8;
		int *q = realloc(r->queue, cap * sizeof(int));

		if (!q) {
			gd_inst_restart(in);
			return;
		}
		r->queue = q;
		r->capqueue = cap;
	}
	r->queue[r->nqueue++] = in->index;
	if (!r->busy)
		step(r);
}

void gd_roll_on_listen(struct gd_instance *in)
{
	struct gd_roll *r = in->w->roll;

	if (!r || !r->busy)
		return;
	if (r->phase == NEW_STARTING && in == r->nu &&
	    strcmp(in->chan.listen_state, "accepting") == 0) {
		drain_old(r);
		return;
	}
	if (r->phase == OLD_DRAINING && in == r->old &&
	    strcmp(in->chan.listen_state, "draining") == 0 && in->chan.listen_open == 0) {
		log_info("%s: drained", in->id);
		stop_old(r);
	}
}

void gd_roll_on_change(struct gd_instance *in)
{
	struct gd_roll *r = in->w->roll;

	if (!r || !r->busy)
		return;
	/* Everything stops: nothing to hand over, nothing to report. */
	if (in->w->sup->shutting_down || in->w->retire) {
		gd_roll_free(in->w);
		return;
	}
	if (in == r->nu && r->phase == NEW_STARTING &&
	    (gd_state_at_rest(in->state) || in->state == GD_BACKOFF)) {
		fail(r, "%s: the new process %s before it accepted", in->id,
		     in->reason[0] ? in->reason : "ended");
		return;
	}
	if (in != r->old)
		return;
	if (r->phase == NEW_STARTING && in->state == GD_BACKOFF) {
		/* The old one crashed meanwhile: its successor takes the slot. */
		in->retire = true;
		gd_inst_stop(in);
		return;
	}
	if (gd_state_at_rest(in->state)) {
		r->old = NULL;
		if (r->phase == OLD_DRAINING)
			step(r);
	}
}
