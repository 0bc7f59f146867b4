#!/usr/bin/env python3
"""Runtimes that keep their current thread in compiler thread-local data,
under the preload shim (GREEN_PATCH=all), each run natively first so that
the harness itself is known good, then greened:

  Rust     tests/helpers/tls_server.rs, built here with rustc: std::thread,
           Mutex, Condvar, mpsc, thread_local! (with a destructor); 50
           clients served correctly on <= 4 OS threads
  Ruby     tests/helpers/tls_server.rb, a TCPServer with a Thread per client:
           the same
  Java     `java -version` (the same output, few OS threads),
           tests/helpers/TlsServer.java (a thread per client): as Rust, and
           tests/helpers/TlsGc.java (a pool allocating, the GC and JIT
           threads beside it): the same result on few OS threads
  refusal  a program built here with more modules with thread-local data
           than the shim keeps: `thread` is left unpatched, the shim says so
           on one line and in hello's warnings (greend's status and greenctl
           status show it), and the program works as natively
  node     tests/helpers/tls_node_mix.js (fs, dns, crypto, zlib, http on
           libuv's pool and V8's threads): finishes

Each reply of the line servers is "THREAD COUNT LINE": the thread's name as
its runtime knows it and a thread-local count, so a green thread that sees
another's thread-local data answers wrongly.  A missing toolchain or
package is a SKIP with the reason.  Loopback and temp dirs only; every wait
bounded; every process reaped."""
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers"))
from greendtest import (B, SHIM, Failure, Greend, Skip, check, green_env,  # noqa: E402
                        kill_group, native_env, run_tests, wait_for)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "tests", "helpers")
OUT = os.path.join(B, "tests", "tls")
CLIENTS = 50
LINES_EACH = 3
MAX_GREEN_THREADS = 4


def tool(name, debian_path):
    """Debian's tool (the one mk/deps.sh installs) first, else PATH's."""
    if os.access(debian_path, os.X_OK):
        return debian_path
    return shutil.which(name)


def task_count(pid):
    try:
        return len(os.listdir("/proc/%d/task" % pid))
    except OSError:
        return 0


def readline_bounded(f, secs):
    """A line from the pipe f within secs, or b"" (EOF or nothing came)."""
    fd = f.fileno()
    buf = b""
    end = time.monotonic() + secs
    while not buf.endswith(b"\n"):
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return buf
        chunk = os.read(fd, 1)
        if not chunk:
            return buf
        buf += chunk
    return buf


def line_server(how, argv, env, timeout=90):
    """Run a line server, have CLIENTS clients each send LINES_EACH lines
    over one connection while all are connected, check every reply, and
    return (OS threads seen at most, the server's last line)."""
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    socks = []
    err_text = ""
    try:
        first = readline_bounded(p.stdout, 30).decode(errors="replace")
        check(first.startswith("port "), "%s %s: no port line (%r); stderr: %s" % (
            how, argv[0], first, p.stderr.read1(4000).decode(errors="replace")
            if p.poll() is not None else "(still running)"))
        port = int(first.split()[1])
        for i in range(CLIENTS):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            socks.append((s, s.makefile("rb")))
        names = {}
        most = 0
        for k in range(1, LINES_EACH + 1):
            for i, (s, _) in enumerate(socks):
                s.sendall(b"client%d line%d\n" % (i, k))
            for i, (s, f) in enumerate(socks):
                reply = f.readline().decode(errors="replace").split()
                check(len(reply) == 4, "%s: client %d got %r" % (how, i, reply))
                name, count, line = reply[0], reply[1], " ".join(reply[2:])
                names.setdefault(i, name)
                check(name == names[i] and "!=" not in name,
                      "%s: client %d's thread answered as %s, then %s" % (how, i, names[i], name))
                check(count == str(k), "%s: client %d's line %d: thread-local count %s" % (
                    how, i, k, count))
                check(line == "client%d line%d" % (i, k), "%s: client %d: echo %r" % (how, i, line))
            most = max(most, task_count(p.pid))
        check(len(set(names.values())) == CLIENTS,
              "%s: %d distinct thread names for %d clients" % (how, len(set(names.values())),
                                                              CLIENTS))
        for s, f in socks:
            f.close()
            s.close()
        socks = []
        out, err = p.communicate(timeout=timeout)
        err_text = err.decode(errors="replace")
        last = out.decode(errors="replace").strip().splitlines()[-1:] or [""]
        check(p.returncode == 0, "%s %s exited %s; stderr: %s" % (how, argv[0], p.returncode,
                                                                  err_text[-1500:]))
        want = "served %d clients, %d lines" % (CLIENTS, CLIENTS * LINES_EACH)
        check(last[0] == want, "%s: %r, not %r" % (how, last[0], want))
        return most, err_text
    except subprocess.TimeoutExpired:
        raise Failure("%s %s did not finish in %d s" % (how, argv[0], timeout))
    except OSError as e:
        kill_group(p)
        raise Failure("%s %s: %s; its stderr: %s" % (how, argv[0], e, p.stderr.read(
            ).decode(errors="replace")[-1500:]))
    finally:
        for s, f in socks:
            f.close()
            s.close()
        kill_group(p)
        p.wait(10)


