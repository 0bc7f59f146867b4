#!/usr/bin/env python3
"""it_greend - greend and greenctl end to end: every request, every state
transition, restarts, reload, signals, and the worker's environment.
Runs the real binaries from $B on temp dirs; see helpers/greendtest.py."""
import json
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers"))
from greendtest import (GREENCTL, GREEND, Greend, _die_with_parent, check, pid_alive,  # noqa: E402
                        pgrp_alive, run_tests, wait_for, worker)


def test_check_valid_and_invalid():
    with Greend(workers=[worker("a")], start=False) as g:
        r = subprocess.run([GREEND, "--check", "-c", g.conf], capture_output=True, text=True, timeout=10)
        check(r.returncode == 0 and "configuration OK (1 worker)" in r.stdout, r)
        g.write_config('{"workers": [{"name": "a", "command": ["x"], "instances": 0}]}')
        r = subprocess.run([GREEND, "--check", "-c", g.conf], capture_output=True, text=True, timeout=10)
        check(r.returncode == 1, r)
        check("workers[0].instances: expected an integer from 1 to 1024" in r.stderr, r.stderr)
        g.write_config('{"workers": [\n  {"name": "a",\n   "name": "b"}]}')
        r = subprocess.run([GREEND, "--check", "-c", g.conf], capture_output=True, text=True, timeout=10)
        check(r.returncode == 1 and g.conf + ":3:" in r.stderr and "duplicate object key" in r.stderr, r.stderr)
        r = subprocess.run([GREEND, "--check", "-c", g.dir + "/missing.json"], capture_output=True,
                           text=True, timeout=10)
        check(r.returncode == 1 and "No such file" in r.stderr, r.stderr)
        r = subprocess.run([GREEND, "--bogus"], capture_output=True, text=True, timeout=10)
        check(r.returncode == 2, r)
        r = subprocess.run([GREEND, "-f", "-c", g.dir + "/missing.json"], capture_output=True,
                           text=True, timeout=10)
        check(r.returncode == 1, r)


