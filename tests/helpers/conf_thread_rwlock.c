/*
 * conf_thread_rwlock.c - readers hold an rwlock together, a writer excludes
 * everyone; try/timed/clock variants and their errors; the
 * writer-preferring kind keeps new readers out while a writer waits.
 */
#include "conf_thread.h"

#define READERS 8

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t stats = PTHREAD_MUTEX_INITIALIZER;
static int inside, most_inside, writer_inside, violations;

static void *reader(void *arg)
{
	pthread_rwlock_rdlock(&rw);
	pthread_mutex_lock(&stats);
	inside++;
	if (inside > most_inside)
		most_inside = inside;
	if (writer_inside)
		violations++;
	pthread_mutex_unlock(&stats);
	sleep_ms(100);
	pthread_mutex_lock(&stats);
	inside--;
	pthread_mutex_unlock(&stats);
	pthread_rwlock_unlock(&rw);
	return NULL;
}

static void *writer(void *arg)
{
	for (int i = 0; i < 5; i++) {
		pthread_rwlock_wrlock(&rw);
		pthread_mutex_lock(&stats);
		if (inside || writer_inside)
			violations++;
		writer_inside = 1;
		pthread_mutex_unlock(&stats);
		sleep_ms(5);
		pthread_mutex_lock(&stats);
		writer_inside = 0;
		pthread_mutex_unlock(&stats);
		pthread_rwlock_unlock(&rw);
		sleep_ms(1);
	}
	return NULL;
}

static void *short_reader(void *arg)
{
	for (int i = 0; i < 20; i++) {
		pthread_rwlock_rdlock(&rw);
		pthread_mutex_lock(&stats);
		if (writer_inside)
			violations++;
		pthread_mutex_unlock(&stats);
		sleep_ms(1);
		pthread_rwlock_unlock(&rw);
	}
	return NULL;
}

struct probe {
	pthread_rwlock_t *l;
	int tryrd, trywr, timedrd, timedwr, clockrd;
};

static void *probe(void *arg)
{
	struct probe *p = arg;
	struct timespec ts;

	p->tryrd = pthread_rwlock_tryrdlock(p->l);
	if (p->tryrd == 0)
		pthread_rwlock_unlock(p->l);
	p->trywr = pthread_rwlock_trywrlock(p->l);
	if (p->trywr == 0)
		pthread_rwlock_unlock(p->l);
	ts = abs_after(CLOCK_REALTIME, 30);
	p->timedrd = pthread_rwlock_timedrdlock(p->l, &ts);
	if (p->timedrd == 0)
		pthread_rwlock_unlock(p->l);
	ts = abs_after(CLOCK_REALTIME, 30);
	p->timedwr = pthread_rwlock_timedwrlock(p->l, &ts);
	if (p->timedwr == 0)
		pthread_rwlock_unlock(p->l);
	ts = abs_after(CLOCK_MONOTONIC, 30);
	p->clockrd = pthread_rwlock_clockrdlock(p->l, CLOCK_MONOTONIC, &ts);
	if (p->clockrd == 0)
		pthread_rwlock_unlock(p->l);
	return NULL;
}

static void probe_from_other(const char *name, pthread_rwlock_t *l)
{
	struct probe p = {.l = l};
	pthread_t t;

	die_rc("pthread_create", pthread_create(&t, NULL, probe, &p));
	die_rc("pthread_join", pthread_join(t, NULL));
	printf("%s: tryrd %s trywr %s timedrd %s timedwr %s clockrd %s\n", name,
	       errname(p.tryrd), errname(p.trywr), errname(p.timedrd),
	       errname(p.timedwr), errname(p.clockrd));
}

/* Writer preference: a reader arriving while a writer waits must wait. */
static pthread_rwlock_t wpref;
static int events[8], nevents;

static void *wpref_writer(void *arg)
{
	pthread_rwlock_wrlock(&wpref);
	events[nevents++] = 2;
	pthread_rwlock_unlock(&wpref);
	return NULL;
}

static void *wpref_reader(void *arg)
{
	pthread_rwlock_rdlock(&wpref);
	events[nevents++] = 3;
	pthread_rwlock_unlock(&wpref);
	return NULL;
}

