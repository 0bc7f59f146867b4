/*
 * conf_cxx_threads.cc - the C++ standard thread library as a program uses
 * it: std::thread, std::mutex, std::condition_variable (with and without a
 * timeout; libstdc++ times it with pthread_cond_clockwait), std::shared_mutex,
 * std::call_once, std::async/future, std::jthread's stop_token, and
 * std::barrier, which libstdc++ builds on atomic wait (syscall(SYS_futex)).
 * Output is deterministic so the native and greened runs can be compared.
 */
#include "conf_cxx.h"

#include <atomic>
#include <barrier>
#include <condition_variable>
#include <future>
#include <mutex>
#include <queue>
#include <shared_mutex>
#include <stop_token>
#include <thread>
#include <vector>

namespace {

/* Four producers, one consumer, a queue guarded by a mutex and a condvar. */
void queue_with_condvar()
{
	const int producers = 4, each = 250;
	std::mutex m;
	std::condition_variable cv;
	std::queue<int> q;
	long sum = 0;
	int got = 0;

	conf::enter("mutex + condition_variable queue");
	std::vector<std::thread> ts;
	for (int p = 0; p < producers; p++)
		ts.emplace_back([&, p] {
			for (int i = 0; i < each; i++) {
				{
					std::lock_guard<std::mutex> g(m);
					q.push(p * each + i);
				}
				cv.notify_one();
				if (i % 100 == 0)
					std::this_thread::yield();
			}
		});
	while (got < producers * each) {
		std::unique_lock<std::mutex> l(m);
		cv.wait(l, [&] { return !q.empty(); });
		sum += q.front();
		q.pop();
		got++;
	}
	for (auto &t : ts)
		t.join();
	std::printf("queue items: %d, sum: %ld\n", got, sum);
}

void condvar_timeouts()
{
	std::mutex m;
	std::condition_variable cv;
	bool ready = false;

	conf::enter("condition_variable::wait_for timing out");
	std::unique_lock<std::mutex> l(m);
	double t0 = conf::now_ms();
	bool ok = cv.wait_for(l, std::chrono::milliseconds(30), [&] { return ready; });
	double took = conf::now_ms() - t0;
	std::printf("wait_for with nobody notifying: %s\n", ok ? "notified" : "timed out");
	conf::check("wait_for took its timeout", took >= 25 && took < 5000);
	std::printf("# took %.1f ms\n", took);
	l.unlock();

	conf::enter("condition_variable::wait_until, notifier asleep");
	std::thread notifier([&] {
		conf::sleep_ms(30);
		std::lock_guard<std::mutex> g(m);
		ready = true;
		cv.notify_all();
	});
	l.lock();
	ok = cv.wait_until(l, std::chrono::steady_clock::now() + std::chrono::seconds(10),
			   [&] { return ready; });
	l.unlock();
	notifier.join();
	std::printf("wait_until with a later notify: %s\n", ok ? "notified" : "timed out");
}

/* Four threads in lock step: each phase's completion step sees every
 * thread's work of that phase and none of the next. */
void barrier_phases(int *most_threads)
{
	const int n = 4, phases = 50;
	std::atomic<int> work{0};
	int phase = 0, bad = 0;
	std::barrier sync(n, [&]() noexcept {
		if (work.load() != (phase + 1) * n)
			bad++;
		/* All n threads are alive and in the barrier now. */
		if (phase == 0)
			*most_threads = conf::os_threads();
		phase++;
	});

	conf::enter("std::barrier phases");
	std::vector<std::thread> ts;
	for (int i = 0; i < n; i++)
		ts.emplace_back([&, i] {
			for (int p = 0; p < phases; p++) {
				if ((p + i) % 7 == 0)
					conf::sleep_ms(1); /* someone arrives late */
				work.fetch_add(1);
				sync.arrive_and_wait();
			}
		});
	for (auto &t : ts)
		t.join();
	std::printf("barrier phases: %d, out of step: %d\n", phase, bad);
}

void shared_mutex_readers()
{
	std::shared_mutex rw;
	std::atomic<int> inside{0}, most{0}, saw_write{0};
	int value = 0;

	conf::enter("shared_mutex readers and a writer");
	std::vector<std::thread> ts;
	{
		std::unique_lock<std::shared_mutex> w(rw);
		for (int i = 0; i < 3; i++)
			ts.emplace_back([&] {
				std::shared_lock<std::shared_mutex> r(rw);
				int now = inside.fetch_add(1) + 1;
				int was = most.load();
				while (now > was && !most.compare_exchange_weak(was, now))
					;
				if (value == 42)
					saw_write++;
				conf::sleep_ms(20);
				inside.fetch_sub(1);
			});
		conf::sleep_ms(20);
		value = 42;
	}
	for (auto &t : ts)
		t.join();
	std::printf("readers that saw the write: %d of 3, together: %s\n", saw_write.load(),
		    most.load() >= 2 ? "yes" : "no");
}

void once_async_jthread()
{
	std::once_flag once;
	std::atomic<int> calls{0};

	conf::enter("call_once from four threads");
	std::vector<std::thread> ts;
	for (int i = 0; i < 4; i++)
		ts.emplace_back([&] { std::call_once(once, [&] { calls++; conf::sleep_ms(10); }); });
	for (auto &t : ts)
		t.join();
	std::printf("call_once ran: %d\n", calls.load());

	conf::enter("std::async futures");
	std::vector<std::future<int>> fs;
	for (int i = 1; i <= 4; i++)
		fs.push_back(std::async(std::launch::async, [i] {
			conf::sleep_ms(5 * i);
			return i * i;
		}));
	int total = 0;
	for (auto &f : fs)
		total += f.get();
	std::printf("async results sum: %d\n", total);

	conf::enter("jthread stop_token");
	std::atomic<int> loops{0};
	{
		std::jthread j([&](std::stop_token st) {
			while (!st.stop_requested()) {
				loops++;
				conf::sleep_ms(1);
			}
		});
		conf::sleep_ms(20);
	} /* ~jthread requests stop and joins */
	std::printf("jthread stopped after looping: %s\n", loops.load() > 0 ? "yes" : "no");
}

} // namespace

int main()
{
	int most = 0;

	conf::watchdog(20);
	queue_with_condvar();
	condvar_timeouts();
	barrier_phases(&most);
	shared_mutex_readers();
	once_async_jthread();
	conf::check_os_threads("OS threads in the barrier", most, 4);
	return conf::failed;
}
