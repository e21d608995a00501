"""Shared helpers for the integration tests: find the programs built by
CTest (GUST_BUILD_DIR), pick free ports on 127.0.0.1, and run servers as
child processes that are always stopped, by PID, with bounded waits."""
import os
import signal
import socket
import subprocess
import time

import pytest

BUILD_DIR = os.environ.get("GUST_BUILD_DIR", "")


def program(name):
    """Path of an example program in the build tree."""
    path = os.path.join(BUILD_DIR, "examples", name)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} not built (run through ctest, GUST_BUILD_DIR={BUILD_DIR!r})")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=15.0):
    """Waits until 127.0.0.1:port accepts a connection."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited early with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout}s")


def children_of(pid):
    """PIDs whose parent is pid (from /proc)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is the state, fields[1] the parent pid; zombies do not count.
        if int(fields[1]) == pid and fields[0] != "Z":
            kids.append(int(entry))
    return kids


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """A server process; stop() sends SIGTERM and returns its exit status."""

    def __init__(self, argv, port, **popen):
        self.port = port
        self.log_path = f"/tmp/gust-test-{os.getpid()}-{port}.log"
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     **popen)
        wait_port(port, self.proc)

    @property
    def pid(self):
        return self.proc.pid

    def output(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"server {self.pid} ignored SIGTERM for {timeout}s")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        try:
            os.unlink(self.log_path)
        except OSError:
            pass


@pytest.fixture
def start_server():
    """start_server(argv, port) -> Server; every server is killed at the end."""
    servers = []

    def start(argv, port, **popen):
        s = Server(argv, port, **popen)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()
