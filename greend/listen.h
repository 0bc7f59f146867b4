/*
 * listen.h - the listening sockets greend holds for workers with `listen`.
 *
 * greend binds each address once, as itself (so before a worker switches
 * users), and keeps the socket for as long as the config names it or an
 * instance started with it still runs: instances come and go, the kernel's
 * accept queue stays, so a restart or a crash refuses no connection.  A
 * reload binds what it adds before anything else changes (a failure leaves
 * the old config running) and closes what it dropped once no instance holds
 * it any more.
 */
#ifndef GREEND_LISTEN_H
#define GREEND_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "config.h"

struct gd_listener {
	char *addr;             /* gd_addr_format's text: the key */
	char *worker;           /* the worker whose config names it */
	struct gd_addr a;
	int fd;                 /* close-on-exec in greend */
	int backlog, mode;
	bool wanted;            /* named by the running config */
	bool fresh;             /* bound by the reload under way */
	bool next_wanted;
	int users;              /* live instances started with it */
};

struct gd_listeners {
	struct gd_listener **v;
	size_t n;
};

/* Bind what CONFS name and LS does not hold yet; adjust backlog and mode of
 * what it holds.  On failure nothing changes and ERR names the worker and
 * the address: "worker \"web\": listen 127.0.0.1:80: bind: ...". */
int gd_listeners_bind(struct gd_listeners *ls, struct gd_worker_conf *const *confs,
		      size_t nconfs, char *err, size_t errlen);
/* Make the last bind's set the wanted one; close what no one uses. */
void gd_listeners_commit(struct gd_listeners *ls);
/* Undo the last bind (the reload it was for failed). */
void gd_listeners_abort(struct gd_listeners *ls);

/* The listeners of C, in its order, each with one more user; N of them. */
int gd_listeners_take(struct gd_listeners *ls, const struct gd_worker_conf *c,
		      struct gd_listener **out, size_t *n);
/* One user less for each; closes the ones the config dropped. */
void gd_listeners_release(struct gd_listeners *ls, struct gd_listener **v, size_t n);

struct gd_listener *gd_listeners_find(const struct gd_listeners *ls, const char *addr);
void gd_listeners_free(struct gd_listeners *ls);

/* Whether GREEN_PATCH value PATCH greens the socket module. */
bool gd_patch_has_socket(const char *patch);

#endif
