"""timed.py - how the bench/*_threads.py programs report what they measured.

run.sh reads the two lines: "cpu S" (the process's CPU time: on a loaded
machine one OS thread gets a smaller share than many, so wall-clock time
alone would blame the shim for the load) and "elapsed S" (wall-clock).
"""
import time


class Timed:
    """with Timed(): ... measures the block and prints both lines."""

    def __enter__(self):
        self.t0 = time.monotonic()
        self.c0 = time.process_time()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.monotonic() - self.t0
        self.cpu = time.process_time() - self.c0
        return False

    def report(self):
        print("cpu %.3f" % self.cpu, flush=True)
        print("elapsed %.3f" % self.elapsed, flush=True)
