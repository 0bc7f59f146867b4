/*
 * conf_futex_eintr - a signal handler ends a futex wait as the kernel does:
 * with EINTR when the handler has no SA_RESTART, and also with SA_RESTART
 * when the wait has a timeout (the kernel does not restart those); a wait
 * without a timeout is restarted under SA_RESTART and goes on until a wake.
 */
#include "conf_futex.h"

#include <signal.h>
#include <sys/time.h>

static volatile sig_atomic_t hits;

static void on_alarm(int sig)
{
	(void)sig;
	hits++;
}

static void install(int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
}

static void arm(int ms)
{
	struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};

	setitimer(ITIMER_REAL, &it, NULL);
}

static uint32_t word;

static void *wake_later(void *arg)
{
	(void)arg;
	sleep_ms(150);
	__atomic_store_n(&word, 1, __ATOMIC_RELEASE);
	futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	return NULL;
}

static void interrupted(const char *what, int op, const struct timespec *ts)
{
	long rc;

	hits = 0;
	word = 0;
	arm(50);
	rc = futex(&word, op, 0, ts, NULL,
	           (op & FUTEX_CMD_MASK) == FUTEX_WAIT_BITSET ? FUTEX_BITSET_MATCH_ANY : 0);
	if (rc < 0)
		printf("%s: -1 %s (handler ran %d)\n", what, en(errno), (int)hits);
	else
		printf("%s: %ld (handler ran %d)\n", what, rc, (int)hits);
}

int main(void)
{
	struct timespec rel = {5, 0}, abs;
	pthread_t th;
	double t0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	companion_start();

	install(0);
	interrupted("no SA_RESTART, no timeout", FUTEX_WAIT_PRIVATE, NULL);
	interrupted("no SA_RESTART, 5 s", FUTEX_WAIT_PRIVATE, &rel);
	install(SA_RESTART);
	interrupted("SA_RESTART, 5 s", FUTEX_WAIT_PRIVATE, &rel);
	abs = abs_after(CLOCK_MONOTONIC, 5000);
	interrupted("SA_RESTART, wait_bitset until +5 s", FUTEX_WAIT_BITSET_PRIVATE, &abs);

	/* Restarted: only the wake 150 ms later ends it. */
	die_rc("pthread_create", pthread_create(&th, NULL, wake_later, NULL));
	t0 = now_ms();
	interrupted("SA_RESTART, no timeout, woken later", FUTEX_WAIT_PRIVATE, NULL);
	waited("the restarted wait", t0, 120, 2000);
	pthread_join(th, NULL);

	companion_stop();
	return 0;
}
