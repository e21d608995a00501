"""HTTP/2 limits and hostile clients (issue 15), frame by frame: a client
written on raw sockets (h2_raw.py: frames built byte by byte, header
blocks from python3-hpack or by hand) against Gust's examples in clear
text with prior knowledge (the connection preface).

What is checked, with the RFC 9113 rule each case follows:
  - SETTINGS advertise 100 concurrent streams; the 101st open stream is
    refused (RST_STREAM REFUSED_STREAM, section 5.1.2) and the connection
    goes on serving the other 100.
  - a header list over max_header_size (or max_header_count fields) is
    refused (431, or the stream reset) while one just under is served;
    the connection stays usable.
  - rapid reset (CVE-2023-44487): streams opened and reset in a tight loop
    get GOAWAY long before the loop's bound.
  - CONTINUATION flood (2024): a header block that never ends is a
    connection error, and memory stays bounded.
  - HPACK bomb: one large field in the dynamic table referenced tens of
    thousands of times is refused, and memory stays bounded.
  - SETTINGS and PING floods from a client that reads none of the ACKs:
    the connection is closed, memory stays bounded.
  - zero-window stall: a client that opens no window for the response is
    closed after the server's write timeout (hello_http --write_timeout).
  - idle connection timeout (hello_http --idle_connection_timeout).
  - malformed input: a bad preface, frames on stream 0 that need a stream
    and the reverse, frames on idle and closed streams, bad lengths,
    invalid pseudo-headers, uppercase names, connection-specific fields:
    the error section 5.4 and 8 asks for (connection errors: GOAWAY with
    the code, then close; malformed requests: a stream error, never the
    handler's 200, the connection still usable); and what is not an error
    is not treated as one (frames on a just-closed stream, PRIORITY on an
    idle one, unknown settings and frame types, padding, TE: trailers, a
    client's GOAWAY).
  - Upgrade: h2c refused (no or two HTTP2-Settings, a body) is served over
    HTTP/1.1; bad HTTP2-Settings and a bad preface after 101 are errors.
After every case the server process is alive and answers a fresh
connection, and at the end it stops cleanly (exit 0, no sanitizer report).

RSS is read from /proc/PID/status, as test_http_hardening.py does, with
AddressSanitizer's quarantine off so that freed memory is not counted.

To check this harness itself against another HTTP/2 server, run it with
GUST_H2_REFERENCE=nghttpd (or h2o): the same frames go to that server
instead of Gust. Against nghttpd (nghttp2-server) only the cases whose
rule is Gust's own fail (header list size, write and idle timeouts, and
Upgrade: h2c, since nghttpd speaks no HTTP/1.1 at all);
Debian's h2o 2.2 fails many more (it has no rapid-reset limit, takes a
CONTINUATION flood and some malformed requests, makes stream errors
connection errors), which shows the cases can fail.
"""
import os
import pwd
import random
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import HOST, pid_alive, wait_for
from h2_raw import (ACK, CANCEL, COMPRESSION_ERROR, CONTINUATION, DATA,
                    ENABLE_PUSH, END_HEADERS, END_STREAM, ENHANCE_YOUR_CALM,
                    HEADER_TABLE_SIZE, MAX_FRAME_SIZE, PADDED, PRIORITY_FLAG,
                    PUSH_PROMISE, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR,
                    GOAWAY, HEADERS, INITIAL_WINDOW_SIZE, INTERNAL_ERROR,
                    MAX_CONCURRENT_STREAMS, NO_ERROR, PING, PREFACE,
                    PRIORITY, PROTOCOL_ERROR, REFUSED_STREAM, RST_STREAM,
                    SETTINGS, STREAM_CLOSED, H2Conn,
                    error_name, frame, goaway_frame, h2_get, hpack_indexed, hpack_literal,
                    ping_frame, request_block, rst_frame, settings_frame,
                    window_update_frame)

REFERENCE = os.environ.get("GUST_H2_REFERENCE")
ASAN_ENV = dict(os.environ,
                ASAN_OPTIONS="detect_leaks=1:quarantine_size_mb=0:"
                             "thread_local_quarantine_size_kb=0")
# What one hostile connection may add to the server's peak RSS. Each
# attack below would need several times this if the server kept what it
# was sent (the bombs decode to 256 MB, the floods queue millions of ACKs).
RSS_GROWTH_BOUND_KB = 16 * 1024
# Gust's defaults (http_server.h): head size 64 KiB, 256 fields.
MAX_HEADER_SIZE = 64 * 1024
MAX_HEADER_COUNT = 256
WRITE_TIMEOUT = 2
IDLE_TIMEOUT = 2


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


class Target:
    """The server under test: pid, port, and its Server (conftest)."""

    def __init__(self, server, port, name, tls=False):
        self.server, self.port, self.name = server, port, name
        self.pid = server.pid
        self.tls = tls  # HTTP/2 by ALPN over TLS (hello_https)

    def conn(self, **kw):
        """A new client connection to it (H2Conn)."""
        return H2Conn(self.port, tls=self.tls, **kw)

    def rss_kb(self):
        return status_kb(self.pid, "VmRSS")

    def peak_kb(self):
        return status_kb(self.pid, "VmHWM")

    def check_alive(self, what):
        """The process is alive and a fresh connection gets a 200."""
        assert pid_alive(self.pid), (f"server died after {what}:\n"
                                     f"{self.server.log()[-4000:]}")
        status, body = h2_get(self.port, tls=self.tls)
        assert status == 200, (f"after {what}, a fresh connection got "
                               f"{status} {body!r}\n{self.server.log()[-3000:]}")


