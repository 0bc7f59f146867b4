/*
 * log.c - greend's diagnostics, written with one write(2) per line so lines
 * from greend and from the workers it forwards never interleave mid-line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static const char *log_prog = "greend";
static bool log_journal;

/* systemd.exec(5): JOURNAL_STREAM is "DEV:INODE" of the stream systemd
 * connected; it may have been inherited past a redirection, so the
 * prefixes are used only while stderr is still that stream. */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void gd_log_init(const char *prog)
{
	log_prog = prog;
	log_journal = stderr_is_journal();
}

void gd_log(int prio, const char *fmt, ...)
{
	char line[2048];
	int n, saved = errno;
	va_list ap;

	if (prio > LOG_INFO && !getenv("GREEND_DEBUG"))
		goto out;
	if (log_journal)
		n = snprintf(line, sizeof(line), "<%d>", prio);
	else
		n = snprintf(line, sizeof(line), "%s: ", log_prog);
	if (n < 0)
		goto out;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	n = (int)strlen(line);
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	while (write(STDERR_FILENO, line, (size_t)n) < 0 && errno == EINTR)
		;
out:
	errno = saved;
}
