/*
 * conf_os_keys_full - a program that takes every pthread key there is
 * before its first greened call.  The shim's own thread-exit keys (C11
 * tss) then cannot be had: it must go on without them, never writing a
 * key that is not its own, so every value the program set stays.
 */
#include "conf_common.h"

#include <limits.h>

static pthread_key_t keys[PTHREAD_KEYS_MAX + 1];
static int marks[PTHREAD_KEYS_MAX + 1];

static void *nap(void *arg)
{
	usleep(1000);
	return arg;
}

int main(void)
{
	int n = 0, rc = 0, wrong = 0;
	pthread_t t;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (n <= PTHREAD_KEYS_MAX && (rc = pthread_key_create(&keys[n], NULL)) == 0)
		n++;
	printf("keys until the end: %s\n", rc ? en(rc) : "none missing");
	for (int i = 0; i < n; i++)
		pthread_setspecific(keys[i], &marks[i]);
	/* The first greened calls: the hub is made, a thread comes and goes. */
	usleep(1000);
	if (pthread_create(&t, NULL, nap, NULL) != 0)
		return 1;
	pthread_join(t, NULL);
	usleep(1000);
	for (int i = 0; i < n; i++)
		if (pthread_getspecific(keys[i]) != &marks[i])
			wrong++;
	printf("# %d keys\n", n);
	printf("keys holding something else: %d\n", wrong);
	return 0;
}
