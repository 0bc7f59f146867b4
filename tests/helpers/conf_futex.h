/*
 * conf_futex.h - what the conf_futex_* programs share: the futex system
 * call the way Rust's std and libstdc++ make it, through libc's syscall().
 */
#ifndef CONF_FUTEX_H
#define CONF_FUTEX_H

#include "conf_common.h"

#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>

static inline long futex(uint32_t *addr, int op, uint32_t val,
                         const struct timespec *ts, uint32_t *addr2, uint32_t val3)
{
	return syscall(SYS_futex, addr, op, val, ts, addr2, val3);
}

/* The requeue forms pass a count where the others pass a timeout. */
static inline long futex_requeue(uint32_t *addr, int op, uint32_t nr_wake,
                                 uint32_t nr_requeue, uint32_t *addr2, uint32_t val3)
{
	return syscall(SYS_futex, addr, op, nr_wake, (unsigned long)nr_requeue, addr2, val3);
}

/*
 * Wait (up to 5 s) until n threads wait on addr.  FUTEX_REQUEUE of nobody
 * to wake onto the same word moves nothing and counts the waiters; private
 * is FUTEX_PRIVATE_FLAG or 0, as the waiters used.  A sleep instead could
 * be too short on a loaded machine, and the waker's line would differ.
 */
static inline void await_waiters(uint32_t *addr, int private, long n)
{
	for (int i = 0; i < 5000; i++) {
		if (futex_requeue(addr, FUTEX_REQUEUE | private, 0, INT_MAX, addr, 0) >= n)
			return;
		sleep_ms(1);
	}
}

/* Prints what the call returned, errno's name on failure. */
#define FUTEX_SHOW(what, call)                                                 \
	do {                                                                   \
		long rc_ = (call);                                             \
		show((what), rc_, errno);                                      \
	} while (0)

#endif
