/*
 * spawn.c - start one worker process.
 *
 * The child's order matters: signals back to default first (libev may have
 * blocked some for signalfd), then its own process group, then the fds put
 * in place and every other fd closed, then umask/cwd, then the user switch
 * (groups before gid before uid, or the later calls would lack permission),
 * and only then PR_SET_PDEATHSIG, because the kernel clears the parent-death
 * signal whenever the credentials change.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spawn.h"
#include "proto.h"

extern char **environ;

/* Listeners take fds 3... as systemd hands them; the channel comes next. */
#define LISTEN_FDS_START 3
#define LISTEN_PID_ROOM 32

static bool stripped(const char *kv)
{
	static const char *const prefixes[] = {
		"NOTIFY_SOCKET=", "WATCHDOG_", "LISTEN_", "GREEN_", "GREEND_INSTANCE=",
		"INVOCATION_ID=", "JOURNAL_STREAM=", NULL,
	};

	for (size_t i = 0; prefixes[i]; i++)
		if (strncmp(kv, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

/* Set KV ("K=V", owned) in ENV (n entries), replacing an entry with the same key. */
static int env_put(char ***env, size_t *n, char *kv)
{
	size_t klen = (size_t)(strchr(kv, '=') - kv) + 1;
	char **e;

	for (size_t i = 0; i < *n; i++) {
		if (strncmp((*env)[i], kv, klen) == 0) {
			free((*env)[i]);
			(*env)[i] = kv;
			return 0;
		}
	}
	e = realloc(*env, (*n + 2) * sizeof(char *));
	if (!e) {
		free(kv);
		return -1;
	}
	e[(*n)++] = kv;
	e[*n] = NULL;
	*env = e;
	return 0;
}

static int env_putf(char ***env, size_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int env_putf(char ***env, size_t *n, const char *fmt, ...)
{
	va_list ap;
	char *kv;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&kv, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -1;
	return env_put(env, n, kv);
}

static const char *env_get(char **env, size_t n, const char *key)
{
	size_t klen = strlen(key);

	for (size_t i = 0; i < n; i++)
		if (strncmp(env[i], key, klen) == 0 && env[i][klen] == '=')
			return env[i] + klen + 1;
	return NULL;
}

void gd_spawn_env_free(char **env)
{
	if (!env)
		return;
	for (size_t i = 0; env[i]; i++)
		free(env[i]);
	free(env);
}

char **gd_spawn_env(const struct gd_spawn *sp, char **base)
{
	const struct gd_worker_conf *c = sp->conf;
	char **env = calloc(1, sizeof(char *)), *kv;
	const char *old;
	size_t n = 0;

	if (!env)
		return NULL;
	for (size_t i = 0; base && base[i]; i++) {
		if (!strchr(base[i], '=') || stripped(base[i]))
			continue;
		if (!(kv = strdup(base[i])) || env_put(&env, &n, kv) < 0)
			goto oom;
	}
	if (c->user) {
		struct passwd *pw = getpwnam(c->user);

		if (pw) {
			if (env_putf(&env, &n, "USER=%s", pw->pw_name) < 0 ||
			    env_putf(&env, &n, "LOGNAME=%s", pw->pw_name) < 0 ||
			    env_putf(&env, &n, "HOME=%s", pw->pw_dir) < 0)
				goto oom;
		}
	}
	for (size_t i = 0; c->env && c->env[i]; i++)
		if (!(kv = strdup(c->env[i])) || env_put(&env, &n, kv) < 0)
			goto oom;
	if (sp->preload) {
		old = env_get(env, n, "LD_PRELOAD");
		if (old && *old) {
			if (env_putf(&env, &n, "LD_PRELOAD=%s:%s", sp->preload, old) < 0)
				goto oom;
		} else if (env_putf(&env, &n, "LD_PRELOAD=%s", sp->preload) < 0) {
			goto oom;
		}
	}
	if (sp->nlisten) {
		/* The child writes its own pid into this room after fork. */
		kv = calloc(1, LISTEN_PID_ROOM);
		if (!kv)
			goto oom;
		strcpy(kv, "LISTEN_PID=0");
		if (env_put(&env, &n, kv) < 0 ||
		    env_putf(&env, &n, "LISTEN_FDS=%zu", sp->nlisten) < 0)
			goto oom;
		kv = malloc(sp->nlisten * (strlen(c->name) + 1) + 16);
		if (!kv)
			goto oom;
		strcpy(kv, "LISTEN_FDNAMES=");
		for (size_t i = 0; i < sp->nlisten; i++) {
			if (i)
				strcat(kv, ":");
			strcat(kv, c->name);
		}
		if (env_put(&env, &n, kv) < 0)
			goto oom;
	}
	if (env_putf(&env, &n, "GREEN_PATCH=%s", c->patch) < 0 ||
	    env_putf(&env, &n, "GREEN_CONTROL_FD=%zu", LISTEN_FDS_START + sp->nlisten) < 0 ||
	    env_putf(&env, &n, "GREEN_STATS_INTERVAL_MS=%ld", sp->stats_interval_ms) < 0 ||
	    env_putf(&env, &n, "GREEN_MAX_BLOCKING_MS=%ld", c->max_blocking_ms) < 0 ||
	    env_putf(&env, &n, "GREEND_INSTANCE=%s", sp->id) < 0)
		goto oom;
	if (c->stack_size && env_putf(&env, &n, "GREEN_STACK_SIZE=%lld", c->stack_size) < 0)
		goto oom;
	return env;
oom:
	gd_spawn_env_free(env);
	errno = ENOMEM;
	return NULL;
}

int gd_spawn_read_error(int err_fd, char *buf, size_t len, int *err_no)
{
	char raw[512], *end;
	ssize_t n, got = 0;
	long e;

	*err_no = 0;
	buf[0] = '\0';
	while ((size_t)got < sizeof(raw) - 1) {
		n = read(err_fd, raw + got, sizeof(raw) - 1 - (size_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	raw[got] = '\0';
	if (got == 0)
		return 0;
	/* "ERRNO:sentence"; anything else is shown as it came. */
	e = strtol(raw, &end, 10);
	if (end != raw && *end == ':' && e > 0 && e < 4096) {
		*err_no = (int)e;
		end++;
	} else {
		end = raw;
	}
	snprintf(buf, len, "%s", end);
	return (int)got;
}

bool gd_spawn_errno_transient(int e)
{
	/* Resources that come back by themselves: fds, processes, memory. */
	return e == EMFILE || e == ENFILE || e == EAGAIN || e == ENOMEM ||
	       e == EINTR || e == ENOBUFS;
}

/* Child side: report STAGE and errno on the pipe and die. */
static void __attribute__((noreturn)) child_fail(int errfd, const char *stage,
						  const char *arg)
{
	char msg[512];
	int e = errno, n;

	n = snprintf(msg, sizeof(msg), "%d:%s%s%s: %s", e, stage, arg ? " " : "",
		     arg ? arg : "", strerror(e));
	if (n > 0 && write(errfd, msg, (size_t)n) < 0) {
		/* nothing left to tell it to */
	}
	_exit(127);
}

/* Close every fd in [lo, hi] (hi may be ~0U: to the end). */
static void close_span(unsigned int lo, unsigned int hi)
{
	struct rlimit rl;
	unsigned int max = 65536;

	if (lo > hi)
		return;
#ifdef SYS_close_range
	if (syscall(SYS_close_range, lo, hi, 0) == 0)
		return;
#endif
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < 65536)
		max = (unsigned int)rl.rlim_cur;
	for (unsigned int fd = lo; fd < max && fd <= hi; fd++)
		close((int)fd);
}

/*
 * Close everything the child inherited except the N fds in KEEP.  Done
 * first, so that the dups that follow always find free slots even when
 * greend itself was at its fd limit (an EMFILE here once made a transient
 * shortage look like a broken command).
 */
static void close_all_but(const int *keep, int n)
{
	int sorted[4 + GD_LISTEN_MAX];
	unsigned int lo = 0;

	memcpy(sorted, keep, (size_t)n * sizeof(int));
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
			int t = sorted[j];

			sorted[j] = sorted[j - 1];
			sorted[j - 1] = t;
		}
	for (int i = 0; i < n; i++) {
		if (sorted[i] > 0)
			close_span(lo, (unsigned int)sorted[i] - 1);
		lo = (unsigned int)sorted[i] + 1;
	}
	close_span(lo, ~0U);
}

struct ids {
	bool switch_user, switch_group;
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	int ngroups;
};

static int resolve_ids(const struct gd_worker_conf *c, struct ids *ids,
		       char *err, size_t errlen)
{
	struct passwd *pw = NULL;
	struct group *gr;
	char *end;

	memset(ids, 0, sizeof(*ids));
	if (c->user) {
		errno = 0;
		pw = getpwnam(c->user);
		if (!pw) {
			unsigned long v = strtoul(c->user, &end, 10);

			if (*end == '\0' && end != c->user)
				pw = getpwuid((uid_t)v);
		}
		if (!pw) {
			snprintf(err, errlen, "unknown user \"%s\"", c->user);
			errno = ENOENT;
			return -1;
		}
		ids->switch_user = true;
		ids->uid = pw->pw_uid;
		ids->gid = pw->pw_gid;
		ids->switch_group = true;
	}
	if (c->group) {
		gr = getgrnam(c->group);
		if (!gr) {
			unsigned long v = strtoul(c->group, &end, 10);

			if (*end == '\0' && end != c->group)
				gr = getgrgid((gid_t)v);
		}
		if (!gr) {
			snprintf(err, errlen, "unknown group \"%s\"", c->group);
			errno = ENOENT;
			return -1;
		}
		ids->gid = gr->gr_gid;
		ids->switch_group = true;
	}
	if (ids->switch_user) {
		int n = 64;

		for (;;) {
			gid_t *g = realloc(ids->groups, (size_t)n * sizeof(gid_t));

			if (!g) {
				free(ids->groups);
				ids->groups = NULL;
				snprintf(err, errlen, "out of memory");
				errno = ENOMEM;
				return -1;
			}
			ids->groups = g;
			if (getgrouplist(pw->pw_name, ids->gid, ids->groups, &n) >= 0)
				break;
			if (n > 65536) {
				snprintf(err, errlen, "user \"%s\" is in too many groups", c->user);
				free(ids->groups);
				ids->groups = NULL;
				errno = E2BIG;
				return -1;
			}
		}
		ids->ngroups = n;
	}
	/* Already who we should be: nothing to switch (also lets non-root run). */
	if (ids->switch_user && ids->uid == geteuid() && ids->gid == getegid()) {
		ids->switch_user = ids->switch_group = false;
	} else if (!ids->switch_user && ids->switch_group && ids->gid == getegid()) {
		ids->switch_group = false;
	}
	return 0;
}

/* Above every number the listeners, channel and error pipe take (3 to
 * LOW - 1), and no higher than needed: greend may run with few fds. */
static int move_high(int fd, int low)
{
	return fcntl(fd, F_DUPFD_CLOEXEC, low < 10 ? 10 : low);
}

/* The decimal pid into BUF, without stdio: this runs between fork and exec. */
static void put_pid(char *buf, size_t room, pid_t pid)
{
	char digits[16];
	size_t n = 0, at = strlen("LISTEN_PID=");

	do {
		digits[n++] = (char)('0' + pid % 10);
		pid /= 10;
	} while (pid > 0 && n < sizeof(digits));
	while (n > 0 && at + 1 < room)
		buf[at++] = digits[--n];
	buf[at] = '\0';
}

static void __attribute__((noreturn))
child(const struct gd_spawn *sp, const struct ids *ids, char **env, int chan,
      int out, int errfd, int devnull, pid_t parent)
{
	const struct gd_worker_conf *c = sp->conf;
	int lfds[GD_LISTEN_MAX];
	int chan_fd = LISTEN_FDS_START + (int)sp->nlisten;
	struct sigaction sa;
	sigset_t all;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &sa, NULL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);

	{
		int keep[4 + GD_LISTEN_MAX] = { chan, out, errfd, devnull };

		for (size_t i = 0; i < sp->nlisten; i++)
			keep[4 + i] = sp->listen_fds[i];
		close_all_but(keep, 4 + (int)sp->nlisten);
	}
	errfd = move_high(errfd, chan_fd + 2);
	if (errfd < 0)
		_exit(127);
	if ((chan = move_high(chan, chan_fd + 2)) < 0 || (out = move_high(out, chan_fd + 2)) < 0 ||
	    (devnull = move_high(devnull, chan_fd + 2)) < 0)
		child_fail(errfd, "dup", NULL);
	/* Out of the way first, or one listener's number could be another's
	 * place. */
	for (size_t i = 0; i < sp->nlisten; i++)
		if ((lfds[i] = move_high(sp->listen_fds[i], chan_fd + 2)) < 0)
			child_fail(errfd, "dup", NULL);
	if (setpgid(0, 0) < 0)
		child_fail(errfd, "setpgid", NULL);
	if (dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0 ||
	    dup2(chan, chan_fd) < 0)
		child_fail(errfd, "dup2", NULL);
	for (size_t i = 0; i < sp->nlisten; i++)
		if (dup2(lfds[i], LISTEN_FDS_START + (int)i) < 0)
			child_fail(errfd, "dup2", NULL);
	if (dup3(errfd, chan_fd + 1, O_CLOEXEC) < 0)
		child_fail(errfd, "dup3", NULL);
	errfd = chan_fd + 1;
	close_span((unsigned)chan_fd + 2, ~0U);
	for (size_t i = 0; env[i]; i++)
		if (sp->nlisten && strncmp(env[i], "LISTEN_PID=", 11) == 0)
			put_pid(env[i], LISTEN_PID_ROOM, getpid());

	if (c->umask >= 0)
		umask((mode_t)c->umask);
	if (c->cwd && chdir(c->cwd) < 0)
		child_fail(errfd, "chdir", c->cwd);
	if (ids->switch_user) {
		if (setgroups((size_t)ids->ngroups, ids->groups) < 0)
			child_fail(errfd, "setgroups", NULL);
	} else if (ids->switch_group && geteuid() == 0) {
		if (setgroups(1, &ids->gid) < 0)
			child_fail(errfd, "setgroups", NULL);
	}
	if (ids->switch_group && setgid(ids->gid) < 0)
		child_fail(errfd, "setgid", c->group ? c->group : c->user);
	if (ids->switch_user && setuid(ids->uid) < 0)
		child_fail(errfd, "setuid", c->user);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		child_fail(errfd, "prctl", "PR_SET_PDEATHSIG");
	if (getppid() != parent)
		_exit(127); /* greend died before the death signal was armed */
	environ = env;
	execvp(c->argv[0], c->argv);
	child_fail(errfd, "exec", c->argv[0]);
}

int gd_spawn_start(struct gd_spawn *sp, char *err, size_t errlen)
{
	int chan[2] = { -1, -1 }, out[2] = { -1, -1 }, ep[2] = { -1, -1 };
	int devnull = -1, e;
	struct ids ids;
	char **env = NULL;
	pid_t pid, parent = getpid();

	if (resolve_ids(sp->conf, &ids, err, errlen) < 0)
		return -1;
	env = gd_spawn_env(sp, environ);
	if (!env) {
		e = errno;
		snprintf(err, errlen, "building the environment: %s", strerror(e));
		goto fail;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) < 0 ||
	    pipe2(out, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0 ||
	    (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
		e = errno;
		snprintf(err, errlen, "creating pipes: %s", strerror(e));
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		e = errno;
		snprintf(err, errlen, "fork: %s", strerror(e));
		goto fail;
	}
	if (pid == 0)
		child(sp, &ids, env, chan[1], out[1], ep[1], devnull, parent);
	/* Both sides set the group, so a stop right after fork finds it. */
	setpgid(pid, pid);
	close(chan[1]);
	close(out[1]);
	close(ep[1]);
	close(devnull);
	fcntl(chan[0], F_SETFL, O_NONBLOCK);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(ep[0], F_SETFL, O_NONBLOCK);
	sp->pid = pid;
	sp->chan_fd = chan[0];
	sp->out_fd = out[0];
	sp->err_fd = ep[0];
	gd_spawn_env_free(env);
	free(ids.groups);
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (chan[i] >= 0)
			close(chan[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	if (devnull >= 0)
		close(devnull);
	gd_spawn_env_free(env);
	free(ids.groups);
	errno = e;
	return -1;
}
