#!/usr/bin/env python3
"""it_greend_ops - greend where operators run it: as PID 1 of a new pid
namespace (a container), where it reaps orphans it never started and turns
SIGTERM into a stop of every process in the namespace, then exits 0; and
under systemd, where its own lines carry sd-daemon priority prefixes while
stderr is the stream JOURNAL_STREAM names, and only then."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers"))
from greendtest import (B, GREEND, Greend, check, run_tests,  # noqa: E402
                        wait_for, worker, _die_with_parent)

UNSHARE = shutil.which("unshare")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def proc_stat(pid):
    """(comm, state, ppid) of PID, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    rest = s[s.rindex(")") + 2:].split()
    return comm, rest[0], int(rest[1])


def children_of(ppid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st and st[2] == ppid:
                out.append((int(d),) + st)
    return out


class Pid1:
    """greend as PID 1 of new pid (and net, so fixed ports cannot clash
    with anything else on the host) namespaces."""

    def __init__(self, config):
        self.dir = tempfile.mkdtemp(prefix="it_pid1.")
        self.sock = os.path.join(self.dir, "control.sock")
        self.conf = os.path.join(self.dir, "greend.json")
        config["control_socket"] = self.sock
        # chanworker speaks the channel itself: keep the shim out.
        config.setdefault("preload", os.path.join(self.dir, "no-shim.so"))
        with open(self.conf, "w") as f:
            json.dump(config, f)
        self.logf = open(os.path.join(self.dir, "greend.log"), "wb")
        self.proc = subprocess.Popen(
            [UNSHARE, "--pid", "--fork", "--mount-proc", "--net", "/bin/sh", "-c",
             'ip link set lo up 2>/dev/null; exec "$0" -c "$1"', GREEND, self.conf],
            stdout=self.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_die_with_parent)
        self.g = Greend(config=config, start=False)
        self.g.sock = self.sock
        self.g.proc = self.proc
        self.g.logf = self.logf
        answer = wait_for(lambda: self.proc.poll() is None and self.g.try_request({"cmd": "status"}),
                          10, "greend in the namespace to answer")
        check(answer["greend"]["pid"] == 1, "greend is PID 1 in its namespace: %r" % answer["greend"])
        kids = wait_for(lambda: children_of(self.proc.pid), 5, "unshare's child")
        self.host_pid = kids[0][0]

    def log(self):
        return open(os.path.join(self.dir, "greend.log"), errors="replace").read()

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.kill(self.host_pid, signal.SIGKILL)
        except (ProcessLookupError, AttributeError):
            pass
        self.g.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            print("---- greend log ----\n%s\n----" % self.log()[-6000:])
        self.close()
        return False


def can_unshare():
    if not UNSHARE or os.geteuid() != 0:
        print("skip: needs root and unshare(1) for a pid namespace")
        return False
    r = subprocess.run([UNSHARE, "--pid", "--fork", "--mount-proc", "--net", "true"],
                       capture_output=True, timeout=10)
    if r.returncode != 0:
        print("skip: unshare --pid --net does not work here: %s" % r.stderr.decode().strip())
        return False
    return True


def test_pid1_reaps_orphans():
    if not can_unshare():
        return
    # The worker's shell exits; its detached sleep is orphaned and the
    # kernel hands it to PID 1, which must reap it when it exits.  The
    # sleep leaves the session and clears its environment before its parent
    # exits (the parent waits in perl, a name the test does not look for),
    # so greend cannot count it as part of the instance (which would end it
    # with the instance): it is a stranger, as in any container.
    cfg = {"workers": [worker("a"),
                       {"name": "orphaner", "restart": "never", "start_secs": 0,
                        "command": ["/bin/sh", "-c",
                                    "setsid env -i /bin/sleep 1.5 & "
                                    "exec perl -e 'select undef, undef, undef, 0.3'"]}]}
    with Pid1(cfg) as p:
        orphan = wait_for(lambda: [c for c in children_of(p.host_pid) if c[1] == "sleep"], 10,
                          "the orphaned sleep to be reparented to greend")[0][0]
        wait_for(lambda: proc_stat(orphan) is None or proc_stat(orphan)[1] == "Z", 10,
                 "the orphan to exit")
        time.sleep(1.0)
        zombies = [c for c in children_of(p.host_pid) if c[2] == "Z"]
        check(not zombies, "no zombie 1 s after the orphan exited: %r" % zombies)
        check(p.g.request({"cmd": "status"})["ok"], "greend goes on")


def test_pid1_sigterm_stops_the_namespace():
    if not can_unshare():
        return
    d = tempfile.mkdtemp(prefix="it_pid1_term.")
    try:
        marker = os.path.join(d, "term.txt")
        script = os.path.join(d, "detached.sh")
        with open(script, "w") as f:
            f.write("trap 'echo term >\"$1\"; exit 0' TERM\nsleep 300 &\nwait\n")
        cfg = {"workers": [worker("a"),
                           {"name": "spawner", "restart": "never", "start_secs": 0,
                            "command": ["/bin/sh", "-c", "setsid env -i /bin/sh %s %s & "
                                        "exec perl -e 'select undef, undef, undef, 0.3'"
                                        % (script, marker)]}]}
        with Pid1(cfg) as p:
            # Its sleep runs once its trap is set: only then may SIGTERM come.
            wait_for(lambda: [k for c in children_of(p.host_pid) if c[1] == "sh"
                              for k in children_of(c[0]) if k[1] == "sleep"], 10,
                     "the detached shell under greend, with its trap set")
            p.g.wait_state("a:0", "running")
            t0 = time.monotonic()
            os.kill(p.host_pid, signal.SIGTERM)
            rc = p.proc.wait(20)
            check(rc == 0, "greend as PID 1 exits 0 after SIGTERM, got %r" % rc)
            check(time.monotonic() - t0 < 10, "within the stop timeouts")
            check(os.path.exists(marker) and open(marker).read() == "term\n",
                  "a process greend never started got SIGTERM before the namespace ended")
            check("sending SIGTERM to the other processes" in p.log(), p.log())
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_pid1_runs_the_demo_config():
    if not can_unshare():
        return
    with open(os.path.join(ROOT, "conf", "demo.json")) as f:
        cfg = json.load(f)
    for w in cfg["workers"]:
        w["cwd"] = ROOT
        w["command"] = [B + a[len("../build"):] if a.startswith("../build") else a
                        for a in w["command"]]
    cfg["preload"] = os.path.join(B, "libgreen-preload.so")
    if not os.path.exists(cfg["preload"]):
        print("skip: %s not built" % cfg["preload"])
        return
    if os.environ.get("GREEN_ASAN_RUNTIME"):
        # An ASan-built shim needs the runtime preloaded before it, which
        # one preload path cannot say; what is tested here is greend as
        # PID 1, so the demo's programs run unpatched.
        print("sanitized build: the demo's workers run without the shim")
        cfg["preload"] = os.path.join(B, "no-such-shim.so")
    with Pid1(cfg) as p:
        ids = [w["id"] for w in p.g.request({"cmd": "status"})["workers"]]
        for iid in ids:
            p.g.wait_state(iid, "running", 20)
        os.kill(p.host_pid, signal.SIGTERM)
        check(p.proc.wait(30) == 0, "exit status after SIGTERM")


def journal_run(js_value_of):
    with Greend(workers=[worker("a", "--say", "<3>not a priority")], start=False) as g:
        open(g.log, "wb").close()
        st = os.stat(g.log)
        g.env["JOURNAL_STREAM"] = js_value_of(st)
        g.start()
        g.wait_state("a:0", "running")
        g.write_config("{ broken")
        g.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload failed" in g.logtext(), 10, "the reload error")
        return g.logtext().splitlines()


def test_journal_prefixes():
    lines = journal_run(lambda st: "%d:%d" % (st.st_dev, st.st_ino))
    own = [l for l in lines if not l.startswith("a:0: ")]
    check(own and all(l[:3] in ("<3>", "<4>", "<5>", "<6>") for l in own), own)
    check(any(l.startswith("<6>greend 0.1.0: pid") for l in own), own)
    check(any(l.startswith("<3>reload failed") for l in own), own)
    check(any(l.startswith("<4>") for l in own), "the missing-shim warning is <4>: %r" % own)
    # A worker's line is forwarded as it came, behind its id, so it cannot
    # pose as a priority.
    check("a:0: <3>not a priority" in lines, lines)


def test_journal_stream_elsewhere_means_no_prefixes():
    # JOURNAL_STREAM inherited, but stderr is not that stream any more.
    lines = journal_run(lambda st: "%d:%d" % (st.st_dev, st.st_ino + 1))
    own = [l for l in lines if not l.startswith("a:0: ")]
    check(own and all(l.startswith("greend: ") for l in own), own)


if __name__ == "__main__":
    run_tests(globals())
