/*
 * time.c - the "time" module: sleep, usleep, nanosleep, clock_nanosleep
 * park the calling greenlet on a hub timer instead of the OS thread.  A
 * greenlet alone on its hub (shim_alone) sleeps in the kernel: nothing else
 * could run meanwhile, and the kernel's sleep is exactly the native one.
 */
#include "shim_io.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

static bool valid_timespec(const struct timespec *ts)
{
	return ts && ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000L;
}

static int64_t timespec_ns(const struct timespec *ts)
{
	if (ts->tv_sec > INT64_MAX / GREEN_SEC - 1)
		return INT64_MAX / 2;
	return (int64_t)ts->tv_sec * GREEN_SEC + ts->tv_nsec;
}

/* Park until the deadline; a signal handler that runs meanwhile ends the
 * sleep early with EINTR, as it does in the kernel. */
static int green_sleep_until(struct green_hub *h, int64_t deadline,
                             struct timespec *rem)
{
	if (shim_sleep_until(h, deadline) == 0)
		return 0;
	shim_cancel_point(); /* a cancel woke it */
	if (rem) {
		int64_t left = deadline - green_now();

		if (left < 0)
			left = 0;
		rem->tv_sec = (time_t)(left / GREEN_SEC);
		rem->tv_nsec = (long)(left % GREEN_SEC);
	}
	if (errno != EINTR)
		errno = EINTR; /* the only failure a sleeping thread can see */
	return -1;
}

int nanosleep(const struct timespec *req, struct timespec *rem)
{
	struct green_hub *h = shim_hub_for(SHIM_TIME);

	if (!h || shim_alone(h))
		return SHIM_REAL(nanosleep)(req, rem);
	if (!valid_timespec(req)) {
		errno = EINVAL;
		return -1;
	}
	return green_sleep_until(h, green_now() + timespec_ns(req), rem);
}

int __nanosleep(const struct timespec *req, struct timespec *rem)
{
	return nanosleep(req, rem);
}

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req,
                    struct timespec *rem)
{
	struct green_hub *h = shim_hub_for(SHIM_TIME);
	int64_t deadline;

	if (!h || shim_alone(h) || (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC &&
	           clock != CLOCK_BOOTTIME && clock != CLOCK_TAI))
		return SHIM_REAL(clock_nanosleep)(clock, flags, req, rem);
	if (!valid_timespec(req))
		return EINVAL;
	if (flags & TIMER_ABSTIME) {
		struct timespec now;

		/* Our deadlines are monotonic: translate the distance. */
		clock_gettime(clock, &now);
		deadline = green_now() + (timespec_ns(req) - timespec_ns(&now));
		rem = NULL; /* not written for absolute sleeps */
	} else {
		deadline = green_now() + timespec_ns(req);
	}
	if (green_sleep_until(h, deadline, rem) == 0)
		return 0;
	return errno;
}

unsigned int sleep(unsigned int seconds)
{
	struct green_hub *h = shim_hub_for(SHIM_TIME);
	struct timespec req = {.tv_sec = (time_t)seconds}, rem = {0};

	if (!h || shim_alone(h))
		return SHIM_REAL(sleep)(seconds);
	if (green_sleep_until(h, green_now() + timespec_ns(&req), &rem) == 0)
		return 0;
	return (unsigned int)rem.tv_sec + (rem.tv_nsec > 0);
}

int usleep(useconds_t usec)
{
	struct green_hub *h = shim_hub_for(SHIM_TIME);

	if (!h || shim_alone(h))
		return SHIM_REAL(usleep)(usec);
	return green_sleep_until(h, green_now() + (int64_t)usec * GREEN_USEC, NULL);
}
