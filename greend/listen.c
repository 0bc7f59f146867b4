/*
 * listen.c - greend's set of listening sockets, keyed by address text.
 *
 * One list for all workers, because an address belongs to at most one
 * worker (config.c refuses the same address twice) and a reload may move
 * an address from one worker to another without closing its queue.  Every
 * change goes in two steps, bind then commit or abort, so that a reload that
 * cannot bind everything leaves greend exactly as it was.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "listen.h"

struct gd_listener *gd_listeners_find(const struct gd_listeners *ls, const char *addr)
{
	for (size_t i = 0; i < ls->n; i++)
		if (strcmp(ls->v[i]->addr, addr) == 0)
			return ls->v[i];
	return NULL;
}

static void listener_close(struct gd_listener *l)
{
	if (l->fd >= 0) {
		close(l->fd);
		/* Only the file greend made: a stale one was replaced at bind. */
		if (l->a.is_unix)
			unlink(((struct sockaddr_un *)&l->a.ss)->sun_path);
	}
	free(l->addr);
	free(l->worker);
	free(l);
}

static long group_of(const struct gd_worker_conf *c)
{
	struct group *gr;
	char *end;

	if (!c->group)
		return -1;
	gr = getgrnam(c->group);
	if (gr)
		return (long)gr->gr_gid;
	{
		unsigned long v = strtoul(c->group, &end, 10);

		return *end == '\0' && end != c->group ? (long)v : -1;
	}
}

/* Remove the entries for which DROP holds, closing them. */
static void sweep(struct gd_listeners *ls, bool (*drop)(const struct gd_listener *))
{
	size_t keep = 0;

	for (size_t i = 0; i < ls->n; i++) {
		if (drop(ls->v[i]))
			listener_close(ls->v[i]);
		else
			ls->v[keep++] = ls->v[i];
	}
	ls->n = keep;
}

static bool is_fresh(const struct gd_listener *l)
{
	return l->fresh;
}

static bool is_unused(const struct gd_listener *l)
{
	return !l->wanted && l->users == 0;
}

static int add_one(struct gd_listeners *ls, const struct gd_worker_conf *c,
		   const char *text, char *err, size_t errlen)
{
	struct gd_listener *l = gd_listeners_find(ls, text), **v;
	char why[300] = "";
	int e;

	if (l) {
		/* listen() again only changes the backlog of a listening
		 * socket; chmod changes who may connect from now on. */
		if (l->backlog != c->backlog && listen(l->fd, c->backlog) == 0)
			l->backlog = c->backlog;
		if (l->a.is_unix && l->mode != c->listen_mode &&
		    chmod(((struct sockaddr_un *)&l->a.ss)->sun_path, (mode_t)c->listen_mode) == 0)
			l->mode = c->listen_mode;
		free(l->worker);
		l->worker = strdup(c->name);
		l->next_wanted = true;
		return l->worker ? 0 : -1;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		goto oom;
	l->fd = -1;
	l->addr = strdup(text);
	l->worker = strdup(c->name);
	v = realloc(ls->v, (ls->n + 1) * sizeof(*v));
	if (!l->addr || !l->worker || !v) {
		if (v)
			ls->v = v;
		listener_close(l);
		goto oom;
	}
	ls->v = v;
	if (gd_addr_parse(text, &l->a, why, sizeof(why)) < 0 ||
	    (l->fd = gd_addr_listen(&l->a, c->backlog, c->listen_mode, group_of(c),
				    why, sizeof(why))) < 0) {
		const char *reason = why;

		e = errno;
		/* gd_addr_listen's reasons may start with the address already. */
		if (strncmp(reason, text, strlen(text)) == 0 && reason[strlen(text)] == ':')
			reason += strlen(text) + 2;
		snprintf(err, errlen, "worker \"%s\": listen %s: %s", c->name, text, reason);
		l->fd = -1;
		listener_close(l);
		errno = e;
		return -1;
	}
	l->backlog = c->backlog;
	l->mode = c->listen_mode;
	l->fresh = l->next_wanted = true;
	ls->v[ls->n++] = l;
	return 0;
oom:
	snprintf(err, errlen, "worker \"%s\": listen %s: out of memory", c->name, text);
	errno = ENOMEM;
	return -1;
}

int gd_listeners_bind(struct gd_listeners *ls, struct gd_worker_conf *const *confs,
		      size_t nconfs, char *err, size_t errlen)
{
	for (size_t i = 0; i < ls->n; i++)
		ls->v[i]->next_wanted = ls->v[i]->fresh = false;
	for (size_t i = 0; i < nconfs; i++) {
		for (size_t j = 0; confs[i] && j < confs[i]->nlisten; j++) {
			if (add_one(ls, confs[i], confs[i]->listen[j], err, errlen) < 0) {
				int e = errno;

				gd_listeners_abort(ls);
				errno = e;
				return -1;
			}
		}
	}
	return 0;
}

void gd_listeners_commit(struct gd_listeners *ls)
{
	for (size_t i = 0; i < ls->n; i++) {
		ls->v[i]->wanted = ls->v[i]->next_wanted;
		ls->v[i]->fresh = false;
	}
	sweep(ls, is_unused);
}

void gd_listeners_abort(struct gd_listeners *ls)
{
	sweep(ls, is_fresh);
}

int gd_listeners_take(struct gd_listeners *ls, const struct gd_worker_conf *c,
		      struct gd_listener **out, size_t *n)
{
	*n = 0;
	for (size_t j = 0; j < c->nlisten; j++) {
		struct gd_listener *l = gd_listeners_find(ls, c->listen[j]);

		if (!l || l->fd < 0) {
			gd_listeners_release(ls, out, *n);
			*n = 0;
			errno = ENOENT;
			return -1;
		}
		l->users++;
		out[(*n)++] = l;
	}
	return 0;
}

void gd_listeners_release(struct gd_listeners *ls, struct gd_listener **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		v[i]->users--;
	sweep(ls, is_unused);
}

void gd_listeners_free(struct gd_listeners *ls)
{
	for (size_t i = 0; i < ls->n; i++)
		listener_close(ls->v[i]);
	free(ls->v);
	ls->v = NULL;
	ls->n = 0;
}

bool gd_patch_has_socket(const char *patch)
{
	bool on = false;
	const char *p = patch;

	/* Later words win, as in the shim: "all,-socket" is off. */
	while (p && *p) {
		size_t n = strcspn(p, ",");

		if ((n == 3 && strncmp(p, "all", 3) == 0) || (n == 6 && strncmp(p, "socket", 6) == 0))
			on = true;
		else if ((n == 4 && strncmp(p, "none", 4) == 0) ||
			 (n == 7 && strncmp(p, "-socket", 7) == 0) ||
			 (n == 4 && strncmp(p, "-all", 4) == 0))
			on = false;
		p += n;
		if (*p == ',')
			p++;
	}
	return on;
}
