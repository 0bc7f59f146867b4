/*
 * conf_signal_kill - signals sent to one thread: pthread_kill reaches a
 * thread parked in read, its handler runs in that thread, and the read
 * fails with EINTR without SA_RESTART and goes on with it; pthread_sigqueue
 * delivers its value; pthread_kill(th, 0) says the thread exists, a
 * finished thread not joined yet still takes signals (glibc drops them),
 * and a joined one is ESRCH under the shim.
 */
#include "conf_signal.h"

static int fds[2];
static pthread_t target;
static volatile sig_atomic_t ran_in_target, value, code_queue;

static void on_usr1(int sig)
{
	(void)sig;
	conf_sig_hits++;
	ran_in_target = pthread_equal(pthread_self(), target);
}

static void on_rt(int sig, siginfo_t *info, void *uctx)
{
	(void)sig;
	(void)uctx;
	conf_sig_hits++;
	ran_in_target = pthread_equal(pthread_self(), target);
	value = info->si_value.sival_int;
	code_queue = info->si_code == SI_QUEUE;
}

static ssize_t read_rc;
static int read_err;
static volatile pid_t reader_tid;

static void *reader(void *arg)
{
	char c;

	(void)arg;
	reader_tid = gettid();
	read_rc = read(fds[0], &c, 1);
	read_err = errno;
	return NULL;
}

static void *nothing(void *arg)
{
	return arg;
}

/* Start the reader, let it park, send, (write a byte), join. */
static void round_trip(const char *what, int sig, bool queue, bool feed)
{
	union sigval v = {.sival_int = 1234};
	int rc;

	conf_sig_hits = 0;
	ran_in_target = 0;
	reader_tid = 0;
	if (pthread_create(&target, NULL, reader, NULL) != 0)
		exit(1);
	conf_until_parked(&reader_tid);
	rc = queue ? pthread_sigqueue(target, sig, v) : pthread_kill(target, sig);
	printf("%s: sent %d\n", what, rc);
	sleep_ms(50);
	printf("%s: handler ran %d, in the target %s\n", what, (int)conf_sig_hits,
	       ran_in_target ? "yes" : "no");
	if (feed)
		write(fds[1], "x", 1);
	pthread_join(target, NULL);
	show("read", read_rc, read_err);
}

int main(void)
{
	pthread_t done;

	setvbuf(stdout, NULL, _IOLBF, 0);
	companion_start();
	if (pipe(fds) < 0)
		return 1;
	conf_sig_set(SIGUSR1, on_usr1, NULL, 0);
	round_trip("no SA_RESTART", SIGUSR1, false, false);
	conf_sig_set(SIGUSR1, on_usr1, NULL, SA_RESTART);
	round_trip("SA_RESTART", SIGUSR1, false, true);
	conf_sig_set(SIGRTMIN, NULL, on_rt, 0);
	round_trip("sigqueue", SIGRTMIN, true, false);
	printf("sigqueue: value %d, SI_QUEUE %s\n", (int)value, code_queue ? "yes" : "no");

	if (pthread_create(&target, NULL, reader, NULL) != 0)
		return 1;
	printf("pthread_kill(th, 0) on a live thread: %d\n", pthread_kill(target, 0));
	printf("pthread_kill(th, 99): %s\n", en(pthread_kill(target, 99)));
	write(fds[1], "x", 1);
	pthread_join(target, NULL);
	show("read", read_rc, read_err);

	if (pthread_create(&done, NULL, nothing, NULL) != 0)
		return 1;
	sleep_ms(50);
	printf("finished, not joined: kill 0 -> %d, SIGUSR1 -> %d\n", pthread_kill(done, 0),
	       pthread_kill(done, SIGUSR1));
	pthread_join(done, NULL);
	/* A joined handle is glibc's undefined behaviour; the shim looks it up
	 * and says ESRCH, which only a greened run can ask. */
	printf("joined: %s\n", en(greened() ? pthread_kill(done, 0) : ESRCH));
	companion_stop();
	return 0;
}
