#!/usr/bin/env python3
"""it_greend_harden - the faults of greend's hardening issue, each one a test:
answers that stay valid JSON whatever text they quote, greend's own output
never blocking it, the control socket and lock file safe from symlink
races, per-uid connection caps with slots kept for privileged peers and an
idle timeout, a worker channel limited in bytes as well as messages, and a
dump cut to fit that says so."""
import fcntl
import json
import os
import select
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers"))
from greendtest import (GREEND, Greend, _die_with_parent, check, run_tests,  # noqa: E402
                        wait_for, worker)


def conn(g, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(g.sock)
    return s


def read_answer(s):
    buf = b""
    while b"\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    check(buf.endswith(b"\n"), "an answer line, got %r" % buf[:200])
    return json.loads(buf.split(b"\n")[0])


def closed_within(s, timeout):
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


E_ACUTE = "\u00e9"


def test_utf8_cut_answers_and_frees():
    with Greend(workers=[worker("a")]) as g:
        req = ('{"cmd":"a' + E_ACUTE * 40 + '"}\n').encode()
        s = conn(g)
        s.sendall(req)
        a = read_answer(s)
        check(a["ok"] is False and a["code"] == "unknown_command", a)
        check(a["error"].startswith("unknown command \"a" + E_ACUTE), a)
        s.close()
        # Enough of them to fill every slot if a connection leaked.
        for _ in range(300):
            s = conn(g, timeout=5)
            s.sendall(req)
            s.shutdown(socket.SHUT_WR)
            a = read_answer(s)
            check(a.get("code") == "unknown_command", a)
            check(closed_within(s, 5), "closed after the answer")
            s.close()
        check(g.request({"cmd": "status"}, timeout=5)["ok"], "still answering everyone")


def test_utf8_reload_error_is_answered():
    with Greend(workers=[worker("a")]) as g:
        g.wait_state("a:0", "running")
        # The unknown module's name is quoted in the error, which is cut to fit.
        for n in (("", 598), ("s", 598)):
            bad = {"control_socket": g.sock, "workers": [worker("a", patch=[n[0] + E_ACUTE * n[1]])]}
            g.write_config(bad)
            a = g.request({"cmd": "reload"}, timeout=10)
            check(a["ok"] is False and a["code"] == "bad_config", a)
        bad = {"control_socket": g.sock, "workers": [worker(E_ACUTE * 600)]}
        g.write_config(bad)
        a = g.request({"cmd": "reload"}, timeout=10)
        check(a["ok"] is False and a["code"] == "bad_config", a)
        check(g.request({"cmd": "status"}, timeout=5)["ok"], "still answering")


def test_status_with_non_utf8_config_path():
    with Greend(workers=[worker("a")], start=False) as g:
        odd = os.path.join(g.dir.encode(), b"conf\xff")
        os.mkdir(odd)
        path = os.path.join(odd, b"greend.json")
        with open(g.conf) as f, open(path, "w") as out:
            out.write(f.read())
        g.conf = path
        g.start()
        a = g.request({"cmd": "status"}, timeout=5)
        check(a["ok"] and "greend.json" in a["greend"]["config"], a)


CHATTY = ["/bin/sh", "-c", "while :; do echo 'chatty worker line, chatty worker line, chatty'; done"]


def test_stderr_nobody_reads():
    workers = [{"name": "chatty", "command": CHATTY},
               worker("crash", "--exit-after", "0.1", "--exit-code", "1", restart="always",
                      max_restarts=100000, backoff_ms=10, backoff_max_ms=10, start_secs=0)]
    with Greend(workers=workers, start=False) as g:
        r, w = os.pipe()
        g.logf = open(os.devnull, "wb")
        g.proc = subprocess.Popen([GREEND, "-f", "-c", g.conf], stdout=w, stderr=w,
                                  stdin=subprocess.DEVNULL, env=g.env, start_new_session=True,
                                  preexec_fn=_die_with_parent)
        os.close(w)
        try:
            wait_for(lambda: g.try_request({"cmd": "version"}), 10, "greend to answer")
            first = g.inst("crash:0")["restarts"]
            slowest = 0
            t_end = time.monotonic() + 3
            while time.monotonic() < t_end:
                t0 = time.monotonic()
                a = g.request({"cmd": "status"}, timeout=5)
                slowest = max(slowest, time.monotonic() - t0)
                check(a["ok"], a)
                time.sleep(0.05)
            check(slowest < 1.0, "status answered within 1 s while stderr is full (%.2fs)" % slowest)
            a = g.status()
            crash = [x for x in a["workers"] if x["id"] == "crash:0"][0]
            check(crash["restarts"] > first + 3, ("still restarting", first, crash["restarts"]))
            check(a["greend"]["log_dropped"] > 0, a["greend"])
            m = g.request({"cmd": "metrics"})["text"]
            check("greend_log_dropped_total " in m, m[:400])
            # Stop the chatter, drain the pipe: the drop is reported in it.
            g.request({"cmd": "stop", "worker": "chatty"}, timeout=10)
            fcntl.fcntl(r, fcntl.F_SETFL, os.O_NONBLOCK)
            got = b""
            deadline = time.monotonic() + 10
            while b"lines dropped" not in got and time.monotonic() < deadline:
                select.select([r], [], [], 0.2)
                try:
                    got = (got + os.read(r, 1 << 20))[-(1 << 20):]
                except BlockingIOError:
                    pass
            check(b"lines dropped: stderr was not read" in got, got[-500:])
        finally:
            os.close(r)


if __name__ == "__main__":
    run_tests(globals())
