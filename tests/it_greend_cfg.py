#!/usr/bin/env python3
"""it_greend_cfg - greend's config, spawn and supervision hardening end to
end: the shared GREEN_PATCH grammar, log files safe from planted symlinks,
insecure paths refused as root, EMFILE as a restartable failure, reload
diffs racing stops, and worker trees (forked and setsid children) ended
with their instance.  Runs the real binaries from $B; see
helpers/greendtest.py."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers"))
from greendtest import (B, GREENCTL, GREEND, Greend, check, pid_alive,  # noqa: E402,F401
                        run_tests, wait_for, worker)

SHIM = os.path.join(B, "libgreen-preload.so")


def test_run_patch_list_with_blanks():
    # greenctl run checks --patch with the shim's own parser, so a list the
    # shim accepts is accepted here too ...
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    r = subprocess.run([GREENCTL, "run", "--patch", "socket, dns", "--", "env"],
                       capture_output=True, text=True, timeout=20,
                       env=dict(env, GREEN_ASAN_RUNTIME=""))
    if os.environ.get("GREEN_ASAN_RUNTIME"):
        # a sanitized shim cannot come first in LD_PRELOAD: greenctl's
        # check is what is tested here, so its refusal would be exit 2
        check(r.returncode != 2, r)
    else:
        check(r.returncode == 0 and "GREEN_PATCH=socket, dns" in r.stdout.splitlines(), r)
    r = subprocess.run([GREENCTL, "run", "--patch", "socket,,dns", "--", "true"],
                       capture_output=True, text=True, timeout=20, env=env)
    check(r.returncode == 2 and "empty item in the module list" in r.stderr, r)
    # ... and the shim reads it as the same modules.
    pre = ":".join(p for p in (os.environ.get("GREEN_ASAN_RUNTIME"), SHIM) if p)
    r = subprocess.run(["true"], capture_output=True, text=True, timeout=20,
                       env=dict(env, LD_PRELOAD=pre, GREEN_PATCH="socket, dns", GREEN_DEBUG="1"))
    check(r.returncode == 0 and "patched: socket,dns" in r.stderr, r)


def start_limited(g, nofile):
    """Start G's greend with RLIMIT_NOFILE at NOFILE (prlimit execs it)."""
    import greendtest
    g.logf = open(g.log, "ab")
    g.proc = subprocess.Popen(["prlimit", "--nofile=%d:%d" % (nofile, nofile), GREEND, "-f",
                               "-c", g.conf], stdout=g.logf, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, env=g.env, start_new_session=True,
                              preexec_fn=greendtest._die_with_parent)
    wait_for(lambda: g.proc.poll() is None and g.try_request({"cmd": "version"}), 10,
             "greend to answer")


def test_emfile_is_restartable():
    # At 32 fds greend once lost instances to "fatal: dup: Too many open
    # files": the child needed free fds to shuffle its pipes into place,
    # and a running instance kept its exec-error pipe open for life.
    with Greend(workers=[worker("a", instances=8, max_restarts=100)], start=False) as g:
        start_limited(g, 32)
        ids = ["a:%d" % i for i in range(8)]
        for _ in range(2):
            for iid in ids:
                g.wait_state(iid, "running", timeout=20)
            r = g.ctl("restart", "all")
            check(r.returncode == 0, r)
        for iid in ids:
            w = g.wait_state(iid, "running", timeout=20)
            check("Too many open files" not in (w.get("reason") or ""), w)
        check("fatal" not in g.logtext(), g.logtext()[-3000:])
        # Each running instance holds two fds (channel, output) once exec
        # succeeded, not three; greend's own are 11 (the privileged socket,
        # and one kept in reserve to answer busy when out of fds).  An
        # instance that has just been seen running may not have closed its
        # exec-error pipe yet: wait for that, within bounds.
        def fds():
            return len(os.listdir("/proc/%d/fd" % g.proc.pid))
        try:
            wait_for(lambda: fds() <= 11 + 2 * 8, 5, "greend's fds to settle")
        except Exception:
            pass
        check(fds() <= 11 + 2 * 8, "greend holds %d fds" % fds())


