#!/usr/bin/env python3
"""it_greend_notify - the sd_notify(3) datagram protocol, checked against a
NOTIFY_SOCKET this test listens on (a path and an abstract @name):
READY=1, STATUS=, RELOADING=1 on SIGHUP, WATCHDOG=1 while the loop turns,
STOPPING=1 on SIGTERM; and workers never see NOTIFY_SOCKET."""
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers"))
from greendtest import Greend, check, run_tests, wait_for, worker  # noqa: E402


class Listener:
    def __init__(self, addr):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(addr)
        self.s.setblocking(False)
        self.msgs = []

    def drain(self):
        while True:
            try:
                self.msgs.append(self.s.recv(4096).decode())
            except BlockingIOError:
                return self.msgs

    def has(self, pred):
        self.drain()
        return [m for m in self.msgs if pred(m)]


def run(addr, env_value):
    lst = Listener(addr)
    try:
        with Greend(workers=[worker("a", "--env-file", "env.txt")],
                    env={"NOTIFY_SOCKET": env_value, "WATCHDOG_USEC": "200000"}, start=False) as g:
            g.write_config({"control_socket": g.sock, "stats_interval_ms": 100,
                            "workers": [worker("a", "--env-file", os.path.join(g.dir, "env.txt"))]})
            g.start()
            ready = wait_for(lambda: lst.has(lambda m: "READY=1" in m), 10, "READY=1")
            check("MAINPID=%d" % g.proc.pid in ready[0], ready)
            wait_for(lambda: lst.has(lambda m: m.startswith("STATUS=1 of 1 instances running")), 10,
                     "STATUS")
            n0 = len(lst.has(lambda m: m == "WATCHDOG=1"))
            wait_for(lambda: len(lst.has(lambda m: m == "WATCHDOG=1")) >= n0 + 3, 10, "WATCHDOG=1 pets")
            g.proc.send_signal(signal.SIGHUP)
            rel = wait_for(lambda: lst.has(lambda m: m.startswith("RELOADING=1")), 10, "RELOADING=1")
            check("MONOTONIC_USEC=" in rel[0], rel)
            wait_for(lambda: len(lst.has(lambda m: m.startswith("READY=1"))) >= 2, 10, "READY=1 after reload")
            env = open(os.path.join(g.dir, "env.txt")).read()
            check("NOTIFY_SOCKET" not in env and "WATCHDOG_USEC" not in env, env)
            g.proc.send_signal(signal.SIGTERM)
            g.proc.wait(15)
            check(g.proc.returncode == 0, g.proc.returncode)
            check(lst.has(lambda m: m.startswith("STOPPING=1")), lst.msgs)
    finally:
        lst.s.close()


def test_notify_path_socket():
    d = "/tmp/it_notify.%d" % os.getpid()
    os.mkdir(d)
    try:
        run(d + "/notify", d + "/notify")
    finally:
        try:
            os.unlink(d + "/notify")
        except OSError:
            pass
        os.rmdir(d)


def test_notify_abstract_socket():
    name = "it_greend_notify_%d_%d" % (os.getpid(), int(time.time()))
    run("\0" + name, "@" + name)


def test_no_notify_socket_no_messages():
    with Greend(workers=[worker("a")]) as g:
        g.wait_state("a:0", "running")
        check(g.request({"cmd": "version"})["ok"], "runs without NOTIFY_SOCKET")


if __name__ == "__main__":
    run_tests(globals())
