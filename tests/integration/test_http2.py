"""HTTP/2 on the same handlers (issue 15): curl by prior knowledge, by
h2c Upgrade and over TLS by ALPN, nghttp, and Python h2 driving frames on
a raw socket for multiplexing, flow-controlled streaming uploads,
trailers, HEAD/204/304, sendfile and graceful stop. Only 127.0.0.1;
every wait is bounded."""
import hashlib
import os
import re
import signal
import socket
import subprocess
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from conftest import HOST, connect, wait_for
from test_tls import certs  # noqa: F401  (the throwaway CA fixture)

SECRET = "h2-test-secret"


def curl(*args, timeout=60):
    r = subprocess.run(["curl", "-sS", *args], capture_output=True,
                       timeout=timeout)
    return r


@pytest.fixture
def app(program, spawn, free_port):
    def start(*args):
        # A small ASan quarantine, so that RSS shows what the server holds
        # rather than freed memory kept for use-after-free checks.
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = ":".join(
            filter(None, [env.get("ASAN_OPTIONS"), "quarantine_size_mb=4"]))
        server = spawn([program("web_testapp"), f"--port={free_port}",
                        f"--cookie_secret={SECRET}", *args], env=env)
        server.wait_log("listening on")
        connect(free_port).close()
        server.port = free_port
        server.base = f"http://{HOST}:{free_port}"
        return server
    return start


@pytest.fixture
def hello_http(program, spawn, free_port):
    server = spawn([program("hello_http"), f"--port={free_port}",
                    "--address=127.0.0.1"])
    server.wait_log("listening on")
    connect(free_port).close()
    server.port = free_port
    server.base = f"http://{HOST}:{free_port}"
    return server


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class H2Client:
    """A Python h2 client connection on a plain socket (prior knowledge)."""

    def __init__(self, port, settings=None):
        self.sock = connect(port)
        self.sock.settimeout(10)
        cfg = h2.config.H2Configuration(client_side=True,
                                        header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.events = []
        self.bodies = {}
        self.headers = {}
        self.ended = []          # stream ids, in the order they ended
        self.trailers = {}

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, method="GET", headers=(), end_stream=True):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":path", path), (":scheme", "http"),
                (":authority", "localhost")] + list(headers)
        self.conn.send_headers(sid, hdrs, end_stream=end_stream)
        self.flush()
        return sid

    def pump(self, until, timeout=20.0):
        """Reads and handles events until until() is true."""
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                raise TimeoutError(f"events so far: {self.events!r}"[:2000])
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                self.events.append("EOF")
                return
            for ev in self.conn.receive_data(data):
                self.events.append(ev)
                if isinstance(ev, h2.events.ResponseReceived):
                    self.headers[ev.stream_id] = dict(ev.headers)
                elif isinstance(ev, h2.events.DataReceived):
                    self.bodies.setdefault(ev.stream_id, b"")
                    self.bodies[ev.stream_id] += ev.data
                    self.conn.acknowledge_received_data(
                        ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.TrailersReceived):
                    self.trailers[ev.stream_id] = dict(ev.headers)
                elif isinstance(ev, h2.events.StreamEnded):
                    self.ended.append(ev.stream_id)
            self.flush()

    def close(self):
        self.sock.close()


def test_prior_knowledge_curl(hello_http):
    r = curl("--http2-prior-knowledge", "-w", "\n%{http_version}",
             "-D", "-", hello_http.base + "/")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert out.startswith("HTTP/2 200"), out
    assert "content-length: 12" in out
    assert "date: " in out and "server: Gust" in out
    # No HTTP/1 connection fields over HTTP/2.
    assert "connection:" not in out.lower()
    assert out.endswith("Hello, world\n2"), out
    # The same port still speaks HTTP/1.1.
    r = curl("--http1.1", "-w", "\n%{http_version}", hello_http.base + "/")
    assert r.stdout.decode() == "Hello, world\n1.1"
    assert hello_http.stop() == 0
    assert "Sanitizer" not in hello_http.log()


