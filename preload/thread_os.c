/*
 * thread_os.c - the pthread calls that are about the OS thread under a
 * thread: scheduling policy and priority, CPU affinity, the CPU-time clock.
 * glibc answers them from its own descriptor of the thread, which a green
 * thread's handle is not, so none of them may see one.  A green thread has
 * no OS thread of its own but shares its hub's: the call goes to that one
 * (and so sets or reads it for every green thread of the hub, the main
 * thread included, as the man page says).  A green thread that has
 * finished, or whose handle is gone, has no OS thread any more: ESRCH, as
 * glibc says for a thread that has exited.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "thread_int.h"

#include <errno.h>
#include <sched.h>

/* The pthread_t glibc should see for th, or an error number. */
static int os_thread_of(pthread_t th, pthread_t *os)
{
	struct gthread *t;
	int rc = shim_thread_find(th, &t);

	if (rc)
		return rc;
	if (!t) {
		*os = th;
		return 0;
	}
	if (t->exited)
		return ESRCH;
	*os = t->os_thread;
	return 0;
}

/* Each call: on the OS thread, or the error os_thread_of found. */
#define OS_CALL(name, th, ...)                                                 \
	do {                                                                   \
		pthread_t os_;                                                 \
		int rc_ = os_thread_of((th), &os_);                            \
		return rc_ ? rc_ : SHIM_REAL(name)(os_, __VA_ARGS__);          \
	} while (0)

int pthread_getschedparam(pthread_t th, int *policy, struct sched_param *param)
{
	OS_CALL(pthread_getschedparam, th, policy, param);
}

int pthread_setschedparam(pthread_t th, int policy, const struct sched_param *param)
{
	OS_CALL(pthread_setschedparam, th, policy, param);
}

int pthread_setschedprio(pthread_t th, int prio)
{
	OS_CALL(pthread_setschedprio, th, prio);
}

int pthread_getaffinity_np(pthread_t th, size_t size, cpu_set_t *set)
{
	OS_CALL(pthread_getaffinity_np, th, size, set);
}

int pthread_setaffinity_np(pthread_t th, size_t size, const cpu_set_t *set)
{
	OS_CALL(pthread_setaffinity_np, th, size, set);
}

int pthread_getcpuclockid(pthread_t th, clockid_t *clock)
{
	OS_CALL(pthread_getcpuclockid, th, clock);
}
