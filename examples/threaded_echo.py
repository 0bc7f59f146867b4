#!/usr/bin/python3
"""threaded_echo.py - TCP echo server on socketserver.ThreadingTCPServer, one
OS thread per connection: an unmodified CPython program for the preload shim
to green. Prints "listening on ADDR:PORT" once it is listening.

usage: threaded_echo.py [PORT] [-a ADDR]     (PORT 0, the default, = pick one)
"""

import argparse
import resource
import signal
import socket
import socketserver
import sys


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionError:
                return
            if not data:
                return
            try:
                sock.sendall(data)
            except ConnectionError:
                return


class EchoServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    # The default of 5 drops connections when hundreds arrive at once.
    request_queue_size = 4096


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def on_stop(signum, frame):
    sys.exit(0)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("port", nargs="?", type=int, default=0,
                   help="port to listen on (default 0: let the kernel pick)")
    p.add_argument("-a", "--addr", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1)")
    args = p.parse_args()

    raise_nofile()
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    family = socket.AF_INET6 if ":" in args.addr else socket.AF_INET
    EchoServer.address_family = family
    with EchoServer((args.addr, args.port), EchoHandler) as server:
        host, port = server.server_address[:2]
        if family == socket.AF_INET6:
            host = "[%s]" % host
        print("listening on %s:%d" % (host, port), flush=True)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