def test_version():
    with Greend() as g:
        r = g.ctl("version")
        check(r.returncode == 0 and "greenctl 0.1.0" in r.stdout and "greend 0.1.0 (protocol 1)" in r.stdout, r)
        a = g.request({"cmd": "version"})
        check(a == {"ok": True, "version": "0.1.0", "protocol": 1}, a)
    r = subprocess.run([GREEND, "--version"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 0 and r.stdout.strip() == "greend 0.1.0", r)


def test_exit_codes():
    r = subprocess.run([GREENCTL, "-s", "/nonexistent/greend.sock", "status"], capture_output=True,
                       text=True, timeout=10)
    check(r.returncode == 3 and "not reachable" in r.stderr, r)
    r = subprocess.run([GREENCTL, "frobnicate"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 2, r)
    r = subprocess.run([GREENCTL], capture_output=True, text=True, timeout=10)
    check(r.returncode == 2, r)
    r = subprocess.run([GREENCTL, "stop"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 2, r)
    env = dict(os.environ, GREEND_SOCKET="/nonexistent/env.sock")
    r = subprocess.run([GREENCTL, "status"], capture_output=True, text=True, timeout=10, env=env)
    check(r.returncode == 3 and "/nonexistent/env.sock" in r.stderr, r)
    with Greend(workers=[worker("a")]) as g:
        r = g.ctl("status", "nope")
        check(r.returncode == 1 and "no_such_worker" in r.stderr, r)
        r = subprocess.run([GREENCTL, "status"], capture_output=True, text=True, timeout=10,
                           env=dict(os.environ, GREEND_SOCKET=g.sock))
        check(r.returncode == 0 and "a:0" in r.stdout, r)


def test_status_and_stats():
    with Greend(workers=[worker("a", instances=2), worker("b", "--mode", "silent")]) as g:
        g.wait_state("a:0", "running")
        g.wait_state("a:1", "running")
        w = wait_for(lambda: (lambda x: x if x["greenlets"] else None)(g.inst("a:0")), 10, "stats")
        check(w["greenlets"]["alive"] == 7 and w["timeouts"] == 3, w)
        check(w["patched"] == ["socket", "time"], w)
        check(w["hub"]["blocked"] == 1 and w["hub"]["max_blocking_ms"] == 0.5, w)
        check(0 <= w["report_age_ms"] < 5000, w)
        check(w["name"] == "a" and w["instance"] == 0 and w["restarts"] == 0, w)
        check(isinstance(w["pid"], int) and w["uptime_s"] >= 0, w)
        wait_for(lambda: g.inst("a:0")["blocked_reports"] == 1, 10, "blocked report")
        check(g.inst("a:0")["last_blocked"]["name"] == "acceptor", g.inst("a:0"))
        b = g.inst("b:0")
        check(b["greenlets"] is None and b["report_age_ms"] is None, b)
        st = g.status()
        check(st["greend"]["version"] == "0.1.0" and st["greend"]["pid"] == g.proc.pid, st["greend"])
        check(st["greend"]["config"] == g.conf, st["greend"])
        check([w["id"] for w in st["workers"]] == ["a:0", "a:1", "b:0"], st)
        check([w["id"] for w in g.status("a")["workers"]] == ["a:0", "a:1"], "by name")
        check([w["id"] for w in g.status("a:1")["workers"]] == ["a:1"], "by id")
        r = g.ctl("status")
        check(r.returncode == 0, r)
        lines = r.stdout.splitlines()
        check(lines[0].split()[:8] == ["ID", "STATE", "PID", "UPTIME", "GREENLETS", "SW/S", "TIMEOUTS",
                                      "BLOCKED"], lines[0])
        check(any(l.startswith("a:0") and " running " in l for l in lines), r.stdout)
        r = g.ctl("status", "a:1", "--json")
        check(r.returncode == 0 and json.loads(r.stdout)["workers"][0]["id"] == "a:1", r)


def test_worker_environment_and_fds():
    fake = None
    with Greend(workers=[], start=False) as g:
        fake = os.path.join(g.dir, "fake-preload.so")
        open(fake, "w").close()
        os.mkdir(os.path.join(g.dir, "wd"))
        cfg = {"control_socket": g.sock, "preload": fake, "stats_interval_ms": 250,
               "workers": [worker("e", "--env-file", "env.txt", "--fds-file", "fds.txt",
                                  cwd="wd", umask="027", patch=["socket", "dns"], max_blocking_ms=200,
                                  stack_size="64K", env={"LD_PRELOAD": "/other.so", "FOO": "bar baz"})]}
        g.write_config(cfg)
        g.env.update({"LISTEN_FDS": "3", "LISTEN_PID": "1", "GREEN_DEBUG": "1", "KEEP_ME": "yes"})
        g.start()
        envf = os.path.join(g.dir, "wd", "env.txt")
        wait_for(lambda: os.path.getsize(envf) > 0, 10, "env file")
        env = dict(l.split("=", 1) for l in open(envf).read().splitlines() if "=" in l)
        check(env["LD_PRELOAD"] == fake + ":/other.so", env.get("LD_PRELOAD"))
        check(env["GREEN_PATCH"] == "socket,dns", env)
        check(env["GREEN_CONTROL_FD"] == "3", env)
        check(env["GREEN_STATS_INTERVAL_MS"] == "250", env)
        check(env["GREEN_MAX_BLOCKING_MS"] == "200", env)
        check(env["GREEN_STACK_SIZE"] == "65536", env)
        check(env["FOO"] == "bar baz" and env["KEEP_ME"] == "yes", env)
        check(env["GREEND_INSTANCE"] == "e:0", env)
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "LISTEN_FDS", "LISTEN_PID", "GREEN_DEBUG"):
            check(k not in env, k)
        fds = open(os.path.join(g.dir, "wd", "fds.txt")).read().split("\n")
        fdnums = sorted(int(l.split()[0]) for l in fds if l.strip())
        check(fdnums == [0, 1, 2, 3], fds)
        check("socket:" in [l for l in fds if l.startswith("3 ")][0], fds)
        check("/dev/null" in [l for l in fds if l.startswith("0 ")][0], fds)
        st = os.stat(envf)
        check(stat.S_IMODE(st.st_mode) == 0o640, oct(st.st_mode))
        w = g.inst("e:0")
        check(os.getpgid(w["pid"]) == w["pid"], "own process group")


def test_output_forwarding_and_log_dir():
    with Greend(workers=[worker("o", "--say", "hello from o")]) as g:
        wait_for(lambda: "o:0: hello from o" in g.logtext(), 10, "prefixed output")
    with Greend(workers=[], start=False) as g:
        logs = os.path.join(g.dir, "logs")
        os.mkdir(logs)
        g.write_config({"control_socket": g.sock, "log_dir": logs, "log_max_bytes": 4096,
                        "log_backups": 2,
                        "workers": [worker("p", "--say", "x" * 3000, "--exit-after", "0.05",
                                           restart="always", max_restarts=100, backoff_ms=10,
                                           backoff_max_ms=10, start_secs=0)]})
        g.start()
        wait_for(lambda: os.path.exists(os.path.join(logs, "p.log.2")), 15, "rotation to p.log.2")
        check(not os.path.exists(os.path.join(logs, "p.log.3")), os.listdir(logs))
        check(os.path.getsize(os.path.join(logs, "p.log")) <= 4096, "size bound")
        check(open(os.path.join(logs, "p.log.1")).read().startswith("p:0: xxx"), "content")


def test_dump():
    with Greend(workers=[worker("a"), worker("s", "--mode", "silent"), worker("c", "--mode", "close")],
                extra={"dump_timeout_ms": 300}) as g:
        g.wait_state("a:0", "running")
        g.wait_state("s:0", "running")
        a = wait_for(lambda: (lambda r: r if r.get("ok") else None)(g.request({"cmd": "dump", "worker": "a:0"})),
                     10, "dump")
        check(len(a["greenlets"]) == 3 and a["id"] == "a:0", a)
        check(a["greenlets"][1]["wait"] == {"fd": 5, "events": "r"}, a)
        r = g.ctl("dump", "a:0")
        check(r.returncode == 0 and "<greenlet 2 \"acceptor\"> waiting on fd 5 (r)" in r.stdout, r.stdout)
        check("3 greenlets" in r.stdout, r.stdout)
        r = g.ctl("dump", "a", "--json")
        check(r.returncode == 0 and len(json.loads(r.stdout)["greenlets"]) == 3, r)
        a = g.request({"cmd": "dump", "worker": "s:0"})
        check(a["ok"] is False and a["code"] == "timeout", a)
        g.wait_state("c:0", "running")
        wait_for(lambda: g.inst("c:0")["channel"]["closed"] == "closed by worker", 10, "channel closed")
        a = g.request({"cmd": "dump", "worker": "c:0"})
        check(a["code"] == "no_channel", a)
        a = g.request({"cmd": "dump", "worker": "zz:0"})
        check(a["code"] == "no_such_worker", a)
        a = g.request({"cmd": "dump"})
        check(a["code"] == "bad_request", a)
        g.ctl("stop", "a:0")
        a = g.request({"cmd": "dump", "worker": "a:0"})
        check(a["code"] == "not_running", a)


def test_start_stop_restart():
    with Greend(workers=[worker("a", instances=2), worker("b")]) as g:
        for i in ("a:0", "a:1", "b:0"):
            g.wait_state(i, "running")
        pid0 = g.inst("a:0")["pid"]
        r = g.ctl("stop", "a:0")
        check(r.returncode == 0 and r.stdout.strip() == "a:0: stopped", r)
        check(not pid_alive(pid0), "a:0 process gone")
        check(g.inst("a:0")["pid"] is None and g.inst("a:1")["state"] == "running", g.status())
        r = g.ctl("stop", "a:0")
        check(r.returncode == 0, "stopping a stopped instance is fine")
        r = g.ctl("start", "a:0")
        check(r.returncode == 0 and r.stdout.strip() in ("a:0: starting", "a:0: running"), r)
        g.wait_state("a:0", "running")
        pids = {i: g.inst(i)["pid"] for i in ("a:0", "a:1")}
        r = g.ctl("restart", "a")
        check(r.returncode == 0, r)
        for i in ("a:0", "a:1"):
            w = g.wait_state(i, ("starting", "running"))
            check(w["pid"] != pids[i] and not pid_alive(pids[i]), (i, w))
            check(w["restarts"] == 0, "a requested restart is not counted")
        r = g.ctl("stop", "all")
        check(r.returncode == 0 and sorted(r.stdout.split()) ==
              sorted(["a:0:", "stopped", "a:1:", "stopped", "b:0:", "stopped"]), r.stdout)
        r = g.ctl("restart", "b:0")
        check(r.returncode == 0, r)
        g.wait_state("b:0", "running")
        r = g.ctl("start", "all")
        check(r.returncode == 0, r)
        g.wait_state("a:1", "running")
        r = g.ctl("stop", "nosuch")
        check(r.returncode == 1 and "no_such_worker" in r.stderr, r)
        a = g.request({"cmd": "start"})
        check(a["code"] == "bad_request", a)


def test_stop_escalates_to_sigkill_and_kills_group():
    with Greend(workers=[worker("t", "--ignore-term", "--grandchild", stop_timeout_s=0.5)]) as g:
        g.wait_state("t:0", "running")
        # its first report shows chanworker has handled its arguments
        w = wait_for(lambda: (lambda x: x if x["greenlets"] else None)(g.inst("t:0")), 10, "stats")
        pgid = w["pid"]
        check(pgrp_alive(pgid), "group exists")
        t0 = time.monotonic()
        r = g.ctl("stop", "t:0")
        check(r.returncode == 0 and "stopped" in r.stdout, r)
        check(time.monotonic() - t0 < 8, "bounded stop")
        wait_for(lambda: not pgrp_alive(pgid), 5, "process group gone (grandchild too)")
        check("SIGKILL" in g.logtext(), "escalation logged")


def test_crash_loop_to_fatal_and_start_leaves_fatal():
    with Greend(workers=[worker("c", "--exit-after", "0.05", "--exit-code", "3", start_secs=0,
                                max_restarts=3, backoff_ms=10, backoff_max_ms=40)]) as g:
        w = g.wait_state("c:0", "fatal", 15)
        check(w["restarts"] == 3 and "max_restarts 3" in w["reason"], w)
        check("restarting in 10 ms" in g.logtext() and "restarting in 20 ms" in g.logtext()
              and "restarting in 40 ms" in g.logtext(), "exponential back-off")
        r = g.ctl("status")
        check("fatal" in r.stdout and "max_restarts" in r.stdout, r.stdout)
        r = g.ctl("start", "c")
        check(r.returncode == 0, r)
        g.wait_state("c:0", ("starting", "running", "backoff", "fatal"))
        g.wait_state("c:0", "fatal", 15)


def test_restart_policies():
    ws = [worker("ok", "--exit-after", "0.1", restart="on-failure"),
          worker("bad", "--exit-after", "0.1", "--exit-code", "1", restart="never"),
          worker("al", "--exit-after", "0.3", restart="always", start_secs=0.1, max_restarts=100)]
    with Greend(workers=ws) as g:
        w = g.wait_state("ok:0", "exited")
        check(w["reason"] == "exit status 0" and w["restarts"] == 0, w)
        w = g.wait_state("bad:0", "exited")
        check(w["reason"] == "exit status 1", w)
        wait_for(lambda: g.inst("al:0")["restarts"] >= 2, 15, "always restarts")
        r = g.ctl("start", "ok")
        check(r.returncode == 0, r)
        g.wait_state("ok:0", "exited")


def test_sigkill_worker_restarts():
    with Greend(workers=[worker("k", start_secs=0.1)]) as g:
        w = g.wait_state("k:0", "running")
        os.kill(w["pid"], signal.SIGKILL)
        w2 = wait_for(lambda: (lambda x: x if x["pid"] and x["pid"] != w["pid"] else None)(g.inst("k:0")),
                      10, "new pid")
        check(w2["restarts"] == 1, w2)
        check("killed by signal 9" in g.logtext(), "logged")
        g.wait_state("k:0", "running")


def test_spawn_failures_are_fatal():
    ws = [worker("u", user="no-such-user-xyz"), worker("x", command=["/nonexistent/prog"]),
          worker("d", cwd="/nonexistent/dir")]
    with Greend(workers=ws) as g:
        check("unknown user" in g.wait_state("u:0", "fatal")["reason"], g.inst("u:0"))
        check(g.wait_state("x:0", "fatal")["reason"] ==
              "exec /nonexistent/prog: No such file or directory", g.inst("x:0"))
        check("chdir /nonexistent/dir" in g.wait_state("d:0", "fatal")["reason"], g.inst("d:0"))
        check(g.inst("x:0")["restarts"] == 0, "no restart of a spawn failure")


def test_user_switch():
    if os.geteuid() != 0:
        print("skip: not root")
        return
    with Greend(workers=[worker("n", "--env-file", "/dev/null", user="nobody", group="nogroup")]) as g:
        w = g.wait_state("n:0", "running")
        st = open("/proc/%d/status" % w["pid"]).read()
        uid = [l for l in st.splitlines() if l.startswith("Uid:")][0].split()[1:]
        gid = [l for l in st.splitlines() if l.startswith("Gid:")][0].split()[1:]
        groups = [l for l in st.splitlines() if l.startswith("Groups:")][0].split()[1:]
        check(uid == ["65534"] * 4 and gid == ["65534"] * 4, (uid, gid))
        check(set(groups) <= {"65534"}, groups)
        env = open("/proc/%d/environ" % w["pid"], "rb").read().split(b"\0")
        check(b"USER=nobody" in env and b"HOME=/nonexistent" in env, env)


def test_non_root_user_switch_failure():
    if os.geteuid() != 0:
        print("skip: not root")
        return
    with Greend(workers=[worker("r", user="root")], start=False) as g:
        # greend creates its socket only in a directory no other user can
        # change: this one belongs to the user it runs as.
        nobody = pwd.getpwnam("nobody")
        os.chown(g.dir, nobody.pw_uid, nobody.pw_gid)
        cmd = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "--",
               GREEND, "-f", "-c", g.conf]
        g.logf = open(g.log, "ab")
        g.proc = subprocess.Popen(cmd, stdout=g.logf, stderr=subprocess.STDOUT, env=g.env,
                                  start_new_session=True, preexec_fn=_die_with_parent)
        wait_for(lambda: g.try_request({"cmd": "version"}), 10, "greend as nobody")
        w = g.wait_state("r:0", "fatal")
        check(w["reason"].startswith("setgroups") or w["reason"].startswith("setgid"), w)
        check("Operation not permitted" in w["reason"], w)


def test_reload():
    ws = [worker("keep"), worker("chg", env={"V": "1"}), worker("gone"), worker("grow", instances=2)]
    with Greend(workers=ws) as g:
        for i in ("keep:0", "chg:0", "gone:0", "grow:0", "grow:1"):
            g.wait_state(i, "running")
        pids = {w["id"]: w["pid"] for w in g.status()["workers"]}
        ws2 = [worker("keep"), worker("chg", env={"V": "2"}), worker("new"), worker("grow", instances=1)]
        g.write_config({"control_socket": g.sock, "stats_interval_ms": 100, "workers": ws2})
        g.proc.send_signal(signal.SIGHUP)
        g.wait_state("new:0", "running")
        wait_for(lambda: g.inst("gone:0") is None and g.inst("grow:1") is None, 10, "removals")
        w = g.wait_state("chg:0", "running")
        check(w["pid"] != pids["chg:0"], "changed worker restarted")
        check(g.inst("keep:0")["pid"] == pids["keep:0"], "unchanged worker kept")
        check(g.inst("grow:0")["pid"] == pids["grow:0"], "shrunk worker's first instance kept")
        check(not pid_alive(pids["gone:0"]) and not pid_alive(pids["grow:1"]), "removed processes gone")
        env = open("/proc/%d/environ" % w["pid"], "rb").read().split(b"\0")
        check(b"V=2" in env, "new env")
        # reload over the socket, growing again
        ws3 = [worker("keep"), worker("chg", env={"V": "2"}), worker("new"), worker("grow", instances=3)]
        g.write_config({"control_socket": g.sock, "stats_interval_ms": 100, "workers": ws3})
        r = g.ctl("reload")
        check(r.returncode == 0 and "grow: changed" in r.stdout, r)
        g.wait_state("grow:2", "running")
        check(g.inst("grow:0")["pid"] == pids["grow:0"], "grow:0 kept")
        a = g.request({"cmd": "reload"})
        check(a["ok"] and a["unchanged"] == ["keep", "chg", "new", "grow"] and a["changed"] == [], a)
        # broken config: reported, old one stays
        g.write_config('{"workers": [{"name": "keep", "command": []}]}')
        r = g.ctl("reload")
        check(r.returncode == 1 and "bad_config" in r.stderr and "workers[0].command" in r.stderr, r)
        g.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: g.logtext().count("reload failed") >= 2, 10, "reload failure logged")
        check(g.inst("keep:0")["pid"] == pids["keep:0"] and g.inst("new:0")["state"] == "running",
              "old config still running")
        # a socket change is a warning only
        g.write_config({"control_socket": g.dir + "/other.sock", "workers": ws3})
        a = g.request({"cmd": "reload"})
        check(a["ok"] and a["warnings"], a)
        check(g.request({"cmd": "version"})["ok"], "still on the old socket")


