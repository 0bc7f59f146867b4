#!/usr/bin/env python3
"""it_greend_fastpath - a worker of greend keeps the shim's kernel fast path.

Under greend the shim reports on its channel; that must not send a lone
greenlet's blocking calls through the hub.  The observable is the hub's
iteration count in the worker's stats: a lone greenlet on the fast path
makes its calls in the kernel and the hub never polls, while the parked path
polls once per call.  GREEN_FASTPATH=0 is the control that shows the count
does tell the two apart.  A dump still reaches the lone greenlet, and the
monitor does not call its waits in the kernel blocking."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers"))
from greendtest import B, SHIM, Greend, check, run_tests, wait_for  # noqa: E402

CROWD = os.path.join(B, "tests", "helpers", "conf_fastpath_crowd")

CALLS = 3000

# One thread: short sleeps and socket round trips, then it says so on
# stdout and waits in the kernel (short sleeps, as an event loop's timer).
LONE = r"""
import socket, sys, time
a, b = socket.socketpair()
for i in range(%d):
    time.sleep(0.0001)
    a.send(b"x")
    b.recv(1)
print("calls done", flush=True)
while True:
    time.sleep(0.05)
""" % CALLS


def shim_env(extra=None):
    env = {}
    asan = os.environ.get("GREEN_ASAN_RUNTIME")
    if asan:
        env = {"LD_PRELOAD": asan,
               "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1:verify_asan_link_order=0"}
    env.update(extra or {})
    return env


def lone_worker(name, env=None):
    return {"name": name, "command": ["/usr/bin/python3", "-c", LONE], "patch": "all",
            "env": shim_env(env), "start_secs": 0, "stop_timeout_s": 5,
            "max_blocking_ms": 100}


def greend_with(workers, **extra):
    """A started greend running WORKERS under the real shim."""
    g = Greend(config=None, start=False)
    config = {"control_socket": g.sock, "stats_interval_ms": 100, "preload": SHIM,
              "workers": workers}
    config.update(extra)
    g.write_config(config)
    try:
        g.start()
    except BaseException:
        g.stop()
        g.cleanup()
        raise
    return g


def crowd_worker(name, env=None):
    w = lone_worker(name, env)
    w["command"] = [CROWD, "hold"]
    return w


def stats_after_calls(g, iid):
    wait_for(lambda: "%s: calls done" % iid in g.logtext(), 30, "%s done with its calls" % iid)
    # The next report is after the calls: the hub's count is final for them.
    first = wait_for(lambda: g.inst(iid)["hub"], 10, "%s stats" % iid)
    seen = first["iterations"]
    return wait_for(lambda: (lambda w: w if w["hub"]["iterations"] != seen or
                             w["report_age_ms"] < 150 else None)(g.inst(iid)), 10,
                    "%s stats after its calls" % iid)


def test_lone_greenlet_keeps_the_fast_path_under_greend():
    workers = [lone_worker("fast"), lone_worker("slow", {"GREEN_FASTPATH": "0"})]
    with greend_with(workers) as g:
        fast = stats_after_calls(g, "fast:0")
        slow = stats_after_calls(g, "slow:0")
        check(fast["patched"] and "socket" in fast["patched"], fast)
        # The parked path polls at least once per sleep and per recv that
        # found nothing yet: the control shows the count is a real signal.
        check(slow["hub"]["iterations"] >= CALLS // 2, slow)
        # The fast path: the calls never reached the hub.
        check(fast["hub"]["iterations"] < CALLS // 20, (fast, slow))
        # A lone greenlet that waits in the kernel is not blocking anyone.
        check(fast["hub"]["blocked"] == 0 and fast["blocked_reports"] == 0, fast)
        # A dump is still answered: the duty takes it off the fast path.
        a = g.request({"cmd": "dump", "worker": "fast:0"})
        check(a.get("ok") and [x["name"] for x in a["greenlets"]] == ["main"], a)
        # ... and it goes back to it afterwards.
        before = g.inst("fast:0")["hub"]["iterations"]
        wait_for(lambda: g.inst("fast:0")["report_age_ms"] < 150, 10, "a fresh report")
        time.sleep(1.0)
        after = g.inst("fast:0")["hub"]["iterations"]
        check(after - before < 5, (before, after))
        check(g.inst("fast:0")["blocked_reports"] == 0, g.inst("fast:0"))


def test_main_thread_keeps_the_fast_path_beside_waiting_threads():
    # Three threads wait on a condition only the main thread signals: its
    # calls may still go to the kernel (redis's background threads).
    workers = [crowd_worker("crowd"), crowd_worker("parked", {"GREEN_FASTPATH": "0"})]
    with greend_with(workers) as g:
        fast = stats_after_calls(g, "crowd:0")
        slow = stats_after_calls(g, "parked:0")
        check("crowd:0: calls done, 0 bad" in g.logtext(), g.logtext()[-2000:])
        check(fast["greenlets"]["alive"] == 3, fast)
        check(slow["hub"]["iterations"] >= CALLS // 2, slow)
        check(fast["hub"]["iterations"] < CALLS // 20, (fast, slow))
        check(fast["blocked_reports"] == 0, fast)


# One thread that sleeps for an hour: its fast-path call does not return
# to the hub meanwhile.
SLEEPER = r"""
import time
print("sleeping", flush=True)
time.sleep(3600)
"""


def test_dump_of_a_greenlet_asleep_in_the_kernel():
    w = lone_worker("acc")
    w["command"] = ["/usr/bin/python3", "-c", SLEEPER]
    with greend_with([w], dump_timeout_ms=2000) as g:
        wait_for(lambda: "acc:0: sleeping" in g.logtext(), 10, "the sleeper")
        time.sleep(0.3)
        a = g.request({"cmd": "dump", "worker": "acc:0"})
        check(a.get("ok") and [x["name"] for x in a["greenlets"]] == ["main"], a)
        check(a["greenlets"][0]["state"] == "running", a)
        # Asleep in the kernel, alone: not blocking anyone.
        check(g.inst("acc:0")["blocked_reports"] == 0, g.inst("acc:0"))


# A second thread sleeps on a timer while the main one computes without a
# call: the hub is held while a greenlet waits for it.
HOG = r"""
import threading, time
def sleeper():
    while True:
        time.sleep(0.02)
threading.Thread(target=sleeper, daemon=True).start()
time.sleep(0.5)
while True:
    # Hold the hub for 0.5 s of the clock, five times max_blocking_ms, on
    # a fast machine as on a slow one (a count of loops took under 100 ms
    # on a quiet machine here, and no report came).
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.5:
        pass
    time.sleep(0.2)
"""


def test_monitor_still_reports_a_held_hub():
    w = lone_worker("hog")
    w["command"] = ["/usr/bin/python3", "-c", HOG]
    with greend_with([w]) as g:
        wait_for(lambda: (g.inst("hog:0") or {}).get("blocked_reports", 0) >= 1, 20,
                 "a blocked report for the computing main thread")
        check(g.inst("hog:0")["last_blocked"]["name"] == "main", g.inst("hog:0"))


if __name__ == "__main__":
    run_tests(globals())
