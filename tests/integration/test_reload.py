"""SIGHUP reloads a multi-process server with no refused or failed request
(process.h): the parent execs its command line again, the new image adopts
the listening sockets, forks new workers and stops the old ones.

Run against examples/hello_http --processes=2 (start form 2), with a client
thread making fresh-connection requests the whole time."""
import http.client
import os
import shutil
import signal
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


def test_sighup_replaces_every_worker_without_failing_a_request(
        spawn, program, free_port):
    server, old = start_workers(spawn, program("hello_http"), free_port)
    load = Load(free_port)
    load.start()
    try:
        assert wait_for(lambda: load.ok >= 50, 20), load.failures
        server.send_signal(signal.SIGHUP)

        def replaced():
            kids = children_of(server.pid)
            return (len(kids) == 2 and not set(kids) & set(old)
                    and not any(pid_alive(p) for p in old))
        assert wait_for(replaced, 30), server.log()
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