def both_ways(name, argv, green_threads=True):
    """The line server natively, then greened: with green_threads its
    threads must be green (few OS threads, nothing left unpatched)."""
    for how, env in (("native", native_env()), ("greened", green_env())):
        most, err = line_server(how, argv, env)
        print("   %s %s: OS threads at most %d" % (how, name, most))
        if how == "greened" and green_threads:
            check(most <= MAX_GREEN_THREADS, "greened %s had %d OS threads (at most %d)" % (
                name, most, MAX_GREEN_THREADS))
            check("left unpatched" not in err, "greened %s: the shim said: %s" % (name, err))


def test_rust_server():
    rustc = tool("rustc", "/usr/bin/rustc")
    if not rustc:
        raise Skip("no rustc (Debian's rustc package)")
    os.makedirs(OUT, exist_ok=True)
    exe = os.path.join(OUT, "tls_server")
    r = subprocess.run([rustc, "-O", "-o", exe, os.path.join(SRC, "tls_server.rs")],
                       capture_output=True, text=True, timeout=300, env=native_env())
    check(r.returncode == 0, "rustc failed: %s" % r.stderr[-2000:])
    both_ways("Rust tls_server", [exe, str(CLIENTS)])


def test_ruby_server():
    ruby = tool("ruby", "/usr/bin/ruby")
    if not ruby:
        raise Skip("no ruby (Debian's ruby package)")
    both_ways("Ruby tls_server.rb", [ruby, os.path.join(SRC, "tls_server.rb"), str(CLIENTS)])


# ---- the JVM ------------------------------------------------------------------

