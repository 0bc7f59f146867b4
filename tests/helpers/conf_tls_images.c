/*
 * conf_tls_images.c - a new thread's __thread data starts from the
 * program's TLS image, as a new kernel thread's does: initialised data
 * (.tdata) has its initialisers, the rest (.tbss) is zero, whatever the
 * threads that ran before or beside it (the main thread included) wrote
 * into their own copies.
 */
#include "conf_tls.h"

static __thread int answer = 42;
static __thread char word[16] = "image";
static __thread long zeros[256];
static __thread double scale = 2.5;

/* Whether this thread's data is the image, then scribble over it. */
static void *starts_from_image(void *arg)
{
	long id = (long)arg;
	bool ok = answer == 42 && strcmp(word, "image") == 0 && scale == 2.5;

	for (int i = 0; i < 256; i++)
		ok = ok && zeros[i] == 0;
	answer = (int)id;
	snprintf(word, sizeof(word), "scribble %ld", id);
	zeros[(id + 1) % 255] = id + 1;
	zeros[255] = -1;
	scale = -1.0;
	/* Under the shim, each thread that starts now does so after others
	 * scribbled. */
	if (id >= 0)
		pthread_barrier_wait(&tls_meet);
	return (void *)(long)ok;
}

int main(void)
{
	void *ok[TLS_THREADS];
	pthread_t late;
	void *late_ok;

	setvbuf(stdout, NULL, _IOLBF, 0);
	answer = 1;
	snprintf(word, sizeof(word), "main");
	zeros[3] = 3;
	scale = 0.5;
	tls_run_all(starts_from_image, ok);
	for (int i = 0; i < TLS_THREADS; i++)
		printf("thread %d started from the image (.tdata, .tbss): %s\n", i,
		       ok[i] ? "yes" : "no");
	/* One more, after all of them have ended. */
	die_rc("pthread_create", pthread_create(&late, NULL, starts_from_image, (void *)-1L));
	die_rc("pthread_join", pthread_join(late, &late_ok));
	CHECK("a thread started after the others ended starts from the image",
	      late_ok != NULL);
	CHECK("main's own values kept",
	      answer == 1 && strcmp(word, "main") == 0 && zeros[3] == 3 && zeros[0] == 0 &&
	          scale == 0.5);
	return conf_failed;
}
