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
import pwd
import random
import re
import signal
import shutil
import stat
import grp
import tempfile
import select
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers"))
from greendtest import (GREEND, Greend, _die_with_parent, check, run_tests,  # noqa: E402
                        wait_for, worker)
from it_greend_abuse import conn  # noqa: E402


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


def nobody_ids():
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


def as_nobody(fn):
    """Run FN in a child that became nobody; returns its pid."""
    pid = os.fork()
    if pid == 0:
        try:
            _die_with_parent()
            uid, gid = nobody_ids()
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            fn()
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            os._exit(0)
    return pid


def stop_child(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def fingerprint(path):
    st = os.lstat(path)
    return (st.st_mode, st.st_uid, st.st_gid, st.st_size)


def race_symlinks(sockdir, targets, starts, patient):
    """Start greend STARTS times on a socket in SOCKDIR while nobody plants
    symlinks to TARGETS under the names greend uses there and swaps its
    socket for one as soon as it appears.  A PATIENT attacker waits a
    little between rounds, so that some starts meet a clean directory."""
    victim, missing = targets
    sock = os.path.join(sockdir, "control.sock")
    lock = sock + ".lock"

    def attacker():
        rnd = random.Random(os.getpid())
        while True:
            time.sleep(rnd.random() if patient else 0.0002)
            if not os.path.lexists(lock):
                try:
                    os.symlink(rnd.choice((victim, missing)), lock)
                except OSError:
                    pass
            try:
                if os.path.lexists(sock) and not os.path.islink(sock):
                    os.rename(sock, sock + ".away")
                os.symlink(victim, sock)
            except OSError:
                pass

    before = fingerprint(victim)
    conf = os.path.join(tempfile.mkdtemp(prefix="it_harden_conf."), "greend.json")
    with open(conf, "w") as f:
        json.dump({"control_socket": os.path.join(sockdir, "control.sock"), "socket_mode": "0666",
                   "socket_group": "daemon", "preload": "/nonexistent/shim.so", "workers": []}, f)
    pid = as_nobody(attacker)
    started = refused = 0
    messages = set()
    try:
        for _ in range(starts):
            # Root clears what the attacker planted, so the race is in
            # greend's own steps.
            for e in os.listdir(sockdir):
                try:
                    os.unlink(os.path.join(sockdir, e))
                except OSError:
                    pass
            proc = subprocess.Popen([GREEND, "-f", "-c", conf], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    preexec_fn=_die_with_parent)
            # Started: it answers on its socket; refused: it exits.
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    probe.settimeout(1)
                    probe.connect(sock)
                    probe.close()
                    break
                except OSError:
                    probe.close()
                    time.sleep(0.01)
            if proc.poll() is None:
                started += 1
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=10)
            else:
                refused += 1
                err = proc.communicate(timeout=10)[1]
                messages.add(err.decode(errors="replace").strip().split("\n")[-1][:160])
            check(fingerprint(victim) == before, "the root-only file changed: %r -> %r" %
                  (before, fingerprint(victim)))
            check(not os.path.lexists(missing), "greend created a file at a symlink's target")
    finally:
        stop_child(pid)
        shutil.rmtree(os.path.dirname(conf), ignore_errors=True)
    print("%d starts, %d refused; messages: %s" % (started, refused, sorted(messages)[:6]))
    return started, refused, messages


def root_only_targets():
    tdir = tempfile.mkdtemp(prefix="it_harden_root.")
    victim = os.path.join(tdir, "secret")
    with open(victim, "w") as f:
        f.write("root only\n")
    os.chmod(victim, 0o600)
    return tdir, (victim, os.path.join(tdir, "created"))


def test_socket_dir_symlink_race():
    if os.geteuid() != 0:
        print("skip: needs root to race as nobody")
        return
    tdir, targets = root_only_targets()
    sockdir = tempfile.mkdtemp(prefix="it_harden_sock.")
    os.chmod(sockdir, 0o1777)  # like /tmp: anyone may add names, not touch others'
    try:
        started, refused, messages = race_symlinks(sockdir, targets, 50, patient=True)
        check(started > 0, ("greend starts in a sticky directory", messages))
    finally:
        shutil.rmtree(sockdir, ignore_errors=True)
        shutil.rmtree(tdir, ignore_errors=True)


def test_untrusted_socket_dir_refused():
    if os.geteuid() != 0:
        print("skip: needs root to race as nobody")
        return
    tdir, targets = root_only_targets()
    sockdir = tempfile.mkdtemp(prefix="it_harden_sock.")
    os.chown(sockdir, *nobody_ids())
    try:
        started, refused, messages = race_symlinks(sockdir, targets, 300, patient=False)
        check(started == 0, "greend must not use a directory another user owns")
        check(any("is owned by another user (owner uid %d" % nobody_ids()[0] in m for m in messages),
              messages)
        os.chown(sockdir, 0, 0)
        os.chmod(sockdir, 0o777)
        started, refused, messages = race_symlinks(sockdir, targets, 20, patient=False)
        check(started == 0 and any("writable by group or others and not sticky (owner uid 0, mode 0777)"
                                   in m for m in messages), messages)
    finally:
        shutil.rmtree(sockdir, ignore_errors=True)
        shutil.rmtree(tdir, ignore_errors=True)