int main(void)
{
	pthread_t r[READERS], w, s[4], t1, t2;
	pthread_rwlockattr_t attr;
	struct timespec ts;
	double t0;

	setvbuf(stdout, NULL, _IOLBF, 0);

	/* Readers together. */
	t0 = now_ms();
	for (int i = 0; i < READERS; i++)
		die_rc("pthread_create", pthread_create(&r[i], NULL, reader, NULL));
	for (int i = 0; i < READERS; i++)
		die_rc("pthread_join", pthread_join(r[i], NULL));
	printf("# %d readers of 100 ms took %.1f ms\n", READERS, now_ms() - t0);
	printf("readers inside at once: %d\n", most_inside);
	CHECK("readers in parallel", now_ms() - t0 < 100.0 * READERS / 2);

	/* Writers exclude readers and each other. */
	for (int i = 0; i < 4; i++)
		die_rc("pthread_create", pthread_create(&s[i], NULL, short_reader, NULL));
	die_rc("pthread_create", pthread_create(&w, NULL, writer, NULL));
	die_rc("pthread_create", pthread_create(&t1, NULL, writer, NULL));
	for (int i = 0; i < 4; i++)
		die_rc("pthread_join", pthread_join(s[i], NULL));
	die_rc("pthread_join", pthread_join(w, NULL));
	die_rc("pthread_join", pthread_join(t1, NULL));
	printf("exclusion violations: %d\n", violations);

	/* Errors. */
	SHOW("wrlock", pthread_rwlock_wrlock(&rw));
	SHOW("rdlock while writing", pthread_rwlock_rdlock(&rw));
	SHOW("wrlock while writing", pthread_rwlock_wrlock(&rw));
	SHOW("tryrdlock while writing", pthread_rwlock_tryrdlock(&rw));
	SHOW("trywrlock while writing", pthread_rwlock_trywrlock(&rw));
	probe_from_other("held for writing", &rw);
	SHOW("unlock", pthread_rwlock_unlock(&rw));
	SHOW("rdlock", pthread_rwlock_rdlock(&rw));
	SHOW("rdlock again", pthread_rwlock_rdlock(&rw));
	SHOW("trywrlock while reading", pthread_rwlock_trywrlock(&rw));
	probe_from_other("held for reading", &rw);
	SHOW("unlock", pthread_rwlock_unlock(&rw));
	SHOW("unlock", pthread_rwlock_unlock(&rw));
	ts.tv_sec = 0;
	ts.tv_nsec = 1000000000L;
	SHOW("timedrdlock bad nsec", pthread_rwlock_timedrdlock(&rw, &ts));
	SHOW("timedwrlock bad nsec", pthread_rwlock_timedwrlock(&rw, &ts));
	ts.tv_nsec = 0;
	SHOW("clockwrlock bad clock", pthread_rwlock_clockwrlock(&rw, CLOCK_PROCESS_CPUTIME_ID, &ts));
	SHOW("timedwrlock free, in the past", pthread_rwlock_timedwrlock(&rw, &ts));
	SHOW("unlock", pthread_rwlock_unlock(&rw));
	SHOW("destroy", pthread_rwlock_destroy(&rw));

	/* Writer preference. */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	die_rc("pthread_rwlock_init", pthread_rwlock_init(&wpref, &attr));
	pthread_rwlockattr_destroy(&attr);
	SHOW("rdlock (writer-preferring)", pthread_rwlock_rdlock(&wpref));
	die_rc("pthread_create", pthread_create(&t1, NULL, wpref_writer, NULL));
	sleep_ms(50); /* the writer waits now */
	die_rc("pthread_create", pthread_create(&t2, NULL, wpref_reader, NULL));
	sleep_ms(50); /* the reader waits behind it */
	SHOW("tryrdlock with a writer waiting", pthread_rwlock_tryrdlock(&wpref));
	events[nevents++] = 1;
	SHOW("unlock", pthread_rwlock_unlock(&wpref));
	die_rc("pthread_join", pthread_join(t1, NULL));
	die_rc("pthread_join", pthread_join(t2, NULL));
	printf("order: %d %d %d\n", events[0], events[1], events[2]);
	return conf_failed;
}
