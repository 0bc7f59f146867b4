/*
 * jsonpath.h - typed getters for JSON values whose errors name the JSON
 * path being read, and the file it came from: "NAME: PATH: what".  Each
 * returns 0, or -1 with errno EINVAL (ENOMEM for gd_joom) and the message
 * in the context's buffer.
 */
#ifndef GREEND_JSONPATH_H
#define GREEND_JSONPATH_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct gd_jctx {
	const char *name;       /* the file, or what stands for it */
	const char *base_dir;   /* relative paths resolve against it (config.c) */
	char *err;
	size_t errlen;
};

int gd_jfail(struct gd_jctx *c, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int gd_joom(struct gd_jctx *c);

/* A non-empty string of at most MAXLEN bytes (borrowed from V). */
int gd_jstring(struct gd_jctx *c, const char *path, json_t *v, size_t maxlen,
	       const char **out);
/* An integer, a long or a number from LO to HI. */
int gd_jint(struct gd_jctx *c, const char *path, json_t *v, long long lo,
	    long long hi, long long *out);
int gd_jlong(struct gd_jctx *c, const char *path, json_t *v, long lo, long hi,
	     long *out);
int gd_jnumber(struct gd_jctx *c, const char *path, json_t *v, double lo,
	       double hi, double *out);
/* An octal mode string, "0660" or "022". */
int gd_jmode(struct gd_jctx *c, const char *path, json_t *v, int *out);

/* A worker name: 1 to 64 of A-Z a-z 0-9 _ . - */
bool gd_valid_name(const char *s);

#endif
