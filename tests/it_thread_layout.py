#!/usr/bin/env python3
"""The thread module's glibc layout check (preload/thread_layout.c).  On this
glibc the check passes: GREEN_DEBUG says so, greend's hello lists "thread"
and carries no warning.  Against a "glibc" whose pthread_mutex_t means
something else (build/tests/helpers/libfake_layout.so, preloaded after the
shim, moves a mutex's type bits), the module is left unpatched: one line on
stderr names the reason, hello leaves "thread" out and says why in
"warnings", and the threaded program still runs as it does natively."""
import json
import os
import select
import socket
import subprocess
import sys

B = os.environ.get("B", os.path.abspath("build"))
SHIM = os.path.join(B, "libgreen-preload.so")
FAKE = os.path.join(B, "tests", "helpers", "libfake_layout.so")
PROG = os.path.join(B, "tests", "helpers", "conf_thread_sleepers")

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)))


def run(extra_preload, debug, greened):
    """Run PROG under the shim with a channel to read hello from; returns
    (exit status, stdout, stderr, hello message or None)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    env = dict(os.environ)
    preload = [SHIM] + extra_preload
    asan = os.environ.get("GREEN_ASAN_RUNTIME")
    if asan:
        preload.insert(0, asan)
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1:verify_asan_link_order=0"
    env["LD_PRELOAD"] = ":".join(preload)
    env["GREEN_PATCH"] = "all"
    env["GREEN_CONTROL_FD"] = str(theirs.fileno())
    env.pop("GREEN_DEBUG", None)
    env.pop("GREEN_CONFORMANCE", None)
    if debug:
        env["GREEN_DEBUG"] = "1"
    if greened:
        env["GREEN_CONFORMANCE"] = "green"
    p = subprocess.Popen([PROG], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, pass_fds=[theirs.fileno()])
    theirs.close()
    hello = None
    try:
        if select.select([ours], [], [], 20)[0]:
            data = ours.recv(65536)
            if data:
                hello = json.loads(data.decode())
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, out, err, hello
    finally:
        ours.close()
    return p.returncode, out, err, hello


def main():
    for path in (SHIM, FAKE, PROG):
        if not os.path.exists(path):
            print("missing", path)
            print("0 passed, 1 failed")
            return 1
    native = subprocess.run([PROG], capture_output=True, text=True, timeout=60)
    visible_native = [l for l in native.stdout.splitlines() if not l.startswith("#")]

    rc, out, err, hello = run([], debug=True, greened=True)
    check("this glibc: the program runs greened", rc == 0, (rc, out, err))
    check("this glibc: GREEN_DEBUG says the layouts are as assumed",
          "layouts are as the module assumes" in err, err)
    check("this glibc: no unpatched line", "left unpatched" not in err, err)
    check("this glibc: hello lists thread",
          hello is not None and "thread" in hello.get("patched", []), hello)
    check("this glibc: hello has no warnings",
          hello is not None and not hello.get("warnings"), hello)

    rc, out, err, hello = run([FAKE], debug=False, greened=False)
    lines = [l for l in err.splitlines() if "left unpatched" in l]
    check("other layout: the program runs as natively",
          rc == 0 and [l for l in out.splitlines() if not l.startswith("#")] == visible_native,
          (rc, out, native.stdout, err))
    check("other layout: one stderr line naming the reason",
          len(lines) == 1 and "thread module" in lines[0] and "pthread_mutex_t" in lines[0],
          err)
    check("other layout: hello leaves thread out",
          hello is not None and "thread" not in hello.get("patched", [])
          and "socket" in hello.get("patched", []), hello)
    warnings = hello.get("warnings", []) if hello else []
    check("other layout: hello warns why",
          len(warnings) == 1 and warnings[0].startswith("thread: left unpatched")
          and "pthread_mutex_t" in warnings[0], hello)

    failed = results.count(False)
    print("%d passed, %d failed" % (len(results) - failed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
