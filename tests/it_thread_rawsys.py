#!/usr/bin/env python3
"""Modules that make the futex system call with a syscall instruction of
their own (preload/rawsys.c), under the shim with GREEN_PATCH=all:

  OpenMP at start   a program built here with gcc -fopenmp (GCC's libgomp
                    waits for its team with its own futex calls): it prints
                    what it prints natively, `thread` is left unpatched, one
                    stderr line names libgomp and the reason, hello leaves
                    thread out and carries the reason in "warnings".  With
                    thread patched it hangs at its first barrier: the run is
                    bounded.
  OpenMP dlopen'd   a program whose green threads run, then that dlopens a
                    library built with -fopenmp and runs parallel regions in
                    it: thread stays patched (green state exists by then),
                    one line says the library's threads are OS threads, and
                    the output is the native one.
  not flagged       Rust std::thread (futex through libc's syscall()), C++
                    std::thread with libstdc++ and libgcc_s, CPython, Ruby,
                    the JVM (libjvm is dlopen'd) and node: hello lists thread
                    and warns of nothing, stderr says nothing unpatched.

A missing toolchain or runtime is a SKIP with the reason.  Temp dirs only;
every wait bounded; every process reaped."""
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "helpers"))
sys.path.insert(0, HERE)
from greendtest import B, Skip, check, green_env, native_env, run_tests  # noqa: E402
from it_tls_programs import run_with_hello, said_unpatched, tool  # noqa: E402

OUT = os.path.join(B, "tests", "rawsys")
REASON = "makes futex system calls of its own"

# Every region ends at a barrier; the sums and counts do not depend on the
# order the team's threads run in.
OMP_REGIONS = r"""
#include <omp.h>
#include <stdio.h>

long omp_regions(int rounds)
{
	long total = 0;

	for (int r = 0; r < rounds; r++) {
		long sum = 0;
		int members = 0;

#pragma omp parallel for reduction(+ : sum) num_threads(4) schedule(static)
		for (int i = 0; i < 200000; i++)
			sum += (i * (r + 1)) % 11;
#pragma omp parallel num_threads(4)
		{
#pragma omp barrier
#pragma omp atomic
			members++;
#pragma omp barrier
		}
		printf("round %d: sum %ld, %d members\n", r, sum, members);
		total += sum;
	}
	return total;
}
"""

OMP_MAIN = r"""
#include <stdio.h>
#include <unistd.h>
long omp_regions(int rounds);
int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("total %ld\n", omp_regions(5));
	usleep(500000); /* the shim's reporter thread sends hello meanwhile */
	return 0;
}
"""

# Green threads first (they are green: thread is patched), then the
# OpenMP library dlopen'd and used while one of them still runs.
DLOPEN_MAIN = r"""
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static void *worker(void *arg)
{
	long n = (long)arg, s = 0;

	for (long i = 0; i < 1000 * n; i++)
		s += i % 3;
	usleep(1000);
	return (void *)s;
}

static void *ticker(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20; i++)
		usleep(2000);
	return (void *)20L;
}

int main(int argc, char **argv)
{
	pthread_t t[3], tick;
	void *r;
	long (*regions)(int);
	void *lib;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (long i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, worker, (void *)(i + 1));
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], &r);
		printf("worker %d: %ld\n", i, (long)r);
	}
	pthread_create(&tick, NULL, ticker, NULL);
	lib = dlopen(argv[1], RTLD_NOW);
	if (!lib || !(regions = (long (*)(int))dlsym(lib, "omp_regions"))) {
		printf("dlopen: %s\n", dlerror());
		return 1;
	}
	printf("total %ld\n", regions(5));
	pthread_join(tick, &r);
	printf("ticker: %ld\n", (long)r);
	usleep(500000); /* the shim's reporter thread sends hello meanwhile */
	return 0;
}
"""


def gcc_openmp():
    cc = shutil.which("gcc")
    if not cc:
        raise Skip("no gcc")
    os.makedirs(OUT, exist_ok=True)
    probe = os.path.join(OUT, "probe.c")
    with open(probe, "w") as f:
        f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
    r = subprocess.run([cc, "-fopenmp", "-o", os.path.join(OUT, "probe"), probe],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise Skip("gcc -fopenmp does not link (libgomp, from Debian's gcc): %s" % r.stderr[-300:])
    return cc


def build(compiler, name, sources, flags, ext=".c"):
    """OUT/name from the texts in sources, each written to a file of its own."""
    os.makedirs(OUT, exist_ok=True)
    paths = []
    for i, text in enumerate(sources):
        p = os.path.join(OUT, "%s_%d%s" % (name, i, ext))
        with open(p, "w") as f:
            f.write(text)
        paths.append(p)
    out = os.path.join(OUT, name)
    r = subprocess.run([compiler] + flags + ["-o", out] + paths, capture_output=True,
                       text=True, timeout=300, env=native_env())
    check(r.returncode == 0, "building %s: %s" % (name, r.stderr[-1500:]))
    return out


def native_then_greened(argv, timeout=60):
    native = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                            env=native_env())
    check(native.returncode == 0, "native %s: %s %s" % (argv[0], native.stdout, native.stderr))
    rc, out, err, hello, _ = run_with_hello(argv, green_env(), timeout=timeout)
    check(rc == 0 and out == native.stdout, "greened: rc %s, %r, natively %r; stderr %s" % (
        rc, out, native.stdout, err[-1500:]))
    return err, hello