def test_h2c_upgrade(hello_http):
    r = curl("-v", "--http2", "-w", "\n%{http_version}", hello_http.base + "/")
    assert r.returncode == 0, r.stderr
    assert b"101 Switching Protocols" in r.stderr, r.stderr
    assert r.stdout == b"Hello, world\n2"
    # A request with a body is served over HTTP/1.1, the upgrade ignored.
    r = curl("-v", "--http2", "-w", "\n%{http_version}", "--data-binary",
             "abc" * 100, hello_http.base + "/echo")
    assert r.returncode == 0, r.stderr
    assert b"101" not in r.stderr
    assert r.stdout == b"abc" * 100 + b"\n1.1"
    # A bad HTTP2-Settings too.
    with connect(hello_http.port) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, "
                  b"HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: A!\r\n"
                  b"Connection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK"), data
    assert data.endswith(b"Hello, world")
    assert hello_http.stop() == 0


def test_tls_alpn(program, spawn, free_port, certs):  # noqa: F811
    s = spawn([program("hello_https"), f"--port={free_port}",
               f"--cert={certs['cert']}", f"--key={certs['key']}"])
    s.wait_log("listening on https://")
    url = f"https://localhost:{free_port}/protocol"
    resolve = f"localhost:{free_port}:127.0.0.1"
    r = curl("-v", "--http2", "--cacert", certs["ca"], "--resolve", resolve,
             "-w", "\n%{http_version}", url, url)
    assert r.returncode == 0, r.stderr
    assert b"ALPN: server accepted h2" in r.stderr, r.stderr
    assert r.stdout == b"https\n2https\n2"
    r = curl("--http1.1", "--cacert", certs["ca"], "--resolve", resolve,
             "-w", "\n%{http_version}", url)
    assert r.stdout == b"https\n1.1"
    # nghttp over TLS.
    n = subprocess.run(["nghttp", "-nv", f"https://127.0.0.1:{free_port}/"],
                       capture_output=True, text=True, timeout=60)
    assert re.search(r"recv \(stream_id=\d+\) :status: 200", n.stdout), \
        n.stdout + n.stderr
    assert s.stop() == 0
    assert "Sanitizer" not in s.log()


