/*
 * conf_tls_dlopen.c - thread-local data of a module loaded with dlopen
 * (dynamic TLS) is per thread too: threads started before the module was
 * loaded and after it each see the module's image first and then only
 * their own values; after dlclose and a new dlopen, the image again.
 */
#include "conf_tls.h"

#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>

static int (*mod_get)(void);
static void (*mod_set)(int);
static int (*mod_zeroed)(void);
static pthread_barrier_t loaded;
static void *handle;

static bool load(void)
{
	char exe[PATH_MAX], path[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n < 0)
		return false;
	exe[n] = '\0';
	snprintf(path, sizeof(path), "%s/libtls_mod.so", dirname(exe));
	handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		printf("dlopen: %s\n", dlerror());
		return false;
	}
	*(void **)&mod_get = dlsym(handle, "tls_mod_get");
	*(void **)&mod_set = dlsym(handle, "tls_mod_set");
	*(void **)&mod_zeroed = dlsym(handle, "tls_mod_zeroed");
	return mod_get && mod_set && mod_zeroed;
}

/* Thread 0 loads the module while the others wait; all then use it. */
static void *worker(void *arg)
{
	long id = (long)arg;
	bool ok;

	if (id == 0 && !load())
		exit(2);
	pthread_barrier_wait(&loaded);
	ok = mod_get() == 5 && mod_zeroed();
	mod_set((int)id + 100);
	pthread_barrier_wait(&tls_meet);
	for (int i = 0; i < 10; i++) {
		usleep(200);
		ok = ok && mod_get() == (int)id + 100;
	}
	return (void *)(long)ok;
}

int main(void)
{
	void *ok[TLS_THREADS];
	int all = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	die_rc("pthread_barrier_init", pthread_barrier_init(&loaded, NULL, TLS_THREADS));
	tls_run_all(worker, ok);
	for (int i = 0; i < TLS_THREADS; i++)
		all = all && ok[i];
	CHECK("each thread saw the module's image, then its own value", all);
	CHECK("main sees the module's image", mod_get() == 5 && mod_zeroed());
	mod_set(9);
	dlclose(handle);
	if (!load())
		return 2;
	CHECK("reloaded: main sees the image again", mod_get() == 5 && mod_zeroed());
	dlclose(handle);
	pthread_barrier_destroy(&loaded);
	return conf_failed;
}
