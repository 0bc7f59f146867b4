#!/usr/bin/env python3
"""greend_stress - `make stress`: greend under everything at once, for
STRESS_SECONDS (default 300): 1,000 clients connecting, asking and leaving
(as nobody when run as root, so greend's per-uid cap and its slots for
privileged peers are what keeps the probe in, and the probe asks over the
privileged socket, as greenctl does, which the crowd cannot open), workers flooding their
channels in messages and in bytes, a crash-looping worker, and a SIGHUP
every 100 ms (every tenth one switching between two configs that add,
remove and change a worker).  A probe asks `status` every 100 ms: every
answer must come within 100 ms.  At the end greend's RSS and fd count must
be back to their baseline.  Prints the figures; exits 1 if a goal is missed.
Not part of `make check` (it takes minutes and wants a quiet machine)."""
import json
import os
import selectors
import signal
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "helpers"))
from greendtest import Greend, _die_with_parent, wait_for, worker  # noqa: E402

SECONDS = float(os.environ.get("STRESS_SECONDS") or 300)
CLIENTS = int(os.environ.get("STRESS_CLIENTS") or 1000)
PROBE_EVERY = 0.1
ANSWER_WITHIN = 0.1


def configs(g):
    """The quiet config the figures are taken with, and the two the storm
    switches between every tenth SIGHUP.  The load runs niced: the goal is that greend keeps
    answering, not that it wins the CPU from its own tormentors."""
    nice = ["nice", "-n", "10", worker("x")["command"][0]]
    loud = [worker("flood", "--mode", "flood", "--exit-after", "5", restart="always"),
            worker("bigflood", "--mode", "bigflood", "--exit-after", "5", restart="always",
                   instances=2),
            worker("crash", "--exit-after", "0.5", "--exit-code", "1", restart="always",
                   max_restarts=1000000, backoff_ms=50, backoff_max_ms=50)]
    parts = os.environ.get("STRESS_PARTS", "flood,bigflood,crash").split(",")
    loud = [w for w in loud if w["name"] in parts]
    for w in loud:
        w["command"] = nice + w["command"][1:]
    quiet = [worker("steady", instances=3), worker("extra")]
    a = loud + quiet + [worker("changing", env={"V": "a"})]
    b = loud + [worker("steady", instances=3), worker("changing", env={"V": "b"})]
    return [{"control_socket": g.sock, "stats_interval_ms": 100, "socket_mode": "0666",
             "workers": ws} for ws in (quiet, a, b)]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fds(pid):
    """What each of PID's fds is open on."""
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            pass
    return out


def crowd(path, n, seconds):
    """N connections at a time, each asking once and leaving; some linger."""
    sel = selectors.DefaultSelector()
    stats = {"asked": 0, "answered": 0, "busy": 0, "errors": 0}
    reqs = [b'{"cmd":"status"}\n', b'{"cmd":"metrics"}\n', b'{"cmd":"version"}\n',
            b'{"cmd":"dump","worker":"steady:0"}\n', b'{"cmd":"stop","worker":"all"}\n']
    end = time.monotonic() + seconds

    def open_one(k):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(path)
        except BlockingIOError:
            pass
        except OSError as e:
            stats["errors"] += 1
            stats.setdefault("first_error", repr(e))
            s.close()
            return
        sel.register(s, selectors.EVENT_WRITE, [reqs[k % len(reqs)], b""])

    k = 0
    while time.monotonic() < end:
        while len(sel.get_map()) < n and time.monotonic() < end:
            open_one(k)
            k += 1
        for key, ev in sel.select(0.05):
            s, st = key.fileobj, key.data
            try:
                if ev & selectors.EVENT_WRITE:
                    try:
                        s.send(st[0])
                    except (BrokenPipeError, ConnectionResetError):
                        # Turned away before it could ask: read why.
                        st[1] = s.recv(65536)
                        stats["busy" if b'"busy"' in st[1] else "errors"] += 1
                        sel.unregister(s)
                        s.close()
                        continue
                    stats["asked"] += 1
                    sel.modify(s, selectors.EVENT_READ, st)
                    continue
                data = s.recv(65536)
                st[1] += data
                if data and b"\n" not in st[1]:
                    continue
                if b'"busy"' in st[1]:
                    stats["busy"] += 1
                elif data:
                    stats["answered"] += 1
            except OSError as e:
                stats["errors"] += 1
                stats.setdefault("first_error", repr(e))
            sel.unregister(s)
            s.close()
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    return stats


