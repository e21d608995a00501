"""The responses of one batch of pipelined requests go out in one system
call (include/gust/http_server.h, THE DATA PATH), checked with strace on the
example servers.

Why exactly one: the ten requests are sent with one sendall() of a few
hundred bytes on loopback, so they reach the server's socket together and
its single read returns them all. The connection then parses and answers
every buffered request before it returns to the loop, gathering the
responses, and writes them once at the end of the batch. (Were the first
request answered before the rest were parsed, there would be 2 writes; the
server does not work that way, so the test asserts 1.)

strace cannot see inside io_uring_enter, so the servers run with
GUST_IO_URING=0 (one sendmsg per send, src/loop_batch.c unused). With
io_uring the same gathered bytes are one send operation of the turn's
batch: the gathering is the stream's and the HTTP layer's, not the loop's."""
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from http_helpers import BUILD_DIR, free_port

STRACE = "/usr/bin/strace"

# 1234  write(5, "HTTP/1.1 200 OK\r\n...", 120) = 120
CALL = re.compile(r'^(\d+)\s+(write|writev|sendmsg|sendto)\((\d+),(.*)'
                  r'=\s*(-?\d+)')
ACCEPT = re.compile(r'^(\d+)\s+accept4?\(.*=\s*(\d+)')


def read_responses(sock, count, timeout=10.0):
    """Reads count responses (each with a Content-Length)."""
    sock.settimeout(timeout)
    data = b""
    got = []
    while len(got) < count:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            m = re.search(rb"content-length:\s*(\d+)", data[:end].lower())
            assert m, data[:end]
            total = end + 4 + int(m.group(1))
            if len(data) >= total:
                got.append(data[:total])
                data = data[total:]
                continue
        d = sock.recv(65536)
        assert d, "server closed after %d responses" % len(got)
        data += d
    return got


@pytest.mark.parametrize("name", ["raw_http", "hello_http"])
def test_pipelined_batch_is_one_write(tmp_path, name):
    if not os.access(STRACE, os.X_OK):
        pytest.skip("needs /usr/bin/strace (Debian package strace)")
    if not BUILD_DIR:
        pytest.fail("GUST_BUILD_DIR is not set (run through ctest)")
    path = os.path.join(BUILD_DIR, "examples", name)
    assert os.access(path, os.X_OK), path
    trace = str(tmp_path / "strace.txt")
    port = free_port()
    # LeakSanitizer cannot run under ptrace; the other HTTP integration
    # tests check the examples for leaks.
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                           ":detect_leaks=0").lstrip(":")
    env["GUST_IO_URING"] = "0"
    proc = subprocess.Popen(
        [STRACE, "-f", "-qq", "-s", "0",
         "-e", "trace=write,writev,sendmsg,sendto,accept,accept4",
         "-o", trace, path, "--port=%d" % port],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 30
        while True:
            try:
                probe = socket.create_connection(("127.0.0.1", port), 0.5)
                probe.close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.time() < deadline, "%s did not start" % name
                time.sleep(0.05)
        reqs = b"".join(b"GET /r%d HTTP/1.1\r\nHost: a\r\n\r\n" % i
                        for i in range(10))
        with socket.create_connection(("127.0.0.1", port), 10) as s:
            s.sendall(reqs)
            resps = read_responses(s, 10)
        for i, r in enumerate(resps):
            assert r.startswith(b"HTTP/1.1 200 "), r
            if name == "raw_http":
                assert b"You requested /r%d\n" % i in r
        # The server's child is the traced program: stop it, not strace.
        kids = open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)).read()
        server_pid = int(kids.split()[0])
        os.kill(server_pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = open(trace).read().splitlines()
    # The second accepted connection is ours (the first is the probe).
    accepted = [int(m.group(2)) for m in map(ACCEPT.match, lines) if m]
    assert len(accepted) >= 2, lines
    fd = accepted[1]
    conn_writes = []
    for line in lines:
        m = CALL.match(line)
        if m and int(m.group(3)) == fd:
            conn_writes.append((m.group(2), int(m.group(5))))
    total = sum(len(r) for r in resps)
    assert conn_writes == [(conn_writes[0][0], total)], conn_writes
