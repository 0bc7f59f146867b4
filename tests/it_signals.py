#!/usr/bin/env python3
"""Signals reach green threads in a real program: Debian's CPython under
the preload shim (GREEN_PATCH=all) gets Ctrl-C (SIGINT) while its main
thread waits in Thread.join, Lock.acquire, Event.wait and Queue.get, and
raises KeyboardInterrupt about as soon as natively.  CPython's locks are
semaphores: the KeyboardInterrupt comes only when sem_wait/sem_clockwait
fails with EINTR, which a green wait must do as the kernel's does.

Each case prints how long the interrupt took, natively and greened; the
assertion is generous (this is an integration test on a shared machine),
the figure is what to look at.  Every process is reaped; every wait is
bounded."""
import os
import signal
import subprocess
import sys
import time

B = os.environ.get("B", os.path.abspath("build"))
SHIM = os.path.join(B, "libgreen-preload.so")
PY = "/usr/bin/python3"  # Debian's CPython, not whatever is first on PATH
LIMIT_S = 2.0            # the goal is 0.5 s; see the docstring

# The main thread waits in WAIT while another thread is parked (so the
# main thread is never alone on its hub and takes the greened path).
SCRIPT = r"""
import queue, sys, threading, time
ev = threading.Event()
other = threading.Thread(target=ev.wait, args=(30,), daemon=True)
other.start()
lock = threading.Lock(); lock.acquire()
q = queue.Queue()
waits = {"join": lambda: other.join(), "lock": lambda: lock.acquire(),
         "event": lambda: ev.wait(), "queue": lambda: q.get()}
print("ready", flush=True)
try:
    waits[sys.argv[1]]()
    print("returned", flush=True)
except KeyboardInterrupt:
    print("KeyboardInterrupt %.6f" % time.monotonic(), flush=True)
"""


def env_for(greened):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if greened:
        preload = SHIM
        asan = os.environ.get("GREEN_ASAN_RUNTIME")
        if asan:
            preload = asan + ":" + SHIM
            env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1:verify_asan_link_order=0"
        env["LD_PRELOAD"] = preload
        env["GREEN_PATCH"] = "all"
    return env


def interrupt_delay(wait, greened):
    """Seconds from SIGINT to the KeyboardInterrupt in the main thread."""
    p = subprocess.Popen([PY, "-c", SCRIPT, wait], env=env_for(greened),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        line = p.stdout.readline()
        assert line.strip() == "ready", (line, p.stderr.read()[-2000:])
        time.sleep(0.3)  # let the main thread park in its wait
        sent = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate(timeout=10)
        raise AssertionError("%s: no KeyboardInterrupt within 15 s" % wait)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
    words = out.split()
    assert words[:1] == ["KeyboardInterrupt"], (out, err[-2000:])
    return float(words[1]) - sent


def main():
    if not os.path.exists(SHIM):
        print("no shim built at", SHIM)
        print("0 passed, 1 failed")
        return 1
    passed = failed = 0
    for wait in ("join", "lock", "event", "queue"):
        name = "cpython_sigint_in_" + wait
        try:
            native = interrupt_delay(wait, False)
            green = interrupt_delay(wait, True)
            print("   %s: KeyboardInterrupt after %.3f s greened, %.3f s natively"
                  % (wait, green, native))
            assert green < LIMIT_S, "greened: %.3f s" % green
            passed += 1
            print("PASS", name)
        except Exception as e:  # report and go on with the next case
            failed += 1
            print("FAIL %s: %s" % (name, e))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
