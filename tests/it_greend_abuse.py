#!/usr/bin/env python3
"""it_greend_abuse - greend against hostile input: control-socket garbage,
missing newlines, oversized lines, many clients, clients vanishing mid
request; workers that flood, send garbage, lie or drop their channel; and
authorization by peer credentials."""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers"))
from greendtest import Greend, check, run_tests, wait_for, worker  # noqa: E402


def conn(g, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(g.sock)
    return s


def read_lines(s, n):
    buf = b""
    while buf.count(b"\n") < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return [json.loads(l) for l in buf.split(b"\n") if l.strip()]


def test_garbage_keeps_connection():
    with Greend(workers=[worker("a")]) as g:
        s = conn(g)
        s.sendall(b"this is not json\n[1,2]\n{\"cmd\":5}\n{}\n{\"cmd\":\"fly\"}\n\n"
                  b"{\"cmd\":\"status\",\"worker\":7}\n{\"cmd\":\"version\"}\n")
        ans = read_lines(s, 7)
        codes = [a.get("code") for a in ans]
        check(codes[:6] == ["bad_request"] * 4 + ["unknown_command", "bad_request"] or
              codes[:4] == ["bad_request"] * 4, codes)
        check(ans[-1] == {"ok": True, "version": "0.1.0", "protocol": 1}, ans[-1])
        check(all("error" in a for a in ans[:-1]), ans)
        s.close()


def test_pipelined_requests_answer_in_order():
    with Greend(workers=[worker("a")]) as g:
        g.wait_state("a:0", "running")
        s = conn(g)
        s.sendall(b'{"cmd":"version"}\n{"cmd":"stop","worker":"a"}\n{"cmd":"status"}\n{"cmd":"version"}\n')
        ans = read_lines(s, 4)
        check(len(ans) == 4 and "protocol" in ans[0] and ans[1]["workers"][0]["state"] == "stopped", ans)
        check(ans[2]["workers"][0]["state"] == "stopped" and "protocol" in ans[3], ans)
        s.close()


def test_no_newline_then_close_and_half_close():
    with Greend() as g:
        s = conn(g)
        s.sendall(b'{"cmd":"version"')
        s.close()
        s = conn(g)
        s.sendall(b'{"cmd":"version"}\n')
        s.shutdown(socket.SHUT_WR)
        ans = read_lines(s, 1)
        check(ans and ans[0]["ok"], ans)
        check(s.recv(10) == b"", "closed after answering a half-closed client")
        s.close()
        check(g.request({"cmd": "version"})["ok"], "still answering")


def test_oversized_line():
    with Greend() as g:
        s = conn(g)
        try:
            s.sendall(b"x" * (70 * 1024))
        except OSError:
            pass
        ans = read_lines(s, 1)
        check(ans and ans[0]["code"] == "bad_request" and "longer than 65536" in ans[0]["error"], ans)
        check(s.recv(10) == b"", "closed after an oversized line")
        s.close()
        # exactly at the limit is fine
        s = conn(g)
        line = b'{"cmd":"version","pad":"' + b"p" * (65536 - 26) + b'"}'
        check(len(line) == 65536, len(line))
        s.sendall(line + b"\n")
        ans = read_lines(s, 1)
        check(ans and ans[0]["ok"], ans)
        s.close()


def answer_even_if_closed(g, obj):
    """A full greend answers busy and closes at once, possibly before our
    request is sent: read the answer whether or not the send got through."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(g.sock)
        try:
            s.sendall((json.dumps(obj) + "\n").encode())
        except (BrokenPipeError, ConnectionResetError):
            pass
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return json.loads(buf.split(b"\n")[0]) if buf else {"code": "no answer"}
    finally:
        s.close()


def test_many_clients():
    with Greend(workers=[worker("a")]) as g:
        socks = []
        deadline = time.monotonic() + 20
        while len(socks) < 300 and time.monotonic() < deadline:
            try:
                socks.append(conn(g))
            except BlockingIOError:
                time.sleep(0.01)  # the backlog is full until greend accepts
            except OSError:
                break
        check(len(socks) >= 250, len(socks))
        t0 = time.monotonic()
        check(answer_even_if_closed(g, {"cmd": "version"}).get("code") in (None, "busy"),
              "answers while full")
        for s in socks[:100]:
            s.sendall(b'{"cmd":"status"}\n')
        got = 0
        for s in socks[:100]:
            a = read_lines(s, 1)
            got += bool(a and (a[0]["ok"] or a[0]["code"] == "busy"))
        check(got == 100, got)
        check(time.monotonic() - t0 < 20, "bounded")
        for s in socks:
            s.close()
        wait_for(lambda: g.request({"cmd": "version"})["ok"], 10, "answers after the crowd left")


def test_client_vanishing_mid_request():
    with Greend(workers=[worker("s", "--mode", "silent"), worker("t", "--ignore-term", stop_timeout_s=1)],
                extra={"dump_timeout_ms": 500}) as g:
        g.wait_state("s:0", "running")
        g.wait_state("t:0", "running")
        for req in (b'{"cmd":"dump","worker":"s:0"}\n', b'{"cmd":"stop","worker":"t:0"}\n',
                    b'{"cmd":"status"}\n', b'{"cmd":"metr'):
            s = conn(g)
            s.sendall(req)
            s.close()
        s = conn(g)
        s.sendall(b'{"cmd":"status"}\n' * 50)
        s.close()
        time.sleep(1.5)
        check(g.request({"cmd": "version"})["ok"], "alive")
        g.wait_state("t:0", "stopped")
        check(g.proc.poll() is None, "greend running")


def test_client_that_never_reads():
    with Greend(workers=[worker("a", instances=4)]) as g:
        s = conn(g)
        s.setblocking(False)
        req = b'{"cmd":"metrics"}\n' * 200
        sent = 0
        deadline = time.monotonic() + 10
        while sent < 20000 * len(req) and time.monotonic() < deadline:
            try:
                sent += s.send(req)
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                break
        t0 = time.monotonic()
        check(g.request({"cmd": "version"}, timeout=5)["ok"], "others still served")
        check(time.monotonic() - t0 < 5, "promptly")
        s.close()


def test_channel_flood_is_cut_off():
    with Greend(workers=[worker("f", "--mode", "flood"), worker("a")]) as g:
        g.wait_state("f:0", "running")
        w = wait_for(lambda: (lambda x: x if x["channel"]["closed"] == "flooding" else None)(g.inst("f:0")),
                     20, "flood disconnect")
        check(w["channel"]["dropped"] > 1000 and w["state"] == "running", w)
        t0 = time.monotonic()
        for _ in range(20):
            check(g.request({"cmd": "status"}, timeout=5)["ok"], "status")
        check(time.monotonic() - t0 < 5, "greend stays responsive")
        wait_for(lambda: g.inst("a:0")["greenlets"], 10, "the other worker still reports")
        r = g.ctl("status")
        check("no channel (flooding)" in r.stdout, r.stdout)


def test_channel_garbage_counted():
    with Greend(workers=[worker("g", "--mode", "garbage")]) as g:
        w = wait_for(lambda: (lambda x: x if x["greenlets"] and x["channel"]["malformed"] >= 6 else None)(
            g.inst("g:0")), 10, "garbage counted")
        check(w["greenlets"]["alive"] == 7 and w["channel"]["open"], w)


def test_channel_lies_ignored():
    with Greend(workers=[worker("l", "--mode", "lie")]) as g:
        w = wait_for(lambda: (lambda x: x if x["greenlets"] and x["channel"]["malformed"] >= 18 else None)(
            g.inst("l:0")), 10, "lies counted")
        check(w["greenlets"]["alive"] == 7 and w["hub"]["max_blocking_ms"] == 0.5, w)
        check(w["patched"] == ["socket", "time"] and w["blocked_reports"] == 0, w)
        r = g.ctl("dump", "l:0")
        check(r.returncode == 0 and "3 greenlets" in r.stdout, r)


def test_channel_closed_by_worker():
    with Greend(workers=[worker("c", "--mode", "close")]) as g:
        w = g.wait_state("c:0", "running")
        w = wait_for(lambda: (lambda x: x if x["channel"]["closed"] else None)(g.inst("c:0")), 10, "closed")
        check(w["channel"]["closed"] == "closed by worker" and w["report_age_ms"] is None, w)
        check(w["state"] == "running", w)


def test_stale_report_age():
    with Greend(workers=[worker("a", "--mode", "silent")], stats_interval_ms=100) as g:
        w = g.wait_state("a:0", "running")
        check(w["report_age_ms"] is None, w)
    with Greend(workers=[worker("b")], stats_interval_ms=100) as g:
        wait_for(lambda: g.inst("b:0")["greenlets"], 10, "stats")
        ages = [g.inst("b:0")["report_age_ms"] for _ in range(3)]
        check(all(0 <= a < 3000 for a in ages), ages)


NOBODY = ["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"]


def test_authorization():
    if os.geteuid() != 0:
        print("skip: needs root to become nobody")
        return
    with Greend(workers=[worker("a")], extra={"socket_mode": "0666"}) as g:
        g.wait_state("a:0", "running")
        r = g.ctl("status", user=NOBODY)
        check(r.returncode == 0 and "a:0" in r.stdout, r)
        for args in (("metrics",), ("version",), ("dump", "a:0")):
            r = g.ctl(*args, user=NOBODY)
            check(r.returncode == 0, (args, r))
        for args in (("stop", "a"), ("start", "a"), ("restart", "all"), ("reload",), ("shutdown",)):
            r = g.ctl(*args, user=NOBODY)
            check(r.returncode == 1 and "forbidden" in r.stderr, (args, r))
        check(g.inst("a:0")["state"] == "running", "nothing changed")
    with Greend(workers=[worker("a")], extra={"socket_mode": "0660", "socket_group": "daemon"}) as g:
        g.wait_state("a:0", "running")
        r = g.ctl("status", user=NOBODY)
        check(r.returncode == 3, ("no access to the socket at all", r))
        member = ["--reuid", "nobody", "--regid", "nogroup", "--groups", "1"]
        r = g.ctl("stop", "a", user=member)
        check(r.returncode == 0 and "a:0: stopped" in r.stdout, r)
        member = ["--reuid", "nobody", "--regid", "daemon", "--clear-groups"]
        r = g.ctl("start", "a", user=member)
        check(r.returncode == 0, r)


if __name__ == "__main__":
    run_tests(globals())
