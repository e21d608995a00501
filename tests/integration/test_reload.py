"""SIGHUP reloads a multi-process server with no refused or failed request
(process.h): the parent execs its command line again, the new image adopts
the listening sockets, forks new workers and stops the old ones.

Run against examples/hello_http --processes=2 (start form 2), with a client
thread making fresh-connection requests the whole time, and with keep-alive
clients (issue 18: the old workers answer their next request with
Connection: close instead of closing under them). SIGTERM, with keep-alive
clients too, answers every request sent before its deadline."""
import http.client
import os
import shutil
import signal
import socket
import threading
import time

from conftest import HOST, children_of, pid_alive, wait_for


class Load(threading.Thread):
    """Fresh-connection GETs in a loop until stopped (bounded in count and
    time); records every failure."""

    def __init__(self, port, max_requests=20000, max_seconds=60):
        super().__init__(daemon=True)
        self.port = port
        self.max_requests = max_requests
        self.deadline = time.monotonic() + max_seconds
        self.stopping = threading.Event()
        self.ok = 0
        self.failures = []

    def run(self):
        while (not self.stopping.is_set() and self.ok < self.max_requests
               and time.monotonic() < self.deadline):
            conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
            try:
                conn.request("GET", "/", headers={"Connection": "close"})
                resp = conn.getresponse()
                body = resp.read()
                if resp.status == 200 and body == b"Hello, world":
                    self.ok += 1
                else:
                    self.failures.append(f"{resp.status} {body[:60]!r}")
            except OSError as e:
                self.failures.append(repr(e))
            finally:
                conn.close()

    def stop(self):
        self.stopping.set()
        self.join(timeout=30)


def start_workers(spawn, path, port):
    server = spawn([path, f"--port={port}", "--processes=2"])
    server.wait_log("listening on", count=2)
    workers = wait_for(lambda: (lambda k: k if len(k) == 2 else None)(
        children_of(server.pid)), 10)
    assert workers, server.log()
    return server, workers


def sighup_and_wait(server, old):
    """SIGHUP, then waits until two new workers replaced the old ones."""
    server.send_signal(signal.SIGHUP)

    def replaced():
        kids = children_of(server.pid)
        return (len(kids) == 2 and not set(kids) & set(old)
                and not any(pid_alive(p) for p in old))
    assert wait_for(replaced, 30), server.log()


def test_sighup_replaces_every_worker_without_failing_a_request(
        spawn, program, free_port):
    server, old = start_workers(spawn, program("hello_http"), free_port)
    load = Load(free_port)
    load.start()
    try:
        assert wait_for(lambda: load.ok >= 50, 20), load.failures
        sighup_and_wait(server, old)
        served_before = load.ok
        assert wait_for(lambda: load.ok >= served_before + 50, 20)
    finally:
        load.stop()
    assert load.failures == [], load.failures[:5]
    log = server.log()
    assert "SIGHUP: reloading" in log
    assert "stopping 2 old worker(s)" in log
    assert server.proc.poll() is None, "the parent keeps its pid"
    assert server.stop() == 0


def fetch(port):
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", "/")
        return conn.getresponse().read()
    finally:
        conn.close()


def test_sighup_picks_up_a_replaced_binary(spawn, program, free_port,
                                           tmp_path):
    path = tmp_path / "hello_http"
    shutil.copy(program("hello_http"), path)
    server, old = start_workers(spawn, path, free_port)
    # A new build lands: the running image's file is gone.
    fresh = tmp_path / "hello_http.new"
    shutil.copy(program("hello_http"), fresh)
    os.replace(fresh, path)
    assert os.readlink(f"/proc/{server.pid}/exe").endswith("(deleted)")

    server.send_signal(signal.SIGHUP)
    assert wait_for(lambda: not os.readlink(
        f"/proc/{server.pid}/exe").endswith("(deleted)"), 20), server.log()
    assert wait_for(lambda: not any(pid_alive(p) for p in old), 30)
    conn = http.client.HTTPConnection(HOST, free_port, timeout=10)
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"Hello, world"
    conn.close()
    assert server.stop() == 0


def test_failed_exec_keeps_the_old_workers(spawn, program, free_port,
                                           tmp_path):
    path = tmp_path / "hello_http"
    shutil.copy(program("hello_http"), path)
    server, old = start_workers(spawn, path, free_port)
    os.unlink(path)  # nothing left to exec

    server.send_signal(signal.SIGHUP)
    server.wait_log("cannot exec")
    assert children_of(server.pid) == old
    conn = http.client.HTTPConnection(HOST, free_port, timeout=10)
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"Hello, world"
    conn.close()
    assert server.stop() == 0


