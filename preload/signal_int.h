/*
 * signal_int.h - what signal.c (handlers, records, delivery, EINTR),
 * signal_thread.c (masks, sending) and signal_wait.c (sigwait and friends,
 * pause, sigsuspend, signalfd) share: the per-OS-thread record and the ring
 * the wrapper writes from signal context.  Nothing outside these files
 * includes it.
 */
#ifndef GREEN_SIGNAL_INT_H
#define GREEN_SIGNAL_INT_H

#include "shim_io.h"

#include <signal.h>

/* Signals 1..64 as bits of a word; 32 and 33 are glibc's own (SIGCANCEL,
 * SIGSETXID), which no program may block. */
#define SIG_BIT(sig) ((uint64_t)1 << ((sig) - 1))
#define SIG_NMAX 64
#define SIG_UNBLOCKABLE (SIG_BIT(SIGKILL) | SIG_BIT(SIGSTOP) | SIG_BIT(32) | SIG_BIT(33))

/*
 * What the wrapper leaves for the hub (a slot is filled when seq is its
 * ticket + 1): a signal to hand to a green thread (SIG_EV_PEND), a handler
 * it ran whose EINTR the hub must aim (SIG_EV_INTR), or a call to make
 * (SIG_EV_CALL: shim_sig_defer).
 */
enum { SIG_EV_PEND, SIG_EV_INTR, SIG_EV_CALL };
#define SIG_RING 256

struct sig_event {
	unsigned int seq;
	int kind;
	int sig;
	void (*fn)(void *);
	void *arg;
	siginfo_t info;
};

/* A green sigwait, sigwaitinfo or sigtimedwait parked on the hub. */
struct sig_waiter {
	struct sig_waiter *next, *prev;
	green_t *g;
	struct shim_gsig *gs;
	uint64_t set;
};

/*
 * One per OS thread that has a hub: its ev_async, whose callback does on
 * the hub what the wrapper may not do in signal context, the parked calls
 * a handler may interrupt, and the green threads' records.
 */
struct sigstate {
	struct ev_loop *loop;
	ev_async async;
	unsigned int any;       /* handlers run on this thread */
	unsigned int norestart; /* ... of which without SA_RESTART */
	struct shim_intr *head; /* armed waits */

	/* the ring: tickets from ring_head, read from ring_tail on the hub */
	unsigned int ring_head, ring_tail;
	struct sig_event ring[SIG_RING];
	uint64_t ring_lost;     /* signals that found the ring full */

	uint64_t waited;        /* what the parked sigwaits wait for */
	struct sig_waiter *waiters;
	/* Pending on the hub: signals no green thread would take yet. */
	uint64_t taken;
	siginfo_t taken_info[SIG_NMAX];
	struct shim_sigq taken_more;

	struct shim_gsig main_gs; /* the main greenlet's record */
	struct shim_gsig *records; /* every record, main_gs first */
	/* How many records do not block each signal: the kernel blocks for
	 * the OS thread what none lets in. */
	unsigned int unblocked[SIG_NMAX];
};

extern __thread struct sigstate *shim_tls_sig;
/* This OS thread's record, made on first need (NULL without a hub). */
struct sigstate *shim_sigstate(void);

uint64_t shim_set_bits(const sigset_t *set);
void shim_bits_set(uint64_t bits, sigset_t *set);
/* Give the calling green thread's record a new mask (the kernel's follows),
 * then deliver what it now lets in. */
void shim_sig_set_blocked(struct shim_gsig *gs, uint64_t blocked);
/* Change gs's mask and the kernel's with it; delivers nothing. */
void shim_sig_set_blocked_only(struct shim_gsig *gs, uint64_t blocked);
/* sig is now pending on gs (hub side, normal context), counted for the
 * EINTR of gs's waits if gs lets it in: 0, or -1 with EAGAIN when a
 * real-time signal finds gs's queue full (RLIMIT_SIGPENDING), as the
 * kernel's sigqueue says. */
int shim_sig_post(struct sigstate *st, struct shim_gsig *gs, int sig, const siginfo_t *info);
/* Every instance of sig pending on the hub is gs's now, oldest first. */
void shim_sig_taken_move(struct sigstate *st, int sig, struct shim_gsig *gs);
/* What the kernel fills in for a signal sent by this process. */
void shim_sig_default_info(int sig, siginfo_t *info);
/* Run the handlers of what is pending on gs and not blocked. */
void shim_sig_deliver(struct shim_gsig *gs);
/* Take a signal of set pending on the hub or on gs: its number, or 0. */
int shim_sig_take(struct sigstate *st, struct shim_gsig *gs, uint64_t set,
                  siginfo_t *info);
/* The hub's work after a signal: drain the ring, wake what it concerns. */
void shim_sig_kick(struct sigstate *st);

#endif