def test_out_of_fds_answers_busy():
    # Held at its fd limit by idle clients, greend once left a new client
    # in the listen backlog until the client gave up (greenctl: 10 s, "no
    # answer from greend").  It now answers busy at once, with the reason.
    import socket
    import time
    with Greend(workers=[worker("a")], start=False) as g:
        start_limited(g, 24)
        g.wait_state("a:0", "running", timeout=20)
        held = []
        try:
            for _ in range(40):
                # An answer proves greend took the connection (its fd
                # count alone moves with other things greend opens).
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                c.settimeout(10)
                c.connect(g.sock)
                held.append(c)
                try:
                    c.sendall(b'{"cmd":"version"}\n')
                except (BrokenPipeError, ConnectionResetError):
                    pass  # refused at once: its answer is waiting
                answer = c.recv(4096)
                if b'"busy"' in answer:
                    break
            check(b"out of file descriptors" in answer, "greend reached its limit: %r" % answer)
            t0 = time.monotonic()
            r = g.ctl("status", timeout=20)
            took = time.monotonic() - t0
            print("# at the fd limit, greenctl status answered in %.2f s: %s"
                  % (took, (r.stdout + r.stderr).strip()[:200]))
            check(r.returncode == 1 and "out of file descriptors" in r.stdout + r.stderr, r)
            check(took < 5, "answered in %.2f s, before any client timeout" % took)
        finally:
            for c in held:
                c.close()
        # Once the idle clients are gone it serves again.
        wait_for(lambda: g.try_request({"cmd": "status"}), 10, "greend to serve again")


def ids_of(g, name):
    return sorted(w["id"] for w in g.status()["workers"] if w["name"] == name)


def test_reload_races_stops():
    # The instances ignore SIGTERM, so they are still stopping (for
    # stop_timeout_s) when the next reload lands.
    slow = dict(instances=3, stop_timeout_s=3)
    with Greend(workers=[worker("r", "--ignore-term", **slow)]) as g:
        base = {"control_socket": g.sock, "stats_interval_ms": 100}

        def all_reporting():
            # A report means chanworker is past its arguments: it ignores
            # SIGTERM by now (a sanitized build starts slowly).
            for i in range(3):
                wait_for(lambda: (lambda w: w if w["state"] == "running" and w["greenlets"]
                                  else None)(g.inst("r:%d" % i)), 20, "r:%d to report" % i)

        all_reporting()
        g.write_config(dict(base, workers=[worker("r", "--ignore-term", **dict(slow, instances=1))]))
        a = g.request({"cmd": "reload"})
        check(a["ok"] and a["changed"] == ["r"], a)
        check(g.inst("r:1")["state"] == "stopping", g.inst("r:1"))
        g.write_config(dict(base, workers=[worker("r", "--ignore-term", **slow)]))
        a = g.request({"cmd": "reload"})
        check(a["ok"], a)
        all_reporting()
        check(ids_of(g, "r") == ["r:0", "r:1", "r:2"], ids_of(g, "r"))

        # Removed, then re-added while its instances are still stopping.
        g.write_config(dict(base, workers=[]))
        check(g.request({"cmd": "reload"})["removed"] == ["r"], "removed")
        g.write_config(dict(base, workers=[worker("r", "--ignore-term", **slow)]))
        a = g.request({"cmd": "reload"})
        check(a["ok"] and a["added"] == ["r"], a)
        check(ids_of(g, "r") == ["r:0", "r:1", "r:2"], ids_of(g, "r"))
        for i in range(3):
            g.wait_state("r:%d" % i, "running", timeout=20)
        check(ids_of(g, "r") == ["r:0", "r:1", "r:2"], ids_of(g, "r"))


def as_nobody(*cmd):
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
                       + list(cmd), capture_output=True, text=True, timeout=10)
    check(r.returncode == 0, r)


