/*
 * reload.c - applying a reloaded config to a running supervisor: workers
 * added, removed, changed (restarted) or only resized, whatever state
 * their instances are in, including still stopping from an earlier reload.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "roll.h"
#include "sup.h"

static bool equal_but_instances(json_t *a, json_t *b)
{
	json_t *ca = json_deep_copy(a), *cb = json_deep_copy(b);
	bool eq;

	json_object_del(ca, "instances");
	json_object_del(cb, "instances");
	eq = json_equal(ca, cb);
	json_decref(ca);
	json_decref(cb);
	return eq;
}

/*
 * What a reload does to the instances of a worker it keeps.  Each instance
 * is either wanted (its index is below the configured count) or retiring;
 * every transition between the two goes through worker_reconcile, which is
 * correct whatever state the instance is in, so a reload that lands while
 * earlier ones are still stopping instances cannot leave the worker short:
 *
 *   wanted -> retiring:  stop it (a pending restart is dropped);
 *   retiring -> wanted:  start it: at rest it is spawned now, still
 *                        stopping it is restarted once it is down;
 *   wanted, config changed (RECONCILE_RESTART): restarted, or started if
 *                        it was at rest;
 *   wanted, only the count changed (RECONCILE_KEEP): left as it is;
 *   a removed worker re-added before it was gone (RECONCILE_REVIVE): every
 *                        wanted instance is started, in the one worker
 *                        (never a second worker of the same name).
 */
enum reconcile { RECONCILE_KEEP, RECONCILE_RESTART, RECONCILE_REVIVE };

static int worker_reconcile(struct gd_worker *w, enum reconcile how)
{
	int n = w->conf->instances, rc;
	size_t old_ninst;

	for (size_t j = 0; j < w->ninst; j++) {
		struct gd_instance *in = w->inst[j];

		/* Rolled out: its successor holds the slot. */
		if (in->draining)
			continue;
		if (in->index >= n) {
			if (!in->retire) {
				in->retire = true;
				gd_inst_stop(in);
			}
			continue;
		}
		if (in->retire || how == RECONCILE_REVIVE) {
			in->retire = false;
			gd_inst_start(in);
		} else if (how == RECONCILE_RESTART) {
			if (gd_state_at_rest(in->state))
				gd_inst_start(in);
			else
				gd_roll_restart(in, false);
		}
	}
	old_ninst = w->ninst;
	rc = gd_worker_grow(w, n);
	for (size_t j = old_ninst; j < w->ninst; j++)
		gd_inst_start(w->inst[j]);
	return rc;
}

int gd_sup_reload(struct gd_sup *s, struct gd_config *nc, json_t *report)
{
	json_t *added = json_array(), *removed = json_array(), *changed = json_array(),
	       *unchanged = json_array(), *warnings = json_array();
	struct gd_config *old = s->cfg;
	bool *seen = calloc(s->nworkers + 1, sizeof(bool));
	size_t nold = s->nworkers;

	if (!seen || !added || !removed || !changed || !unchanged || !warnings) {
		free(seen);
		json_decref(added);
		json_decref(removed);
		json_decref(changed);
		json_decref(unchanged);
		json_decref(warnings);
		gd_config_free(nc);
		errno = ENOMEM;
		return -1;
	}
	/* The listening socket stays as it is until greend restarts. */
	if (strcmp(old->control_socket, nc->control_socket) != 0 ||
	    old->socket_mode != nc->socket_mode ||
	    (old->socket_group == NULL) != (nc->socket_group == NULL) ||
	    (old->socket_group && strcmp(old->socket_group, nc->socket_group) != 0))
		json_array_append_new(warnings, json_string(
			"control_socket, socket_mode and socket_group apply after greend restarts"));
	free(nc->control_socket);
	nc->control_socket = old->control_socket;
	old->control_socket = NULL;
	nc->socket_mode = old->socket_mode;
	free(nc->socket_group);
	nc->socket_group = old->socket_group;
	old->socket_group = NULL;
	s->cfg = nc;
	if (old->preload == NULL ? nc->preload != NULL
				 : (nc->preload == NULL || strcmp(old->preload, nc->preload) != 0))
		s->preload_warned = false;

	for (size_t i = 0; i < nc->nworkers; i++) {
		struct gd_worker_conf *c = nc->workers[i];
		struct gd_worker *w = NULL;
		enum reconcile how;
		json_t *list;
		size_t k;

		/* A worker removed by an earlier reload may still be stopping:
		 * it is the one to bring back, so a name never has two. */
		for (k = 0; k < nold; k++) {
			if (strcmp(s->workers[k]->conf->name, c->name) == 0) {
				w = s->workers[k];
				seen[k] = true;
				break;
			}
		}
		nc->workers[i] = NULL;
		if (!w) {
			w = gd_worker_new(s, c);
			if (!w) {
				gd_worker_conf_free(c);
				json_array_append_new(warnings, json_sprintf("%s: out of memory", c->name));
				continue;
			}
			json_array_append_new(added, json_string(c->name));
			if (!s->shutting_down)
				for (size_t j = 0; j < w->ninst; j++)
					gd_inst_start(w->inst[j]);
			continue;
		}
		if (w->retire) {
			w->retire = false;
			how = RECONCILE_REVIVE;
			list = added;
		} else if (json_equal(w->conf->effective, c->effective)) {
			gd_worker_set_conf(w, c);
			json_array_append_new(unchanged, json_string(c->name));
			continue;
		} else if (equal_but_instances(w->conf->effective, c->effective)) {
			how = RECONCILE_KEEP;
			list = changed;
		} else {
			how = RECONCILE_RESTART;
			list = changed;
		}
		gd_worker_set_conf(w, c);
		if (worker_reconcile(w, how) < 0)
			json_array_append_new(warnings, json_sprintf("%s: out of memory", c->name));
		json_array_append_new(list, json_string(c->name));
	}
	nc->nworkers = 0;
	for (size_t k = 0; k < nold; k++) {
		struct gd_worker *w = s->workers[k];

		if (seen[k] || w->retire)
			continue;
		w->retire = true;
		json_array_append_new(removed, json_string(w->conf->name));
		for (size_t j = 0; j < w->ninst; j++)
			gd_inst_stop(w->inst[j]);
	}
	free(seen);
	gd_config_free(old);
	/* What the reload dropped closes now, or when its last user exits. */
	gd_listeners_commit(&s->listeners);
	json_object_set_new(report, "added", added);
	json_object_set_new(report, "removed", removed);
	json_object_set_new(report, "changed", changed);
	json_object_set_new(report, "unchanged", unchanged);
	json_object_set_new(report, "warnings", warnings);
	return 0;
}