def test_sigterm_stops_everything():
    with Greend(workers=[worker("a", instances=2), worker("t", "--ignore-term", stop_timeout_s=0.5)]) as g:
        for i in ("a:0", "a:1", "t:0"):
            g.wait_state(i, "running")
        pids = [w["pid"] for w in g.status()["workers"]]
        g.proc.send_signal(signal.SIGTERM)
        g.proc.wait(15)
        check(g.proc.returncode == 0, g.proc.returncode)
        for p in pids:
            check(not pid_alive(p), "worker %d gone" % p)
        check(not os.path.exists(g.sock), "socket removed")


def test_shutdown_request():
    with Greend(workers=[worker("a")]) as g:
        pid = g.wait_state("a:0", "running")["pid"]
        r = g.ctl("shutdown")
        check(r.returncode == 0, r)
        g.proc.wait(15)
        check(g.proc.returncode == 0 and not pid_alive(pid), "shut down")


def test_sigkill_greend_leaves_no_orphans():
    with Greend(workers=[worker("a", instances=3)]) as g:
        for i in range(3):
            g.wait_state("a:%d" % i, "running")
        pids = [w["pid"] for w in g.status()["workers"]]
        g.proc.send_signal(signal.SIGKILL)
        g.proc.wait(10)
        wait_for(lambda: not any(pid_alive(p) for p in pids), 10, "workers die with greend")
        # a new greend replaces the stale socket
        g.start()
        g.wait_state("a:0", "running")
        check("replacing stale socket" in g.logtext(), "stale socket")