def test_openmp_program_refused():
    exe = build(gcc_openmp(), "omp_team", [OMP_REGIONS, OMP_MAIN], ["-O2", "-fopenmp"])
    err, hello = native_then_greened([exe])
    lines = said_unpatched(err)
    check(len(lines) == 1 and "thread module left unpatched" in lines[0] and
          "libgomp" in lines[0] and REASON in lines[0], "the shim's one line: %s" % err[-1500:])
    check(hello is not None and "thread" not in hello.get("patched", ["thread"]) and
          any("libgomp" in w and REASON in w for w in hello.get("warnings", [])),
          "hello should leave thread out and say why: %s" % hello)
    print("   " + lines[0])


def test_openmp_dlopened_gets_os_threads():
    if os.environ.get("GREEN_ASAN_RUNTIME"):
        # ASan's pthread_create calls the shim's: the caller the shim sees
        # is the sanitizer, not libgomp.
        raise Skip("under ASan the shim cannot tell who called pthread_create")
    lib = build(gcc_openmp(), "libomp_regions.so", [OMP_REGIONS],
                ["-O2", "-fopenmp", "-shared", "-fPIC"])
    exe = build(gcc_openmp(), "omp_dlopen", [DLOPEN_MAIN], ["-O2", "-pthread", "-ldl"])
    err, hello = native_then_greened([exe, lib])
    said = [l for l in err.splitlines() if REASON in l]
    check(len(said) == 1 and "loaded after start" in said[0] and "libgomp" in said[0] and
          not said_unpatched(err), "the shim's one line: %s" % err[-1500:])
    check(hello is not None and "thread" in hello.get("patched", []),
          "hello should list thread (patched before the dlopen): %s" % hello)
    print("   " + said[0])


def no_warning(what, argv, env=None):
    rc, out, err, hello, _ = run_with_hello(argv, green_env() if env is None else env)
    check(rc == 0, "greened %s exited %s: %s" % (what, rc, err[-1500:]))
    check(REASON not in err and not said_unpatched(err), "greened %s: %s" % (what, err[-1500:]))
    check(hello is not None and "thread" in hello.get("patched", []) and
          not hello.get("warnings"), "%s: hello should list thread and warn of nothing: %s" % (
              what, hello))


RUST_THREADS = r"""
use std::sync::{Arc, Mutex, Condvar};
fn main() {
    let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
    let hs: Vec<_> = (0..4).map(|_| { let p = pair.clone(); std::thread::spawn(move || {
        let (m, c) = &*p; let mut n = m.lock().unwrap(); *n += 1; c.notify_all();
        while *n < 4 { n = c.wait(n).unwrap(); } }) }).collect();
    for h in hs { h.join().unwrap(); }
    println!("rust {}", *pair.0.lock().unwrap());
    std::thread::sleep(std::time::Duration::from_millis(200)); // hello is sent
}
"""

CXX_THREADS = r"""
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>
int main() {
    std::atomic<int> n{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; i++)
        ts.emplace_back([&] { n.fetch_add(1); n.notify_all(); while (n.load() < 4) n.wait(n.load()); });
    for (auto &t : ts) t.join();
    try { throw 1; } catch (int) {}
    std::printf("c++ %d\n", n.load());
    std::this_thread::sleep_for(std::chrono::milliseconds(200)); // hello is sent
}
"""


def test_rust_std_not_flagged():
    rustc = tool("rustc", "/usr/bin/rustc")
    if not rustc:
        raise Skip("no rustc (Debian's rustc package)")
    no_warning("Rust std::thread", [build(rustc, "rust_threads", [RUST_THREADS], ["-O"], ".rs")])


def test_libstdcxx_not_flagged():
    cxx = shutil.which("g++")
    if not cxx:
        raise Skip("no g++")
    no_warning("C++ std::thread", [build(cxx, "cxx_threads", [CXX_THREADS], [
        "-std=c++20", "-O2", "-shared-libgcc", "-pthread"], ".cc")])


def test_python_not_flagged():
    py = tool("python3", "/usr/bin/python3")
    if not py:
        raise Skip("no python3")
    no_warning("CPython threads", [py, "-c", "import threading\n"
               "ts = [threading.Thread(target=sum, args=([1, 2],)) for _ in range(4)]\n"
               "[t.start() for t in ts]; [t.join() for t in ts]; print('py')\n"
               "import time; time.sleep(0.2)"])


def test_ruby_not_flagged():
    ruby = tool("ruby", "/usr/bin/ruby")
    if not ruby:
        raise Skip("no ruby (Debian's ruby package)")
    no_warning("Ruby threads", [ruby, "-e", "4.times.map { Thread.new { 1 } }.each(&:join); p 1; sleep 0.2"])


def test_jvm_not_flagged():
    j = tool("java", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java")
    if not j:
        raise Skip("no java (Debian's openjdk-17-jre-headless)")
    no_warning("java -version", [j, "-version"])


def test_node_not_flagged():
    node = tool("node", "/usr/bin/node")
    if not node:
        raise Skip("no node (Debian's nodejs)")
    no_warning("node", [node, "-e", "require('fs').readFileSync('/proc/self/stat'); "
               "console.log('node'); setTimeout(() => 0, 200)"])


if __name__ == "__main__":
    run_tests(globals(), needs_shim=True)
