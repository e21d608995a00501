"""Shared helpers for the integration tests: find the built programs, pick
free ports on 127.0.0.1, start servers and stop them by PID, with every wait
bounded.

Fixtures:
    build_dir   GUST_BUILD_DIR (set by CTest); fails the test if unset.
    program     program("echo_server") -> path of build_dir/examples/echo_server.
    free_port   a port on 127.0.0.1 that was free a moment ago.
    spawn       spawn([path, args...], **popen_kw) -> Server; every server
                still running at the end of the test is SIGKILLed (by PID).

Plain helpers (import them with `from conftest import ...`): wait_for,
connect, children_of, cpu_seconds, pid_alive.

The HTTP/2 switch: with GUST_TEST_HTTP2=1 in the environment (the
integration_*_h2 CTest entries), every requests.Session, and so every
requests.get(), sends its requests over HTTP/2 (h2_adapter.py), so does
curl (h2_bin/curl, first in PATH: prior knowledge), and a test
marked @pytest.mark.http1_only("why") is skipped: only those whose
assertion is about HTTP/1 framing itself. A test marked
@pytest.mark.h2_client_gap("why") is skipped too: what it checks is the
server's right HTTP/2 behaviour, but Debian's HTTP/2 client (httpx 0.23 on
httpcore 0.16 and h2 4.1) cannot receive it (the reason says what, and
which client was used by hand instead). HTTP2 says whether it is on.
"""
import os
import signal
import socket
import subprocess
import time

import pytest

HOST = "127.0.0.1"
HTTP2 = os.environ.get("GUST_TEST_HTTP2") == "1"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "http1_only(reason): asserts HTTP/1 framing; skipped "
        "when the suite runs over HTTP/2 (GUST_TEST_HTTP2=1)")
    config.addinivalue_line(
        "markers", "h2_client_gap(reason): over HTTP/2 the test client "
        "(httpx/httpcore/h2) cannot do what the test needs; skipped when "
        "GUST_TEST_HTTP2=1")
    if HTTP2:
        import h2_adapter
        h2_adapter.install()
        # curl too: h2_bin/curl adds --http2-prior-knowledge.
        here = os.path.dirname(os.path.abspath(__file__))
        os.environ["PATH"] = (os.path.join(here, "h2_bin") + os.pathsep +
                              os.environ.get("PATH", ""))
        import tempfile
        fd, path = tempfile.mkstemp(prefix="gust-h2-curl.")
        os.close(fd)
        os.environ["GUST_H2_CURL_COUNT"] = path


def pytest_unconfigure(config):
    path = os.environ.pop("GUST_H2_CURL_COUNT", None)
    if path:
        os.unlink(path)


def _h2_calls():
    """HTTP/2 exchanges so far: responses through requests, curl calls."""
    import h2_adapter
    with open(os.environ["GUST_H2_CURL_COUNT"], "rb") as f:
        return h2_adapter.responses + f.read().count(b"\n")


def pytest_collection_modifyitems(config, items):
    if not HTTP2:
        return
    for item in items:
        for name, label in (("http1_only", "HTTP/1 only"),
                            ("h2_client_gap", "HTTP/2 client cannot")):
            marker = item.get_closest_marker(name)
            if marker is not None:
                reason = marker.args[0] if marker.args else label
                item.add_marker(pytest.mark.skip(reason=f"{label}: {reason}"))


_without_h2 = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    if not HTTP2:
        yield
        return
    before = _h2_calls()
    yield
    if _h2_calls() == before:
        _without_h2.append(item.nodeid)


def pytest_terminal_summary(terminalreporter):
    # Over HTTP/2 only requests and curl change protocol: say which tests
    # used neither (their clients are Tornado's, http.client, raw sockets:
    # still HTTP/1, so they passing says nothing about HTTP/2).
    if HTTP2 and _without_h2:
        terminalreporter.write_line(
            f"{len(_without_h2)} test(s) used no HTTP/2 client "
            "(HTTP/1 clients only): " + ", ".join(
                n.split("::", 1)[-1] for n in _without_h2))


def pytest_report_header(config):
    return ("requests over HTTP/2 (GUST_TEST_HTTP2=1)" if HTTP2
            else "requests over HTTP/1.1")


def wait_for(predicate, timeout, interval=0.05):
    """Calls predicate until it returns something truthy, at most timeout
    seconds. Returns that value, or None on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def connect(port, timeout=10.0):
    """A socket connected to 127.0.0.1:port, retrying until the server is up
    (at most timeout seconds). Raises on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection((HOST, port), timeout=5.0)
        except OSError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _stat_fields(pid):
    """Fields of /proc/pid/stat after the command name, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2:].split()


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def children_of(pid):
    """PIDs of the live (non-zombie) children of pid, from a scan of /proc."""
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(name)
        if fields and int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            kids.append(int(name))
    return sorted(kids)


def cpu_seconds(pid):
    """User + system CPU time of pid, in seconds."""
    fields = _stat_fields(pid)
    # utime and stime are fields 14 and 15 of stat; fields[] starts at 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """A started program whose stderr and stdout go to a log file."""

    def __init__(self, args, log_path, **popen_kw):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self._log,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, **popen_kw)
        self.pid = self.proc.pid

    def log(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()

    def wait_log(self, text, count=1, timeout=20.0):
        """Waits until text appears count times in the log; returns the
        log, or fails the test on timeout (or if the program exits)."""
        def seen():
            log = self.log()
            if log.count(text) >= count:
                return log
            if self.proc.poll() is not None:
                pytest.fail(f"exited with {self.proc.returncode} before "
                            f"logging {text!r}:\n{log}")
            return None
        log = wait_for(seen, timeout)
        if log is None:
            pytest.fail(f"{text!r} not logged {count} time(s) within "
                        f"{timeout} s:\n{self.log()}")
        return log

    def send_signal(self, signum):
        if self.proc.poll() is None:
            os.kill(self.pid, signum)

    def stop(self, signum=signal.SIGTERM, timeout=20.0):
        """Sends signum and waits for the exit; returns the exit status
        (negative: killed by that signal). SIGKILLs it on timeout and fails."""
        self.send_signal(signum)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"pid {self.pid} did not exit within {timeout} s "
                        f"after signal {signum}:\n{self.log()}")

    def kill(self):
        """SIGKILLs the program and any live children it left."""
        kids = children_of(self.pid)
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for kid in kids:
            try:
                os.kill(kid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log.close()


@pytest.fixture
def build_dir():
    path = os.environ.get("GUST_BUILD_DIR")
    if not path:
        pytest.fail("GUST_BUILD_DIR is not set (run through ctest)")
    return path


@pytest.fixture
def program(build_dir):
    def find(name):
        path = os.path.join(build_dir, "examples", name)
        assert os.access(path, os.X_OK), f"{path} is not built"
        return path
    return find


@pytest.fixture
def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@pytest.fixture
def spawn(tmp_path):
    started = []

    def start(args, **popen_kw):
        log_path = tmp_path / f"server{len(started)}.log"
        server = Server([str(a) for a in args], log_path, **popen_kw)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()
