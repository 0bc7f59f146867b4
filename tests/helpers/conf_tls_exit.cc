/*
 * conf_tls_exit.cc - exit() called by a thread other than main runs that
 * thread's thread_local destructors, on its own objects, as glibc does for
 * the thread that calls it; the main thread, still waiting in
 * pthread_join, has none (it never used a thread_local here).
 */
#include "conf_cxx.h"

#include <pthread.h>
#include <string>

namespace {

struct Named {
	std::string name;
	~Named()
	{
		if (!name.empty())
			std::printf("destroyed: %s\n", name.c_str());
	}
};
thread_local Named first;
thread_local Named second;

void *leaver(void *arg)
{
	first.name = "first of " + std::string((const char *)arg);
	second.name = "second of " + std::string((const char *)arg);
	std::printf("%s calls exit\n", (const char *)arg);
	std::exit(0);
}

void *sleeper(void *)
{
	conf::sleep_ms(10000);
	return nullptr;
}

} // namespace

int main()
{
	pthread_t a, b;

	conf::watchdog(30);
	/* A thread that is still running when another calls exit. */
	pthread_create(&b, nullptr, sleeper, nullptr);
	conf::sleep_ms(20);
	pthread_create(&a, nullptr, leaver, (void *)const_cast<char *>("thread A"));
	pthread_join(a, nullptr);
	std::printf("not reached\n");
	return 1;
}
