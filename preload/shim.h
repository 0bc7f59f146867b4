/*
 * shim.h - what the preload shim's module files share: the rule that decides
 * whether a call is greened, the real libc functions, the per-fd table and
 * the module flags.
 *
 * The rule (libco's, made exact): a call is greened only when its module is
 * patched, the calling OS thread is not one of the shim's own (DNS pool,
 * monitor), and the running greenlet is not the hub, whose libev loop must
 * reach the kernel.  Everything else goes straight to the real function.
 */
#ifndef GREEN_SHIM_H
#define GREEN_SHIM_H

#include "internal.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* The module table and GREEN_PATCH's grammar are libgreen's (parse.h),
 * shared with greend; these are the shim's short names for them. */
enum shim_module {
	SHIM_SOCKET = GREEN__MOD_SOCKET,
	SHIM_SELECT = GREEN__MOD_SELECT,
	SHIM_TIME = GREEN__MOD_TIME,
	SHIM_THREAD = GREEN__MOD_THREAD,
	SHIM_DNS = GREEN__MOD_DNS,
	SHIM_OS = GREEN__MOD_OS,
	SHIM_NMODULES = GREEN__NMODULES
};

extern bool shim_patched[SHIM_NMODULES];

/* Set on the shim's own threads, and while the shim itself runs code that
 * may call interposed functions (hub creation). */
extern __thread int shim_passthrough;

/* The first hub the shim created: the program's main one, which reports. */
extern struct green_hub *shim_main_hub;

/* Exported like eventlet's is_monkey_patched: 1 if module is greened. */
int green_is_patched(const char *module);
/* glibc's internal alias, interposed too. */
int __nanosleep(const struct timespec *req, struct timespec *rem);