def test_unprivileged_crowd_does_not_lock_out_root():
    if os.geteuid() != 0:
        print("skip: needs root to hold connections as nobody")
        return
    with Greend(workers=[worker("a")], extra={"socket_mode": "0666"}) as g:
        g.wait_state("a:0", "running")
        r, w = os.pipe()

        def crowd():
            os.close(r)
            held, busy = [], 0
            t_first = time.monotonic()
            for _ in range(300):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(5)
                try:
                    s.connect(g.sock)
                except OSError:
                    busy += 1
                    continue
                held.append(s)
            time.sleep(1)
            idle = []
            for s in held:
                s.setblocking(False)
                try:
                    data = s.recv(4096)
                    busy += b'"busy"' in data
                    s.close()
                except (BlockingIOError, socket.timeout):
                    idle.append(s)
            os.write(w, b"%d %d\n" % (len(idle), busy))
            # Hold on until greend closes the idle ones.
            t0 = time.monotonic()
            for s in idle:
                s.settimeout(max(0.1, 30 - (time.monotonic() - t0)))
                try:
                    s.recv(1)
                except OSError:
                    pass
            os.write(w, b"%.1f\n" % (time.monotonic() - t_first))

        pid = as_nobody(crowd)
        os.close(w)
        try:
            f = os.fdopen(r, "rb")
            held, busy = map(int, f.readline().split())
            check(held == 32 and busy == 268, ("per-uid cap", held, busy))
            # Root and greend's own uid still get in, and are answered.
            for _ in range(20):
                a = g.request({"cmd": "status"}, timeout=5)
                check(a["ok"], a)
            # A second unprivileged user has its own share.
            r2 = g.ctl("status", user=["--reuid", "daemon", "--regid", "daemon", "--clear-groups"])
            check(r2.returncode == 0, r2)
            idle_s = float(f.readline())
            check(9.9 <= idle_s <= 25, ("idle connections closed after about 10 s", idle_s))
        finally:
            stop_child(pid)