def _start(spawn, program, port, tmp_path, name, flags):
    if REFERENCE == "nghttpd":
        root = tmp_path / "htdocs"
        root.mkdir(exist_ok=True)
        (root / "index.html").write_text("Hello, world")
        return spawn(["nghttpd", "--no-tls", "-a", HOST, "-d", root,
                      "--echo-upload", port])
    if REFERENCE == "h2o":
        root = tmp_path / "htdocs"
        root.mkdir(exist_ok=True)
        (root / "index.html").write_text("Hello, world")
        conf = tmp_path / "h2o.conf"
        conf.write_text(f"listen:\n  host: {HOST}\n  port: {port}\n"
                        f"num-threads: 1\nuser: {pwd.getpwuid(os.getuid()).pw_name}\n"
                        f"hosts:\n  default:\n    paths:\n"
                        f"      /:\n        file.dir: {root}\n")
        return spawn([shutil.which("h2o") or "/usr/bin/h2o", "-c", conf])
    if name == "hello_https":
        cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
        if not cert.exists():
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                 "-keyout", key, "-out", cert, "-subj", "/CN=localhost"],
                check=True, timeout=60, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
        flags = [f"--cert={cert}", f"--key={key}", *flags]
    return spawn([program(name), f"--port={port}", *flags], env=ASAN_ENV)


@pytest.fixture
def start(spawn, program, free_port, tmp_path):
    """start(name="hello_http", *flags) -> Target, serving HTTP/2 in clear
    text; at the end of the test it must stop cleanly."""
    targets = []

    def run(name="hello_http", *flags):
        port = free_port if not targets else _port()
        server = _start(spawn, program, port, tmp_path, name,
                        ["--logging=warning", *flags])
        tls = name == "hello_https" and not REFERENCE
        target = Target(server, port, name, tls)
        ok = wait_for(lambda: _connectable(port) or
                      server.proc.poll() is not None, 20)
        assert ok and server.proc.poll() is None, server.log()
        status, body = h2_get(port, tls=tls)
        assert status == 200, (f"{name} does not answer HTTP/2 by prior "
                               f"knowledge: {body!r}\n{server.log()}")
        targets.append(target)
        return target

    yield run
    for t in targets:
        if REFERENCE:
            continue
        status = t.server.stop(signal.SIGTERM)
        log = t.server.log()
        assert status == 0, log[-4000:]
        assert "Sanitizer" not in log, log[-4000:]


def _port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _connectable(port):
    try:
        socket.create_connection((HOST, port), timeout=2).close()
        return True
    except OSError:
        return False


def _warm_up(target, count=50):
    """Requests first, so that pools and caches are part of the base RSS."""
    with target.conn() as c:
        c.handshake()
        for _ in range(count):
            r = c.response(c.request("GET", "/"))
            assert r.status == 200, r


def _post_path(target):
    return "/echo" if target.name == "hello_http" else "/"


# ---- max concurrent streams ----------------------------------------------

def _open_100(c, t):
    """Opens 100 streams whose request bodies have not ended (so that they
    stay open), checks none was refused; returns their ids."""
    sids = [c.request("POST", _post_path(t), end_stream=False)
            for _ in range(100)]
    c.pump(lambda: False, 0.5)
    assert all(c.streams[s].reset is None for s in sids), \
        [c.streams[s] for s in sids if c.streams[s].reset is not None]
    assert c.goaway is None, c.goaway
    return sids


def _finish_100(c, t, sids):
    """Ends the 100 bodies; each stream gets its answer."""
    for s in sids:
        c.send_frame(DATA, END_STREAM, s, b"body of %d" % s)
    c.pump(lambda: all(c.streams[s].done for s in sids), 30)
    done = [c.streams[s] for s in sids]
    assert all(s.ended and s.status is not None for s in done), \
        [s for s in done if not s.ended][:5]
    if t.name == "hello_http" and not REFERENCE:
        assert all(bytes(s.body) == b"body of %d" % s.id for s in done)


@pytest.mark.parametrize("name", ["hello_http", "hello", "hello_https"])
def test_101st_concurrent_stream_is_refused(start, name):
    """A client that opens the 101st stream before it has acknowledged the
    server's SETTINGS (the race RFC 9113 5.1.2 has REFUSED_STREAM for):
    that stream is refused, the 100 others go on."""
    t = start(name)
    with t.conn(auto_ack=False) as c:
        settings = c.handshake()
        assert settings is not None, c.garbage
        assert settings.get(MAX_CONCURRENT_STREAMS) == 100, settings
        sids = _open_100(c, t)
        extra = c.request("POST", _post_path(t), end_stream=False)
        r = c.response(extra, 10)
        assert r.reset == REFUSED_STREAM, (r, c.goaway)
        assert c.goaway is None and not c.closed, c.goaway
        c.send(settings_frame(ack=True))
        c.auto_ack = True
        _finish_100(c, t, sids)
        # A stream opened now, with the others closed, is served.
        r = c.response(c.request("GET", "/"))
        assert r.status == 200, r
    t.check_alive("101 concurrent streams")


def test_101st_stream_after_settings_ack_is_refused(start):
    """The same once the client has acknowledged the limit: the stream is
    refused (REFUSED_STREAM or PROTOCOL_ERROR, 5.1.2) and the others are
    answered, or, as 5.4.1 allows, it is a connection error: GOAWAY
    PROTOCOL_ERROR naming the 100th stream as the last one, then close."""
    t = start("hello_http")
    with t.conn() as c:
        c.handshake()
        c.pump(lambda: c.settings_acks, 5)
        c.response(c.request("GET", "/"))  # the ACK has surely arrived
        sids = _open_100(c, t)
        extra = c.request("POST", _post_path(t), end_stream=False)
        c.pump(lambda: c.streams[extra].done or c.goaway or c.closed, 10)
        r = c.streams[extra]
        if c.goaway is None:
            assert r.reset in (REFUSED_STREAM, PROTOCOL_ERROR), r
            _finish_100(c, t, sids)
        else:
            assert c.goaway.error_code == PROTOCOL_ERROR, c.goaway
            assert c.goaway.last_stream_id == sids[-1], c.goaway
            assert r.status is None, r
            assert c.wait_closed(10)
    t.check_alive("101 concurrent streams after the ACK")


# ---- header list size ----------------------------------------------------

