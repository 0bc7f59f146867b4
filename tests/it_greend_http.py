#!/usr/bin/env python3
"""it_greend_http - greend's read-only HTTP endpoint (http_listen): the four
paths and their answers, the two exposition formats checked by promtool, a
real Prometheus scraping greend, the limits (oversized request, 500 idle
connections, a client that trickles its request), the Unix-socket form,
moving the listener on reload, and strict config errors.  Throughout,
greend must keep answering its control socket."""
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers"))
from greendtest import (GREEND, Greend, check, exchange, free_port, run_tests,  # noqa: E402
                        wait_for, worker)

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


def get(port, path, method="GET", headers=None, body=None, timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode()
    finally:
        c.close()


def healthy(port):
    try:
        return get(port, "/healthz", timeout=2)[0] == 200
    except OSError:
        return False


def http_greend(workers, port=None, **kw):
    port = port or free_port()
    g = Greend(workers=workers, extra={"http_listen": "127.0.0.1:%d" % port}, **kw)
    g.port = port
    wait_for(lambda: healthy(port), 10, "/healthz on port %d" % port)
    return g


def promtool_check(text, what):
    if not PROMTOOL:
        print("skip promtool check of %s: promtool not installed (Debian package prometheus)" % what)
        return
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    check(r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(),
          "promtool check metrics on %s: rc %d: %s%s" % (what, r.returncode, r.stdout, r.stderr))


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def sample(text, name, **labels):
    """The value of NAME{LABELS...} in exposition TEXT, or None."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        if all('%s="%s"' % kv in head for kv in labels.items()):
            return float(value)
    return None


def test_paths_and_answers():
    with http_greend([worker("a", instances=2)]) as g:
        g.wait_state("a:0", "running")
        g.wait_state("a:1", "running")
        # chanworker reports stats: wait until the first report is in.
        wait_for(lambda: all(w["greenlets"] for w in g.status()["workers"]), 10, "stats")

        st, hdr, body = get(g.port, "/healthz")
        check(st == 200 and body == "ok\n", (st, body))
        st, hdr, body = get(g.port, "/readyz")
        check(st == 200 and json.loads(body)["ready"] is True, (st, body))
        st, hdr, body = get(g.port, "/status")
        check(st == 200 and hdr["Content-Type"] == "application/json", (st, hdr))
        check([w["id"] for w in json.loads(body)["workers"]] == ["a:0", "a:1"], body)
        st, hdr, body = get(g.port, "/nothing-here")
        check(st == 404, st)
        st, hdr, body = get(g.port, "/metrics?x=1", method="HEAD")
        check(st == 200 and body == "", (st, body))
        for method in ("POST", "PUT", "DELETE"):
            st, hdr, body = get(g.port, "/status", method=method, body="{}")
            check(st == 405 and hdr.get("Allow") == "GET, HEAD", (method, st, hdr))
        st, _, _ = get(g.port, "/status", body="x" * 100)
        check(st == 413, "a GET with a body: %d" % st)
        check(g.status()["workers"][0]["state"] == "running", "HTTP changed nothing")

        st, hdr, text = get(g.port, "/metrics")
        check(st == 200 and hdr["Content-Type"].startswith("text/plain; version=0.0.4"), hdr)
        for iid in ("a:0", "a:1"):
            check(sample(text, "greend_instance_up", id=iid) == 1, text)
            check(sample(text, "greend_instance_cpu_seconds_total", id=iid) is not None, text)
            check(sample(text, "greend_instance_resident_memory_bytes", id=iid) > 0, text)
            check(sample(text, "greend_instance_open_fds", id=iid) >= 3, text)
            check(sample(text, "greend_greenlets_alive", id=iid) is not None, text)
            check(sample(text, "greend_instance_state", id=iid, state="running") == 1, text)
        check(sample(text, "greend_worker_instances_wanted", worker="a") == 2, text)
        check(sample(text, "greend_worker_instances_running", worker="a") == 2, text)
        check(sample(text, "greend_process_open_fds") > 0, text)
        check(sample(text, "greend_http_requests_total") >= 5, text)
        check(sample(text, "greend_http_connections") >= 1, text)
        check(sample(text, "greend_process_resident_memory_bytes") > 0, text)
        check("greend_hub_max_blocking_seconds" in text, text)
        check(not [l for l in text.splitlines() if l.split("{")[0].split(" ")[0].endswith("_ms")],
              "base units only")
        promtool_check(text, "the HTTP text")

        ctl = g.request({"cmd": "metrics"})["text"]
        promtool_check(ctl, "the control socket's text")
        names = lambda t: sorted({l.split()[2] for l in t.splitlines() if l.startswith("# TYPE")})
        check(names(ctl) == names(text), "the same families on both: %s / %s" % (names(ctl), names(text)))

        st, hdr, om = get(g.port, "/metrics", headers={"Accept": OPENMETRICS})
        check(st == 200 and hdr["Content-Type"].startswith("application/openmetrics-text"), hdr)
        check(om.endswith("# EOF\n"), om[-200:])
        check("# TYPE greend_switches counter" in om and "greend_switches_total{" in om, om)
        check("# TYPE greend_build info" in om, om)
        st, hdr, _ = get(g.port, "/metrics", headers={"Accept": "text/plain;q=0.9,application/openmetrics-text;q=0.1"})
        check(hdr["Content-Type"].startswith("text/plain"), "the scraper's preference wins: %s" % hdr)
        st, hdr, _ = get(g.port, "/metrics", headers={
            "Accept": "application/openmetrics-text; version=1.0.0; q=0.2, text/plain; q=0.9"})
        check(hdr["Content-Type"].startswith("text/plain"), "q after other parameters: %s" % hdr)
        st, hdr, _ = get(g.port, "/metrics", headers={"Accept": "application/openmetrics-text;q=0"})
        check(hdr["Content-Type"].startswith("text/plain"), "q=0 means not acceptable: %s" % hdr)


def test_readyz_503_names_the_others():
    with http_greend([worker("a"), worker("crash", "--exit-after", "0.05", "--exit-code", "3",
                                          restart="always", backoff_ms=400, backoff_max_ms=400)]) as g:
        g.wait_state("a:0", "running")

        def not_ready():
            st, _, body = get(g.port, "/readyz")
            return (st, json.loads(body)) if st == 503 else None
        st, body = wait_for(not_ready, 10, "/readyz 503")
        check(body["ready"] is False and [o["id"] for o in body["not_running"]] == ["crash:0"], body)
        check(body["not_running"][0]["state"] in ("starting", "backoff"), body)
        # Stopped on request is not "should run": ready again.
        r = g.ctl("stop", "crash")
        check(r.returncode == 0, r.stdout + r.stderr)
        wait_for(lambda: get(g.port, "/readyz")[0] == 200, 10, "/readyz 200 once crash is stopped")
        text = get(g.port, "/metrics")[2]
        check(sample(text, "greend_worker_instances_wanted", worker="crash") == 0, text)


def test_prometheus_scrapes_greend():
    if not PROMETHEUS:
        print("skip: prometheus not installed (Debian package prometheus)")
        return
    with http_greend([worker("a", instances=2), worker("b")]) as g:
        for iid in ("a:0", "a:1", "b:0"):
            g.wait_state(iid, "running")
        pdir = tempfile.mkdtemp(prefix="it_prom.")
        pport = free_port()
        with open(os.path.join(pdir, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: greend\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % g.port)
        plog = open(os.path.join(pdir, "prometheus.log"), "wb")
        prom = subprocess.Popen([PROMETHEUS, "--config.file=" + os.path.join(pdir, "prometheus.yml"),
                                 "--storage.tsdb.path=" + os.path.join(pdir, "data"),
                                 "--web.listen-address=127.0.0.1:%d" % pport],
                                stdout=plog, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=pdir)
        try:
            def query(q):
                url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (pport, urllib.parse.quote(q))
                with urllib.request.urlopen(url, timeout=5) as r:
                    a = json.loads(r.read())
                return a["data"]["result"] if a.get("status") == "success" else None

            def up_for_all():
                res = query("greend_instance_up")
                got = {r["metric"]["id"]: r["value"][1] for r in res or []}
                return got if set(got) == {"a:0", "a:1", "b:0"} else None
            got = wait_for(up_for_all, 60, "Prometheus to return greend_instance_up", interval=0.5)
            check(all(v == "1" for v in got.values()), got)
            # The scrape itself was clean: Prometheus's own up, and no
            # samples it had to drop.
            up = query('up{job="greend"}')
            check(up and up[0]["value"][1] == "1", up)
            check(g.status()["ok"], "the control socket answers while Prometheus scrapes")
        except Exception:
            plog.flush()
            print(open(os.path.join(pdir, "prometheus.log"), errors="replace").read()[-4000:])
            raise
        finally:
            prom.terminate()
            try:
                prom.wait(20)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait(10)
            plog.close()
            shutil.rmtree(pdir, ignore_errors=True)


def test_oversized_request_refused():
    with http_greend([worker("a")]) as g:
        s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
        try:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answer = s.recv(4096)
        except ConnectionResetError:
            answer = b""
        s.close()
        check(answer == b"" or answer.split(b" ")[1] in (b"413", b"414", b"431"),
              "an oversized head is refused: %r" % answer[:100])
        check(healthy(g.port) and g.status()["ok"], "greend answers after it")


def test_500_idle_connections():
    with http_greend([worker("a")]) as g:
        g.wait_state("a:0", "running")
        base = fd_count(g.proc.pid)
        conns = []
        try:
            for _ in range(500):
                conns.append(socket.create_connection(("127.0.0.1", g.port), timeout=5))
            check(g.status()["ok"], "the control socket answers with 500 idle HTTP connections")
            time.sleep(0.5)
            # The library keeps at most GD_HTTP_MAX_CONNECTIONS; the rest
            # are closed as they come in.
            check(fd_count(g.proc.pid) <= base + 64 + 2,
                  "greend holds %d fds (was %d)" % (fd_count(g.proc.pid), base))
            # Idle connections lose their slot at the request deadline, so
            # a scrape gets through while the 500 are still open.
            t0 = time.monotonic()
            wait_for(lambda: healthy(g.port), 15, "/healthz past 500 idle connections")
            check(time.monotonic() - t0 < 12, "took %.1fs" % (time.monotonic() - t0))
            for c in conns[:64]:
                c.settimeout(10)
                check(c.recv(1) == b"", "an idle connection is cut")
        finally:
            for c in conns:
                c.close()
        wait_for(lambda: fd_count(g.proc.pid) <= base + 1, 15, "greend to drop the connections")
        check(g.status()["ok"], "control socket")
        text = g.request({"cmd": "metrics"})["text"]
        check(sample(text, "greend_http_connections_cut_total") >= 400, text)
        check(sample(text, "greend_http_connections") == 0, text)


def test_slow_client_is_cut_and_others_served():
    with http_greend([worker("a")]) as g:
        s = socket.create_connection(("127.0.0.1", g.port), timeout=20)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        cut = None
        try:
            while time.monotonic() - t0 < 15:
                s.sendall(b"X")
                # Meanwhile everyone else is answered at once.
                t1 = time.monotonic()
                check(healthy(g.port), "/healthz during a slow client")
                check(g.status()["ok"], "control socket during a slow client")
                check(time.monotonic() - t1 < 2, "answers stay prompt")
                time.sleep(0.5)
        except (BrokenPipeError, ConnectionResetError):
            cut = time.monotonic() - t0
        if cut is None:
            s.settimeout(2)
            try:
                if s.recv(100) == b"":
                    cut = time.monotonic() - t0
            except (socket.timeout, ConnectionResetError):
                pass
        s.close()
        check(cut is not None and cut < 10, "a trickling client is cut at the request deadline (%r)" % cut)


def test_unix_socket_and_reload_moves_listener():
    with Greend(workers=[worker("a")], start=False) as g:
        path = os.path.join(g.dir, "http.sock")
        g.write_config({"control_socket": g.sock, "http_listen": "unix:http.sock",
                        "workers": [worker("a")]})
        g.start()

        def unix_get(p):
            return exchange(socket.AF_UNIX, p, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                            b"Connection: close\r\n\r\n", 5)
        check(unix_get(path).startswith(b"HTTP/1.1 200"), "HTTP on unix:PATH (relative to the config)")
        check(oct(os.stat(path).st_mode & 0o777) == oct(0o660), "socket_mode applies")
        port = free_port()
        g.write_config({"control_socket": g.sock, "http_listen": "127.0.0.1:%d" % port,
                        "workers": [worker("a")]})
        r = g.ctl("reload")
        check(r.returncode == 0, r.stdout + r.stderr)
        wait_for(lambda: healthy(port), 10, "the new listener")
        check(not os.path.exists(path), "the old socket file is removed")
        # Moving onto a port someone holds keeps the old listener, and says so.
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        g.write_config({"control_socket": g.sock,
                        "http_listen": "127.0.0.1:%d" % taken.getsockname()[1], "workers": [worker("a")]})
        r = g.ctl("reload")
        taken.close()
        check("http_listen" in r.stdout + r.stderr, "the reload reports the failed listener: " + r.stdout + r.stderr)
        check(healthy(port), "the old listener stays")


def test_http_listen_config_errors():
    d = tempfile.mkdtemp(prefix="it_http_cfg.")
    try:
        cases = [("localhost:9464", "numeric IPv4"), ("127.0.0.1:0", "1 to 65535"),
                 ("127.0.0.1:99999", "1 to 65535"), ("[::1]", "[IPV6]:PORT"), ("::1:9464", "brackets"),
                 ("[nope]:9464", "IPv6"), ("9464", "HOST:PORT"), (9464, "expected a string"),
                 ("", "must not be empty"), ("unix:", "absolute")]
        for value, want in cases:
            conf = os.path.join(d, "g.json")
            with open(conf, "w") as f:
                json.dump({"http_listen": value, "workers": []}, f)
            r = subprocess.run([GREEND, "--check", "-c", conf], capture_output=True, text=True, timeout=10)
            check(r.returncode == 1 and "http_listen" in r.stderr and want in r.stderr,
                  "%r: rc %d: %s" % (value, r.returncode, r.stderr))
        for value in ("127.0.0.1:9464", "0.0.0.0:1", "[::1]:9464", "[::]:80", "unix:/run/x.sock", "unix:rel"):
            with open(conf, "w") as f:
                json.dump({"http_listen": value, "workers": []}, f)
            r = subprocess.run([GREEND, "--check", "-c", conf], capture_output=True, text=True, timeout=10)
            check(r.returncode == 0, "%r: %s" % (value, r.stderr))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    run_tests(globals())
