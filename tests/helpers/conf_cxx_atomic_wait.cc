/*
 * conf_cxx_atomic_wait.cc - C++20 std::atomic::wait/notify and what
 * libstdc++ builds on it (atomic_flag, counting/binary semaphores, latch).
 * libstdc++ implements these with syscall(SYS_futex) called from the
 * program's own inline code, so the shim sees neither a pthread call nor a
 * sem_* call: a waiter parks its whole hub unless that syscall is greened.
 * Every step has the notifier parked (sleeping) while the waiter waits, the
 * case that deadlocks when the wait blocks the OS thread.
 */
#include "conf_cxx.h"

#include <atomic>
#include <latch>
#include <semaphore>
#include <thread>
#include <vector>

namespace {

int most_threads; /* OS threads seen while four waiters were parked */

/* A waiter wakes when a notifier that slept first stores and notifies. */
void parked_notifier()
{
	std::atomic<int> a{0};
	int seen = -1;
	double t0 = conf::now_ms(), waited = 0;

	conf::enter("atomic<int>::wait, notifier asleep");
	/* Timed from before the waiter exists, so a late start cannot shorten
	 * it: the store comes at least 50 ms after t0. */
	std::thread waiter([&] {
		a.wait(0);
		waited = conf::now_ms() - t0;
		seen = a.load();
	});
	conf::sleep_ms(50);
	a.store(1);
	a.notify_one();
	waiter.join();
	std::printf("woken waiter saw: %d\n", seen);
	conf::check("waiter waited for the notifier", waited >= 49);
	std::printf("# waited %.1f ms\n", waited);
}

/* Two threads hand a turn back and forth, each waiting on the other. */
void ping_pong()
{
	const int rounds = 1000;
	std::atomic<int> turn{0};
	int pongs = 0;

	conf::enter("atomic<int> ping-pong");
	std::thread other([&] {
		for (int i = 0; i < rounds; i++) {
			turn.wait(0);
			pongs++;
			turn.store(0);
			turn.notify_one();
		}
	});
	for (int i = 0; i < rounds; i++) {
		turn.store(1);
		turn.notify_one();
		turn.wait(1);
	}
	other.join();
	std::printf("ping-pong rounds: %d\n", pongs);
}

/* notify_all wakes every waiter, on an int (a direct futex) and on a
 * 64-bit value (libstdc++ waits on a proxy word of its waiter pool). */
template <typename T> void notify_all(const char *what)
{
	const int n = 4;
	std::atomic<T> go{0};
	std::atomic<int> arrived{0}, woken{0};
	std::vector<std::thread> ts;

	conf::enter(what);
	for (int i = 0; i < n; i++)
		ts.emplace_back([&] {
			arrived.fetch_add(1);
			go.wait(0);
			woken.fetch_add(1);
		});
	while (arrived.load() < n)
		conf::sleep_ms(1);
	conf::sleep_ms(20);
	if (conf::os_threads() > most_threads)
		most_threads = conf::os_threads();
	go.store(7);
	go.notify_all();
	for (auto &t : ts)
		t.join();
	std::printf("%s woke: %d of %d\n", what, woken.load(), n);
}

void flag_wait()
{
	std::atomic_flag flag;
	bool seen = false;

	conf::enter("atomic_flag::wait");
	std::thread waiter([&] {
		flag.wait(false);
		seen = flag.test();
	});
	conf::sleep_ms(30);
	flag.test_and_set();
	flag.notify_one();
	waiter.join();
	std::printf("atomic_flag waiter saw: %s\n", seen ? "set" : "clear");
}

/* A bounded buffer on two counting semaphores: both sides block often. */
void semaphores()
{
	const int items = 200, slots = 4;
	std::counting_semaphore<slots> free_slots(slots);
	std::counting_semaphore<slots> full_slots(0);
	int ring[slots], sum = 0;

	conf::enter("counting_semaphore producer/consumer");
	std::thread consumer([&] {
		for (int i = 0; i < items; i++) {
			full_slots.acquire();
			sum += ring[i % slots];
			free_slots.release();
		}
	});
	for (int i = 0; i < items; i++) {
		free_slots.acquire();
		ring[i % slots] = i;
		full_slots.release();
		if (i % 50 == 0)
			conf::sleep_ms(2); /* let the consumer park on an empty ring */
	}
	consumer.join();
	std::printf("semaphore sum: %d\n", sum);

	std::binary_semaphore gate(0);
	conf::enter("binary_semaphore::try_acquire_for timing out");
	double t0 = conf::now_ms();
	bool got = gate.try_acquire_for(std::chrono::milliseconds(30));
	double took = conf::now_ms() - t0;
	std::printf("try_acquire_for on a closed gate: %s\n", got ? "acquired" : "timed out");
	conf::check("try_acquire_for took its timeout", took >= 25 && took < 5000);
	std::printf("# took %.1f ms\n", took);

	conf::enter("binary_semaphore::try_acquire_for, releaser asleep");
	std::thread opener([&] {
		conf::sleep_ms(30);
		gate.release();
	});
	got = gate.try_acquire_for(std::chrono::seconds(10));
	opener.join();
	std::printf("try_acquire_for on a gate opened later: %s\n", got ? "acquired" : "timed out");
}

void latch()
{
	const int n = 4;
	std::latch done(n);
	std::atomic<int> ran{0};
	std::vector<std::thread> ts;

	conf::enter("latch::wait");
	for (int i = 0; i < n; i++)
		ts.emplace_back([&, i] {
			conf::sleep_ms(5 * (i + 1));
			ran.fetch_add(1);
			done.count_down();
		});
	done.wait();
	std::printf("latch released after: %d of %d\n", ran.load(), n);
	for (auto &t : ts)
		t.join();
}

} // namespace

int main()
{
	conf::watchdog(20);
	parked_notifier();
	ping_pong();
	notify_all<int>("atomic<int>::notify_all");
	notify_all<long long>("atomic<long long>::notify_all");
	flag_wait();
	semaphores();
	latch();
	conf::check_os_threads("OS threads while 4 waited", most_threads, 4);
	return conf::failed;
}
