"""Idle HTTP/2 connections hibernate (http2_hibernate_after in
http_server.h): once a connection has had no open stream for a while, its
nghttp2 session is freed and rebuilt when the client sends again. What a
client must not notice, checked frame by frame with h2_raw.py against
examples/hello_http (and hello, hello_https) in clear text and over TLS:

  - requests after hibernation are served, several times on one
    connection, with bodies both ways;
  - the client's settings survive (SETTINGS_INITIAL_WINDOW_SIZE,
    SETTINGS_MAX_FRAME_SIZE), and so does the connection's send window it
    raised with WINDOW_UPDATE;
  - a HEADERS on a stream id already used is still a connection error
    (GOAWAY PROTOCOL_ERROR, RFC 9113 5.1.1);
  - PING and SETTINGS to a hibernated connection are answered, and nothing
    the rebuilt session says to itself (its SETTINGS, WINDOW_UPDATE, the
    ACK of the replayed SETTINGS) reaches the client;
  - graceful stop (SIGTERM), SIGHUP reload and the idle timeout send
    GOAWAY to hibernated connections and close them;
  - with the default http2_header_table_size a client that made a request
    (python-hpack indexes its fields) keeps its session and is served;
    with http2_header_table_size=0 it hibernates too.

Hibernation is seen in the debug log ("session given back") and in the
metrics gauge gust_http2_connections_hibernated."""
import os
import signal
import struct
import time

import pytest

from conftest import HOST, children_of, connect, pid_alive, wait_for
from h2_raw import (ACK, DATA, GOAWAY, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE,
                    NO_ERROR, PING, PROTOCOL_ERROR, SETTINGS, WINDOW_UPDATE,
                    H2Conn, error_name, ping_frame, settings_frame,
                    window_update_frame)

DELAY = 0.3  # --http2_hibernate_after in these tests
GIVEN_BACK = "session given back"
WOKE = "session rebuilt"
# Log lines unbuffered: the tests count them as they come.
ASAN_ENV = dict(os.environ, GUST_LOG_BUFFER="0",
                ASAN_OPTIONS=":".join(filter(None, [
                    os.environ.get("ASAN_OPTIONS"), "detect_leaks=1"])))


@pytest.fixture
def server(program, spawn, free_port):
    """server(*flags, name="hello_http") -> Server with .port, logging at
    debug level and hibernating after DELAY; it must stop cleanly."""
    started = []

    def start(*flags, name="hello_http"):
        s = spawn([program(name), f"--port={free_port}",
                   "--address=127.0.0.1", "--logging=debug",
                   f"--http2_hibernate_after={DELAY}", *flags], env=ASAN_ENV)
        s.wait_log("listening on")
        connect(free_port).close()
        s.port = free_port
        started.append(s)
        return s

    yield start
    for s in started:
        if s.proc.poll() is None:
            assert s.stop() == 0, s.log()[-3000:]
        assert "Sanitizer" not in s.log(), s.log()[-4000:]


def given_back(s):
    return s.log().count(GIVEN_BACK)


def hibernated_now(s):
    """Connections hibernated now (the server's log: one line each way)."""
    log = s.log()
    return log.count(GIVEN_BACK) - log.count(WOKE)


def wait_hibernated(s, count=1, timeout=10):
    assert wait_for(lambda: hibernated_now(s) == count, timeout), (
        f"{count} hibernated connection(s) expected, {hibernated_now(s)} "
        f"seen:\n{s.log()[-3000:]}")


def wait_given_back(s, count, timeout=10):
    """Waits until the server has hibernated count connections in all."""
    assert wait_for(lambda: given_back(s) >= count, timeout), (
        f"{count} hibernation(s) expected, {given_back(s)} seen:\n"
        f"{s.log()[-3000:]}")


def echo(c, body, timeout=30):
    """POST /echo on c; returns the response Stream."""
    sid = c.request("POST", "/echo", body=body)
    r = c.response(sid, timeout)
    assert r.ended and r.status == 200, (r, c.goaway, c.closed)
    return r


