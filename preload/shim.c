/*
 * shim.c - the shim's entry: reads GREEN_PATCH and the other GREEN_
 * variables, applies the module table, resolves the real libc functions and
 * decides per call whether to green it (shim_hub_for).
 */
#include "shim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

bool shim_patched[SHIM_NMODULES];
bool shim_debug;
__thread int shim_passthrough;
struct green_hub *shim_main_hub;

void *shim_resolve(const char *name)
{
	void *fn = dlsym(RTLD_NEXT, name);

	if (!fn) {
		/* Nothing sensible can follow: the program called a function
		 * that libc does not have. */
		static const char msg[] = "libgreen-preload: cannot resolve ";
		syscall(SYS_write, 2, msg, sizeof(msg) - 1);
		syscall(SYS_write, 2, name, strlen(name));
		syscall(SYS_write, 2, "\n", 1);
		abort();
	}
	return fn;
}

void shim_log(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n, len;

	len = snprintf(line, sizeof(line), "green[%d]: ", (int)getpid());
	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof(line) - (size_t)len - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	len += n;
	if (len > (int)sizeof(line) - 2)
		len = (int)sizeof(line) - 2;
	line[len++] = '\n';
	/* Straight to the kernel: the shim's own write() would green itself. */
	syscall(SYS_write, 2, line, (size_t)len);
}

/*
 * GREEN_PATCH (unset = "all"): parse.h has the grammar, shared with greend.
 * A problem is reported once and the program runs with the modules that
 * were understood, as SPEC.md asks.
 */
static void parse_patch(const char *spec)
{
	unsigned mask = GREEN__MODULES_ALL;
	char err[200];

	if (spec && green__patch_parse(spec, &mask, err, sizeof(err)) < 0)
		shim_log("GREEN_PATCH: %s", err);
	for (int i = 0; i < SHIM_NMODULES; i++)
		shim_patched[i] = mask & (1u << i);
}

static int64_t env_ms(const char *name, int64_t fallback)
{
	const char *v = getenv(name);
	char *end;
	long long ms;

	if (!v || !*v)
		return fallback;
	errno = 0;
	ms = strtoll(v, &end, 10);
	if (errno || *end || ms < 0) {
		char msg[200];
		int n = snprintf(msg, sizeof(msg),
		                 "libgreen-preload: %s: expected a number of milliseconds, "
		                 "not '%.40s'\n", name, v);
		if (n > 0)
			syscall(SYS_write, 2, msg, (size_t)n);
		return fallback;
	}
	return ms;
}

int64_t shim_stats_interval_ms = 1000;
int64_t shim_max_blocking_ms;

__attribute__((constructor)) static void shim_init(void)
{
	const char *debug = getenv("GREEN_DEBUG");
	const char *stack = getenv("GREEN_STACK_SIZE");
	size_t size;

	shim_debug = debug && strcmp(debug, "1") == 0;
	parse_patch(getenv("GREEN_PATCH"));
	if (shim_patched[SHIM_THREAD])
		shim_thread_check_layout();
	shim_rawsys_check_start();
	shim_tls_init();
	if (stack && green__parse_size(stack, &size) < 0) {
		shim_log("GREEN_STACK_SIZE: expected bytes or a K/M suffix, not '%.40s'; "
		         "using the default", stack);
	}
	shim_stats_interval_ms = env_ms("GREEN_STATS_INTERVAL_MS", 1000);
	if (shim_stats_interval_ms == 0)
		shim_stats_interval_ms = 1000;
	shim_max_blocking_ms = env_ms("GREEN_MAX_BLOCKING_MS", 0);
	green_set_max_blocking(shim_max_blocking_ms * GREEN_MSEC);
	if (shim_debug) {
		char list[128] = "";

		for (int i = 0; i < SHIM_NMODULES; i++) {
			if (shim_patched[i]) {
				strcat(list, list[0] ? "," : "");
				strcat(list, green__module_names[i]);
			}
		}
		shim_log("patched: %s", list[0] ? list : "none");
	}
	shim_listen_init();
	shim_report_start();
}

struct green_hub *shim_hub_for(enum shim_module module)
{
	struct green_hub *h;

	if (!shim_patched[module] || shim_passthrough)
		return NULL;
	h = green__hub_peek();
	if (unlikely(!h)) {
		/* Creating the hub calls functions we interpose (libev's
		 * eventfd, fcntl ...): they must reach libc. */
		shim_passthrough++;
		h = green__hub();
		shim_passthrough--;
		if (!h)
			return NULL;
		if (!__atomic_load_n(&shim_main_hub, __ATOMIC_ACQUIRE))
			__atomic_store_n(&shim_main_hub, h, __ATOMIC_RELEASE);
	}
	if (h->current->is_hub)
		return NULL;
	/* A drain greend asked for is done at the program's next call, on
	 * whichever of its threads comes first: the hub may be too busy to
	 * reach the before-poll hook soon (listen.c). */
	if (unlikely(__atomic_load_n(&shim_listen_drain_pending, __ATOMIC_RELAXED)))
		shim_listen_drain();
	return h;
}

__attribute__((visibility("default"))) int green_is_patched(const char *module)
{
	int idx;

	if (!module)
		return 0;
	idx = green__module_index(module, strlen(module));
	return idx >= 0 && shim_patched[idx];
}
