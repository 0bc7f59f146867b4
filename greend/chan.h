/*
 * chan.h - greend's end of a worker channel (SOCK_SEQPACKET, one JSON
 * object per message).  Everything a worker sends is untrusted: messages
 * are size-bounded, type-checked field by field, rate-limited with token
 * buckets for messages and for bytes, and a worker that keeps flooding past
 * them is disconnected.  Past the byte budget greend stops reading the
 * channel for as long as the budget needs to refill, so a flood costs it
 * nothing while it lasts (the worker's sends fail, as they do when greend
 * is slow).
 * The parsing half has no I/O so it can be tested on its own.
 */
#ifndef GREEND_CHAN_H
#define GREEND_CHAN_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>
#include <jansson.h>

enum gd_msg {
	GD_MSG_MALFORMED = -1,
	GD_MSG_HELLO = 0,
	GD_MSG_STATS,
	GD_MSG_BLOCKED,
	GD_MSG_DUMP,
	GD_MSG_LISTEN,
};

/* Token bucket: a worker may burst this many messages, refilled per second. */
#define GD_CHAN_BURST 200.0
#define GD_CHAN_REFILL_PER_S 100.0
/* Dropped messages within one second that make greend hang up. */
#define GD_CHAN_FLOOD_DROPS 1000
/* Byte budget: a burst of this many bytes, refilled per second. */
#define GD_CHAN_BYTES_BURST (256.0 * 1024)
#define GD_CHAN_BYTES_PER_S (64.0 * 1024)
/* Pauses for the byte budget within the window that make greend hang up. */
#define GD_CHAN_FLOOD_PAUSES 10
#define GD_CHAN_FLOOD_WINDOW_S 30.0
/* Messages handled per wakeup, so one worker cannot starve the loop. */
#define GD_CHAN_BATCH 64

struct gd_chan {
	int fd;                 /* -1: none, or closed */
	ev_io io;
	ev_timer resume;        /* reading paused for the byte budget */
	struct ev_loop *loop;
	void *owner;
	void (*on_dump)(void *owner, json_t *greenlets);
	void (*on_listen)(void *owner);  /* a "listen" report arrived */
	char closed_why[48];    /* "", "closed by worker", "flooding", ... */

	bool hello;
	long long hello_pid;
	json_t *patched;        /* array of module names from hello, or NULL */
	json_t *warnings;       /* hello's modules left unpatched and why, or NULL */

	bool have_stats;
	double stats_at;        /* monotonic time of the last accepted stats */
	long long alive, spawned, finished, switches, timeouts;
	long long iterations, hub_blocked;
	double max_blocking_ms;
	double switches_per_s;
	double prev_at;
	long long prev_switches;

	/* {"type":"listen"}: the shim's view of the listeners greend gave it */
	bool have_listen;
	char listen_state[12];  /* "idle", "accepting", "draining" */
	long long listen_accepted, listen_open;

	long long blocked_reports;
	json_t *last_blocked;   /* {"greenlet":N,"name":"...","ms":F} */

	long long received, malformed, dropped;
	double tokens, tokens_at;
	double drop_window_at;
	long long drop_window;

	double bytes, bytes_at;         /* byte bucket */
	long long throttled;            /* pauses for the byte budget */
	double pause_window_at;
	long long pause_window;
	bool dump_wanted;               /* a dump was asked for and not yet seen */
	bool dump_truncated;            /* the last dump was cut to fit a message */
	long long dump_left_out;        /* and this many greenlets were not in it */
};

void gd_chan_init(struct gd_chan *ch, void *owner);
/* Reset everything learnt from a worker (a new process took the slot). */
void gd_chan_reset(struct gd_chan *ch);
/* Parse one message; on GD_MSG_DUMP *DUMP gets a new reference to the
 * sanitized greenlet array, and dump_truncated/dump_left_out say whether
 * the worker cut it to fit ("truncated", "left_out"). */
enum gd_msg gd_chan_parse(struct gd_chan *ch, const char *buf, size_t len,
			  double now, json_t **dump);
/* Take a token; false means drop this message.  Sets *FLOOD when the
 * worker has earned a disconnect. */
bool gd_chan_admit(struct gd_chan *ch, double now, bool *flood);

/* Take LEN bytes from the byte budget; false means drop this message and
 * stop reading for *PAUSE_S.  A dump greend asked for gets past an empty
 * budget once (it then owes the bytes).  Sets *FLOOD when the worker has
 * earned a disconnect. */
bool gd_chan_admit_bytes(struct gd_chan *ch, double now, size_t len, double *pause_s,
			 bool *flood);

/* I/O half: start reading FD (greend's end, non-blocking) on LOOP. */
void gd_chan_open(struct gd_chan *ch, struct ev_loop *loop, int fd);
void gd_chan_close(struct gd_chan *ch, struct ev_loop *loop, const char *why);
/* Ask the worker for a dump; -1 with errno ENOTCONN or EAGAIN. */
int gd_chan_request_dump(struct gd_chan *ch);
/* Ask the worker to stop accepting on greend's listeners. */
int gd_chan_request_drain(struct gd_chan *ch);

#endif