def data_frames(c, sid):
    return [p for t, f, i, p in c.frames if t == DATA and i == sid]


def test_requests_after_hibernation_with_bodies_both_ways(server):
    s = server("--http2_header_table_size=0")
    with H2Conn(s.port) as c:
        assert c.handshake()
        bodies = [b"a" * 3000, os.urandom(200_000), b"", b"xyz"]
        wait_hibernated(s)
        for body in bodies:
            wait_hibernated(s)
            r = echo(c, body)
            assert bytes(r.body) == body
        r = c.response(c.request("GET", "/"))
        assert (r.status, bytes(r.body)) == (200, b"Hello, world")
        assert c.goaway is None and not c.closed
    assert s.log().count(WOKE) >= len(bodies)


def test_settings_and_send_window_survive(server):
    """The client's INITIAL_WINDOW_SIZE (1 MiB) and the connection window
    it raised by 4 MiB still hold after hibernation: a 300 kB response
    comes whole without the client giving back any window (a fresh session
    would stop at 65,535 bytes). MAX_FRAME_SIZE (32 KiB) is replayed too,
    but cannot be seen: Gust's DATA frames are at most 16 KiB (nghttp2's
    default) whatever the client allows."""
    s = server("--http2_header_table_size=0")
    with H2Conn(s.port, settings={INITIAL_WINDOW_SIZE: 1 << 20,
                                  MAX_FRAME_SIZE: 32768},
                auto_window=False) as c:
        assert c.handshake()
        c.send(window_update_frame(0, 4 << 20))
        wait_given_back(s, 1)
        body = os.urandom(300_000)
        r = echo(c, body)
        assert bytes(r.body) == body
        sizes = [len(p) for p in data_frames(c, r.id)]
        assert sum(sizes) == 300_000 and max(sizes) <= 32768, sizes


def test_send_window_not_given_back_survives(server):
    """A client that does not give back the connection window: after a
    first answer the server may send 65535 - 12 bytes more; after
    hibernation it still may not send more than that until the client's
    WINDOW_UPDATE, then it sends the rest."""
    s = server("--http2_header_table_size=0")
    with H2Conn(s.port, settings={INITIAL_WINDOW_SIZE: 1 << 20},
                auto_window=False) as c:
        r = c.response(c.request("GET", "/"))
        assert bytes(r.body) == b"Hello, world"
        wait_hibernated(s)
        body = os.urandom(100_000)
        sid = c.request("POST", "/echo", body=body)
        c.pump(lambda: sum(map(len, data_frames(c, sid))) >= 65535 - 12, 10)
        c.read(0.5)
        assert sum(map(len, data_frames(c, sid))) == 65535 - 12
        c.send(window_update_frame(0, 1 << 20))
        r = c.response(sid)
        assert r.ended and bytes(r.body) == body, r
        assert c.goaway is None


def test_small_initial_window_survives(server):
    """SETTINGS_INITIAL_WINDOW_SIZE = 100: after hibernation, each DATA
    frame of a response is at most 100 bytes."""
    s = server("--http2_header_table_size=0")
    with H2Conn(s.port, settings={INITIAL_WINDOW_SIZE: 100}) as c:
        assert c.handshake()
        first = echo(c, b"b" * 1000)
        assert max(len(p) for p in data_frames(c, first.id)) <= 100
        wait_hibernated(s)
        r = echo(c, b"c" * 5000)
        assert bytes(r.body) == b"c" * 5000
        sizes = [len(p) for p in data_frames(c, r.id)]
        assert max(sizes) <= 100 and len(sizes) >= 50, sizes


