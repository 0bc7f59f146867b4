/*
 * notify.h - the systemd notification protocol of sd_notify(3), spoken
 * directly: one datagram of newline-separated KEY=VALUE assignments to the
 * AF_UNIX socket named by $NOTIFY_SOCKET (a path, or "@name" for the
 * abstract namespace).  No libsystemd needed.
 */
#ifndef GREEND_NOTIFY_H
#define GREEND_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

/* Read and unset NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID. */
void gd_notify_init(void);
bool gd_notify_enabled(void);
/* Send one message; 0 when sent or when there is no NOTIFY_SOCKET. */
int gd_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The watchdog interval in microseconds, 0 when none was asked for. */
uint64_t gd_notify_watchdog_usec(void);
/* Pet the watchdog every half interval, but only from a prepare watcher,
 * i.e. after the loop has run every callback of a full pass. */
void gd_notify_watchdog_start(struct ev_loop *loop);
void gd_notify_watchdog_stop(struct ev_loop *loop);

#endif