@pytest.mark.parametrize("name", ["hello_http", "hello", "web_testapp"])
def test_header_list_over_the_limit_is_refused(start, name):
    t = start(name)
    with t.conn() as c:
        c.handshake()
        # Fields of 4000 bytes: 60% of the 64 KiB limit is served...
        field = 4000 + 10 + 32  # value, name, and RFC 9113's 32 per field
        under = [(f"x-under-{i:02d}", "u" * 4000)
                 for i in range(MAX_HEADER_SIZE * 6 // 10 // field)]
        r = c.response(c.request("GET", "/", extra=under))
        assert r.status == 200, r
        # ...125% is not: 431, or the stream reset. The block spans
        # HEADERS and CONTINUATION frames (16 KB frames).
        over = [(f"x-over-{i:02d}", "o" * 4000)
                for i in range(MAX_HEADER_SIZE * 5 // 4 // field + 1)]
        r = c.response(c.request("GET", "/", extra=over))
        assert r.done, r
        assert r.status == 431 or (r.status is None and r.reset is not None), r
        assert not c.closed, c.goaway
        # Too many small fields: the same answer.
        many = [(f"x-{i}", "v") for i in range(MAX_HEADER_COUNT + 10)]
        r = c.response(c.request("GET", "/", extra=many))
        assert r.done, r
        assert r.status == 431 or (r.status is None and r.reset is not None), r
        # The connection is still usable.
        r = c.response(c.request("GET", "/"))
        assert r.status == 200, (r, c.goaway)
    t.check_alive("oversized header lists")


# ---- rapid reset (CVE-2023-44487) ----------------------------------------

RAPID_RESET_STREAMS = 20000
RAPID_RESET_SECONDS = 15


@pytest.mark.parametrize("name", ["hello_http", "hello", "web_testapp",
                                  "hello_https"])
def test_rapid_reset_gets_goaway(start, name):
    t = start(name)
    _warm_up(t)
    base = t.rss_kb()
    with t.conn() as c:
        c.handshake()
        opened = 0
        deadline = time.monotonic() + RAPID_RESET_SECONDS
        block = request_block("GET", "/")
        while (opened < RAPID_RESET_STREAMS and time.monotonic() < deadline
               and c.goaway is None and not c.closed):
            batch = []
            for _ in range(100):
                sid = c.new_stream_id()
                batch.append(frame(HEADERS, END_HEADERS | END_STREAM, sid,
                                   block))
                batch.append(rst_frame(sid, CANCEL))
            # A PING after each batch, and its ACK awaited: the count of
            # streams opened is then what the server has processed, not
            # what sits in socket buffers.
            acks = c.ping_acks
            if not c.send(b"".join(batch) + ping_frame()):
                break
            opened += 100
            c.pump(lambda: c.ping_acks > acks or c.goaway or c.closed, 5)
        c.pump(lambda: c.goaway is not None or c.closed, 5)
        # GOAWAY, or the connection closed: a GOAWAY sent while this
        # client's frames were still arriving can be lost to the TCP reset
        # that closing a socket with unread input causes.
        assert c.goaway is not None or c.closed, (
            f"no GOAWAY after {opened} streams opened and reset")
        if c.goaway is not None:
            assert c.goaway.error_code in (ENHANCE_YOUR_CALM, PROTOCOL_ERROR,
                                           INTERNAL_ERROR), c.goaway
        assert opened < RAPID_RESET_STREAMS, opened
        answered = sum(1 for s in c.streams.values() if s.status)
        assert answered < opened, (answered, opened)
        assert c.wait_closed(10), "the connection stayed open after GOAWAY"
    assert t.peak_kb() - base < RSS_GROWTH_BOUND_KB, (base, t.peak_kb())
    t.check_alive("rapid reset")


def test_requests_then_cancel_at_a_human_rate_are_not_punished(start):
    """The bound is on a flood, not on cancelling: a browser that opens a
    few streams and cancels some keeps its connection."""
    t = start("hello_http")
    with t.conn() as c:
        c.handshake()
        for _ in range(20):
            sid = c.request("POST", "/echo", end_stream=False)
            c.send(rst_frame(sid, CANCEL))
            r = c.response(c.request("GET", "/"))
            assert r.status == 200, (r, c.goaway)
        assert c.goaway is None and not c.closed
    t.check_alive("cancelled streams")


# ---- CONTINUATION flood ----------------------------------------------------

# What the flood tries to write: far more than socket buffers hold, so
# that a server which stops it is seen to stop it.
CONTINUATION_BYTES = 64 << 20


@pytest.mark.parametrize("name", ["hello_http", "hello_https"])
@pytest.mark.parametrize("field", [b"", hpack_literal("x-c", "c" * 4000)],
                         ids=["empty", "4KB"])
def test_continuation_flood_is_a_connection_error(start, field, name):
    t = start(name)
    _warm_up(t)
    base = t.rss_kb()
    with t.conn() as c:
        c.handshake()
        c.send(frame(HEADERS, END_STREAM, 1, request_block()))
        sent = 0
        deadline = time.monotonic() + 15
        one = frame(CONTINUATION, 0, 1, field)
        batch = one * (16384 // len(one) + 1)
        while (sent < CONTINUATION_BYTES and time.monotonic() < deadline
               and not c.closed and c.goaway is None):
            if not c.send(batch):
                break
            sent += len(batch)
            c.read(0)
        c.pump(lambda: c.goaway is not None or c.closed, 5)
        assert sent < CONTINUATION_BYTES, \
            f"all {sent} bytes of CONTINUATION frames were taken"
        assert c.goaway is not None or c.closed, sent
        if c.goaway:
            assert c.goaway.error_code != NO_ERROR, c.goaway
        assert c.wait_closed(10)
        assert c.streams.get(1) is None or c.streams[1].status is None
    assert t.peak_kb() - base < RSS_GROWTH_BOUND_KB, (base, t.peak_kb())
    t.check_alive("CONTINUATION flood")


# ---- HPACK bomb ------------------------------------------------------------

@pytest.mark.parametrize("name", ["hello_http", "hello_https"])
def test_hpack_bomb_is_refused_with_bounded_memory(start, name):
    t = start(name)
    _warm_up(t)
    base = t.rss_kb()
    with t.conn() as c:
        settings = c.handshake()
        assert settings is not None
        # One 4 KB field enters the dynamic table (4000 + 6 + 32 bytes of
        # the default 4096) with a request small enough to be served.
        bomb = hpack_literal("x-bomb", "b" * 4000, index=True)
        r = c.response(c.request(block=request_block() + bomb))
        assert r.status == 200, r
        # Then a header block of 65536 one-byte references to it: 256 MB
        # of fields, in HEADERS + 3 CONTINUATION frames of 16 KB.
        refs = hpack_indexed(62) * 16384
        sid = c.new_stream_id()
        c.send(frame(HEADERS, END_STREAM, sid, request_block() + refs[:16000]))
        c.send(frame(CONTINUATION, 0, sid, refs))
        c.send(frame(CONTINUATION, 0, sid, refs))
        c.send(frame(CONTINUATION, END_HEADERS, sid, refs))
        r = c.response(sid, 20)
        assert r.status != 200, r
        assert r.done or c.goaway is not None or c.closed, (r, c.goaway)
        peak = t.peak_kb()
        if not c.closed and c.goaway is None:
            # Refused as a stream: the connection goes on, its table intact.
            r = c.response(c.request("GET", "/"))
            assert r.status == 200, (r, c.goaway)
    assert peak - base < RSS_GROWTH_BOUND_KB, (base, peak)
    t.check_alive("HPACK bomb")


# ---- SETTINGS and PING floods ----------------------------------------------

FLOOD_FRAMES = 1_000_000
FLOOD_SECONDS = 15


@pytest.mark.parametrize("kind", ["settings", "ping"])
def test_flood_without_reading_acks_is_closed(start, kind):
    t = start("hello_http", f"--write_timeout={WRITE_TIMEOUT}")
    _warm_up(t)
    base = t.rss_kb()
    one = settings_frame() if kind == "settings" else ping_frame()
    batch = one * 1000
    with t.conn(rcvbuf=4096) as c:
        c.handshake()
        c.auto_ack = False
        c.sock.settimeout(3)
        sent = 0
        deadline = time.monotonic() + FLOOD_SECONDS
        held_back = False
        try:
            while sent < FLOOD_FRAMES and time.monotonic() < deadline:
                if not c.send(batch):
                    break
                sent += 1000
        except socket.timeout:
            held_back = True  # the server stopped reading this client
        assert sent < FLOOD_FRAMES, "the server took the whole flood"
        # Held back, it delays no one: other connections are served (and
        # their frames are not mixed with the flood's ACKs).
        for _ in range(3):
            assert h2_get(t.port, tls=t.tls) == (200, b"Hello, world")
        # The client still reads nothing; the server must end it on its
        # own (at once, or once its write timeout has passed).
        time.sleep(WRITE_TIMEOUT + 2)
        peak = t.peak_kb()
        assert pid_alive(t.pid)
        c.sock.settimeout(10)
        closed = c.wait_closed(10)
        assert closed, (f"{kind} flood: {sent} frames sent, held back "
                        f"{held_back}, connection still open; GOAWAY "
                        f"{c.goaway}")
    assert peak - base < RSS_GROWTH_BOUND_KB, (base, peak, sent)
    t.check_alive(f"{kind} flood")


# ---- zero-window stall -----------------------------------------------------

def test_zero_window_stall_is_closed_by_the_write_timeout(start):
    t = start("hello_http", f"--write_timeout={WRITE_TIMEOUT}")
    with t.conn(settings={INITIAL_WINDOW_SIZE: 0},
                auto_window=False) as c:
        c.handshake()
        # A 1 MiB answer the client never opens a window for.
        sid = c.request("POST", "/echo", body=b"z" * (1 << 20),
                        end_stream=True)
        assert not c.closed, (c.goaway, c.frames[-5:])
        started = time.monotonic()
        # Meanwhile other connections get whole answers.
        with t.conn() as other:
            other.handshake()
            body = os.urandom(300_000)
            r = other.response(other.request("POST", "/echo", body=body))
            assert r.ended and bytes(r.body) == body, r
        closed = c.wait_closed(WRITE_TIMEOUT + 15)
        waited = time.monotonic() - started
        r = c.streams[sid]
        assert len(r.body) == 0, r
        assert closed, f"still open after {waited:.1f} s: {r} {c.goaway}"
        assert waited >= WRITE_TIMEOUT * 0.5, waited
        if c.goaway:
            assert c.goaway.last_stream_id >= 0
    t.check_alive("a zero-window stall")


def test_window_opened_late_gets_the_whole_answer(start):
    """The same client that does open its window, within the timeout,
    gets every byte: the stall timeout is not a cap on slow readers."""
    t = start("hello_http", f"--write_timeout={WRITE_TIMEOUT + 3}")
    with t.conn(settings={INITIAL_WINDOW_SIZE: 0},
                auto_window=False) as c:
        c.handshake()
        body = os.urandom(200_000)
        sid = c.request("POST", "/echo", body=body)
        c.pump(lambda: c.streams[sid].headers is not None, 10)
        time.sleep(WRITE_TIMEOUT)
        c.auto_window = True
        c.send(window_update_frame(sid, len(body)) +
               window_update_frame(0, len(body)))
        r = c.response(sid, 20)
        assert r.ended and bytes(r.body) == body, (r, c.goaway)
    t.check_alive("a late window")


# ---- idle connection timeout ---------------------------------------------

def test_idle_connection_is_closed_after_the_idle_timeout(start):
    t = start("hello_http", f"--idle_connection_timeout={IDLE_TIMEOUT}")
    with t.conn() as c:
        c.handshake()
        r = c.response(c.request("GET", "/"))
        assert r.status == 200
        started = time.monotonic()
        closed = c.wait_closed(IDLE_TIMEOUT + 15)
        waited = time.monotonic() - started
        assert closed, "idle connection never closed"
        assert waited >= IDLE_TIMEOUT * 0.8, waited
        assert c.goaway is not None, "closed without GOAWAY"
        assert c.goaway.error_code == NO_ERROR, c.goaway
        assert c.goaway.last_stream_id == 1, c.goaway
    t.check_alive("an idle timeout")


def test_busy_connection_is_not_idle(start):
    """A request in progress (an open stream) is not idleness."""
    t = start("hello_http", f"--idle_connection_timeout={IDLE_TIMEOUT}")
    with t.conn() as c:
        c.handshake()
        sid = c.request("POST", "/echo", end_stream=False)
        deadline = time.monotonic() + IDLE_TIMEOUT * 2
        n = 0
        while time.monotonic() < deadline and not c.closed:
            c.send_frame(DATA, 0, sid, b"%d," % n)
            n += 1
            c.read(0.2)
        assert not c.closed, c.goaway
        c.send_frame(DATA, END_STREAM, sid, b"end")
        r = c.response(sid)
        assert r.ended and bytes(r.body).endswith(b"end"), r
    t.check_alive("a slow body")


# ---- malformed input -------------------------------------------------------

def _conn_error(codes):
    return ("connection", codes)


def _block(extra=(), pseudo=None):
    pseudo = pseudo if pseudo is not None else [
        (":method", "GET"), (":scheme", "http"), (":path", "/"),
        (":authority", "localhost")]
    return b"".join(hpack_literal(n, v) for n, v in [*pseudo, *extra])


def _closed_stream_data(c):
    r = c.response(c.request("GET", "/"))
    assert r.status == 200
    c.send_frame(DATA, END_STREAM, r.id, b"late")


def _closed_stream_headers(c):
    first = c.request("GET", "/")
    c.response(c.request("GET", "/"))
    c.response(first)
    c.send_frame(HEADERS, END_HEADERS | END_STREAM, first, _block())


def _interleaved_continuation(c):
    c.send_frame(HEADERS, END_STREAM, 1, _block()[:10])
    c.send(ping_frame())
    c.send_frame(CONTINUATION, END_HEADERS, 1, _block()[10:])


def _content_length_mismatch(c):
    sid = c.new_stream_id()
    c.send_frame(HEADERS, END_HEADERS, sid,
                 _block([("content-length", "10")],
                        [(":method", "POST"), (":scheme", "http"),
                         (":path", "/echo"), (":authority", "localhost")]))
    c.send_frame(DATA, END_STREAM, sid, b"abc")
    return sid


def _window_overflow(c):
    c.send(window_update_frame(0, 0x7FFFFFFF))


# name -> (frames written after the preface and SETTINGS, expected outcome)
CONNECTION_CASES = {
    "data_on_stream_0": (lambda c: c.send_frame(DATA, 0, 0, b"x"),
                         _conn_error((PROTOCOL_ERROR,))),
    "headers_on_stream_0": (
        lambda c: c.send_frame(HEADERS, END_HEADERS | END_STREAM, 0,
                               _block()),
        _conn_error((PROTOCOL_ERROR,))),
    "settings_on_a_stream": (
        lambda c: c.send_frame(SETTINGS, 0, 1, b""),
        _conn_error((PROTOCOL_ERROR,))),
    "settings_bad_length": (
        lambda c: c.send_frame(SETTINGS, 0, 0, b"\x00\x04\x00"),
        _conn_error((FRAME_SIZE_ERROR,))),
    "settings_ack_with_payload": (
        lambda c: c.send_frame(SETTINGS, ACK, 0, b"\x00\x04\x00\x00\x00\x01"),
        _conn_error((FRAME_SIZE_ERROR,))),
    "settings_window_too_large": (
        lambda c: c.send(settings_frame({INITIAL_WINDOW_SIZE: 1 << 31})),
        _conn_error((FLOW_CONTROL_ERROR,))),
    "ping_bad_length": (lambda c: c.send_frame(PING, 0, 0, b"1234567"),
                        _conn_error((FRAME_SIZE_ERROR,))),
    "ping_on_a_stream": (lambda c: c.send_frame(PING, 0, 1, b"12345678"),
                         _conn_error((PROTOCOL_ERROR,))),
    "goaway_on_a_stream": (
        lambda c: c.send_frame(GOAWAY, 0, 1, struct.pack(">LL", 0, 0)),
        _conn_error((PROTOCOL_ERROR,))),
    "window_update_zero_on_connection": (
        lambda c: c.send(window_update_frame(0, 0)),
        _conn_error((PROTOCOL_ERROR,))),
    "window_update_overflow": (_window_overflow,
                               _conn_error((FLOW_CONTROL_ERROR,))),
    "rst_stream_on_stream_0": (
        lambda c: c.send_frame(RST_STREAM, 0, 0, struct.pack(">L", CANCEL)),
        _conn_error((PROTOCOL_ERROR,))),
    "rst_stream_on_idle_stream": (
        lambda c: c.send(rst_frame(7, CANCEL)),
        _conn_error((PROTOCOL_ERROR,))),
    "data_on_idle_stream": (lambda c: c.send_frame(DATA, 0, 5, b"x"),
                            _conn_error((PROTOCOL_ERROR,))),
    "even_stream_id": (
        lambda c: c.send_frame(HEADERS, END_HEADERS | END_STREAM, 2,
                               _block()),
        _conn_error((PROTOCOL_ERROR,))),
    "data_on_closed_stream": (_closed_stream_data,
                              _conn_error((STREAM_CLOSED,))),
    "headers_on_closed_stream": (_closed_stream_headers,
                                 _conn_error((PROTOCOL_ERROR,
                                              STREAM_CLOSED))),
    "continuation_without_headers": (
        lambda c: c.send_frame(CONTINUATION, END_HEADERS, 1, _block()),
        _conn_error((PROTOCOL_ERROR,))),
    "frame_interleaved_in_header_block": (_interleaved_continuation,
                                          _conn_error((PROTOCOL_ERROR,))),
    "frame_over_max_frame_size": (
        lambda c: c.send(frame(HEADERS, END_HEADERS, 1, _block()) +
                         frame(DATA, END_STREAM, 1, b"x" * 16385)),
        _conn_error((FRAME_SIZE_ERROR,))),
    "headers_not_decodable": (
        lambda c: c.send_frame(HEADERS, END_HEADERS | END_STREAM, 1,
                               b"\xff\xff\xff\xff\xff\xff"),
        _conn_error((COMPRESSION_ERROR,))),
    "priority_bad_length": (
        lambda c: c.send_frame(PRIORITY, 0, 1, b"\x00\x00\x00"),
        # a stream error per 6.3; nghttp2 makes it a connection error,
        # which 5.4.1 allows.
        ("either", (FRAME_SIZE_ERROR,))),
    "settings_enable_push_2": (
        lambda c: c.send(settings_frame({ENABLE_PUSH: 2})),
        _conn_error((PROTOCOL_ERROR,))),
    "settings_max_frame_size_too_small": (
        lambda c: c.send(settings_frame({MAX_FRAME_SIZE: 16383})),
        _conn_error((PROTOCOL_ERROR,))),
    "push_promise_from_client": (
        lambda c: c.send(frame(HEADERS, END_HEADERS, 1, _block()) +
                         frame(PUSH_PROMISE, END_HEADERS, 1,
                               struct.pack(">L", 2) + _block())),
        _conn_error((PROTOCOL_ERROR,))),
    "headers_padding_too_long": (
        lambda c: c.send_frame(HEADERS, END_HEADERS | END_STREAM | PADDED, 1,
                               b"\xff" + _block()),
        _conn_error((PROTOCOL_ERROR,))),
    "data_padding_too_long": (
        lambda c: c.send(frame(HEADERS, END_HEADERS, 1, _block()) +
                         frame(DATA, END_STREAM | PADDED, 1, b"\x09abc")),
        _conn_error((PROTOCOL_ERROR,))),
    "headers_depending_on_itself": (
        lambda c: c.send_frame(HEADERS, END_HEADERS | END_STREAM |
                               PRIORITY_FLAG, 1,
                               struct.pack(">LB", 1, 16) + _block()),
        # a stream error per 5.3.1; a connection error is allowed too.
        ("either", (PROTOCOL_ERROR,))),
}


def _tolerated_after_close(c):
    r = c.response(c.request("GET", "/"))
    assert r.status == 200
    # RFC 9113 5.1 and 6.9: RST_STREAM, WINDOW_UPDATE and PRIORITY on a
    # stream that has just closed are not errors.
    c.send(rst_frame(r.id, CANCEL) + window_update_frame(r.id, 100) +
           frame(PRIORITY, 0, r.id, struct.pack(">LB", 0, 16)))


# name -> frames the server must accept without any error; the connection
# then serves a request.
TOLERATED_CASES = {
    "frames_on_a_just_closed_stream": _tolerated_after_close,
    "priority_on_idle_stream": lambda c: c.send_frame(
        PRIORITY, 0, 11, struct.pack(">LB", 0, 16)),
    "unknown_setting": lambda c: c.send(settings_frame({0x7A: 5, 0xFFFF: 0})),
    "settings_change_mid_connection": lambda c: c.send(settings_frame(
        {INITIAL_WINDOW_SIZE: 1 << 20, MAX_FRAME_SIZE: 1 << 20,
         HEADER_TABLE_SIZE: 0})),
    "padded_request": lambda c: c.send(
        frame(HEADERS, END_HEADERS | PADDED, c.new_stream_id(),
              b"\x05" + _block(pseudo=[
                  (":method", "POST"), (":scheme", "http"),
                  (":path", "/echo"), (":authority", "localhost")]) +
              b"\0" * 5) +
        frame(DATA, END_STREAM | PADDED, c.next_stream_id - 2,
              b"\x03abc\0\0\0")),
}


@pytest.mark.parametrize("case", sorted(TOLERATED_CASES))
def test_frames_that_are_not_errors(start, case):
    t = start("hello_http")
    with t.conn() as c:
        assert c.handshake() is not None
        TOLERATED_CASES[case](c)
        c.pump(lambda: c.goaway is not None or c.closed, 1)
        assert c.goaway is None and not c.closed, (case, c.goaway)
        assert not any(s.reset for s in c.streams.values()), \
            (case, c.streams)
        r = c.response(c.request("GET", "/"))
        assert r.status == 200 and bytes(r.body) == b"Hello, world", \
            (case, r, c.goaway)
        if case == "padded_request":
            r = c.streams[1]
            assert r.status == 200 and bytes(r.body) == b"abc", r
    t.check_alive(case)


def test_goaway_from_client_lets_its_open_stream_finish(start):
    """A client's GOAWAY (shutting down) names the last server-initiated
    stream; the requests the client already opened are still answered
    (RFC 9113 6.8), then the server may close, without an error."""
    t = start("hello_http")
    with t.conn() as c:
        c.handshake()
        sid = c.request("POST", "/echo", end_stream=False)
        c.send(goaway_frame(0, NO_ERROR))
        c.send_frame(DATA, END_STREAM, sid, b"after goaway")
        r = c.response(sid)
        assert r.status == 200 and bytes(r.body) == b"after goaway", \
            (r, c.goaway)
        assert c.goaway is None or c.goaway.error_code == NO_ERROR, c.goaway
    t.check_alive("a client GOAWAY")


STREAM_CASES = {
    "unknown_pseudo_header": [(":foo", "bar")],
    "pseudo_header_after_regular": None,
    "missing_path": None,
    "missing_method": None,
    "empty_path": None,
    "duplicate_path": None,
    "status_in_request": [(":status", "200")],
    "uppercase_name": [("X-Upper", "1")],
    "connection_header": [("connection", "keep-alive")],
    "keep_alive_header": [("keep-alive", "timeout=5")],
    "proxy_connection_header": [("proxy-connection", "keep-alive")],
    "transfer_encoding_header": [("transfer-encoding", "chunked")],
    "upgrade_header": [("upgrade", "h2c")],
    "te_not_trailers": [("te", "gzip")],
    "name_with_space": [("x bad", "1")],
    "value_with_newline": [("x-bad", "a\nb")],
}

PSEUDO = [(":method", "GET"), (":scheme", "http"), (":path", "/"),
          (":authority", "localhost")]


def _stream_case_block(name):
    extra = STREAM_CASES[name]
    if extra is not None:
        return _block(extra)
    if name == "pseudo_header_after_regular":
        return _block(pseudo=[PSEUDO[0], ("x-a", "1"), *PSEUDO[1:]])
    if name == "missing_path":
        return _block(pseudo=[p for p in PSEUDO if p[0] != ":path"])
    if name == "missing_method":
        return _block(pseudo=[p for p in PSEUDO if p[0] != ":method"])
    if name == "empty_path":
        return _block(pseudo=[(":path", "") if p[0] == ":path" else p
                              for p in PSEUDO])
    if name == "duplicate_path":
        return _block(pseudo=[*PSEUDO, (":path", "/other")])
    raise KeyError(name)


@pytest.mark.parametrize("name", ["hello_http", "hello_https"])
@pytest.mark.parametrize("case", sorted(CONNECTION_CASES))
def test_connection_error(start, case, name):
    t = start(name)
    send, (kind, codes) = CONNECTION_CASES[case]
    with t.conn() as c:
        assert c.handshake() is not None
        send(c)
        c.pump(lambda: c.goaway is not None or c.closed or
               any(s.reset for s in c.streams.values()), 5)
        resets = {s.id: s.reset for s in c.streams.values() if s.reset}
        if kind == "either" and c.goaway is None:
            assert set(resets.values()) <= set(codes) and resets, \
                (case, resets, c.closed)
        else:
            assert c.goaway is not None, (case, resets, c.closed)
            assert c.goaway.error_code in codes, (
                f"{case}: GOAWAY {error_name(c.goaway.error_code)}, "
                f"wanted {[error_name(x) for x in codes]} ({c.goaway})")
            assert c.wait_closed(10), f"{case}: open after GOAWAY"
        # No frame of these reached a handler: the only answers are to
        # the requests the case made properly.
        served = [s for s in c.streams.values() if s.status is not None]
        assert all(s.id in c.requested for s in served), (case, served)
    t.check_alive(case)


@pytest.mark.parametrize("name", ["hello_http", "hello", "web_testapp",
                                  "hello_https"])
@pytest.mark.parametrize("case", sorted(STREAM_CASES))
def test_malformed_request_is_a_stream_error(start, case, name):
    t = start(name)
    with t.conn() as c:
        assert c.handshake() is not None
        sid = c.new_stream_id()
        c.send_frame(HEADERS, END_HEADERS | END_STREAM, sid,
                     _stream_case_block(case))
        r = c.response(sid, 5)
        assert r.done or c.goaway, (case, r, c.goaway)
        # Never the handler's answer: a reset (PROTOCOL_ERROR), or a 400
        # sent before it (RFC 9113 8.1.1 allows a response first).
        assert r.status != 200, (case, r)
        if r.status is None:
            assert r.reset == PROTOCOL_ERROR or (
                c.goaway and c.goaway.error_code == PROTOCOL_ERROR), \
                (case, r, c.goaway)
        else:
            assert 400 <= r.status < 500, (case, r)
        # A stream error leaves the connection usable.
        assert c.goaway is None and not c.closed, (case, c.goaway)
        r = c.response(c.request("GET", "/"))
        assert r.status == 200, (case, r, c.goaway)
    t.check_alive(case)


def test_content_length_mismatch_is_a_stream_error(start):
    """RFC 9113 8.1.1: DATA that does not add up to content-length makes
    the request malformed (a stream error), and the handler never sees it."""
    t = start("hello_http")
    with t.conn() as c:
        c.handshake()
        sid = _content_length_mismatch(c)
        r = c.response(sid, 5)
        assert r.done and r.status != 200, (r, c.goaway)
        assert r.reset == PROTOCOL_ERROR or (r.status or 0) >= 400, r
        r = c.response(c.request("GET", "/"))
        assert r.status == 200, (r, c.goaway)
    t.check_alive("a content-length mismatch")


def test_te_trailers_is_allowed(start):
    """The one connection-specific value RFC 9113 8.2.2 allows."""
    t = start("hello_http")
    with t.conn() as c:
        c.handshake()
        r = c.response(c.request("GET", "/", extra=[("te", "trailers")]))
        assert r.status == 200, (r, c.goaway)


def test_unknown_frame_type_is_ignored(start):
    """RFC 9113 5.5: frames of unknown types are ignored, even inside the
    stream's life."""
    t = start("hello_http")
    with t.conn() as c:
        c.handshake()
        sid = c.request("POST", "/echo", end_stream=False)
        c.send_frame(0xEE, 0xFF, sid, b"ignore me")
        c.send_frame(0xEF, 0, 0, b"and me")
        c.send_frame(DATA, END_STREAM, sid, b"kept")
        r = c.response(sid)
        assert r.status == 200 and bytes(r.body) == b"kept", (r, c.goaway)
    t.check_alive("unknown frame types")


@pytest.mark.parametrize("preface", [
    b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\r",
    PREFACE + ping_frame(),  # a valid preface not followed by SETTINGS
], ids=["bad_magic", "bad_magic_end", "no_settings_first"])
def test_bad_preface_is_refused(start, preface):
    t = start("hello_http")
    with t.conn(preface=False) as c:
        c.send(preface + settings_frame() +
               frame(HEADERS, END_HEADERS | END_STREAM, 1, _block()))
        closed = c.wait_closed(10)
        assert closed, "connection kept open after a bad preface"
        s = c.streams.get(1)
        assert s is None or s.status != 200, s
        if c.goaway is not None:
            assert c.goaway.error_code == PROTOCOL_ERROR, c.goaway
        elif c.garbage:
            # Read as HTTP/1: a 4xx/5xx, never the handler's answer.
            assert not c.garbage.startswith(b"HTTP/1.1 2"), c.garbage[:200]
    t.check_alive("a bad preface")


# ---- Upgrade: h2c ----------------------------------------------------------

SETTINGS_B64 = "AAMAAABkAAQAAP__"  # MAX_CONCURRENT_STREAMS 100, window 65535


def _upgrade(port, head, body=b""):
    """Sends an HTTP/1.1 request; returns (socket, status line, bytes read
    after the response head)."""
    s = socket.create_connection((HOST, port), timeout=10)
    s.sendall(head + body)
    data = b""
    while b"\r\n\r\n" not in data:
        part = s.recv(65536)
        if not part:
            break
        data += part
    status, _, rest = data.partition(b"\r\n")
    return s, status, rest.partition(b"\r\n\r\n")[2]


def _h1_request(settings=(SETTINGS_B64,), method="GET", extra=b""):
    fields = b"".join(b"HTTP2-Settings: %s\r\n" % v.encode() for v in settings)
    return (b"%s /echo HTTP/1.1\r\nHost: localhost\r\n"
            b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
            % method.encode() + fields + extra + b"\r\n")


H2C_NOT_UPGRADED = {
    # RFC 7540 3.2.1: exactly one HTTP2-Settings, or no upgrade.
    "no_http2_settings": _h1_request(settings=()),
    "two_http2_settings": _h1_request(settings=(SETTINGS_B64, SETTINGS_B64)),
    # A request with a body is served over HTTP/1.1 (Gust does not read a
    # body before switching).
    "with_a_body": _h1_request(method="POST", extra=b"Content-Length: 4\r\n"),
}


@pytest.mark.parametrize("case", sorted(H2C_NOT_UPGRADED))
def test_h2c_upgrade_refused_is_served_over_http1(start, case):
    t = start("hello_http")
    body = b"abcd" if case == "with_a_body" else b""
    s, status, rest = _upgrade(t.port, H2C_NOT_UPGRADED[case], body)
    with s:
        assert status.startswith(b"HTTP/1.1 200"), (case, status)
    t.check_alive(case)


@pytest.mark.parametrize("settings", ["!!!!", "AAM", "AAIAAAAC"],
                         ids=["not_base64", "not_whole_settings", "push_2"])
def test_h2c_upgrade_with_bad_settings(start, settings):
    """HTTP2-Settings that is no valid SETTINGS payload: served over
    HTTP/1.1 (400, or the request answered), or, once switched, a
    connection error; never the upgrade used as if it were valid."""
    t = start("hello_http")
    s, status, rest = _upgrade(t.port, _h1_request(settings=(settings,)))
    if status.startswith(b"HTTP/1.1 101"):
        with t.conn(sock=s, buffered=rest, first_stream_id=3) as c:
            c.pump(lambda: c.goaway is not None or c.closed, 5)
            assert c.goaway is not None and \
                c.goaway.error_code in (PROTOCOL_ERROR, FRAME_SIZE_ERROR), \
                (settings, c.goaway, c.closed)
    else:
        s.close()
        assert status.startswith((b"HTTP/1.1 200", b"HTTP/1.1 400")), status
    t.check_alive(f"HTTP2-Settings {settings!r}")


def test_h2c_upgrade_then_a_bad_preface(start):
    t = start("hello_http")
    s, status, rest = _upgrade(t.port, _h1_request())
    assert status.startswith(b"HTTP/1.1 101"), status
    with t.conn(sock=s, buffered=rest, preface=False,
                first_stream_id=3) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.wait_closed(10), "open after a bad preface"
        assert c.goaway is None or c.goaway.error_code == PROTOCOL_ERROR, \
            c.goaway
        assert c.streams.get(3) is None
    t.check_alive("h2c and a bad preface")


def test_h2c_upgrade_answers_stream_1_then_serves_more(start):
    """The positive case the others are measured against: 101, the
    request's answer on stream 1, then new streams on the connection."""
    t = start("hello_http")
    s, status, rest = _upgrade(t.port, _h1_request())
    assert status.startswith(b"HTTP/1.1 101"), status
    with t.conn(sock=s, buffered=rest, first_stream_id=3) as c:
        r1 = c.response(1)
        assert r1.status == 200, (r1, c.goaway)
        r = c.response(c.request("POST", "/echo", body=b"on stream 3"))
        assert r.status == 200 and bytes(r.body) == b"on stream 3", r
    t.check_alive("h2c")


# ---- all at once -----------------------------------------------------------

def _normal_client(t, seed, out):
    """30 echoes of random bodies on one connection, each checked."""
    rnd = random.Random(seed)
    try:
        with t.conn() as c:
            c.handshake()
            for _ in range(30):
                body = rnd.randbytes(rnd.randrange(1, 100_000))
                r = c.response(c.request("POST", "/echo", body=body), 20)
                if not (r.ended and bytes(r.body) == body):
                    out.append(f"echo broken: {r} goaway={c.goaway}")
                    return
        out.append("ok")
    except Exception as e:  # noqa: BLE001 - reported by the test
        out.append(repr(e))


def _hostile_client(t, kind, out):
    try:
        with t.conn(rcvbuf=4096 if kind == "ping" else None) as c:
            c.handshake()
            deadline = time.monotonic() + 8
            block = request_block()
            if kind == "reset":
                while time.monotonic() < deadline and not c.closed \
                        and c.goaway is None:
                    batch = b""
                    for _ in range(100):
                        sid = c.new_stream_id()
                        batch += (frame(HEADERS, END_HEADERS | END_STREAM,
                                        sid, block) + rst_frame(sid, CANCEL))
                    c.send(batch)
                    c.read(0)
            elif kind == "continuation":
                c.send(frame(HEADERS, END_STREAM, 1, block))
                one = frame(CONTINUATION, 0, 1, b"")
                while time.monotonic() < deadline and not c.closed:
                    c.send(one * 1000)
                    c.read(0)
            elif kind == "ping":
                c.auto_ack = False
                c.sock.settimeout(2)
                try:
                    while time.monotonic() < deadline:
                        if not c.send(ping_frame() * 1000):
                            break
                except socket.timeout:
                    pass
            c.pump(lambda: c.closed, 2)
        out.append("done")
    except Exception as e:  # noqa: BLE001
        out.append(repr(e))


def test_hostile_and_normal_clients_at_once(start):
    """Several hostile connections and well-behaved ones on the same
    server (one thread, one loop) at the same time: the well-behaved ones
    get every byte right, memory stays bounded, and the server lives."""
    t = start("hello_http", f"--write_timeout={WRITE_TIMEOUT}")
    _warm_up(t)
    base = t.rss_kb()
    normal, hostile = [], []
    threads = [threading.Thread(target=_normal_client, args=(t, i, normal))
               for i in range(4)]
    threads += [threading.Thread(target=_hostile_client, args=(t, k, hostile))
                for k in ("reset", "continuation", "ping", "reset")]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not any(th.is_alive() for th in threads), "a client hung"
    assert normal == ["ok"] * 4, normal
    assert hostile == ["done"] * 4, hostile
    assert t.peak_kb() - base < 2 * RSS_GROWTH_BOUND_KB, (base, t.peak_kb())
    t.check_alive("hostile and normal clients at once")
