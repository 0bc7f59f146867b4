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

/* Prints what the call returned, errno's name on failure. */
#define FUTEX_SHOW(what, call)                                                 \
	do {                                                                   \
		long rc_ = (call);                                             \
		show((what), rc_, errno);                                      \
	} while (0)

#endif