def test_log_dir_symlinks_planted_by_others():
    if os.geteuid() != 0:
        print("skipped: needs root (plants links as nobody)")
        return
    with Greend(workers=[], start=False) as g:
        # log_dir writable by the group nobody is in (no sticky bit, so the
        # kernel's protected_symlinks would not help either).
        logs = os.path.join(g.dir, "logs")
        os.mkdir(logs)
        os.chown(logs, 0, 65534)
        os.chmod(logs, 0o775)
        secret = os.path.join(g.dir, "secret")
        with open(secret, "w") as f:
            f.write("root only\n")
        os.chmod(secret, 0o600)
        created = os.path.join(g.dir, "created-by-greend")
        as_nobody("ln", "-s", secret, os.path.join(logs, "a.log"))
        as_nobody("ln", "-s", created, os.path.join(logs, "b.log"))
        g.write_config({"control_socket": g.sock, "log_dir": logs, "log_max_bytes": 4096,
                        "log_backups": 1,
                        "workers": [worker("a", "--say", "secret-overwrite"),
                                    worker("b", "--say", "created-file"),
                                    worker("c", "--say", "x" * 3000, "--exit-after", "0.05",
                                           restart="always", max_restarts=100, backoff_ms=10,
                                           backoff_max_ms=10, start_secs=0)]})
        g.start()
        # c writes and rotates normally beside the planted links.
        wait_for(lambda: os.path.exists(os.path.join(logs, "c.log.1")), 15, "c's rotation")
        wait_for(lambda: "a.log is a symbolic link" in g.logtext() and
                 "b.log is a symbolic link" in g.logtext(), 10, "the refusals")
        check(open(secret).read() == "root only\n", "greend wrote through a.log")
        check(not os.path.exists(created), "greend created a file through b.log")
        check(os.path.islink(os.path.join(logs, "a.log")), "a.log replaced")

        # A link planted where rotation will move things is moved, not followed.
        as_nobody("ln", "-sf", secret, os.path.join(logs, "c.log.1"))
        wait_for(lambda: not os.path.islink(os.path.join(logs, "c.log.1")), 15,
                 "c.log.1 rotated over")
        check(open(secret).read() == "root only\n", "greend wrote through c.log.1")
        check(os.stat(secret).st_mode & 0o777 == 0o600, "secret's mode changed")


def test_log_dir_refused_when_others_may_write():
    with Greend(workers=[], start=False) as g:
        logs = os.path.join(g.dir, "logs")
        os.mkdir(logs)
        os.chmod(logs, 0o777)
        g.write_config({"control_socket": g.sock, "log_dir": logs,
                        "workers": [worker("a", "--say", "hello")]})
        g.start()
        wait_for(lambda: "writable by others and not sticky (mode 0777)" in g.logtext(), 10,
                 "the refusal")
        check(os.listdir(logs) == [], os.listdir(logs))


def test_insecure_paths_refused_as_root():
    if os.geteuid() != 0:
        print("skipped: greend checks paths only as root")
        return
    with Greend(workers=[worker("a")], start=False) as g:
        os.chmod(g.conf, 0o666)
        for args in (["--check"], ["-f"]):
            r = subprocess.run([GREEND] + args + ["-c", g.conf], capture_output=True,
                               text=True, timeout=20)
            check(r.returncode == 1, r)
            check("config file %s is writable by others (mode 0666" % g.conf in r.stderr, r.stderr)
            check("allow_insecure_paths" in r.stderr, r.stderr)
        os.chmod(g.conf, 0o644)
        shim = os.path.join(g.dir, "shim.so")
        open(shim, "w").close()
        os.chmod(shim, 0o646)
        g.write_config({"control_socket": g.sock, "preload": shim, "workers": [worker("a")]})
        r = subprocess.run([GREEND, "--check", "-c", g.conf], capture_output=True, text=True,
                           timeout=20)
        check(r.returncode == 1 and "preload library %s is writable by others (mode 0646" % shim
              in r.stderr, r.stderr)
        g.write_config({"control_socket": g.sock, "preload": shim, "allow_insecure_paths": True,
                        "workers": [worker("a")]})
        r = subprocess.run([GREEND, "--check", "-c", g.conf], capture_output=True, text=True,
                           timeout=20)
        check(r.returncode == 0, r)
        # A reload to an insecure config is refused; the old one stays.
        g.write_config({"control_socket": g.sock, "workers": [worker("a")]})
        g.start()
        g.wait_state("a:0", "running")
        g.write_config({"control_socket": g.sock, "preload": shim, "workers": [worker("a")]})
        a = g.request({"cmd": "reload"})
        check(not a["ok"] and a["code"] == "bad_config" and "mode 0646" in a["error"], a)
        check(g.inst("a:0")["state"] == "running", g.inst("a:0"))


