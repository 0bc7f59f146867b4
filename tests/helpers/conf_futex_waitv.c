/*
 * conf_futex_waitv - futex_waitv(2) (Linux 5.16), as Wine's fsync uses it
 * through syscall(): a wait on several words ends with the index of the
 * one woken, EAGAIN when a word differs, ETIMEDOUT at its absolute
 * deadline on either clock, EINVAL for bad arguments; a wake counts the
 * waiter once per word it takes; a handler with SA_RESTART does not end
 * the wait.
 */
#include "conf_futex.h"

#include <signal.h>
#include <sys/time.h>

#ifdef SYS_futex_waitv
#define SIZE_U32 2   /* FUTEX2_SIZE_U32 */
#define PRIV 128     /* FUTEX2_PRIVATE */

static uint32_t words[4];
static struct futex_waitv vs[4];
static long wait_rc;
static int wait_err;

static long waitv(struct futex_waitv *v, unsigned int n, const struct timespec *ts,
                  clockid_t clock)
{
	return syscall(SYS_futex_waitv, v, n, 0, ts, clock);
}

static void set_up(unsigned int n, uint32_t flags)
{
	for (unsigned int i = 0; i < n; i++) {
		words[i] = 0;
		vs[i] = (struct futex_waitv){.val = 0, .uaddr = (uintptr_t)&words[i], .flags = flags};
	}
}

static void *waiter(void *arg)
{
	struct timespec ts = abs_after(CLOCK_MONOTONIC, 5000);

	(void)arg;
	wait_rc = waitv(vs, 4, &ts, CLOCK_MONOTONIC);
	wait_err = errno;
	return NULL;
}

/* Four words waited on by a thread; word `which` is changed and woken. */
static void woken_on(unsigned int which, uint32_t flags)
{
	pthread_t th;
	char what[64];

	set_up(4, flags);
	die_rc("pthread_create", pthread_create(&th, NULL, waiter, NULL));
	/* Queued on the last word, it is queued on all of them. */
	await_waiters(&words[3], flags & PRIV ? FUTEX_PRIVATE_FLAG : 0, 1);
	__atomic_store_n(&words[which], 1, __ATOMIC_RELEASE);
	snprintf(what, sizeof(what), "wake word %u", which);
	FUTEX_SHOW(what, futex(&words[which], (flags & PRIV) ? FUTEX_WAKE_PRIVATE : FUTEX_WAKE,
	                       INT_MAX, NULL, NULL, 0));
	pthread_join(th, NULL);
	snprintf(what, sizeof(what), "waitv woken on word %u", which);
	show(what, wait_rc, wait_err);
}

static volatile sig_atomic_t hits;

static void on_alarm(int sig)
{
	(void)sig;
	hits++;
}

static void *wake_later(void *arg)
{
	(void)arg;
	sleep_ms(150);
	__atomic_store_n(&words[1], 1, __ATOMIC_RELEASE);
	futex(&words[1], FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	return NULL;
}

int main(void)
{
	struct itimerval it = {{0, 0}, {0, 50 * 1000}};
	struct sigaction sa;
	struct timespec ts;
	pthread_t th;
	double t0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	companion_start();

	woken_on(0, SIZE_U32 | PRIV);
	woken_on(2, SIZE_U32 | PRIV);
	woken_on(3, SIZE_U32);

	set_up(3, SIZE_U32 | PRIV);
	words[1] = 5;
	FUTEX_SHOW("a word differs", waitv(vs, 3, NULL, 0));

	set_up(2, SIZE_U32 | PRIV);
	ts = abs_after(CLOCK_MONOTONIC, 100);
	t0 = now_ms();
	FUTEX_SHOW("until monotonic +100 ms", waitv(vs, 2, &ts, CLOCK_MONOTONIC));
	waited("monotonic deadline", t0, 90, 2000);
	ts = abs_after(CLOCK_REALTIME, 100);
	t0 = now_ms();
	FUTEX_SHOW("until realtime +100 ms", waitv(vs, 2, &ts, CLOCK_REALTIME));
	waited("realtime deadline", t0, 90, 2000);

	FUTEX_SHOW("no words", waitv(vs, 0, NULL, 0));
	FUTEX_SHOW("129 words", waitv(vs, 129, NULL, 0));
	vs[0].flags = 4 | PRIV; /* a 64-bit word: not supported */
	FUTEX_SHOW("a 64-bit word", waitv(vs, 2, NULL, 0));
	vs[0].flags = SIZE_U32 | PRIV;
	ts = abs_after(CLOCK_MONOTONIC, 100);
	FUTEX_SHOW("an unknown clock", waitv(vs, 2, &ts, CLOCK_PROCESS_CPUTIME_ID));
	FUTEX_SHOW("flags set", (long)syscall(SYS_futex_waitv, vs, 2, 1, NULL, 0));

	/* An SA_RESTART handler does not end it; the wake 150 ms later does. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	set_up(2, SIZE_U32 | PRIV);
	die_rc("pthread_create", pthread_create(&th, NULL, wake_later, NULL));
	setitimer(ITIMER_REAL, &it, NULL);
	t0 = now_ms();
	FUTEX_SHOW("SA_RESTART handler, then a wake", waitv(vs, 2, NULL, 0));
	printf("handler ran %d\n", (int)hits);
	waited("the restarted waitv", t0, 120, 2000);
	pthread_join(th, NULL);

	companion_stop();
	return 0;
}
#else
int main(void)
{
	puts("no futex_waitv on this system");
	return 0;
}
#endif
