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
    # shim accepts is accepted here too, and the shim sees the same modules.
    env = dict(os.environ, GREEN_DEBUG="1")
    env.pop("LD_PRELOAD", None)
    r = subprocess.run([GREENCTL, "run", "--patch", "socket, dns", "--", "true"],
                       capture_output=True, text=True, timeout=20, env=env)
    check(r.returncode == 0, r)
    check("patched: socket,dns" in r.stderr, r.stderr)
    r = subprocess.run([GREENCTL, "run", "--patch", "socket,,dns", "--", "true"],
                       capture_output=True, text=True, timeout=20, env=env)
    check(r.returncode == 2 and "empty item in the module list" in r.stderr, r)


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
        # succeeded, not three.
        fds = len(os.listdir("/proc/%d/fd" % g.proc.pid))
        check(fds <= 9 + 2 * 8, "greend holds %d fds" % fds)


def ids_of(g, name):
    return sorted(w["id"] for w in g.status()["workers"] if w["name"] == name)


def test_reload_races_stops():
    # The instances ignore SIGTERM, so they are still stopping (for
    # stop_timeout_s) when the next reload lands.
    slow = dict(instances=3, stop_timeout_s=3)
    with Greend(workers=[worker("r", "--ignore-term", **slow)]) as g:
        base = {"control_socket": g.sock, "stats_interval_ms": 100}
        for i in range(3):
            g.wait_state("r:%d" % i, "running")
        g.write_config(dict(base, workers=[worker("r", "--ignore-term", **dict(slow, instances=1))]))
        a = g.request({"cmd": "reload"})
        check(a["ok"] and a["changed"] == ["r"], a)
        check(g.inst("r:1")["state"] == "stopping", g.inst("r:1"))
        g.write_config(dict(base, workers=[worker("r", "--ignore-term", **slow)]))
        a = g.request({"cmd": "reload"})
        check(a["ok"], a)
        for i in range(3):
            g.wait_state("r:%d" % i, "running", timeout=20)
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


if __name__ == "__main__":
    run_tests(globals())
