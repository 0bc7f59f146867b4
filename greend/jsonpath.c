/*
 * jsonpath.c - typed getters for JSON values that name the path they were
 * reading in their errors ("workers[1].instances: expected an integer from
 * 1 to 1024"), so every validator of untrusted JSON says the same things
 * the same way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonpath.h"

int gd_jfail(struct gd_jctx *c, const char *path, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s: %s: %s", c->name, path, msg);
	errno = EINVAL;
	return -1;
}

int gd_joom(struct gd_jctx *c)
{
	snprintf(c->err, c->errlen, "%s: out of memory", c->name);
	errno = ENOMEM;
	return -1;
}

int gd_jstring(struct gd_jctx *c, const char *path, json_t *v, size_t maxlen,
	       const char **out)
{
	size_t n;

	if (!json_is_string(v))
		return gd_jfail(c, path, "expected a string");
	n = json_string_length(v);
	if (n == 0)
		return gd_jfail(c, path, "must not be empty");
	if (n > maxlen)
		return gd_jfail(c, path, "longer than %zu bytes", maxlen);
	*out = json_string_value(v);
	return 0;
}

int gd_jint(struct gd_jctx *c, const char *path, json_t *v, long long lo,
	    long long hi, long long *out)
{
	long long x = 0;

	if (!json_is_integer(v))
		goto bad;
	x = json_integer_value(v);
	if (x < lo || x > hi)
		goto bad;
	*out = x;
	return 0;
bad:
	return gd_jfail(c, path, "expected an integer from %lld to %lld", lo, hi);
}

int gd_jlong(struct gd_jctx *c, const char *path, json_t *v, long lo, long hi,
	     long *out)
{
	long long x = 0;

	if (gd_jint(c, path, v, lo, hi, &x) < 0)
		return -1;
	*out = (long)x;
	return 0;
}

int gd_jnumber(struct gd_jctx *c, const char *path, json_t *v, double lo,
	       double hi, double *out)
{
	double x;

	if (!json_is_number(v))
		goto bad;
	x = json_number_value(v);
	if (!(x >= lo && x <= hi))
		goto bad;
	*out = x;
	return 0;
bad:
	return gd_jfail(c, path, "expected a number from %g to %g", lo, hi);
}

int gd_jmode(struct gd_jctx *c, const char *path, json_t *v, int *out)
{
	const char *s = NULL;
	char *end;
	long m;

	if (!json_is_string(v))
		goto bad;
	s = json_string_value(v);
	if (strlen(s) < 3 || strlen(s) > 4 || strspn(s, "01234567") != strlen(s))
		goto bad;
	m = strtol(s, &end, 8);
	if (*end || m < 0 || m > 0777)
		goto bad;
	*out = (int)m;
	return 0;
bad:
	return gd_jfail(c, path, "expected an octal mode string such as \"0660\"");
}

bool gd_valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 64)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789_.-") == n;
}
