/*
 * parse.c - the size and module-list parsers shared by the shim and greend
 * (see parse.h for why there is only one of each).  No allocation and no
 * locale: the shim runs this from its constructor, before main.
 */
#include "parse.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const green__module_names[GREEN__NMODULES] = {
	[GREEN__MOD_SOCKET] = "socket", [GREEN__MOD_SELECT] = "select",
	[GREEN__MOD_TIME] = "time",     [GREEN__MOD_THREAD] = "thread",
	[GREEN__MOD_DNS] = "dns",       [GREEN__MOD_OS] = "os",
};

int green__module_index(const char *name, size_t len)
{
	for (int i = 0; i < GREEN__NMODULES; i++) {
		if (strlen(green__module_names[i]) == len &&
		    memcmp(green__module_names[i], name, len) == 0)
			return i;
	}
	return -1;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Keep the first problem only: it is the one the user reads first.  WORD
 * is the unknown name, or NULL for WHAT ("empty ...") alone. */
static void note(bool *failed, char *err, size_t errlen, const char *what,
                 const char *word, size_t len)
{
	if (*failed)
		return;
	*failed = true;
	if (!err || !errlen)
		return;
	if (word)
		snprintf(err, errlen, "unknown module '%.*s' (known: " GREEN__MODULES_KNOWN ")",
		         (int)(len > 64 ? 64 : len), word);
	else
		snprintf(err, errlen, "%s", what);
}

int green__patch_parse(const char *spec, unsigned *mask, char *err, size_t errlen)
{
	const char *p = spec;
	unsigned m = 0;
	bool failed = false;

	if (err && errlen)
		err[0] = '\0';
	while (blank(*p))
		p++;
	if (*p == '\0') {
		note(&failed, err, errlen, "empty module list", NULL, 0);
		goto out;
	}
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *word = p;
		bool remove = false;
		int idx;

		while (len && blank(*word)) {
			word++;
			len--;
		}
		while (len && blank(word[len - 1]))
			len--;
		if (len && *word == '-') {
			remove = true;
			word++;
			len--;
		}
		if (len == 0) {
			note(&failed, err, errlen, "empty item in the module list", NULL, 0);
		} else if (len == 3 && memcmp(word, "all", 3) == 0) {
			m = remove ? 0 : GREEN__MODULES_ALL;
		} else if (len == 4 && memcmp(word, "none", 4) == 0 && !remove) {
			m = 0;
		} else if ((idx = green__module_index(word, len)) >= 0) {
			if (remove)
				m &= ~(1u << idx);
			else
				m |= 1u << idx;
		} else {
			note(&failed, err, errlen, NULL, word, len);
		}
		if (!end)
			break;
		p = end + 1;
	}
out:
	*mask = m;
	if (failed) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int green__parse_size(const char *text, size_t *out)
{
	char *end;
	unsigned long long v;
	unsigned int shift = 0;

	if (!text || *text < '0' || *text > '9')
		goto bad;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno)
		goto bad;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: break;
	}
	if (shift && (*end == 'i' || *end == 'I'))
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end != '\0' || v > (SIZE_MAX >> shift))
		goto bad;
	*out = (size_t)v << shift;
	return 0;
bad:
	errno = EINVAL;
	return -1;
}