/* Resolve the next definition of a symbol (libc's), once. */
void *shim_resolve(const char *name);
#define SHIM_REAL(name)                                                        \
	({                                                                     \
		static __typeof__(&name) real_;                                \
		__typeof__(&name) r_ = __atomic_load_n(&real_, __ATOMIC_ACQUIRE); \
		if (!r_) {                                                     \
			r_ = (__typeof__(&name))shim_resolve(#name);           \
			__atomic_store_n(&real_, r_, __ATOMIC_RELEASE);         \
		}                                                              \
		r_;                                                            \
	})

/*
 * The hub to green this call on, or NULL to pass it through.  Creates the
 * thread's hub on first use.
 */
struct green_hub *shim_hub_for(enum shim_module module);

static inline bool shim_active(enum shim_module module)
{
	return shim_patched[module] && !shim_passthrough;
}

/* GREEN_DEBUG=1: one line per decision on stderr. */
extern bool shim_debug;
void shim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define SHIM_DEBUG(...)                                                        \
	do {                                                                   \
		if (unlikely(shim_debug))                                      \
			shim_log(__VA_ARGS__);                                 \
	} while (0)

/* ---- the fd table --------------------------------------------------------- */

enum shim_fd_kind {
	SHIM_FD_UNKNOWN = 0, /* not looked at yet */
	SHIM_FD_SOCKET,
	SHIM_FD_PIPE,        /* pipes and FIFOs */
	SHIM_FD_TTY,
	SHIM_FD_SIGNAL,      /* a signalfd: reads park (signal.c), nothing else */
	SHIM_FD_OTHER        /* regular files, devices, epoll fds ...: never parked */
};

struct shim_fd {
	uint8_t kind;
	/* What the program asked for (F_SETFL, FIONBIO, SOCK_NONBLOCK). */
	bool user_nonblock;
	/* The shim made the open file description non-blocking itself; only
	 * ever for sockets this process created, never for inherited fds. */
	bool shim_nonblock;
	bool is_listener;
	/* The description is shared with a forked process, whose exec may
	 * take O_NONBLOCK off it (exec.c): shim_nonblock is then what the
	 * shim asked for, not necessarily what the kernel has. */
	bool desc_shared;
	/* exec.c took O_NONBLOCK off for an exec or spawn under way. */
	bool exec_cleared;
	bool stream;         /* SOCK_STREAM, known from socket/socketpair/accept */
	/* A listening socket greend holds for this worker (LISTEN_FDS, or the
	 * program's own fd after bind adopted one: listen.c). */
	bool greend_listener;
	/* greend made its description non-blocking for every instance: the
	 * kernel keeps O_NONBLOCK whatever the program sets, exec included. */
	bool greend_nonblock;
	/* Accepted from a greend listener: counted open until closed. */
	bool greend_conn;
	bool rx_drained;     /* the last receive emptied the queue (a hint) */
	int64_t rcvtimeo_ns; /* SO_RCVTIMEO, 0 = none */
	int64_t sndtimeo_ns; /* SO_SNDTIMEO, 0 = none */
	uint32_t gen;        /* bumped on close: stale wake-ups are ignored */
	int busy;            /* operations in flight (close waits for them) */
};

/* The entry for fd, discovering its kind with fstat on first use; NULL for
 * fd < 0 or when the table cannot grow. */
struct shim_fd *shim_fd_get(int fd);
/* Record a fd the shim created (socket, accept, pipe ...). */
void shim_fd_created(int fd, enum shim_fd_kind kind, bool user_nonblock,
                     bool shim_nonblock);
/* Forget fd (before the real close) and wake its waiters with EBADF. */
void shim_fd_closing(int fd);
/* The same for every fd from first to last (close_range, closefrom). */
void shim_fd_closing_range(unsigned int first, unsigned int last);
/* dup/dup2/dup3/F_DUPFD: the new fd shares the open file description. */
void shim_fd_duped(int oldfd, int newfd, bool cloexec);
/* fn for every fd from first to last whose kind the table knows. */
typedef void (*shim_fd_visit_fn)(int fd, struct shim_fd *e, void *arg);
void shim_fd_each(unsigned int first, unsigned int last, shim_fd_visit_fn fn, void *arg);

/* exec.c: fork shares every description with the child. */
void shim_exec_forked(void);

/*
 * Park until fd is ready for events (GREEN_READ/GREEN_WRITE) or until the
 * deadline.  Returns 0, or -1 with errno: EAGAIN when the deadline came from
 * SO_RCVTIMEO/SO_SNDTIMEO (as libc reports it), EINTR, EBADF if the fd was
 * closed meanwhile.
 */
int shim_wait_fd(struct green_hub *h, int fd, int events, int64_t deadline);

/* A timespec the kernel would take as a timeout. */
static inline bool shim_ts_valid(const struct timespec *ts)
{
	return ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000L;
}

/* Deadline for a relative timeout in ns (0 = none → GREEN_FOREVER). */
static inline int64_t shim_deadline_after(int64_t ns)
{
	return ns > 0 ? green_now() + ns : GREEN_FOREVER;
}

/* Reporting (report.c). */
extern int64_t shim_stats_interval_ms;
extern int64_t shim_max_blocking_ms;
void shim_report_start(void);

/* ---- listeners greend hands over (listen.c) ------------------------------- */

/* Take LISTEN_FDS/LISTEN_PID: record fds 3... in the table. */
void shim_listen_init(void);
/* Whether this process got listeners from greend. */
bool shim_listen_any(void);
/* A connection was accepted from / closed on a greend listener. */
void shim_listen_accepted(void);
void shim_listen_conn_closed(void);
/* The program calls accept on a greend listener (it serves). */
void shim_listen_serving(void);
/* greend asked for a drain: the reporter thread sets this, and the main
 * hub's thread does the drain at its next interposed call or poll. */
extern int shim_listen_drain_pending;
void shim_listen_drain(void);
/* The "listen" message when something changed since the last one (or
 * AGAIN: the last one was dropped), into BUF; 0 when there is nothing to say. */
size_t shim_listen_report(char *buf, size_t cap, bool again);
/* The program closes fd: if it is the channel to greend, stop using it. */
void shim_report_fd_closing(int fd);
/* close_range/closefrom: the same for every fd from first to last. */
void shim_report_range_closing(unsigned int first, unsigned int last);

/* A line for greend's hello "warnings" (a module left unpatched, and why);
 * call before the reporting thread starts. */
void shim_report_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* At start: leave the thread module unpatched (and say why) if glibc's
 * objects are not laid out as it assumes (thread_layout.c). */
void shim_thread_check_layout(void);
/* Then: per-green-thread TLS, or the thread module left unpatched (and
 * why) where a module's TLS cannot be managed (tls.c). */
void shim_tls_init(void);
/* Before that: leave the thread module unpatched (and say why) if a module
 * makes futex system calls with its own syscall instruction; after a
 * dlopen, note such a module's code, whose pthread_create calls then make
 * OS threads (rawsys.c). */
void shim_rawsys_check_start(void);
void shim_rawsys_modules_changed(void);
bool shim_rawsys_native_caller(const void *addr);
/* The module loaded at base from path is the shim itself, or its file name
 * begins with one of the n prefixes. */
bool shim_module_among(const char *path, uintptr_t base, const char *const *prefixes,
                       size_t n);

/* Module hooks run on fork in the child (os.c calls them). */
void shim_signal_after_fork(void);
void shim_thread_after_fork(void);
void shim_dns_after_fork(void);

#endif
