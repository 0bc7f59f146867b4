/*
 * conf_thread_createerr.c - pthread_create's failures come back as its
 * return value: a stack larger than memory and swap (EAGAIN, as glibc's
 * mmap is refused), a stack over RLIMIT_AS (EAGAIN), and creating works
 * again afterwards.
 */
#include "conf_thread.h"

#include <sys/resource.h>

static void *quick(void *arg)
{
	return arg;
}

static const char *create_with_stack(size_t size)
{
	pthread_attr_t attr;
	pthread_t th;
	void *r = NULL;
	int rc;

	die_rc("pthread_attr_init", pthread_attr_init(&attr));
	die_rc("pthread_attr_setstacksize", pthread_attr_setstacksize(&attr, size));
	rc = pthread_create(&th, &attr, quick, (void *)7L);
	pthread_attr_destroy(&attr);
	if (rc == 0) {
		die_rc("pthread_join", pthread_join(th, &r));
		return r == (void *)7L ? "0" : "0 (wrong result)";
	}
	return errname(rc);
}

/* This process's address space now, from /proc/self/status (VmSize). */
static unsigned long long vm_size(void)
{
	char line[256];
	unsigned long long kb = 0;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmSize: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

int main(void)
{
	struct rlimit old, low;
	int rc;

	printf("64 TiB stack: %s\n", create_with_stack((size_t)1 << 46));

	/* Room for 64 MiB more, asked for 1 GiB. */
	die_rc("getrlimit", getrlimit(RLIMIT_AS, &old) ? errno : 0);
	low = old;
	low.rlim_cur = vm_size() + ((rlim_t)64 << 20);
	die_rc("setrlimit", setrlimit(RLIMIT_AS, &low) ? errno : 0);
	printf("1 GiB stack over RLIMIT_AS: %s\n", create_with_stack((size_t)1 << 30));
	die_rc("setrlimit back", setrlimit(RLIMIT_AS, &old) ? errno : 0);

	printf("1 MiB stack: %s\n", create_with_stack((size_t)1 << 20));
	rc = pthread_attr_setstacksize(&(pthread_attr_t){0}, 1);
	printf("setstacksize below PTHREAD_STACK_MIN: %s\n", errname(rc));
	return conf_failed;
}