def test_second_greend_refused_and_socket_mode():
    with Greend(workers=[], extra={"socket_mode": "0600"}) as g:
        check(stat.S_IMODE(os.stat(g.sock).st_mode) == 0o600, oct(os.stat(g.sock).st_mode))
        r = subprocess.run([GREEND, "-f", "-c", g.conf], capture_output=True, text=True, timeout=10)
        check(r.returncode == 1 and "another greend" in r.stderr, r)
        check(g.request({"cmd": "version"})["ok"], "first still answers")
    if os.geteuid() == 0:
        with Greend(workers=[], extra={"socket_mode": "0660", "socket_group": "daemon"}) as g:
            st = os.stat(g.sock)
            check(stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == 1, (oct(st.st_mode), st.st_gid))
    with Greend(workers=[], extra={"socket_group": "no-such-group-xyz"}, start=False) as g:
        r = subprocess.run([GREEND, "-f", "-c", g.conf], capture_output=True, text=True, timeout=10)
        check(r.returncode == 1 and "no-such-group-xyz" in r.stderr, r)


def test_not_a_socket_refused():
    with Greend(workers=[], start=False) as g:
        open(g.sock, "w").close()
        r = subprocess.run([GREEND, "-f", "-c", g.conf], capture_output=True, text=True, timeout=10)
        check(r.returncode == 1 and "not a socket" in r.stderr, r)


