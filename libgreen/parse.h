/*
 * parse.h - the text formats that the shim, greend and greenctl all read:
 * sizes ("256K", "1MiB") and GREEN_PATCH module lists ("all,-thread",
 * "socket, dns").  They live once, here, so the daemon can never accept a
 * value the shim reads differently.  Self-contained (no libev, no hub), so
 * greend links it from libgreen.a and the shim keeps it hidden.
 */
#ifndef GREEN_PARSE_H
#define GREEN_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define GREEN__PARSE_HIDDEN __attribute__((visibility("hidden")))

/* The patchable modules, in the order of SPEC.md's table. */
enum green__module {
	GREEN__MOD_SOCKET,
	GREEN__MOD_SELECT,
	GREEN__MOD_TIME,
	GREEN__MOD_THREAD,
	GREEN__MOD_DNS,
	GREEN__MOD_OS,
	GREEN__NMODULES
};
#define GREEN__MODULES_ALL ((1u << GREEN__NMODULES) - 1)
/* For messages: every word a module list may hold. */
#define GREEN__MODULES_KNOWN "socket, select, time, thread, dns, os, all, none"

GREEN__PARSE_HIDDEN extern const char *const green__module_names[GREEN__NMODULES];

/* The module named by the LEN bytes at NAME, or -1. */
GREEN__PARSE_HIDDEN int green__module_index(const char *name, size_t len);

/*
 * Parse a GREEN_PATCH value into *MASK (bit i = module i).  Items are
 * separated by commas and may be padded with blanks; they are applied left
 * to right from an empty set: "all", "none", "NAME", "-NAME" ("-all" is
 * "none").  Returns 0, or -1 with errno EINVAL and the first problem (an
 * empty list or item, an unknown name) as a sentence in ERR; *MASK then
 * still holds what the valid items gave, so a caller that must go on (the
 * shim) can run with the known modules.
 */
GREEN__PARSE_HIDDEN int green__patch_parse(const char *spec, unsigned *mask,
                                           char *err, size_t errlen);

/* Parse "65536", "256K", "64KiB", "1M", "2G" (k/m/g in any case, an
 * optional "i" after the letter and "B" at the end) into bytes.  Never
 * overflows: a value that does not fit size_t, junk, a sign or blanks give
 * -1 with errno EINVAL. */
GREEN__PARSE_HIDDEN int green__parse_size(const char *text, size_t *out);

#endif
