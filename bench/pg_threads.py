#!/usr/bin/python3
"""pg_threads.py - CPython threads making point queries with psycopg2.

Usage: pg_threads.py SOCKDIR PORT [THREADS] [QUERIES]
(defaults 100 threads, 200 queries each).  Each thread opens its own
connection to the PostgreSQL whose socket is in SOCKDIR, then selects one
row of table kv by its key, QUERIES times; prints "elapsed S" (wall-clock,
connections open) and "cpu S", and exits 1 if an answer was wrong.
"""
import sys
import threading

import psycopg2

from timed import Timed


def main():
    sockdir, port = sys.argv[1], int(sys.argv[2])
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    queries = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    conns = [psycopg2.connect(host=sockdir, port=port, dbname="postgres", user="postgres")
             for _ in range(threads)]
    wrong = []
    start = threading.Barrier(threads + 1)

    def work(i):
        cur = conns[i].cursor()
        start.wait()
        for q in range(queries):
            k = (i * queries + q) % 1000
            cur.execute("SELECT v FROM kv WHERE k = %s", (k,))
            if cur.fetchone()[0] != k * 7:
                wrong.append(k)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    with Timed() as timed:
        start.wait()
        for t in ts:
            t.join()
    for c in conns:
        c.close()
    if wrong:
        print("wrong answers: %d" % len(wrong), flush=True)
        return 1
    timed.report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
