#!/usr/bin/env python3
"""Real, unmodified programs from Debian under the preload shim
(GREEN_PATCH=all): CPython threads that sleep, CPython's
socketserver.ThreadingTCPServer holding 300 connections, curl fetching from a
local server, redis-server (already asynchronous) driven by
redis-benchmark, and nginx serving and then stopping on SIGTERM.  Loopback only; every wait bounded; every process reaped."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers"))
from greendtest import green_env  # noqa: E402

B = os.environ.get("B", os.path.abspath("build"))
SHIM = os.path.join(B, "libgreen-preload.so")
PY = "/usr/bin/python3"  # Debian's CPython, not whatever is first on PATH
results = []


def os_threads(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


def start_server(argv, env, pattern=rb"listening on .*:(\d+)", timeout=20):
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + timeout
    line = b""
    while time.time() < deadline:
        line = p.stdout.readline()
        m = re.search(pattern, line)
        if m:
            return p, int(m.group(1))
        if not line and p.poll() is not None:
            break
    stop(p)
    raise AssertionError("server did not start: %r %r" % (line, p.stderr.read()[-2000:]))


def stop(p):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def test(fn):
    def run():
        t0 = time.time()
        try:
            fn()
            results.append((fn.__name__, True, ""))
            print("PASS %s (%.1fs)" % (fn.__name__, time.time() - t0))
        except Exception as e:  # report and go on with the next test
            results.append((fn.__name__, False, str(e)))
            print("FAIL %s: %s" % (fn.__name__, e))
    return run


@test
def cpython_500_sleeping_threads():
    out = subprocess.run([PY, "examples/sleepers.py", "500", "1"], env=green_env(),
                         capture_output=True, timeout=60, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print("  ", r)
    assert r["threads"] == 500
    # "about 1 s": well under the 500 s a serial run would take, with slack
    # for a loaded CI machine
    assert 1.0 <= r["elapsed_s"] < 5.0, r
    assert r["max_os_threads"] <= 4, r


@test
def cpython_threading_tcp_server_300_connections():
    p, port = start_server([PY, "examples/threaded_echo.py", "0"], green_env())
    socks = []
    try:
        for i in range(300):
            s = socket.create_connection(("127.0.0.1", port), timeout=20)
            socks.append(s)
        for i, s in enumerate(socks):
            s.sendall(b"hello %d\n" % i)
        for i, s in enumerate(socks):
            want = b"hello %d\n" % i
            got = b""
            while len(got) < len(want):
                chunk = s.recv(len(want) - len(got))
                assert chunk, "connection %d closed early" % i
                got += chunk
            assert got == want, (got, want)
        threads = os_threads(p.pid)
        print("   300 connections open, server OS threads: %d" % threads)
        assert threads <= 4, threads
    finally:
        for s in socks:
            s.close()
        stop(p)


@test
def curl_fetches_from_local_server():
    root = os.path.join(B, "test-logs", "www")
    os.makedirs(root, exist_ok=True)
    body = b"green world\n" * 1000
    with open(os.path.join(root, "index.txt"), "wb") as f:
        f.write(body)
    p, port = start_server([PY, "-u", "-c", (
        "import http.server, functools, sys\n"
        "h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])\n"
        "s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), h)\n"
        "print('listening on 127.0.0.1:%d' % s.server_address[1], flush=True)\n"
        "s.serve_forever()\n"), root], dict(os.environ))
    try:
        out = subprocess.run(["curl", "-sS", "--max-time", "20",
                              "http://127.0.0.1:%d/index.txt" % port],
                             env=green_env(), capture_output=True, timeout=30)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout == body, len(out.stdout)
    finally:
        stop(p)


@test
def redis_server_under_all_patches():
    if not shutil.which("redis-server") or not shutil.which("redis-benchmark"):
        raise AssertionError("redis-server/redis-benchmark missing (mk/deps.sh test installs them)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no"],
                         env=green_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        out = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port),
                              "-q", "-n", "20000", "-t", "set,get,incr,lpush"],
                             capture_output=True, timeout=120, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
        lines = [l for l in out.stdout.replace("\r", "\n").splitlines()
                 if "requests per second" in l]
        print("   " + "; ".join(l.strip() for l in lines))
        assert len(lines) == 4, out.stdout[-2000:]
        assert p.poll() is None, "redis-server died"
    finally:
        stop(p)
        log = p.stdout.read().decode(errors="replace") if p.stdout else ""
        assert "libgreen" not in log, log[-2000:]


NGINX_CONF = """worker_processes 2;
daemon off;
master_process on;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    server { listen 127.0.0.1:%(port)d; location / { return 200 "hi\\n"; } }
}
"""


def group_gone(pgid):
    try:
        os.killpg(pgid, 0)
        return False
    except ProcessLookupError:
        return True


@test
def nginx_serves_and_stops_on_sigterm():
    # nginx's master sleeps in sigsuspend with every signal blocked outside
    # it, and tells its workers to stop over a socketpair: greened, its
    # SIGTERM once never reached its handler, and master and workers ran on.
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        print("   skip: nginx is not installed (mk/deps.sh test installs nginx-light)")
        return
    import tempfile
    for label, env in (("native", dict(os.environ)), ("green", green_env())):
        d = tempfile.mkdtemp(prefix="greend-nginx.")
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            with open(os.path.join(d, "nginx.conf"), "w") as f:
                f.write(NGINX_CONF % {"dir": d, "port": port})
            p = subprocess.Popen([nginx, "-c", os.path.join(d, "nginx.conf"), "-p", d],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 start_new_session=True)
            try:
                body = None
                deadline = time.time() + 20
                while time.time() < deadline and body is None and p.poll() is None:
                    try:
                        body = urllib.request.urlopen("http://127.0.0.1:%d/" % port,
                                                      timeout=2).read()
                    except OSError:
                        time.sleep(0.05)
                assert body == b"hi\n", "%s nginx: %r %r" % (label, body, p.stderr.read()[-2000:]
                                                             if p.poll() is not None else "")
                for _ in range(50):
                    assert urllib.request.urlopen("http://127.0.0.1:%d/" % port,
                                                  timeout=5).read() == b"hi\n"
                t0 = time.time()
                p.send_signal(signal.SIGTERM)
                while time.time() - t0 < 10 and not (p.poll() is not None and group_gone(p.pid)):
                    time.sleep(0.02)
                took = time.time() - t0
                assert p.poll() == 0 and group_gone(p.pid), \
                    "%s nginx did not stop on SIGTERM in 10 s (master rc %s)" % (label, p.poll())
                print("   %s: 51 requests answered; master and workers gone %.2f s after SIGTERM"
                      % (label, took))
            finally:
                if not group_gone(p.pid):
                    os.killpg(p.pid, signal.SIGKILL)
                stop(p)
        finally:
            shutil.rmtree(d, ignore_errors=True)


def main():
    if not os.path.exists(SHIM):
        print("no shim built at", SHIM)
        print("0 passed, 1 failed")
        return 1
    for t in (cpython_500_sleeping_threads, cpython_threading_tcp_server_300_connections,
              curl_fetches_from_local_server, redis_server_under_all_patches,
              nginx_serves_and_stops_on_sigterm):
        t()
    passed = sum(1 for r in results if r[1])
    failed = len(results) - passed
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
