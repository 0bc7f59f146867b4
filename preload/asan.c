/*
 * asan.c - what a sanitized shim (make SAN=1) needs to run uninstrumented
 * programs, which get the ASan runtime through LD_PRELOAD (mk/check.sh
 * puts it first).  Nothing here in a normal build.
 */
#include "shim.h"

#ifdef GREEN__ASAN
#include <stddef.h>
#include <stdint.h>

/*
 * A preloaded ASan runtime is initialised last among the initial objects,
 * or earlier by the first malloc.  When that malloc is a library
 * constructor's newlocale() (libp11-kit's, which curl loads through
 * GnuTLS), glibc holds its locale lock for writing, and ASan's start-up
 * looks up swift_demangle and calls dlerror() on the miss, whose gettext
 * takes the same lock for reading: glibc's rwlock answers EDEADLK, gettext
 * unlocks anyway, and the corrupted lock hangs the next setlocale().  The
 * program hangs whether or not the shim is loaded.  With a definition
 * here the lookup finds one and dlerror() is never called.  The runtime
 * only asks it to demangle Swift names ("_T..."), and NULL sends those to
 * its C++ demangler.
 */
char *swift_demangle(const char *mangled, size_t mangled_len, char *out,
                     size_t *out_len, uint32_t flags);
char *swift_demangle(const char *mangled, size_t mangled_len, char *out,
                     size_t *out_len, uint32_t flags)
{
	return NULL;
}
#endif
