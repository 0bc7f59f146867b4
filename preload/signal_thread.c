/*
 * signal_thread.c - the calls about one green thread's signals: its mask
 * (pthread_sigmask, sigprocmask), what is pending for it (sigpending), and
 * signals sent to it (pthread_kill, pthread_sigqueue).  The records they
 * work on, and the delivery, are signal.c's; shim_signal.h says how they
 * fit together.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "signal_int.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* ---- masks ----------------------------------------------------------------------- */

void shim_sig_set_blocked(struct shim_gsig *gs, uint64_t blocked)
{
	struct sigstate *st = gs->st;

	shim_sig_set_blocked_only(gs, blocked);
	/* What was pending on the hub for want of a taker is this thread's
	 * now, if it lets it in (as the kernel gives a process's pending
	 * signal to the thread that unblocks it). */
	if (st && (st->taken & ~gs->blocked)) {
		uint64_t mine = st->taken & ~gs->blocked;

		for (int sig = 1; sig <= SIG_NMAX; sig++) {
			if (mine & SIG_BIT(sig))
				shim_sig_taken_move(st, sig, gs);
		}
	}
	if (gs->pending & ~gs->blocked)
		shim_sig_deliver(gs);
}

/* The calling green thread's record, if masks are per green thread. */
static struct shim_gsig *mask_owner(void)
{
	if (!shim_patched[SHIM_THREAD] || shim_passthrough)
		return NULL;
	return shim_sig_self();
}

static int green_sigmask(struct shim_gsig *gs, int how, const sigset_t *set, sigset_t *old)
{
	uint64_t cur = gs->blocked, bits;

	if (set) {
		bits = shim_set_bits(set);
		switch (how) {
		case SIG_BLOCK:
			bits = cur | bits;
			break;
		case SIG_UNBLOCK:
			bits = cur & ~bits;
			break;
		case SIG_SETMASK:
			break;
		default:
			return EINVAL;
		}
	}
	if (old)
		shim_bits_set(cur, old);
	if (set)
		shim_sig_set_blocked(gs, bits);
	return 0;
}

int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	struct shim_gsig *gs = mask_owner();

	if (!gs)
		return SHIM_REAL(pthread_sigmask)(how, set, old);
	return green_sigmask(gs, how, set, old);
}

int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	struct shim_gsig *gs = mask_owner();
	int rc;

	if (!gs)
		return SHIM_REAL(sigprocmask)(how, set, old);
	rc = green_sigmask(gs, how, set, old);
	if (rc) {
		errno = rc;
		return -1;
	}
	return 0;
}

/* Pending for the calling thread: the kernel's, the hub's, its own. */
int sigpending(sigset_t *set)
{
	struct shim_gsig *gs = mask_owner();
	sigset_t kernel;
	uint64_t bits;

	if (!gs || !gs->st)
		return SHIM_REAL(sigpending)(set);
	if (SHIM_REAL(sigpending)(&kernel) < 0)
		return -1;
	bits = (shim_set_bits(&kernel) | gs->st->taken | gs->pending) & gs->blocked;
	shim_bits_set(bits, set);
	return 0;
}

/* ---- sending to a green thread ----------------------------------------------------- */

int shim_sig_target(pthread_t th, struct shim_gsig **out)
{
	struct sigstate *st = shim_sigstate();

	*out = NULL;
	if (!st)
		return 0;
	if (pthread_equal(th, SHIM_REAL(pthread_self)())) {
		*out = &st->main_gs;
		return 0;
	}
	return shim_thread_gsig_find(th, out);
}

/*
 * The signal goes into the target's pending set; the target runs its
 * handler on its own stack when it next passes a delivery point, and a
 * call it is parked in ends with EINTR where the kernel's would.  Sent to
 * itself, it runs before the call returns, as raise's does.
 */
static int send_green(struct shim_gsig *gs, int sig, const union sigval *value)
{
	struct sigstate *st = gs->st;
	siginfo_t info;

	if (sig < 0 || sig >= _NSIG || sig > SIG_NMAX)
		return EINVAL;
	if (sig == 0)
		return 0;
	if (!st)
		return 0; /* finished, not joined yet: glibc drops the signal */
	shim_sig_default_info(sig, &info);
	info.si_code = value ? SI_QUEUE : SI_TKILL;
	if (value)
		info.si_value = *value;
	if (shim_sig_post(st, gs, sig, &info) < 0)
		return errno;
	if (gs == shim_sig_self()) {
		if (gs->pending & ~gs->blocked)
			shim_sig_deliver(gs);
	} else {
		shim_sig_kick(st);
	}
	return 0;
}

/* A green thread's record must only be touched on its own hub's thread. */
static bool on_hub_of(const struct shim_gsig *gs)
{
	return !shim_passthrough && gs->st && gs->st == shim_tls_sig;
}

void shim_sig_wake(struct shim_gsig *gs)
{
	if (!gs->st)
		return;
	if (on_hub_of(gs))
		shim_sig_kick(gs->st);
	else
		ev_async_send(gs->st->loop, &gs->st->async);
}

int pthread_kill(pthread_t th, int sig)
{
	struct shim_gsig *gs = NULL;
	int rc = shim_patched[SHIM_THREAD] ? shim_sig_target(th, &gs) : 0;

	if (rc)
		return rc;
	if (!gs)
		return SHIM_REAL(pthread_kill)(th, sig);
	if (!on_hub_of(gs))
		return sig == 0 ? 0 : (kill(getpid(), sig) < 0 ? errno : 0);
	return send_green(gs, sig, NULL);
}

int pthread_sigqueue(pthread_t th, int sig, const union sigval value)
{
	struct shim_gsig *gs = NULL;
	int rc = shim_patched[SHIM_THREAD] ? shim_sig_target(th, &gs) : 0;

	if (rc)
		return rc;
	if (!gs)
		return SHIM_REAL(pthread_sigqueue)(th, sig, value);
	if (!on_hub_of(gs))
		return sig == 0 ? 0 : (sigqueue(getpid(), sig, value) < 0 ? errno : 0);
	return send_green(gs, sig, &value);
}