def test_nghttp_frames(hello_http):
    r = subprocess.run(["nghttp", "-nv", hello_http.base + "/"],
                       capture_output=True, text=True, timeout=60)
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    assert "recv SETTINGS frame" in out
    assert "(niv=" in out and "SETTINGS_MAX_CONCURRENT_STREAMS(0x03):100" in out
    assert re.search(r"recv \(stream_id=\d+\) :status: 200", out), out
    assert re.search(r"recv DATA frame <length=12, flags=0x01, stream_id=\d+>",
                     out), out
    # Many streams on one connection.
    r = subprocess.run(["nghttp", "-n", "-s", "-m", "50",
                        hello_http.base + "/"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    # One line per stream in the statistics: "id ... code size path".
    rows = re.findall(r"^\s*(\d+)\s+\S+\s+\S+\s+\S+\s+(\d+)\s+(\d+) /$",
                      r.stdout, re.M)
    assert len(rows) == 50, r.stdout
    assert {(code, size) for _, code, size in rows} == {("200", "12")}
    assert len({sid for sid, _, _ in rows}) == 50


def test_multiplexing_slow_does_not_delay_fast(app):
    s = app()
    c = H2Client(s.port)
    slow = [c.request("/coro") for _ in range(3)]      # each sleeps 50 ms
    slow_async = c.request("/async")                   # a timer, 50 ms
    fast = [c.request("/") for _ in range(5)]
    c.pump(lambda: len(c.ended) == 9)
    # Every fast response ended before any slow one.
    order = c.ended
    assert set(order[:5]) == set(fast), order
    assert set(order[5:]) == set(slow + [slow_async]), order
    for sid in fast:
        assert c.bodies[sid] == b"Hello, world"
    for sid in slow:
        assert c.bodies[sid] == b"coroutine done"
    assert c.bodies[slow_async] == b"async done"
    c.close()
    assert s.stop() == 0
    assert "Sanitizer" not in s.log()


def test_streaming_upload_with_flow_control(app):
    """64 MiB PUT to a streaming handler: the server's windows follow what
    the handler consumed, so its memory does not grow with the body."""
    s = app()
    c = H2Client(s.port)
    size = 64 * 1024 * 1024
    block = hashlib.sha256(b"x").digest() * 512  # 16 KiB
    # The XSRF cookie and token, over the same connection.
    x = c.request("/xsrf")
    c.pump(lambda: x in c.ended)
    token = c.bodies[x].decode()
    cookie = c.headers[x]["set-cookie"].split(";")[0]
    sid = c.request("/sink", method="PUT",
                    headers=[("content-length", str(size)),
                             ("cookie", cookie), ("x-xsrftoken", token)],
                    end_stream=False)
    before = rss_kib(s.pid)
    peak = before
    sent = 0
    deadline = time.monotonic() + 120
    while sent < size:
        assert time.monotonic() < deadline, "upload too slow"
        window = min(c.conn.local_flow_control_window(sid),
                     c.conn.max_outbound_frame_size)
        if window <= 0:
            c.sock.settimeout(10)
            data = c.sock.recv(65536)
            assert data, "server closed"
            for ev in c.conn.receive_data(data):
                c.events.append(ev)
            c.flush()
            peak = max(peak, rss_kib(s.pid))
            continue
        n = min(window, size - sent, len(block))
        c.conn.send_data(sid, block[:n], end_stream=(sent + n == size))
        c.flush()
        sent += n
    c.pump(lambda: sid in c.ended, timeout=60)
    peak = max(peak, rss_kib(s.pid))
    body = c.bodies[sid].decode()
    assert body.startswith(f"bytes={size} "), body
    assert "buffered=0" in body, body
    # The client never had more than a window ahead: memory stays bounded
    # (well under the 64 MiB body, allowing for the sanitizer's own).
    assert peak - before < 24 * 1024, (before, peak)
    c.close()
    assert s.stop() == 0
    assert "Sanitizer" not in s.log()


def test_request_trailers(hello_http):
    c = H2Client(hello_http.port)
    sid = c.request("/echo", method="POST", end_stream=False)
    c.conn.send_data(sid, b"hello ")
    c.conn.send_data(sid, b"trailers")
    c.conn.send_headers(sid, [("x-checksum", "abc")], end_stream=True)
    c.flush()
    c.pump(lambda: sid in c.ended)
    assert c.headers[sid][":status"] == "200"
    assert c.bodies[sid] == b"hello trailers"
    assert sid not in c.trailers  # the server sends none
    c.close()


def test_cookies_split_across_fields(app):
    # Cookies split across fields reach the handler as one Cookie header.
    s = app()
    c = H2Client(s.port)
    sid = c.request("/cookie/get?name=b",
                    headers=[("cookie", "a=1"), ("cookie", "b=2")])
    c.pump(lambda: sid in c.ended)
    assert c.bodies[sid] == b"2"
    c.close()


def test_head_204_304(app):
    s = app()
    c = H2Client(s.port)
    head = c.request("/", method="HEAD")
    c.pump(lambda: head in c.ended)
    assert c.headers[head][":status"] == "200"
    assert head not in c.bodies
    etag = c.headers[head]["etag"]
    nc = c.request("/status?code=204")
    c.pump(lambda: nc in c.ended)
    assert c.headers[nc][":status"] == "204"
    assert nc not in c.bodies
    nm = c.request("/", headers=[("if-none-match", etag)])
    c.pump(lambda: nm in c.ended)
    assert c.headers[nm][":status"] == "304"
    assert nm not in c.bodies
    # Response fields are lowercase, without HTTP/1 connection fields.
    for h in c.headers.values():
        for name in h:
            assert name == name.lower()
            assert name not in ("connection", "keep-alive",
                                "transfer-encoding")
    c.close()


def test_static_file_sendfile_and_streamed_response(app, tmp_path):
    root = tmp_path / "static"
    root.mkdir()
    data = os.urandom(3 * 1024 * 1024 + 17)
    (root / "blob.bin").write_bytes(data)
    s = app(f"--static_path={root}")
    r = curl("--http2-prior-knowledge", "-o", str(tmp_path / "got"), "-w",
             "%{http_code} %{http_version} %{size_download}",
             s.base + "/static/blob.bin")
    assert r.stdout.decode() == f"200 2 {len(data)}", r.stderr
    assert (tmp_path / "got").read_bytes() == data
    # A streamed (flushed) response.
    r = curl("--http2-prior-knowledge", s.base + "/stream")
    assert r.stdout.decode().startswith("part 0 of a streamed body\n")
    assert r.stdout.decode().count("of a streamed body") >= 3
    assert s.stop() == 0
    assert "Sanitizer" not in s.log()


def test_raw_response_over_h2(program, spawn, free_port):
    s = spawn([program("raw_http"), f"--port={free_port}",
               "--address=127.0.0.1"])
    s.wait_log("listening on")
    r = curl("--http2-prior-knowledge", "-D", "-",
             f"http://{HOST}:{free_port}/a/b?x=1")
    out = r.stdout.decode()
    assert out.startswith("HTTP/2 200"), out
    assert out.endswith("You requested /a/b?x=1\n"), out
    assert s.stop() == 0


def test_graceful_stop_sends_goaway(app):
    """SIGTERM: GOAWAY (a shutdown notice, then the last stream id), the
    request under way is answered, then the connection closes. Read as raw
    frames: Python h2 treats the first GOAWAY as the end of everything."""
    import hyperframe.frame as hf
    s = app()
    c = H2Client(s.port)
    slow = c.request("/coro")  # answers after 50 ms
    time.sleep(0.01)
    s.send_signal(signal.SIGTERM)
    raw = b""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            d = c.sock.recv(65536)
        except socket.timeout:
            continue
        if not d:
            break
        raw += d
    else:
        pytest.fail("the server did not close the connection")
    frames = []
    while len(raw) >= 9:
        f, length = hf.Frame.parse_frame_header(memoryview(raw[:9]))
        f.parse_body(memoryview(raw[9:9 + length]))
        frames.append(f)
        raw = raw[9 + length:]
    goaways = [f for f in frames if isinstance(f, hf.GoAwayFrame)]
    assert goaways, frames
    assert all(g.error_code == 0 for g in goaways)
    assert goaways[-1].last_stream_id == slow
    data = b"".join(f.data for f in frames
                    if isinstance(f, hf.DataFrame) and f.stream_id == slow)
    assert data == b"coroutine done"
    assert s.proc.wait(timeout=20) == 0
    assert "Sanitizer" not in s.log()


def read_frames(sock, timeout):
    """Raw frames until the server closes (or timeout): [(frame)], closed."""
    import hyperframe.frame as hf
    raw = b""
    deadline = time.monotonic() + timeout
    closed = False
    while time.monotonic() < deadline:
        try:
            d = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            closed = True
            break
        if not d:
            closed = True
            break
        raw += d
    frames = []
    while len(raw) >= 9:
        f, length = hf.Frame.parse_frame_header(memoryview(raw[:9]))
        f.parse_body(memoryview(raw[9:9 + length]))
        frames.append(f)
        raw = raw[9 + length:]
    return frames, closed


def test_idle_and_header_timeouts(program, spawn, free_port):
    import hyperframe.frame as hf
    s = spawn([program("hello_http"), f"--port={free_port}",
               "--idle_connection_timeout=0.5", "--header_timeout=0.5"])
    s.wait_log("listening on")
    # Idle after a request: GOAWAY NO_ERROR with the last stream, close.
    c = H2Client(free_port)
    sid = c.request("/")
    c.pump(lambda: sid in c.ended)
    c.sock.settimeout(0.2)
    t0 = time.monotonic()
    frames, closed = read_frames(c.sock, 10)
    took = time.monotonic() - t0
    assert closed and 0.3 < took < 5, took
    goaways = [f for f in frames if isinstance(f, hf.GoAwayFrame)]
    assert goaways and goaways[-1].error_code == 0
    assert goaways[-1].last_stream_id == sid
    # A connection that sends the preface and nothing more is closed too.
    with connect(free_port) as raw:
        raw.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        raw.settimeout(0.2)
        t0 = time.monotonic()
        frames, closed = read_frames(raw, 10)
        assert closed and time.monotonic() - t0 < 5
    assert s.stop() == 0
    log = s.log()
    assert "no request within 0.5 s" in log, log
    assert "Sanitizer" not in log


def test_zero_window_stall_is_closed(program, spawn, free_port):
    """A client that opens no flow-control window for a large response is
    closed after write_timeout, and its stream's request released."""
    s = spawn([program("hello_http"), f"--port={free_port}",
               "--write_timeout=0.5"])
    s.wait_log("listening on")
    c = H2Client(free_port, settings={
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    # /echo of a body over the window: the answer cannot be sent.
    sid = c.request("/echo", method="POST", end_stream=False)
    c.conn.send_data(sid, b"z" * 15000)
    c.conn.send_data(sid, b"z" * 15000, end_stream=True)
    c.flush()
    c.sock.settimeout(0.2)
    t0 = time.monotonic()
    frames, closed = read_frames(c.sock, 15)
    assert closed, frames
    assert time.monotonic() - t0 < 10
    assert s.stop() == 0
    log = s.log()
    assert "flow-control window or TCP shut" in log, log
    assert "Sanitizer" not in log


def test_metrics_and_stats_count_http2(program, spawn, free_port):
    """Requests over HTTP/2 are counted like HTTP/1's (metrics.c), and an
    HTTP/2 connection is one open connection."""
    from test_metrics import scrape, value
    s = spawn([program("hello"), f"--port={free_port}",
               "--address=127.0.0.1", "--metrics_path=/metrics"])
    s.wait_log("listening on")
    c = H2Client(free_port)
    ids = [c.request("/") for _ in range(5)] + [c.request("/nope")]
    c.pump(lambda: len(c.ended) == 6)
    assert [c.headers[i][":status"] for i in ids] == ["200"] * 5 + ["404"]
    fams = scrape(free_port)  # over HTTP/1, while the h2 one is open
    assert value(fams, "gust_http_requests", "gust_http_requests_total",
                 code="2xx") == 5
    assert value(fams, "gust_http_requests", "gust_http_requests_total",
                 code="4xx") == 1
    assert value(fams, "gust_http_connections_open") >= 2
    assert value(fams, "gust_http_sent_bytes",
                 "gust_http_sent_bytes_total") > 5 * len("Hello, world")
    c.close()
    assert s.stop() == 0
    # hello_http's SIGUSR1 line counts the HTTP/2 connection.
    h = spawn([program("hello_http"), f"--port={free_port}"])
    h.wait_log("listening on")
    c = H2Client(free_port)
    sid = c.request("/")
    c.pump(lambda: sid in c.ended)
    h.send_signal(signal.SIGUSR1)
    log = h.wait_log("stats:")
    assert "stats: 1 connections open, 1 accepted, 1 requests" in log, log
    c.close()
    assert h.stop() == 0


def test_shutdown_timeout_cuts_a_stuck_stream(program, spawn, free_port):
    s = spawn([program("hello_http"), f"--port={free_port}",
               "--shutdown_timeout=0.5"])
    s.wait_log("listening on")
    c = H2Client(free_port, settings={
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    sid = c.request("/echo", method="POST", end_stream=False)
    c.conn.send_data(sid, b"q" * 1000, end_stream=True)
    c.flush()
    time.sleep(0.2)  # answered, but the window holds it back
    t0 = time.monotonic()
    s.send_signal(signal.SIGTERM)
    c.sock.settimeout(0.2)
    frames, closed = read_frames(c.sock, 10)
    assert closed
    assert s.proc.wait(timeout=10) == 0
    assert time.monotonic() - t0 < 5
    log = s.log()
    assert "closing 1 connection(s) still open" in log, log
    assert "Sanitizer" not in log


def test_paused_body_holds_the_window(app):
    """A coroutine prepare holds a streamed body back (pause_body): the
    client can send no more than one stream window meanwhile; then the
    rest flows and every byte reaches data_received."""
    s = app()
    c = H2Client(s.port)
    x = c.request("/xsrf")
    c.pump(lambda: x in c.ended)
    token = c.bodies[x].decode()
    cookie = c.headers[x]["set-cookie"].split(";")[0]
    size = 2 * 1024 * 1024
    sid = c.request("/slowsink", method="PUT",
                    headers=[("content-length", str(size)),
                             ("cookie", cookie), ("x-xsrftoken", token)],
                    end_stream=False)
    t0 = time.monotonic()
    sent = 0
    held = None
    deadline = t0 + 60
    c.sock.settimeout(0.05)
    while sent < size:
        assert time.monotonic() < deadline, "upload too slow"
        window = min(c.conn.local_flow_control_window(sid),
                     c.conn.max_outbound_frame_size, size - sent)
        if window > 0:
            c.conn.send_data(sid, b"p" * window,
                             end_stream=(sent + window == size))
            c.flush()
            sent += window
            continue
        if held is None and time.monotonic() - t0 < 0.25:
            held = sent  # the window is shut while prepare sleeps
        try:
            data = c.sock.recv(65536)
        except socket.timeout:
            continue
        assert data, "server closed"
        for ev in c.conn.receive_data(data):
            c.events.append(ev)
        c.flush()
    c.pump(lambda: sid in c.ended, timeout=60)
    assert held is not None and held <= 256 * 1024, held
    assert time.monotonic() - t0 >= 0.3
    body = c.bodies[sid].decode()
    assert body.startswith(f"bytes={size} ") and "buffered=0" in body, body
    c.close()
    assert s.stop() == 0
    assert "Sanitizer" not in s.log()