def proc_gone(pid):
    """Not running and not a zombie either: reaped."""
    return not os.path.exists("/proc/%d" % pid)


def read_pid(path):
    with open(path) as f:
        return int(f.read().split()[0])


def zombies_of(ppid):
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == ppid:
            found.append(int(d))
    return found


def sh_worker(name, script, **kw):
    w = {"name": name, "command": ["/bin/sh", "-c", script], "start_secs": 0.2,
         "stop_timeout_s": 5, "backoff_ms": 50}
    w.update(kw)
    return w


def test_forked_child_ends_with_its_instance():
    # The worker forks and exits: its child must not outlive the instance.
    with Greend(workers=[], start=False) as g:
        pidf = os.path.join(g.dir, "child.pid")
        g.write_config({"control_socket": g.sock, "workers": [
            sh_worker("f", "sleep 300 & echo $! > %s; sleep 0.5; exit 3" % pidf,
                      restart="never")]})
        g.start()
        wait_for(lambda: os.path.exists(pidf) and os.path.getsize(pidf), 10, "the child's pid")
        child = read_pid(pidf)
        g.seen_pids.add(child)
        g.wait_state("f:0", "exited")
        wait_for(lambda: proc_gone(child), 10, "the child %d to be ended and reaped" % child)


def test_setsid_child_ended_by_stop():
    with Greend(workers=[], start=False) as g:
        pidf = os.path.join(g.dir, "child.pid")
        pidf2 = os.path.join(g.dir, "daemon.pid")
        # One child calls setsid() and stays the worker's; another is a
        # daemon (setsid in a subshell that exits), reparented to greend
        # while the worker still runs.
        g.write_config({"control_socket": g.sock, "workers": [
            sh_worker("s", "setsid sleep 300 & echo $! > %s; "
                           "(setsid sleep 301 & echo $! > %s); exec sleep 302" % (pidf, pidf2))]})
        g.start()
        g.wait_state("s:0", "running")
        wait_for(lambda: os.path.getsize(pidf) and os.path.getsize(pidf2), 10, "the pids")
        kids = [read_pid(pidf), read_pid(pidf2)]
        g.seen_pids.update(kids)

        def own_session(pid):
            with open("/proc/%d/stat" % pid) as f:
                return int(f.read().rsplit(")", 1)[1].split()[3]) == pid

        for k in kids:
            wait_for(lambda: own_session(k), 10, "%d to call setsid" % k)
        r = g.ctl("stop", "s")
        check(r.returncode == 0, r)
        g.wait_state("s:0", "stopped")
        for k in kids:
            wait_for(lambda: proc_gone(k), 10, "setsid child %d to be ended and reaped" % k)
        check("outside its group" in g.logtext(), g.logtext()[-2000:])


def test_orphans_reaped_no_zombies():
    # A crash loop whose every run leaves children behind: none of them may
    # stay, alive or zombie, once the instance is fatal.
    with Greend(workers=[], start=False) as g:
        pidd = os.path.join(g.dir, "pids")
        os.mkdir(pidd)
        g.write_config({"control_socket": g.sock, "workers": [
            sh_worker("z", "for i in 1 2 3; do sleep 300 & echo $! > %s/$$.$i; done; "
                           "(sleep 0.1 &) ; exit 1" % pidd,
                      start_secs=0, max_restarts=3, backoff_ms=10, backoff_max_ms=10)]})
        g.start()
        g.wait_state("z:0", "fatal", timeout=20)
        pids = [read_pid(os.path.join(pidd, f)) for f in os.listdir(pidd)]
        check(len(pids) >= 9, pids)
        g.seen_pids.update(pids)
        for p in pids:
            wait_for(lambda: proc_gone(p), 10, "orphan %d to be ended and reaped" % p)
        wait_for(lambda: not zombies_of(g.proc.pid), 10, "no zombie children of greend")


if __name__ == "__main__":
    run_tests(globals())
