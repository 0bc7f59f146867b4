#!/usr/bin/python3
"""queue_threads.py - CPython threads handing items through one queue.Queue.

Usage: queue_threads.py [ITEMS] [PRODUCERS] [CONSUMERS]
(defaults 200000, 10, 10).  The producers put ITEMS items in all, the
consumers take them until each gets its end marker; prints "elapsed S"
(wall-clock seconds from the first thread's start to the last one's end)
and "cpu S" (bench/timed.py) and exits 1 if any item was lost or seen twice.
"""
import queue
import sys
import threading

from timed import Timed


def main():
    items = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    producers = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    consumers = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    q = queue.Queue(maxsize=1000)
    sums = [0] * consumers
    counts = [0] * consumers
    per = items // producers

    def produce(p):
        for i in range(p * per, (p + 1) * per):
            q.put(i)

    def consume(c):
        s = n = 0
        while True:
            v = q.get()
            if v is None:
                break
            s += v
            n += 1
        sums[c], counts[c] = s, n

    with Timed() as timed:
        ps = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
        cs = [threading.Thread(target=consume, args=(c,)) for c in range(consumers)]
        for t in ps + cs:
            t.start()
        for t in ps:
            t.join()
        for _ in cs:
            q.put(None)
        for t in cs:
            t.join()
    total = per * producers
    if sum(counts) != total or sum(sums) != total * (total - 1) // 2:
        print("lost or doubled items: %d of %d" % (sum(counts), total), flush=True)
        return 1
    timed.report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
