/*
 * conf_futex_wait - syscall(SYS_futex) between threads, as Rust's std and
 * libstdc++'s atomic wait use it: FUTEX_WAIT/WAKE (private and shared),
 * WAIT_BITSET with absolute deadlines on both clocks, bitsets, EAGAIN when
 * the word differs, the requeue and wake-op forms, and the errors the
 * kernel gives for bad arguments.  Waiters are given 5 s, wakers come once
 * they wait: a waiter that blocks its whole hub times out instead, and the
 * lines differ.
 */
#include "conf_futex.h"

struct waiter {
	pthread_t th;
	uint32_t *addr;
	int op;
	uint32_t val, bitset;
	bool absolute;
	long rc;
	int err;
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;
	struct timespec ts = {5, 0};
	int cmd = w->op & FUTEX_CMD_MASK;

	if (w->absolute)
		ts = abs_after((w->op & FUTEX_CLOCK_REALTIME) ? CLOCK_REALTIME : CLOCK_MONOTONIC,
		               5000);
	w->rc = futex(w->addr, w->op, w->val, &ts, NULL,
	              cmd == FUTEX_WAIT_BITSET ? w->bitset : 0);
	w->err = errno;
	return NULL;
}

static void start(struct waiter *w, uint32_t *addr, int op, uint32_t val, uint32_t bitset)
{
	memset(w, 0, sizeof(*w));
	w->addr = addr;
	w->op = op;
	w->val = val;
	w->bitset = bitset;
	w->absolute = (op & FUTEX_CMD_MASK) == FUTEX_WAIT_BITSET;
	die_rc("pthread_create", pthread_create(&w->th, NULL, wait_main, w));
}

static void finish(const char *what, struct waiter *w)
{
	pthread_join(w->th, NULL);
	show(what, w->rc, w->err);
}

/* One waiter on *addr (at 0), woken by a change and a wake once it waits. */
static void woken(const char *wake_what, const char *wait_what, uint32_t *addr, int op,
                  uint32_t bitset)
{
	struct waiter w;

	*addr = 0;
	start(&w, addr, op, 0, bitset);
	await_waiters(addr, op & FUTEX_PRIVATE_FLAG, 1);
	__atomic_store_n(addr, 1, __ATOMIC_RELEASE);
	FUTEX_SHOW(wake_what, futex(addr, (op & FUTEX_PRIVATE_FLAG) | FUTEX_WAKE, 1, NULL, NULL, 0));
	finish(wait_what, &w);
}

static void timed(const char *what, uint32_t *addr, int op, const struct timespec *ts,
                  uint32_t bitset, double lo, double hi)
{
	double t0 = now_ms();
	long rc = futex(addr, op, 0, ts, NULL, bitset);

	show(what, rc, errno);
	waited(what, t0, lo, hi);
}

