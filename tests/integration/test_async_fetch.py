"""examples/async_fetch (E6): handlers that fetch from another server in the
callback, coroutine and parallel-coroutine styles. The upstream is a Python
server on 127.0.0.1 that answers after a delay and records when each request
ran, so the tests see what was fetched and whether two fetches overlapped.
Under ASan a leak or a use-after-free makes the exit status non-zero or
prints "Sanitizer"; every wait is bounded."""
import http.client
import http.server
import signal
import socket
import threading
import time

import pytest

from conftest import HOST, connect

READY = "async_fetch listening on"


class Upstream:
    """A threaded HTTP server: GET /up/<name> answers "<name> from upstream"
    after `delay` seconds and records (name, start, end)."""

    def __init__(self, delay):
        self.delay = delay
        self.calls = []
        self.lock = threading.Lock()
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                start = time.monotonic()
                time.sleep(upstream.delay)
                name = self.path.rsplit("/", 1)[-1]
                body = f"{name} from upstream\n".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with upstream.lock:
                    upstream.calls.append((name, start, time.monotonic()))

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{HOST}:{self.port}/up"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def upstream():
    up = Upstream(0.2)
    yield up
    up.close()


def start(spawn, program, port, *flags):
    server = spawn([program("async_fetch"), f"--port={port}", *flags])
    server.wait_log(READY)
    connect(port).close()
    return server


def get(port, path, timeout=20):
    """(status, body text, seconds taken) of one GET."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        t0 = time.monotonic()
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read().decode()
        return resp.status, body, time.monotonic() - t0
    finally:
        conn.close()


def assert_clean_exit(server):
    status = server.stop(signal.SIGTERM)
    log = server.log()
    assert status == 0, log
    assert "Sanitizer" not in log, log


def test_three_styles_answer_what_upstream_served(spawn, program, free_port,
                                                  upstream):
    server = start(spawn, program, free_port, f"--upstream={upstream.url}")
    assert get(free_port, "/callback")[:2] == (200, "a from upstream\n")
    assert get(free_port, "/coroutine")[:2] == (200, "a from upstream\n")
    status, body, _ = get(free_port, "/parallel")
    assert (status, body) == (200, "a from upstream\nb from upstream\n")
    assert [c[0] for c in upstream.calls].count("a") == 3
    assert_clean_exit(server)


def test_parallel_fetches_overlap(spawn, program, free_port):
    # Long fetches, so that the slack below covers a loaded machine (ASan,
    # tests in parallel): 0.2 s ones left 0.2 s and failed now and then.
    upstream = Upstream(1.0)
    try:
        server = start(spawn, program, free_port, f"--upstream={upstream.url}")
        get(free_port, "/coroutine")  # warm up: the first fetch pays for setup
        upstream.calls.clear()
        status, body, took = get(free_port, "/parallel")
        calls = list(upstream.calls)
    finally:
        upstream.close()
    assert status == 200
    # Two 1 s fetches in sequence would take at least 2 s.
    assert took < 1.9, took
    (_, s1, e1), (_, s2, e2) = sorted(calls, key=lambda c: c[1])
    assert s2 < e1, "the second fetch started after the first ended"
    assert_clean_exit(server)


def test_own_upstream_routes(spawn, program, free_port):
    """Run alone, the example fetches from its own slow routes."""
    server = start(spawn, program, free_port, "--upstream-delay=1")
    assert get(free_port, "/coroutine")[:2] == (200, "upstream a\n")
    status, body, took = get(free_port, "/parallel")
    assert (status, body) == (200, "upstream a\nupstream b\n")
    # In sequence the two would take at least 2 s.
    assert 1.0 <= took < 1.9, took
    assert_clean_exit(server)


def test_upstream_down_gives_502(spawn, program, free_port):
    with socket.socket() as s:   # a port nobody listens on
        s.bind((HOST, 0))
        dead = s.getsockname()[1]
    server = start(spawn, program, free_port,
                   f"--upstream=http://{HOST}:{dead}/up")
    for path in ("/callback", "/coroutine", "/parallel"):
        status, body, _ = get(free_port, path)
        assert status == 502, (path, body)
    # Still serving, and still failing cleanly.
    assert get(free_port, "/upstream/b")[:2] == (200, "upstream b\n")
    assert get(free_port, "/coroutine")[0] == 502
    log = server.log()
    assert log.count(" 502 GET /") >= 4, log
    assert_clean_exit(server)


def test_fifty_concurrent_coroutines(spawn, program, free_port, upstream):
    server = start(spawn, program, free_port, f"--upstream={upstream.url}")
    results = [None] * 50

    def one(i):
        try:
            results[i] = get(free_port, "/coroutine", timeout=30)[:2]
        except Exception as e:   # reported below, with the others
            results[i] = repr(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [(200, "a from upstream\n")] * 50
    assert len(upstream.calls) == 50
    assert_clean_exit(server)


def test_client_leaves_while_handlers_wait(spawn, program, free_port,
                                           upstream):
    upstream.delay = 0.5
    server = start(spawn, program, free_port, f"--upstream={upstream.url}")
    for path in ("/callback", "/coroutine", "/parallel"):
        s = connect(free_port)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(0.1)   # the handler is now waiting for the upstream
        s.close()
    time.sleep(0.8)       # the fetches complete after the clients left
    upstream.delay = 0.05
    assert get(free_port, "/parallel")[:2] == (
        200, "a from upstream\nb from upstream\n")
    assert_clean_exit(server)


def test_sigterm_while_a_fetch_runs(spawn, program, free_port, upstream):
    """Graceful stop: the request in flight gets its answer, then exit 0."""
    upstream.delay = 0.5
    server = start(spawn, program, free_port, f"--upstream={upstream.url}")
    result = {}
    t = threading.Thread(
        target=lambda: result.update(r=get(free_port, "/coroutine")[:2]))
    t.start()
    time.sleep(0.2)
    assert_clean_exit(server)
    t.join(10)
    assert result.get("r") == (200, "a from upstream\n")