def test_metrics():
    with Greend(workers=[worker("a")]) as g:
        g.wait_state("a:0", "running")
        wait_for(lambda: g.inst("a:0")["greenlets"], 10, "stats")
        r = g.ctl("metrics")
        check(r.returncode == 0, r)
        t = r.stdout
        for line in ('greend_up 1', 'greend_greenlets_alive{worker="a",id="a:0"} 7',
                     'greend_instance_state{worker="a",id="a:0",state="running"} 1',
                     'greend_instance_restarts_total{worker="a",id="a:0"} 0',
                     'greend_timeouts_total{worker="a",id="a:0"} 3',
                     'greend_hub_blocked_total{worker="a",id="a:0"} 1',
                     '# TYPE greend_switches_total counter'):
            check(line in t.splitlines(), line)
        for l in t.splitlines():
            check(l.startswith("#") or l.startswith("greend_"), l)


def test_top():
    with Greend(workers=[worker("a")]) as g:
        g.wait_state("a:0", "running")
        r = g.ctl("top", "-n", "3", "-d", "0.1")
        check(r.returncode == 0 and r.stdout.count("(q quits)") == 3 and "a:0" in r.stdout, r)
        # q on stdin quits before the count is reached
        p = subprocess.run([GREENCTL, "-s", g.sock, "top", "-d", "0.2"], input="q", capture_output=True,
                           text=True, timeout=10)
        check(p.returncode == 0 and p.stdout.count("(q quits)") == 1, p)