def java():
    j = tool("java", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java")
    if not j:
        raise Skip("no java (Debian's openjdk-17-jre-headless)")
    return j


def run_with_hello(argv, env, timeout=60):
    """Run argv with a channel to read the shim's hello from: (rc, stdout,
    stderr, hello or None, OS threads seen at most)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    env = dict(env, GREEN_CONTROL_FD=str(theirs.fileno()))
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, pass_fds=[theirs.fileno()], start_new_session=True)
    theirs.close()
    hello = None
    most = 0
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30 and hello is None and p.poll() is None:
            most = max(most, task_count(p.pid))
            if select.select([ours], [], [], 0.01)[0]:
                data = ours.recv(65536)
                hello = json.loads(data.decode()) if data else {}
        while p.poll() is None and time.monotonic() - t0 < timeout:
            most = max(most, task_count(p.pid))
            time.sleep(0.01)
        out, err = p.communicate(timeout=10)
        return p.returncode, out, err, hello, most
    except subprocess.TimeoutExpired:
        raise Failure("%s did not finish in %d s" % (" ".join(argv), timeout))
    finally:
        ours.close()
        kill_group(p)
        p.wait(10)


def said_unpatched(err):
    return [l for l in err.splitlines() if "left unpatched" in l]


def test_java_version():
    j = java()
    native = subprocess.run([j, "-version"], capture_output=True, text=True, timeout=60,
                            env=native_env())
    check(native.returncode == 0, "native java -version: %s" % native.stderr)
    rc, out, err, hello, most = run_with_hello([j, "-version"], green_env())
    check(rc == 0, "greened java -version exited %s: %s" % (rc, err[-1500:]))
    check(err.splitlines() == native.stderr.splitlines(),
          "greened java -version says %r, natively %r" % (err, native.stderr))
    check(hello is not None and "thread" in hello.get("patched", []) and
          not hello.get("warnings"), "hello should list thread and warn of nothing: %s" % hello)
    print("   greened java -version: OS threads at most %d" % most)
    check(most <= MAX_GREEN_THREADS, "greened java -version had %d OS threads" % most)


def test_java_server():
    j = java()
    javac = tool("javac", "/usr/lib/jvm/java-17-openjdk-amd64/bin/javac")
    if javac:
        os.makedirs(OUT, exist_ok=True)
        r = subprocess.run([javac, "-d", OUT, os.path.join(SRC, "TlsServer.java")],
                           capture_output=True, text=True, timeout=300, env=native_env())
        check(r.returncode == 0, "javac failed: %s" % r.stderr[-2000:])
        argv = [j, "-cp", OUT, "TlsServer"]
    else:
        # The JRE alone: the source launcher compiles it if the JRE has
        # jdk.compiler.
        mods = subprocess.run([j, "--list-modules"], capture_output=True, text=True, timeout=60)
        if "jdk.compiler" not in mods.stdout:
            raise Skip("no javac and no jdk.compiler module to run TlsServer.java")
        argv = [j, os.path.join(SRC, "TlsServer.java")]
    both_ways("Java TlsServer", argv + [str(CLIENTS)])


def test_java_gc_and_pool():
    j = java()
    javac = tool("javac", "/usr/lib/jvm/java-17-openjdk-amd64/bin/javac")
    if not javac:
        raise Skip("no javac to build TlsGc.java")
    os.makedirs(OUT, exist_ok=True)
    r = subprocess.run([javac, "-d", OUT, os.path.join(SRC, "TlsGc.java")],
                       capture_output=True, text=True, timeout=300, env=native_env())
    check(r.returncode == 0, "javac failed: %s" % r.stderr[-2000:])
    argv = [j, "-Xmx64m", "-cp", OUT, "TlsGc"]
    native = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=native_env())
    check(native.returncode == 0 and native.stdout.startswith("total "),
          "native TlsGc: %s %s" % (native.stdout, native.stderr[-1500:]))
    rc, out, err, hello, most = run_with_hello(argv, green_env(), timeout=120)
    check(rc == 0 and out == native.stdout, "greened TlsGc: rc %s, %r (natively %r); %s" % (
        rc, out, native.stdout, err[-1500:]))
    print("   greened TlsGc: OS threads at most %d" % most)
    check(most <= MAX_GREEN_THREADS, "greened TlsGc had %d OS threads" % most)


# ---- where TLS cannot be managed: `thread` refused, the program still works --

MANY = 65  # one more module with TLS than the shim keeps
MANY_REASON = "more modules with thread-local data than the shim keeps"


def many_tls_program():
    """A program linked with MANY modules that each have thread-local data,
    built here: its threads each print the sum of every module's initial
    value, then it sleeps ARGV[1] seconds."""
    cc = shutil.which("gcc")
    if not cc:
        raise Skip("no gcc to build the program with %d TLS modules" % MANY)
    d = os.path.join(OUT, "many")
    exe = os.path.join(d, "many_tls")
    if os.path.exists(exe):
        return exe
    os.makedirs(d, exist_ok=True)
    for i in range(MANY):
        src = os.path.join(d, "m%d.c" % i)
        with open(src, "w") as f:
            f.write("__thread int tls_%d = %d;\nint get_%d(void);\n"
                    "int get_%d(void) { return tls_%d++; }\n" % (i, i, i, i, i))
        subprocess.run([cc, "-shared", "-fPIC", "-o", os.path.join(d, "libm%d.so" % i), src],
                       check=True, timeout=60)
    with open(os.path.join(d, "main.c"), "w") as f:
        f.write("#include <pthread.h>\n#include <stdio.h>\n#include <stdlib.h>\n"
                "#include <unistd.h>\n")
        f.write("".join("int get_%d(void);\n" % i for i in range(MANY)))
        f.write("static void *sum(void *arg) { long s = 0;\n")
        f.write("".join("  s += get_%d();\n" % i for i in range(MANY)))
        f.write("  return (void *)s; }\n"
                "int main(int argc, char **argv) { pthread_t t[4]; void *r;\n"
                "  setvbuf(stdout, NULL, _IOLBF, 0);\n"
                "  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, sum, NULL);\n"
                "  for (int i = 0; i < 4; i++) { pthread_join(t[i], &r);"
                " printf(\"thread %d: %ld\\n\", i, (long)r); }\n"
                "  if (argc > 1) sleep(atoi(argv[1]));\n  return 0; }\n")
    subprocess.run([cc, "-o", exe, os.path.join(d, "main.c"), "-L" + d, "-Wl,-rpath," + d,
                    "-pthread"] + ["-lm%d" % i for i in range(MANY)], check=True, timeout=120)
    return exe


def test_unmanageable_tls_refused():
    exe = many_tls_program()
    native = subprocess.run([exe], capture_output=True, text=True, timeout=60, env=native_env())
    check(native.returncode == 0, "native %s: %s" % (exe, native.stderr))
    # Lingers a second: the shim's reporter thread sends hello soon after
    # start, and a program gone before it has sent none.
    rc, out, err, hello, _ = run_with_hello([exe, "1"], green_env())
    lines = said_unpatched(err)
    check(rc == 0 and out == native.stdout, "greened: rc %s, %r, natively %r; stderr %s" % (
        rc, out, native.stdout, err[-1500:]))
    check(len(lines) == 1 and "thread module left unpatched" in lines[0] and
          MANY_REASON in lines[0], "the shim's one line: %s" % err[-1500:])
    check(hello is not None and "thread" not in hello.get("patched", ["thread"]) and
          any(MANY_REASON in w for w in hello.get("warnings", [])),
          "hello should leave thread out and say why: %s" % hello)
    print("   " + lines[0])


def test_unmanageable_tls_in_greend_status():
    exe = many_tls_program()
    preload = SHIM
    env = {}
    if os.environ.get("GREEN_ASAN_RUNTIME"):
        preload = os.environ["GREEN_ASAN_RUNTIME"] + ":" + SHIM
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1:verify_asan_link_order=0"
    cmd = ["/usr/bin/env", "LD_PRELOAD=" + preload, "GREEN_PATCH=all", exe, "60"]
    with Greend(workers=[{"name": "many", "command": cmd, "env": env, "start_secs": 0.2}]) as g:
        g.wait_state("many:0", "running", 30)
        w = wait_for(lambda: (lambda i: i if i and i.get("warnings") else None)(g.inst("many:0")),
                     30, "the worker's hello")
        check(any(MANY_REASON in x for x in w["warnings"]) and "thread" not in w["patched"],
              "status: %s" % json.dumps(w)[:1500])
        r = g.ctl("status")
        check(r.returncode == 0 and "many:0: warning: thread: left unpatched" in r.stdout,
              "greenctl status: %s" % r.stdout[-1500:])
        print("   " + [l for l in r.stdout.splitlines() if "warning" in l][0])


# ---- node -------------------------------------------------------------------

def test_node_mix():
    node = tool("node", "/usr/bin/node")
    if not node:
        raise Skip("no node (Debian's nodejs)")
    script = os.path.join(SRC, "tls_node_mix.js")
    for how, env in (("native", native_env()), ("greened", green_env())):
        p = subprocess.Popen([node, script], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        most = 0
        t0 = time.monotonic()
        try:
            while p.poll() is None and time.monotonic() - t0 < 120:
                most = max(most, task_count(p.pid))
                time.sleep(0.01)
            check(p.poll() is not None, "%s node did not finish the mix in 120 s" % how)
            out, err = p.communicate(timeout=10)
        finally:
            kill_group(p)
            p.wait(10)
        check(p.returncode == 0 and out.strip() == "node mix ok",
              "%s node exited %s: %s %s" % (how, p.returncode, out[-500:], err[-1500:]))
        print("   %s node: %.1f s, OS threads at most %d" % (how, time.monotonic() - t0, most))
        # dns.lookup runs on the shim's resolver threads (at most four).
        if how == "greened":
            check(most <= MAX_GREEN_THREADS + 4, "greened node had %d OS threads" % most)


# ---- runner ----------------------------------------------------------------

if __name__ == "__main__":
    run_tests(globals(), needs_shim=True)
