"""greendtest - the harness shared by tests/it_greend*.py.

Starts the real greend on a temporary directory and socket, runs the real
greenctl against it, and makes sure every process it started is gone at
the end: greend runs in its own session and is killed by process group,
and every worker pid greend ever reported is SIGKILLed as a last resort.
Every wait is bounded.
"""
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

B = os.environ.get("B") or os.path.abspath("build")
GREEND = os.path.join(B, "greend")
GREENCTL = os.path.join(B, "greenctl")
CHANW = os.path.join(B, "tests", "helpers", "chanworker")
SHIM = os.path.join(B, "libgreen-preload.so")


def green_env(patch="all", base=None):
    """The environment (os.environ, or base) of a program run under the
    shim with GREEN_PATCH=patch.  A sanitized shim needs the ASan runtime
    loaded before it, and an uninstrumented program leaks by design at
    exit, so leak checks are off."""
    env = dict(os.environ if base is None else base)
    preload = SHIM
    asan = os.environ.get("GREEN_ASAN_RUNTIME")
    if asan:
        preload = asan + ":" + SHIM
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1:verify_asan_link_order=0"
    env["LD_PRELOAD"] = preload
    env["GREEN_PATCH"] = patch
    return env


def exchange(family, addr, request, timeout=10):
    """Send REQUEST (bytes) on a new stream socket to ADDR and return all
    the peer sends until it closes (an HTTP/1.0 or Connection: close
    exchange)."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(addr)
        s.sendall(request)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return buf
            buf += chunk
    finally:
        s.close()


def _die_with_parent():
    # If this test is killed (a runner's timeout), greend must not outlive
    # it; greend's workers then die by their own PR_SET_PDEATHSIG.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Failure(Exception):
    pass


class Skip(Exception):
    """A test that cannot run here (a missing package): run_tests says why."""


def check(cond, what):
    if not cond:
        raise Failure(what)


def wait_for(pred, timeout=10.0, what="condition", interval=0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except (OSError, ValueError, KeyError, TypeError):
            pass
        time.sleep(interval)
    raise Failure("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


def read_text(path):
    """A log file's text so far; "" when it is not there (yet)."""
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def pgrp_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class Greend:
    """One greend on a temp dir.  Use as a context manager."""

    def __init__(self, config=None, workers=None, env=None, stats_interval_ms=100,
                 start=True, extra=None):
        self.dir = tempfile.mkdtemp(prefix="it_greend.")
        os.chmod(self.dir, 0o755)
        self.sock = os.path.join(self.dir, "control.sock")
        self.priv_sock = self.sock + ".priv"
        self.conf = os.path.join(self.dir, "greend.json")
        self.log = os.path.join(self.dir, "greend.log")
        self.proc = None
        self.seen_pids = set()
        self.env = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "GREEND_SOCKET"):
            self.env.pop(k, None)
        if env:
            self.env.update(env)
        if config is None:
            # chanworker speaks the channel itself, so the real shim (which
            # would speak it too) is kept out: a preload that does not exist
            # makes greend start workers without LD_PRELOAD.
            config = {"control_socket": self.sock, "stats_interval_ms": stats_interval_ms,
                      "preload": os.path.join(self.dir, "no-shim.so"), "workers": workers or []}
            if extra:
                config.update(extra)
        self.write_config(config)
        if start:
            self.start()

    def write_config(self, config):
        if isinstance(config, dict):
            config.setdefault("preload", os.path.join(self.dir, "no-shim.so"))
        text = config if isinstance(config, str) else json.dumps(config, indent=2)
        with open(self.conf + ".tmp", "w") as f:
            f.write(text)
        os.rename(self.conf + ".tmp", self.conf)

    def start(self, wait=True):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([GREEND, "-f", "-c", self.conf], stdout=self.logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=self.env, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        if wait:
            wait_for(lambda: self.proc.poll() is None and self.try_request({"cmd": "version"}),
                     10, "greend to answer on " + self.sock)

    def logtext(self):
        return read_text(self.log)

    def try_request(self, obj):
        try:
            return self.request(obj, timeout=2)
        except OSError:
            return None

    def request(self, obj, timeout=10, sock=None):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(sock or self.sock)
            data = obj if isinstance(obj, bytes) else (json.dumps(obj) + "\n").encode()
            s.sendall(data)
            buf = b""
            while b"\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("greend closed without an answer")
                buf += chunk
            return json.loads(buf.split(b"\n")[0])
        finally:
            s.close()

    def status(self, worker=None):
        req = {"cmd": "status"}
        if worker:
            req["worker"] = worker
        a = self.request(req)
        for w in a.get("workers", []):
            if w.get("pid"):
                self.seen_pids.add(w["pid"])
        return a

    def inst(self, iid):
        for w in self.status()["workers"]:
            if w["id"] == iid:
                return w
        return None

    def wait_state(self, iid, states, timeout=10):
        if isinstance(states, str):
            states = (states,)
        return wait_for(lambda: (lambda w: w if w and w["state"] in states else None)(self.inst(iid)),
                        timeout, "%s to be %s" % (iid, "/".join(states)))

    def ctl(self, *args, timeout=60, user=None, env=None, input=None):
        cmd = [GREENCTL, "-s", self.sock] + list(args)
        if user:
            cmd = ["setpriv"] + user + ["--"] + cmd
        e = dict(os.environ)
        if env:
            e.update(env)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e,
                              stdin=subprocess.DEVNULL if input is None else None, input=input)

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            try:
                self.status()
            except Exception:
                pass
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        if self.proc:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            self.logf.close()
        for pid in self.seen_pids:
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            print("---- greend log (%s) ----\n%s\n----" % (self.conf, self.logtext()[-6000:]))
        self.stop()
        self.cleanup()
        return False


def worker(name, *args, **kw):
    w = {"name": name, "command": [CHANW] + list(args), "start_secs": 0.2,
         "stop_timeout_s": 5, "backoff_ms": 50}
    w.update(kw)
    return w


def native_env(base=None):
    """The environment without the shim: what a program sees natively."""
    env = dict(os.environ if base is None else base)
    for k in ("LD_PRELOAD", "GREEN_PATCH", "GREEN_CONFORMANCE", "GREEN_CONTROL_FD"):
        env.pop(k, None)
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_group(p):
    """SIGKILL the process group P leads (started with start_new_session)
    and reap P, within bounds."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def run_tests(module_globals, needs_shim=False):
    if needs_shim and not os.path.exists(SHIM):
        print("no shim built at", SHIM)
        print("0 passed, 1 failed")
        sys.exit(1)
    names = [n for n in sorted(module_globals) if n.startswith("test_")
             and callable(module_globals[n])]
    only = os.environ.get("IT_ONLY")
    passed = failed = skipped = 0
    for n in names:
        if only and only not in n:
            continue
        t0 = time.monotonic()
        try:
            module_globals[n]()
            passed += 1
            print("PASS %s (%.1fs)" % (n, time.monotonic() - t0), flush=True)
        except Skip as e:
            skipped += 1
            print("SKIP %s: %s" % (n, e), flush=True)
        except Exception as e:
            failed += 1
            print("FAIL %s (%.1fs): %s" % (n, time.monotonic() - t0, e), flush=True)
            if not isinstance(e, Failure):
                traceback.print_exc()
    if skipped:
        print("%d skipped (the reason is on each SKIP line)" % skipped)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed else 0)
