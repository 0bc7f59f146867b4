/*
 * conf_tls_dtors.cc - C++ thread_local objects are per thread and their
 * destructors run at each thread's exit (a return or pthread_exit), newest
 * first, seeing that thread's own values, before the thread's pthread key
 * destructors, as glibc orders them; one constructed during another's
 * destruction is destroyed too.  The events are logged per thread and
 * printed by main, so the output does not depend on scheduling.
 */
#include "conf_cxx.h"

#include <pthread.h>
#include <string>
#include <vector>

namespace {

const int nthreads = 6;
std::string events[nthreads];
pthread_key_t key;
pthread_barrier_t meet;

struct Late {
	int id = -1;
	~Late()
	{
		if (id >= 0) /* main's, made with the others at its first use */
			events[id] += " late(" + std::to_string(id) + ")";
	}
};
thread_local Late late;

struct Tracked {
	const char *name;
	int id = -1;
	explicit Tracked(const char *n) : name(n) {}
	~Tracked()
	{
		if (id < 0)
			return;
		events[id] += std::string(" ~") + name + "(" + std::to_string(id) + ")";
		if (name[0] == 'b') {
			late.id = id; /* first use: constructed now, destroyed after */
		}
	}
};
thread_local Tracked a("a");
thread_local Tracked b("b");

void key_dtor(void *v)
{
	long id = (long)v - 1;

	events[id] += " key(" + std::to_string(id) + ")";
}

void *worker(void *arg)
{
	long id = (long)arg;

	a.id = (int)id;
	b.id = (int)id;
	pthread_setspecific(key, (void *)(id + 1));
	pthread_barrier_wait(&meet);
	conf::sleep_ms(1);
	if (id % 2)
		pthread_exit(nullptr);
	return nullptr;
}

} // namespace

int main()
{
	pthread_t th[nthreads];

	conf::watchdog(30);
	pthread_key_create(&key, key_dtor);
	pthread_barrier_init(&meet, nullptr, nthreads);
	for (long i = 0; i < nthreads; i++)
		pthread_create(&th[i], nullptr, worker, (void *)i);
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], nullptr);
	for (int i = 0; i < nthreads; i++)
		std::printf("thread %d (%s):%s\n", i, i % 2 ? "pthread_exit" : "return",
		            events[i].c_str());
	conf::check("main's thread_local untouched", a.id == -1 && b.id == -1);
	pthread_barrier_destroy(&meet);
	return conf::failed;
}
