/*
 * log.h - greend's diagnostics: one line per message on stderr.
 *
 * Under systemd (JOURNAL_STREAM set) each line carries a "<N>" priority
 * prefix that journald understands; otherwise the program name leads.
 */
#ifndef GREEND_LOG_H
#define GREEND_LOG_H

#include <syslog.h>

void gd_log_init(const char *prog);
void gd_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) gd_log(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) gd_log(LOG_INFO, __VA_ARGS__)
#define log_notice(...) gd_log(LOG_NOTICE, __VA_ARGS__)
#define log_warnx(...) gd_log(LOG_WARNING, __VA_ARGS__)
#define log_errx(...) gd_log(LOG_ERR, __VA_ARGS__)

#endif
