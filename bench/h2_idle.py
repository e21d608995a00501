#!/usr/bin/python3
"""Memory per idle HTTP/2 connection (bench/h2_compare.sh).

    h2_idle.py PORT N PID [--request] [--wait=SECONDS]

Opens N connections to 127.0.0.1:PORT, on each sends the client connection
preface and an empty SETTINGS frame (prior knowledge, clear text), reads
until the server's own SETTINGS frame has come, acknowledges it, and then
leaves the connection idle. With --request, each connection first makes
one GET / with the fields a browser sends (encoded by python3-hpack, which
indexes them into the server's HPACK table, as browsers do, within the
table size the server's SETTINGS allow) and reads its whole response: an
idle browser tab's connection. Once all N are established (or the time
bound is reached), waits --wait seconds (default 2.5: longer than Gust's
1 s http2_hibernate_after, so that its idle connections have given back
their sessions; the same wait for every server) and prints the growth of
PID's resident size
(VmRSS in /proc/PID/status) since before the first connection, divided by
the number of connections established, in bytes, then:
    idle_bytes=B connections=C
Closes them all before exiting. Bounded: at most TIMEOUT (120 s) in all.

Without --request no request is sent: this is the cost of an open HTTP/2
session (its nghttp2 or own state, buffers); with it, also what one
request left behind (HPACK tables, streams' leftovers).
"""
import os
import resource
import selectors
import socket
import struct
import sys
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS, ACK, END_STREAM, END_HEADERS = 0x0, 0x1, 0x4, 0x1, 0x1, 0x4
REQUEST = [(":method", "GET"), (":scheme", "http"), (":path", "/"),
           (":authority", "127.0.0.1"),
           ("user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) "
                          "Gecko/20100101 Firefox/128.0"),
           ("accept", "text/html,application/xhtml+xml,application/xml;"
                      "q=0.9,*/*;q=0.8"),
           ("accept-language", "en-US,en;q=0.5"),
           ("accept-encoding", "gzip, deflate, br")]
TIMEOUT = 120.0


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Conn:
    def __init__(self, sock, request):
        self.sock = sock
        self.buf = b""
        self.settled = False  # the server's SETTINGS seen and acknowledged
        self.request = request
        self.answered = not request  # the response to stream 1 has ended

    def feed(self, data):
        """Parses the frames received so far; acknowledges the server's
        SETTINGS. Returns False if the server closed or broke the
        connection."""
        self.buf += data
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + length:
                break
            ftype, flags = self.buf[3], self.buf[4]
            sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload = self.buf[9:9 + length]
            self.buf = self.buf[9 + length:]
            if ftype == SETTINGS and not flags & ACK and not self.settled:
                out = frame(SETTINGS, ACK, 0)
                if self.request:
                    enc = hpack.Encoder()
                    for i in range(0, len(payload) - 5, 6):
                        k = int.from_bytes(payload[i:i + 2], "big")
                        if k == 1:  # SETTINGS_HEADER_TABLE_SIZE
                            enc.header_table_size = int.from_bytes(
                                payload[i + 2:i + 6], "big")
                    out += frame(HEADERS, END_STREAM | END_HEADERS, 1,
                                 enc.encode(REQUEST))
                self.sock.sendall(out)
                self.settled = True
            elif (ftype in (DATA, HEADERS) and sid == 1 and
                  flags & END_STREAM):
                self.answered = True
        return True


def main():
    port, n, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    request = "--request" in sys.argv[4:]
    wait = 2.5
    for a in sys.argv[4:]:
        if a.startswith("--wait="):
            wait = float(a.split("=", 1)[1])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1000), hard))
    before = rss_kib(pid)
    deadline = time.monotonic() + TIMEOUT
    sel = selectors.DefaultSelector()
    conns = []
    broken = 0

    def pump(wait):
        nonlocal broken
        for key, _ in sel.select(wait):
            c = key.data
            try:
                data = c.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(c.sock)
                c.sock.close()
                conns.remove(c)
                broken += 1
                continue
            c.feed(data)
            if c.settled and c.answered and not c.buf:
                # Established: nothing more to read until it is closed.
                sel.unregister(c.sock)

    hello = PREFACE + frame(SETTINGS, 0, 0)
    for i in range(n):
        if time.monotonic() > deadline:
            break
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(hello)
        s.setblocking(False)
        c = Conn(s, request)
        conns.append(c)
        sel.register(s, selectors.EVENT_READ, c)
        if i % 200 == 199:
            pump(0)
    while (any(not (c.settled and c.answered) for c in conns) and
           time.monotonic() < deadline):
        pump(0.5)
    settled = sum(c.settled and c.answered for c in conns)
    time.sleep(wait)
    after = rss_kib(pid)
    alive = os.path.exists(f"/proc/{pid}")
    per = (after - before) * 1024 / max(settled, 1)
    print(f"idle_bytes={per:.0f} connections={settled} broken={broken} "
          f"server_alive={int(alive)}")
    for c in conns:
        c.sock.close()
    return 0 if settled == n else 1


if __name__ == "__main__":
    sys.exit(main())
