/*
 * log.h - greend's diagnostics: one line per message on stderr.
 *
 * Under systemd (JOURNAL_STREAM set) each line carries a "<N>" priority
 * prefix that journald understands; otherwise the program name leads.
 *
 * stderr may be a pipe nobody reads (journald stalled, a pager paused):
 * greend must keep supervising, so a line is written without blocking,
 * kept in a bounded buffer while the reader is away, and dropped (and
 * counted) once that is full.  Formatting a line and emitting it are two
 * functions, so a new prefix never touches the non-blocking part.
 */
#ifndef GREEND_LOG_H
#define GREEND_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <syslog.h>

#include <ev.h>

/* Bytes kept while stderr does not take them. */
#define GD_LOG_BUFFER (64 * 1024)
/* Longest line gd_log writes (worker lines forwarded by gd_log_emit may be
 * longer, up to GD_LOG_BUFFER). */
#define GD_LOG_LINE_MAX 2048

void gd_log_init(const char *prog);
/* Look at fd 2 again (after it was redirected, as daemonizing does). */
void gd_log_reopen(void);
/* Flush a backlog from LOOP as stderr drains (NULL detaches). */
void gd_log_attach(struct ev_loop *loop);

void gd_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One line, prefixed for PRIO, with its newline, into BUF; its length. */
size_t gd_log_format(char *buf, size_t size, int prio, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
/* Emit one whole line (with its newline) without blocking: written now,
 * queued, or dropped and counted. */
void gd_log_emit(const char *line, size_t n);
/* Lines dropped since start because stderr did not take them. */
long long gd_log_dropped(void);

#define log_debug(...) gd_log(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) gd_log(LOG_INFO, __VA_ARGS__)
#define log_notice(...) gd_log(LOG_NOTICE, __VA_ARGS__)
#define log_warnx(...) gd_log(LOG_WARNING, __VA_ARGS__)
#define log_errx(...) gd_log(LOG_ERR, __VA_ARGS__)

#endif