int main(void)
{
	static uint32_t a, b;
	struct waiter w[3];
	struct timespec ts;

	setvbuf(stdout, NULL, _IOLBF, 0);
	companion_start();

	/* WAIT/WAKE, private and shared */
	woken("wake private", "wait private", &a, FUTEX_WAIT_PRIVATE, 0);
	woken("wake shared", "wait shared", &a, FUTEX_WAIT, 0);
	FUTEX_SHOW("wake with nobody waiting", futex(&a, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0));

	/* the word differs */
	a = 7;
	FUTEX_SHOW("wait on a changed word", futex(&a, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0));
	FUTEX_SHOW("wait_bitset on a changed word",
	           futex(&a, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, FUTEX_BITSET_MATCH_ANY));

	/* timeouts: relative for WAIT, absolute for WAIT_BITSET */
	a = 0;
	ts = (struct timespec){0, 100 * 1000000L};
	timed("wait 100 ms", &a, FUTEX_WAIT_PRIVATE, &ts, 0, 90, 2000);
	ts = abs_after(CLOCK_MONOTONIC, 100);
	timed("wait_bitset until monotonic +100 ms", &a, FUTEX_WAIT_BITSET_PRIVATE, &ts,
	      FUTEX_BITSET_MATCH_ANY, 90, 2000);
	ts = abs_after(CLOCK_REALTIME, 100);
	timed("wait_bitset until realtime +100 ms", &a,
	      FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, &ts, FUTEX_BITSET_MATCH_ANY,
	      90, 2000);
	ts = abs_after(CLOCK_MONOTONIC, -10);
	timed("wait_bitset until a past time", &a, FUTEX_WAIT_BITSET_PRIVATE, &ts,
	      FUTEX_BITSET_MATCH_ANY, 0, 50);

	/* a deadline that a wake beats */
	woken("wake a realtime wait_bitset", "realtime wait_bitset woken", &a,
	      FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, FUTEX_BITSET_MATCH_ANY);
	woken("wake a monotonic wait_bitset", "monotonic wait_bitset woken", &a,
	      FUTEX_WAIT_BITSET, FUTEX_BITSET_MATCH_ANY);

	/* bitsets */
	a = 0;
	start(&w[0], &a, FUTEX_WAIT_BITSET_PRIVATE, 0, 0x1);
	await_waiters(&a, FUTEX_PRIVATE_FLAG, 1);
	FUTEX_SHOW("wake_bitset other bits",
	           futex(&a, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 0x6));
	FUTEX_SHOW("wake_bitset its bit", futex(&a, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 0x3));
	finish("wait_bitset 0x1", &w[0]);

	/* counts: three waiters, wake 2 then the rest; a count of 0 wakes one */
	for (int i = 0; i < 3; i++)
		start(&w[i], &a, FUTEX_WAIT_PRIVATE, 0, 0);
	await_waiters(&a, FUTEX_PRIVATE_FLAG, 3);
	FUTEX_SHOW("wake 2 of 3", futex(&a, FUTEX_WAKE_PRIVATE, 2, NULL, NULL, 0));
	sleep_ms(20);
	FUTEX_SHOW("wake 0 of 1", futex(&a, FUTEX_WAKE_PRIVATE, 0, NULL, NULL, 0));
	FUTEX_SHOW("wake the rest", futex(&a, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0));
	for (int i = 0; i < 3; i++)
		finish("one of 3", &w[i]);

	/* CMP_REQUEUE: one woken, one moved to b and woken there */
	a = b = 0;
	start(&w[0], &a, FUTEX_WAIT_PRIVATE, 0, 0);
	start(&w[1], &a, FUTEX_WAIT_PRIVATE, 0, 0);
	await_waiters(&a, FUTEX_PRIVATE_FLAG, 2);
	FUTEX_SHOW("cmp_requeue on a changed word",
	           futex_requeue(&a, FUTEX_CMP_REQUEUE_PRIVATE, 1, 1, &b, 5));
	FUTEX_SHOW("cmp_requeue 1 woken 1 moved",
	           futex_requeue(&a, FUTEX_CMP_REQUEUE_PRIVATE, 1, 1, &b, 0));
	sleep_ms(20);
	FUTEX_SHOW("wake on a after the move", futex(&a, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0));
	FUTEX_SHOW("wake on b", futex(&b, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0));
	finish("requeue waiter 1", &w[0]);
	finish("requeue waiter 2", &w[1]);

	/* REQUEUE counts only who it woke */
	start(&w[0], &a, FUTEX_WAIT_PRIVATE, 0, 0);
	start(&w[1], &a, FUTEX_WAIT_PRIVATE, 0, 0);
	await_waiters(&a, FUTEX_PRIVATE_FLAG, 2);
	FUTEX_SHOW("requeue 1 woken 1 moved", futex_requeue(&a, FUTEX_REQUEUE_PRIVATE, 1, 1, &b, 0));
	sleep_ms(20);
	FUTEX_SHOW("wake on b after requeue", futex(&b, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0));
	finish("requeue waiter 1", &w[0]);
	finish("requeue waiter 2", &w[1]);

	/* WAKE_OP: b = 1, wake on a, and on b since b was 0 */
	a = b = 0;
	start(&w[0], &a, FUTEX_WAIT_PRIVATE, 0, 0);
	start(&w[1], &b, FUTEX_WAIT_PRIVATE, 0, 0);
	await_waiters(&a, FUTEX_PRIVATE_FLAG, 1);
	await_waiters(&b, FUTEX_PRIVATE_FLAG, 1);
	FUTEX_SHOW("wake_op",
	           futex_requeue(&a, FUTEX_WAKE_OP_PRIVATE, 1, 1, &b,
	                         FUTEX_OP(FUTEX_OP_SET, 1, FUTEX_OP_CMP_EQ, 0)));
	printf("wake_op left b at %u\n", (unsigned)__atomic_load_n(&b, __ATOMIC_ACQUIRE));
	finish("wake_op waiter on a", &w[0]);
	finish("wake_op waiter on b", &w[1]);

	/* bad arguments */
	a = 0;
	FUTEX_SHOW("wait_bitset with bitset 0",
	           futex(&a, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, 0));
	ts = (struct timespec){0, 1000000000L};
	FUTEX_SHOW("wait with tv_nsec 1e9", futex(&a, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0));
	ts = (struct timespec){-1, 0};
	FUTEX_SHOW("wait with tv_sec -1", futex(&a, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0));
	FUTEX_SHOW("wait on a misaligned word",
	           futex((uint32_t *)((char *)&a + 1), FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0));
	FUTEX_SHOW("wake_bitset with bitset 0",
	           futex(&a, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, 0));

	/* other numbers go through with errno as libc sets it */
	FUTEX_SHOW("getpid matches", syscall(SYS_getpid) == getpid() ? 1 : 0);
	FUTEX_SHOW("close(-1)", syscall(SYS_close, -1));
	FUTEX_SHOW("unknown number", syscall(100000));

	companion_stop();
	return 0;
}