def test_sigusr1_logs_one_stats_line_per_worker(spawn, program, free_port):
    server, workers = start_workers(spawn, program("hello_http"), free_port)
    for _ in range(5):
        conn = http.client.HTTPConnection(HOST, free_port, timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"Hello, world"
        conn.close()
    server.send_signal(signal.SIGUSR1)
    log = server.wait_log("stats:", count=2)
    lines = [l for l in log.splitlines() if "stats:" in l]
    # Each line names its worker: "[I date time <pid> <task id> http]".
    pids = {int(l.split("]")[0].split()[3]) for l in lines}
    tasks = {l.split("]")[0].split()[4] for l in lines}
    assert pids == set(workers) and tasks == {"0", "1"}, lines
    served = sum(int(l.split(", ")[2].split()[0]) for l in lines)
    assert served == 5, lines
    assert children_of(server.pid) == workers  # nobody died of SIGUSR1
    assert server.stop() == 0


class KeepAliveLoad:
    """Threads that each keep one keep-alive connection (http.client, which
    reconnects after a response that says Connection: close) busy with GETs,
    until stopped; bounded in count and time. Every attempt that fails is
    recorded with when it was sent and whether it opened a new connection."""

    def __init__(self, port, threads=4, max_requests=200000, max_seconds=90):
        self.port = port
        self.max_requests = max_requests
        self.deadline = time.monotonic() + max_seconds
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.closes = []     # when a response said Connection: close
        self.failures = []   # (sent at, new connection?, error)
        self.threads = [threading.Thread(target=self._run, daemon=True)
                        for _ in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()

    def _run(self):
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
        while (not self.stopping.is_set() and self.ok < self.max_requests
               and time.monotonic() < self.deadline):
            fresh = conn.sock is None
            sent_at = time.monotonic()
            try:
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read()
                with self.lock:
                    if resp.status == 200 and body == b"Hello, world":
                        self.ok += 1
                    else:
                        self.failures.append(
                            (sent_at, fresh, f"{resp.status} {body[:60]!r}"))
                    if resp.getheader("Connection", "").lower() == "close":
                        self.closes.append(sent_at)
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.failures.append((sent_at, fresh, repr(e)))
                conn.close()
                if fresh:
                    time.sleep(0.01)  # nobody listening: do not spin
        conn.close()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=30)


def test_keep_alive_load_loses_nothing_across_sighup_reloads(
        spawn, program, free_port):
    server, _ = start_workers(spawn, program("hello_http"), free_port)
    load = KeepAliveLoad(free_port)
    load.start()
    try:
        assert wait_for(lambda: load.ok >= 200, 20), load.failures[:5]
        for _ in range(3):
            sighup_and_wait(server, children_of(server.pid))
            served = load.ok
            assert wait_for(lambda: load.ok >= served + 200, 20), \
                load.failures[:5]
    finally:
        load.stop()
    assert load.failures == [], load.failures[:5]
    # The old workers answered their keep-alive clients with
    # Connection: close instead of closing under them.
    assert load.closes, "no response said Connection: close"
    assert server.log().count("SIGHUP: reloading") == 3
    assert server.stop() == 0


def test_sigterm_answers_every_request_sent_before_its_deadline(
        spawn, program, free_port):
    deadline = 3.0
    server = spawn([program("hello_http"), f"--port={free_port}",
                    f"--shutdown_timeout={deadline}"])
    server.wait_log("listening on")
    load = KeepAliveLoad(free_port)
    load.start()
    try:
        assert wait_for(lambda: load.ok >= 500, 20), load.failures[:5]
        assert load.failures == [], load.failures[:5]
        term_at = time.monotonic()
        server.send_signal(signal.SIGTERM)
        status = server.proc.wait(timeout=deadline + 10)
    finally:
        load.stop()
    # Refused (or dropped from the listen queue as the listener closed) is
    # what a new connection gets once the server stopped accepting: those
    # requests were never accepted. Nothing else may fail before the
    # deadline: not a request on a connection the server had accepted.
    lost = [f for f in load.failures
            if f[0] < term_at + deadline and not (f[1] and f[0] >= term_at)]
    assert lost == [], lost[:5]
    assert [t for t in load.closes if t >= term_at], \
        "no request after SIGTERM was answered with Connection: close"
    assert status == 0, server.log()
    log = server.log()
    assert "signal 15: closing" in log


def test_sigterm_deadline_closes_what_is_left_and_says_how_many(
        spawn, program, free_port):
    server = spawn([program("hello_http"), f"--port={free_port}",
                    "--shutdown_timeout=1"])
    server.wait_log("listening on")
    # Two clients in the middle of a request head (the head timeout is
    # 30 s): only the deadline ends them.
    slow = [socket.create_connection((HOST, free_port)) for _ in range(2)]
    try:
        for s in slow:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        assert fetch(free_port) == b"Hello, world"
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        status = server.proc.wait(timeout=15)
        took = time.monotonic() - started
    finally:
        for s in slow:
            s.close()
    assert status == 0
    assert 0.8 <= took < 5, took
    assert "shutdown deadline (1 s) reached: closing 2 connection(s)" \
        in server.log()

