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


if __name__ == "__main__":
    run_tests(globals())