@pytest.mark.parametrize("old", [1, 3])
def test_headers_on_an_old_stream_is_a_connection_error(server, old):
    s = server("--http2_header_table_size=0")
    with H2Conn(s.port) as c:
        assert c.handshake()
        for _ in range(2):  # streams 1 and 3
            assert c.response(c.request("GET", "/")).status == 200
        wait_hibernated(s)
        c.request("GET", "/", stream_id=old)
        assert c.wait_closed(10)
        assert c.goaway is not None, c.frames[-5:]
        assert c.goaway.error_code == PROTOCOL_ERROR, c.goaway
        assert c.goaway.last_stream_id == 3
        assert not c.streams[old].headers  # not answered


def test_ping_and_settings_to_a_hibernated_connection(server):
    """A connection that made no request hibernates with the default
    table size; PING and SETTINGS wake it and are answered, and only
    those answers come (nothing of the rebuild)."""
    s = server()
    with H2Conn(s.port) as c:
        assert c.handshake()
        c.pump(lambda: c.settings_acks, 5)
        wait_given_back(s, 1)
        seen = len(c.frames)
        c.send(ping_frame(b"hiber8te"))
        assert c.pump(lambda: c.ping_acks, 5)
        wait_given_back(s, 2)
        c.send(settings_frame({INITIAL_WINDOW_SIZE: 1000}))
        assert c.pump(lambda: c.settings_acks >= 2, 5)
        time.sleep(0.2)
        c.read(0.2)
        after = [(t, f, i, p) for t, f, i, p in c.frames[seen:]]
        assert after == [(PING, ACK, 0, b"hiber8te"), (SETTINGS, ACK, 0, b"")], after
        wait_given_back(s, 3)
        r = echo(c, b"d" * 5000)
        assert bytes(r.body) == b"d" * 5000
        sizes = [len(p) for p in data_frames(c, r.id)]
        assert max(sizes) <= 1000 and len(sizes) >= 5, sizes


def test_default_table_size_keeps_the_session_of_a_client_that_indexed(server):
    s = server()
    with H2Conn(s.port) as c:
        c.request("GET", "/")  # at once: before it could hibernate
        assert c.response(1).status == 200
        assert c.handshake()
        time.sleep(DELAY * 5)
        assert given_back(s) == 0, s.log()[-2000:]
        r = c.response(c.request("GET", "/"))
        assert (r.status, bytes(r.body)) == (200, b"Hello, world")


def test_table_size_zero_lets_that_client_hibernate(server):
    s = server("--http2_header_table_size=0")
    with H2Conn(s.port) as c:
        c.request("GET", "/")
        assert c.response(1).status == 200
        assert c.server_settings.get(0x1) == 0  # SETTINGS_HEADER_TABLE_SIZE
        wait_hibernated(s)
        r = c.response(c.request("GET", "/", extra=[("x-custom", "v" * 100)]))
        assert r.status == 200
        wait_hibernated(s)


def goaway_then_eof(c, timeout=15):
    assert c.wait_closed(timeout), f"not closed: {c.frames[-3:]}"
    payloads = [p for t, f, i, p in c.frames if t == GOAWAY]
    assert payloads, c.frames[-5:]
    codes = [struct.unpack(">LL", p[:8]) for p in payloads]
    assert all(code == NO_ERROR for _, code in codes), codes
    return codes[-1][0] & 0x7FFFFFFF


def test_graceful_stop_with_hibernated_connections(server):
    s = server("--http2_header_table_size=0")
    quiet = H2Conn(s.port)   # never makes a request
    busy = H2Conn(s.port)
    assert quiet.handshake() and busy.handshake()
    for _ in range(3):
        assert busy.response(busy.request("GET", "/")).status == 200
    wait_given_back(s, 2)
    t0 = time.monotonic()
    s.send_signal(signal.SIGTERM)
    assert goaway_then_eof(quiet) == 0
    assert goaway_then_eof(busy) == 5
    assert s.proc.wait(timeout=10) == 0
    assert time.monotonic() - t0 < 5
    quiet.close()
    busy.close()


def test_idle_timeout_closes_a_hibernated_connection(server):
    s = server("--idle_connection_timeout=2", "--http2_header_table_size=0")
    with H2Conn(s.port) as c:
        assert c.response(c.request("GET", "/")).status == 200
        wait_hibernated(s)
        t0 = time.monotonic()
        assert goaway_then_eof(c, 10) == 1
        assert time.monotonic() - t0 < 5


