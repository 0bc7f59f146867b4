#!/usr/bin/python3
"""sleepers.py - start N threads that each time.sleep(S), join them, and print
how long it took and the most OS threads the process had, as one JSON line.

An unmodified CPython program: natively it needs N+1 OS threads; under the
preload shim with the thread and time modules patched the threads become
greenlets and the count stays at a handful while it still takes about S
seconds.

usage: sleepers.py [N] [S] [--forever] [--interval SECONDS]
"""

import argparse
import json
import signal
import sys
import threading
import time

SAMPLE_PERIOD_S = 0.02


def os_threads():
    """The kernel's count of this process's threads, or -1 if unreadable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def one_round(n, seconds):
    # Daemon threads, so that SIGTERM ends the program without waiting.
    threads = [threading.Thread(target=time.sleep, args=(seconds,),
                                daemon=True)
               for _ in range(n)]
    start = time.monotonic()
    for t in threads:
        t.start()
    most = os_threads()
    # Sample while waiting: the peak is while every sleeper is alive.
    while any(t.is_alive() for t in threads):
        most = max(most, os_threads())
        time.sleep(SAMPLE_PERIOD_S)
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    return {"threads": n, "sleep_s": seconds,
            "elapsed_s": round(elapsed, 3), "max_os_threads": most}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("n", nargs="?", type=int, default=500,
                   help="threads to start (default 500)")
    p.add_argument("seconds", nargs="?", type=float, default=1.0,
                   help="how long each sleeps (default 1)")
    p.add_argument("--forever", action="store_true",
                   help="repeat every --interval seconds until killed")
    p.add_argument("--interval", type=float, default=5.0,
                   help="pause between rounds with --forever (default 5)")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    if args.n < 0 or args.seconds < 0 or args.interval < 0:
        p.error("counts and times must not be negative")

    while True:
        print(json.dumps(one_round(args.n, args.seconds)), flush=True)
        if not args.forever:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