def test_run():
    with Greend(start=False) as g:
        ctl = os.path.join(g.dir, "greenctl")
        with open(GREENCTL, "rb") as s, open(ctl, "wb") as d:
            d.write(s.read())
        os.chmod(ctl, 0o755)
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        env.pop("GREEN_PATCH", None)
        preload_installed = os.path.exists("/usr/local/lib/greend/libgreen-preload.so")
        r = subprocess.run([ctl, "run", "true"], capture_output=True, text=True, timeout=10, env=env)
        if not preload_installed:
            check(r.returncode == 1 and "libgreen-preload.so not found" in r.stderr, r)
        shim = os.path.join(g.dir, "libgreen-preload.so")
        open(shim, "w").close()
        r = subprocess.run([ctl, "run", "--patch", "socket,-dns", "--", "env"], capture_output=True,
                           text=True, timeout=10, env=env)
        check(r.returncode == 0, r)
        check("LD_PRELOAD=" + shim in r.stdout.splitlines(), r.stdout)
        check("GREEN_PATCH=socket,-dns" in r.stdout.splitlines(), r.stdout)
        r = subprocess.run([ctl, "run", "--patch", "bogus", "env"], capture_output=True, text=True,
                           timeout=10, env=env)
        check(r.returncode == 2 and "unknown module 'bogus'" in r.stderr, r)
        r = subprocess.run([ctl, "run"], capture_output=True, text=True, timeout=10, env=env)
        check(r.returncode == 2, r)
        r = subprocess.run([ctl, "run", "/nonexistent/cmd"], capture_output=True, text=True,
                           timeout=10, env=env)
        check(r.returncode == 127, r)
        env["LD_PRELOAD"] = "/prev.so"
        r = subprocess.run([ctl, "run", "env"], capture_output=True, text=True, timeout=10, env=env)
        check("LD_PRELOAD=%s:/prev.so" % shim in r.stdout.splitlines(), r.stdout)


def test_missing_preload_warns_once():
    with Greend(workers=[worker("a", instances=2)], extra={"preload": "/nonexistent/p.so"}) as g:
        g.wait_state("a:0", "running")
        g.wait_state("a:1", "running")
        check(g.logtext().count("/nonexistent/p.so") == 1, g.logtext())


def test_daemonize():
    with Greend(workers=[worker("a")], start=False) as g:
        r = subprocess.run([GREEND, "-c", g.conf], capture_output=True, text=True, timeout=15, env=g.env)
        check(r.returncode == 0, r)
        a = g.request({"cmd": "status"})
        pid = a["greend"]["pid"]
        try:
            g.seen_pids.add(pid)
            g.wait_state("a:0", "running")
            check(os.getsid(pid) == pid, "own session")
            check(g.ctl("shutdown").returncode == 0, "shutdown")
            wait_for(lambda: not pid_alive(pid), 15, "daemon exit")
        finally:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


if __name__ == "__main__":
    run_tests(globals())
