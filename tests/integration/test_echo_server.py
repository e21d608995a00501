"""examples/echo_server with real sockets: the three start forms, workers
restarted when killed, clean exits under ASan (leaks fail), the connection
cap, and no busy loop when the process runs out of file descriptors."""
import os
import resource
import signal
import socket
import time

import pytest

from conftest import children_of, cpu_seconds, free_port, program


def echo(sock, line):
    sock.sendall(line)
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the echo arrived"
        data += chunk
    return data


def pids_answering(port, want, rounds=10, per_round=20, must=None):
    """Opens bursts of concurrent connections until `want` distinct worker
    pids (including `must`, if given) have answered (bounded: rounds x
    per_round connections)."""
    pids = set()
    for _ in range(rounds):
        socks = [socket.create_connection(("127.0.0.1", port), timeout=10)
                 for _ in range(per_round)]
        for s in socks:
            s.sendall(b"who\n")
        for s in socks:
            reply = s.makefile("rb").readline()
            pid, text = reply.split(b" ", 1)
            assert text == b"who\n"
            pids.add(int(pid))
            s.close()
        if len(pids) >= want and (must is None or must in pids):
            break
    return pids


def test_listen_single_process_echoes_and_exits_clean(start_server):
    port = free_port()
    srv = start_server([program("echo_server"), f"--port={port}"], port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        assert echo(s, b"hello\n") == b"hello\n"
        assert echo(s, b"two words\n") == b"two words\n"
        # Several lines in one write come back in order.
        s.sendall(b"a\nb\nc\n")
        got = b""
        while got.count(b"\n") < 3:
            got += s.recv(100)
        assert got == b"a\nb\nc\n"
        big = b"x" * 60000 + b"\n"
        assert echo(s, big) == big
    # A line over the 64 KiB limit closes the connection (with a reset, as
    # the server leaves unread bytes behind), echoing nothing.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"y" * 70000)
        s.settimeout(10)
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        assert data == b""
    assert srv.stop() == 0, srv.output()
    assert "echo server listening on 127.0.0.1:%d (mode listen" % port in srv.output()


@pytest.mark.parametrize("mode", ["start", "sockets"])
def test_two_workers_answer_and_killed_worker_is_restarted(start_server, mode):
    port = free_port()
    srv = start_server([program("echo_server"), f"--port={port}", f"--mode={mode}",
                        "--processes=2", "--tag-pid"], port)
    deadline = time.monotonic() + 15
    while len(children_of(srv.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = set(children_of(srv.pid))
    assert len(workers) == 2

    answered = pids_answering(port, 2)
    assert answered == workers, srv.output()

    victim = sorted(workers)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        now = set(children_of(srv.pid))
        if len(now) == 2 and victim not in now:
            break
        time.sleep(0.05)
    now = set(children_of(srv.pid))
    assert len(now) == 2 and victim not in now, srv.output()
    replacement = (now - workers).pop()
    # The new worker serves (it may take a few bursts to be the one woken).
    assert replacement in pids_answering(port, 2, rounds=30, must=replacement)
    assert f"killed by signal {signal.SIGKILL}, restarting" in srv.output()

    # SIGTERM to the parent stops everything, cleanly.
    assert srv.stop() == 0, srv.output()
    for pid in now:
        assert not os.path.exists(f"/proc/{pid}") or \
            open(f"/proc/{pid}/stat").read().split(")")[1].split()[0] == "Z"


def test_max_connections_holds_third_client(start_server):
    port = free_port()
    srv = start_server([program("echo_server"), f"--port={port}",
                        "--max-connections=2"], port)
    # wait_port's probe connection must be gone before counting.
    time.sleep(0.3)
    a = socket.create_connection(("127.0.0.1", port), timeout=10)
    b = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert echo(a, b"a\n") == b"a\n"
    assert echo(b, b"b\n") == b"b\n"
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    c.sendall(b"c\n")
    c.settimeout(0.5)
    with pytest.raises(socket.timeout):
        c.recv(10)
    a.close()
    c.settimeout(10)
    assert c.makefile("rb").readline() == b"c\n"
    b.close()
    c.close()
    assert srv.stop() == 0, srv.output()


def test_out_of_descriptors_backs_off_without_spinning(start_server):
    port = free_port()
    limit = 64

    def lower_fd_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    srv = start_server([program("echo_server"), f"--port={port}"], port,
                       preexec_fn=lower_fd_limit)
    clients = []
    for _ in range(100):
        clients.append(socket.create_connection(("127.0.0.1", port), timeout=10))
    time.sleep(0.5)
    before = cpu_seconds(srv.pid)
    time.sleep(2.0)
    used = cpu_seconds(srv.pid) - before
    assert used < 0.3, f"server used {used:.2f}s of CPU in 2s while out of fds"
    assert "Too many open files" in srv.output()
    for s in clients:
        s.close()
    # Once descriptors are free again, new connections are served.
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.settimeout(5)
                assert echo(s, b"back\n") == b"back\n"
                break
        except (OSError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert srv.stop() == 0, srv.output()