def test_sighup_reload_with_hibernated_connections(program, spawn, free_port):
    s = spawn([program("hello_http"), f"--port={free_port}",
               "--processes=2", "--logging=debug",
               f"--http2_hibernate_after={DELAY}",
               "--http2_header_table_size=0"], env=ASAN_ENV)
    s.wait_log("listening on", count=2)
    old = wait_for(lambda: (lambda k: k if len(k) == 2 else None)(
        children_of(s.pid)), 10)
    assert old, s.log()
    conns = [H2Conn(free_port) for _ in range(6)]
    for c in conns:
        assert c.response(c.request("GET", "/")).status == 200
    wait_given_back(s, len(conns))
    s.send_signal(signal.SIGHUP)
    for c in conns:
        assert goaway_then_eof(c, 20) == 1
        c.close()

    def replaced():
        kids = children_of(s.pid)
        return (len(kids) == 2 and not set(kids) & set(old)
                and not any(pid_alive(p) for p in old))
    assert wait_for(replaced, 30), s.log()[-3000:]
    with H2Conn(free_port) as c:
        assert c.response(c.request("GET", "/")).status == 200
    assert s.stop() == 0
    assert "Sanitizer" not in s.log(), s.log()[-4000:]


def test_h2c_upgrade_then_hibernation(server):
    """Stream 1 came by Upgrade: h2c (its request was HTTP/1, so the
    client's encoder has not announced the table size 0 yet); after
    hibernation the next request is served."""
    from test_http2_limits import _h1_request, _upgrade
    s = server("--http2_header_table_size=0")
    sock, status, rest = _upgrade(s.port, _h1_request())
    assert status.startswith(b"HTTP/1.1 101"), status
    with H2Conn(s.port, sock=sock, buffered=rest, first_stream_id=3) as c:
        assert c.response(1).status == 200
        wait_hibernated(s)
        r = c.response(c.request("POST", "/echo", body=b"after"))
        assert r.status == 200 and bytes(r.body) == b"after", (r, c.goaway)
        wait_hibernated(s)
        r = c.response(c.request("GET", "/"))
        assert r.status == 200, (r, c.goaway)


def test_metrics_gauge_counts_hibernated_connections(server):
    from test_metrics import scrape, value
    s = server("--metrics_path=/metrics", name="hello")
    conns = [H2Conn(s.port) for _ in range(3)]
    for c in conns:
        assert c.handshake()
    wait_given_back(s, 3)
    fams = scrape(s.port)  # over HTTP/1
    assert value(fams, "gust_http2_connections_hibernated") == 3
    # One wakes with a request; python-hpack indexes its fields into the
    # default table, so it stays awake.
    assert conns[0].response(conns[0].request("GET", "/")).status == 200
    time.sleep(DELAY * 3)
    fams = scrape(s.port)
    assert value(fams, "gust_http2_connections_hibernated") == 2
    for c in conns:
        c.close()
    assert wait_for(lambda: value(scrape(s.port),
                                  "gust_http2_connections_hibernated") == 0, 10)


def test_hibernation_over_tls(program, spawn, free_port, tmp_path):
    import subprocess
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-keyout", key, "-out", cert, "-subj", "/CN=localhost"],
                   check=True, timeout=60, capture_output=True)
    s = spawn([program("hello_https"), f"--port={free_port}",
               f"--cert={cert}", f"--key={key}", "--logging=debug"],
              env=ASAN_ENV)
    s.wait_log("listening on")
    with H2Conn(free_port, tls=True) as c:
        assert c.handshake()
        wait_given_back(s, 1)  # hello_https: the default delay, 1 s
        r = c.response(c.request("GET", "/"))
        assert r.status == 200, (r, c.goaway)
    assert s.stop() == 0
    assert "Sanitizer" not in s.log(), s.log()[-4000:]