def main():
    if not os.path.exists(os.path.join(os.environ.get("B", "build"), "greend")):
        print("make stress: build greend first")
        return 1
    with Greend(start=False) as g:
        cfg = configs(g)
        g.write_config(cfg[0])
        g.start()
        pid = g.proc.pid
        wait_for(lambda: all(w["state"] == "running" for w in g.status()["workers"]
                             if w["name"] == "steady"), 20, "workers up")
        time.sleep(2)
        base_rss, base_fds = rss_kib(pid), fds(pid)
        cpu0, wall0 = cpu_s(pid), time.monotonic()

        r, w = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(r)
            _die_with_parent()
            os.nice(10)
            if os.geteuid() == 0:
                import pwd
                pw = pwd.getpwnam("nobody")
                os.setgroups([])
                os.setgid(pw.pw_gid)
                os.setuid(pw.pw_uid)
            try:
                res = crowd(g.sock, CLIENTS, SECONDS)
            except Exception as e:  # report, do not hang the parent
                res = {"error": repr(e)}
            os.write(w, json.dumps(res).encode())
            os._exit(0)
        os.close(w)

        lat, late, failed, hups = [], 0, 0, 0
        t_end = time.monotonic() + SECONDS
        next_probe = next_hup = time.monotonic()
        while time.monotonic() < t_end:
            now = time.monotonic()
            if now >= next_hup and not os.environ.get("STRESS_NO_HUP"):
                # Most reloads find nothing to do (a HUP storm); every
                # tenth one adds, removes and changes a worker.
                g.write_config(cfg[1 + (hups // 10) % 2])
                g.proc.send_signal(signal.SIGHUP)
                hups += 1
                next_hup = now + 0.1
            if now >= next_probe:
                t0 = time.monotonic()
                try:
                    a = g.request({"cmd": "status"}, timeout=5,
                                  sock=g.priv_sock if os.geteuid() == 0 else None)
                    ok = a.get("ok") is True
                except (OSError, ValueError):
                    ok = False
                dt = time.monotonic() - t0
                lat.append(dt)
                late += dt > ANSWER_WITHIN
                failed += not ok
                next_probe = t0 + PROBE_EVERY
            time.sleep(max(0, min(next_probe, next_hup) - time.monotonic()))

        greend_cpu = (cpu_s(pid) - cpu0) / (time.monotonic() - wall0) * 100
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
        res = json.loads(os.read(r, 65536) or b"{}")
        os.close(r)
        os.waitpid(child, 0)
        # Back to the quiet config the baseline was taken with; let the
        # flooders and idle clients go, then measure again.
        g.write_config(cfg[0])
        g.proc.send_signal(signal.SIGHUP)
        time.sleep(12)
        wait_for(lambda: all(w["state"] == "running" for w in g.status()["workers"]), 20,
                 "workers settled")
        end_rss, end_fds = rss_kib(pid), fds(pid)
        st = g.status()["greend"]

        lat.sort()
        pct = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] * 1000 if lat else float("nan")
        print("greend stress: %.0f s, %d clients at a time (%s), %d SIGHUPs" %
              (SECONDS, CLIENTS, "as nobody" if os.geteuid() == 0 else "as this user", hups))
        print("  crowd: %s" % res)
        print("  probe: %d status requests, %d failed, %d over %d ms; "
              "median %.1f ms, p99 %.1f ms, max %.1f ms" %
              (len(lat), failed, late, ANSWER_WITHIN * 1000, pct(0.5), pct(0.99), pct(1.0)))
        print("  greend used %.0f %% of one CPU; load average %s on %d CPUs" %
              (greend_cpu, load, os.cpu_count()))
        print("  greend RSS %d KiB -> %d KiB, fds %d -> %d, log lines dropped %s" %
              (base_rss, end_rss, len(base_fds), len(end_fds), st.get("log_dropped")))
        bad = []
        if failed or late:
            bad.append("%d probe answers failed and %d were later than %d ms" %
                       (failed, late, ANSWER_WITHIN * 1000))
        if len(end_fds) > len(base_fds):
            extra = sorted(set(end_fds.items()) - set(base_fds.items()))
            bad.append("fds not back to baseline (new or changed: %s)" %
                       ", ".join("%d -> %s" % fe for fe in extra))
        if end_rss > max(base_rss * 1.5, base_rss + 8192):
            bad.append("RSS not back to baseline")
        if g.proc.poll() is not None:
            bad.append("greend exited")
        print("  result: %s" % ("; ".join(bad) if bad else "all goals met"))
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