def test_privileged_socket():
    if os.geteuid() != 0:
        print("skip: needs root to try the privileged socket as nobody")
        return
    with Greend(workers=[worker("a")], extra={"socket_mode": "0666"}) as g:
        g.wait_state("a:0", "running")
        st = os.lstat(g.priv_sock)
        check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0,
              ("privileged socket", oct(st.st_mode), st.st_uid))
        check(g.status()["greend"]["privileged_socket"] == g.priv_sock, g.status()["greend"])
        r, w = os.pipe()

        def crowd():
            # Fill the control socket's accept queue and hold it, then try
            # the privileged socket.
            os.close(r)
            held = []
            for _ in range(2000):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.setblocking(False)
                try:
                    s.connect(g.sock)
                except BlockingIOError:
                    pass
                except OSError:
                    s.close()
                    break
                held.append(s)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(g.priv_sock)
                why = b"connected"
            except PermissionError:
                why = b"EACCES"
            os.write(w, b"%d %s\n" % (len(held), why))
            time.sleep(30)

        pid = as_nobody(crowd)
        os.close(w)
        try:
            f = os.fdopen(r, "rb")
            held, why = f.readline().split()
            check(why == b"EACCES", ("nobody on the privileged socket", why))
            check(int(held) > 100, ("a crowd in the accept queue", held))
            for _ in range(20):
                a = g.request({"cmd": "status"}, timeout=5, sock=g.priv_sock)
                check(a["ok"], a)
            # greenctl takes the privileged socket when it can: with the
            # control socket's name gone, root still gets through, nobody not.
            os.unlink(g.sock)
            r1 = g.ctl("status")
            check(r1.returncode == 0 and "a:0" in r1.stdout, r1)
            r2 = g.ctl("status", user=["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
            check(r2.returncode == 3 and "not reachable" in r2.stderr, r2)
        finally:
            stop_child(pid)
    check(not os.path.exists(g.priv_sock), "the privileged socket removed at exit")


def test_privileged_socket_group_mode():
    if os.geteuid() != 0:
        print("skip: needs root to set a socket group")
        return
    with Greend(workers=[worker("a")], extra={"socket_group": "daemon"}) as g:
        g.wait_state("a:0", "running")
        st = os.lstat(g.priv_sock)
        check(stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == grp.getgrnam("daemon").gr_gid,
              ("privileged socket for socket_group", oct(st.st_mode), st.st_gid))
        # A member of the group is privileged there; the crowd's users are not.
        r = g.ctl("status", user=["--reuid", "daemon", "--regid", "daemon", "--clear-groups"])
        check(r.returncode == 0, r)


def test_slow_trickle_is_idle():
    with Greend() as g:
        s = conn(g)
        t0 = time.monotonic()
        s.settimeout(1)
        closed = False
        while time.monotonic() - t0 < 20 and not closed:
            try:
                s.sendall(b" ")  # never a whole request
                closed = s.recv(1) == b""
            except socket.timeout:
                pass
            except OSError:
                closed = True
        check(closed and time.monotonic() - t0 >= 9, ("trickler closed as idle", time.monotonic() - t0))
        check(g.request({"cmd": "version"})["ok"], "others served")


def test_channel_byte_flood_throttled():
    with Greend(workers=[worker("big", "--mode", "bigflood", instances=10), worker("a")]) as g:
        wait_for(lambda: all(w["state"] == "running" for w in g.status()["workers"]), 10, "running")
        time.sleep(1)
        received0 = {w["id"]: w["channel"]["received"] for w in g.status()["workers"]}
        slowest = 0
        t0_all = time.monotonic()
        t_end = time.monotonic() + 4
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            check(g.request({"cmd": "status"}, timeout=10)["ok"], "status")
            slowest = max(slowest, time.monotonic() - t0)
            time.sleep(0.1)
        # What greend reads is bounded by the byte budget, not by what the
        # workers send (100 messages of 60 KiB a second each): about one a
        # second after the burst.  This holds however loaded the machine.
        secs = time.monotonic() - t0_all
        after = {w["id"]: w["channel"]["received"] for w in g.status()["workers"]}
        rates = sorted((after[i] - received0[i]) / secs for i in after if i.startswith("big:"))
        print("slowest status while flooded: %.3fs; messages read per second per flooder: %s" %
              (slowest, ["%.1f" % r for r in rates]))
        check(rates[-1] < 5, ("greend reads within the byte budget", rates))
        check(slowest < 2, "status took %.2fs while 10 workers flood 6 MB/s each" % slowest)
        w = g.inst("big:0")
        check(w["channel"]["throttled"] > 0, w["channel"])
        w = wait_for(lambda: (lambda x: x if x["channel"]["closed"] else None)(g.inst("big:3")),
                     30, "the flooder disconnected")
        check(w["channel"]["closed"].startswith("flooding: over 65536 bytes/s"), w["channel"])
        check(w["state"] == "running", w)
        check(g.inst("a:0")["channel"]["open"], "the quiet worker keeps its channel")


def test_channel_zero_length_is_malformed():
    with Greend(workers=[worker("e", "--mode", "empty")]) as g:
        w = wait_for(lambda: (lambda x: x if x["greenlets"] and x["channel"]["malformed"] >= 1 else None)(
            g.inst("e:0")), 10, "the empty message counted")
        check(w["channel"]["open"] and w["channel"]["closed"] is None, w["channel"])
        time.sleep(0.5)
        check(g.inst("e:0")["channel"]["open"], "still open")


SHIM = os.path.join(os.environ.get("B") or os.path.abspath("build"), "libgreen-preload.so")
CROWD = os.path.join(os.environ.get("B") or os.path.abspath("build"), "tests", "helpers",
                     "greenlet_crowd")


def test_truncated_dump_says_so():
    # The shim is preloaded by the command itself, so an ASan runtime can
    # come first in a sanitized build.
    preload = SHIM
    env = {}
    if os.environ.get("GREEN_ASAN_RUNTIME"):
        preload = os.environ["GREEN_ASAN_RUNTIME"] + ":" + SHIM
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1:verify_asan_link_order=0"
    cmd = ["/usr/bin/env", "LD_PRELOAD=" + preload, "GREEN_PATCH=all", CROWD, "10000"]
    with Greend(workers=[{"name": "crowd", "command": cmd, "env": env, "start_secs": 0.2,
                          "stack_size": "64K"}]) as g:
        g.wait_state("crowd:0", "running")
        wait_for(lambda: "threads waiting" in g.logtext(), 30, "10,000 threads")
        wait_for(lambda: (g.inst("crowd:0")["greenlets"] or {}).get("alive", 0) >= 10000, 15,
                 "stats for 10,000 greenlets")
        a = g.request({"cmd": "dump", "worker": "crowd:0"}, timeout=15)
        check(a["ok"], a)
        shown = len(a["greenlets"])
        check(a["truncated"] is True and shown > 100, (a["truncated"], shown))
        check(shown + a["left_out"] == 10001, ("every greenlet shown or counted", shown, a["left_out"]))
        r = g.ctl("dump", "crowd:0")
        # (a second dump may fit a few more or fewer: ages grow digits)
        check(r.returncode == 0 and re.search(r"\.\.\. and \d+ more: the dump was cut", r.stdout),
              r.stdout[-300:])
        # A dump that fits says so too.
        b = g.request({"cmd": "status", "worker": "crowd:0"})
        check(b["ok"], b)


def test_whole_dump_not_truncated():
    with Greend(workers=[worker("a")]) as g:
        g.wait_state("a:0", "running")
        a = wait_for(lambda: (lambda x: x if x.get("ok") else None)(
            g.request({"cmd": "dump", "worker": "a:0"})), 10, "a dump")
        check(a["truncated"] is False and a["left_out"] == 0 and len(a["greenlets"]) == 3, a)


if __name__ == "__main__":
    run_tests(globals())
