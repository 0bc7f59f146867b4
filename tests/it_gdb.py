#!/usr/bin/env python3
"""tools/green-gdb.py against a greened program: gdb runs
build/tests/helpers/gdb_parked under the shim, which stops itself once three
green threads are parked reading a pipe; `green list` must show them waiting
on the pipe's fd and `green bt` must walk each one from its park back to
block_in_read, and the program must then run on to a clean exit (the registers
`green bt` borrowed are put back)."""
import os
import re
import shutil
import subprocess
import sys

B = os.environ.get("B", os.path.abspath("build"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tools", "green-gdb.py")
PROG = os.path.join(B, "tests", "helpers", "gdb_parked")
SHIM = os.path.join(B, "libgreen-preload.so")


def main():
    if not shutil.which("gdb"):
        print("gdb is not installed (apt-get install gdb)")
        print("0 passed, 1 failed")
        return 1
    preload = SHIM
    if os.environ.get("GREEN_ASAN_RUNTIME"):
        preload = os.environ["GREEN_ASAN_RUNTIME"] + ":" + SHIM
    cmds = [
        "set pagination off",
        "set confirm off",
        "set startup-with-shell off",
        "set environment LD_PRELOAD=" + preload,
        "set environment GREEN_PATCH=all",
        "set environment ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0",
        "source " + SCRIPT,
        "run",
        "echo ==LIST==\\n",
        "green list",
        "echo ==BT==\\n",
        "green bt",
        "echo ==CONT==\\n",
        "continue",
    ]
    args = ["gdb", "-nx", "-q", "-batch"]
    for c in cmds:
        args += ["-ex", c]
    args.append(PROG)
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=120,
                           start_new_session=True)
    except subprocess.TimeoutExpired:
        print("gdb did not finish in 120 s")
        print("0 passed, 1 failed")
        return 1
    out = p.stdout
    checks = []
    try:
        listing = out.split("==LIST==")[1].split("==BT==")[0]
        bts = out.split("==BT==")[1].split("==CONT==")[0]
        after = out.split("==CONT==")[1]
    except IndexError:
        listing = bts = after = ""
    waiting = re.findall(r"greenlet \d+ waiting on fd (\d+)", listing)
    checks.append(("green list shows 3 greenlets waiting on one fd",
                   len(waiting) == 3 and len(set(waiting)) == 1))
    checks.append(("green list shows the main greenlet running",
                   re.search(r"running.*\[main\]", listing) is not None))
    checks.append(("green bt walks each parked greenlet from its park to block_in_read",
                   bts.count("block_in_read") == 3 and bts.count("green__park") == 3))
    checks.append(("the program runs on and exits cleanly",
                   "done" in after and "exited normally" in after))
    passed = sum(1 for _, ok in checks if ok)
    for name, ok in checks:
        print(("PASS " if ok else "FAIL ") + name)
    if passed != len(checks):
        print("--- gdb stdout\n" + out[-6000:])
        print("--- gdb stderr\n" + p.stderr[-3000:])
    print("%d passed, %d failed" % (passed, len(checks) - passed))
    return 0 if passed == len(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
