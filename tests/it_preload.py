#!/usr/bin/env python3
"""Conformance of the preload shim: every build/tests/helpers/conf_* program
runs natively and under libgreen-preload.so (GREEN_PATCH=all, and the
modules a program names on its first output line is not needed: all is
used), and both runs must exit alike with identical stdout.  A program may
print lines starting with '#' (ignored in the comparison) for details that
legitimately differ, such as timings.  Under the shim the env var
GREEN_CONFORMANCE=green is set so a program may also check things only true
when greened (e.g. the OS thread count)."""
import os
import signal
import subprocess
import sys

B = os.environ.get("B", os.path.abspath("build"))
SHIM = os.path.join(B, "libgreen-preload.so")
HELPERS = os.path.join(B, "tests", "helpers")


def run(path, greened):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if greened:
        preload = SHIM
        env["GREEN_PATCH"] = "all"
        env["GREEN_CONFORMANCE"] = "green"
        asan = os.environ.get("GREEN_ASAN_RUNTIME")
        if asan:  # an ASan-built shim needs the runtime loaded first
            preload = asan + ":" + SHIM
            # No leak checks: LeakSanitizer finds a thread's stack by its OS
            # thread id, which all the green threads of a hub share, so it
            # scans one of their stacks and would report what only the
            # others point to.
            env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1:verify_asan_link_order=0"
        env["LD_PRELOAD"] = preload
    p = subprocess.Popen([path], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        # the whole session: a program that forks may leave a child behind
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, _ = p.communicate(timeout=10)
        return None, out or "", "timeout"
    return p.returncode, out, err


def visible(out):
    return [l for l in out.splitlines() if not l.startswith("#")]


def main():
    if not os.path.exists(SHIM):
        print("no shim built at", SHIM)
        print("0 passed, 1 failed")
        return 1
    progs = sorted(f for f in os.listdir(HELPERS) if f.startswith("conf_")) \
        if os.path.isdir(HELPERS) else []
    passed = failed = 0
    for name in progs:
        path = os.path.join(HELPERS, name)
        rc_n, out_n, err_n = run(path, False)
        rc_g, out_g, err_g = run(path, True)
        ok = rc_n == 0 and rc_g == rc_n and visible(out_n) == visible(out_g)
        if ok:
            passed += 1
            print("PASS", name)
        else:
            failed += 1
            print("FAIL", name, "native rc=%s green rc=%s" % (rc_n, rc_g))
            print("--- native stdout\n" + out_n + "--- green stdout\n" + out_g)
            print("--- native stderr\n" + str(err_n)[-2000:])
            print("--- green stderr\n" + str(err_g)[-2000:])
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
