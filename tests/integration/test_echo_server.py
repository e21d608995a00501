"""examples/echo_server as a user runs it: the three start forms, worker
restarts, clean shutdown (under ASan a leak would make the exit status
non-zero), the connection cap and running out of file descriptors.
Only 127.0.0.1; every wait is bounded."""
import os
import resource
import signal
import socket
import subprocess
import time

import pytest

from conftest import children_of, connect, cpu_seconds, pid_alive, wait_for

READY = "echo server listening on"


def start_echo(spawn, program, port, *flags, **popen_kw):
    return spawn([program("echo_server"), f"--port={port}", *flags], **popen_kw)


def echo_line(sock, line):
    """Sends line and returns the reply line (bytes, newline stripped)."""
    sock.sendall(line + b"\n")
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed after {reply!r}")
        reply += chunk
    return reply[:-1]


def tagged(sock, line):
    """Echoes line through a --tag-pid server: returns (pid, text)."""
    pid, _, text = echo_line(sock, line).partition(b" ")
    return int(pid), text


def assert_clean_exit(server, workers=()):
    status = server.stop(signal.SIGTERM)
    log = server.log()
    assert status == 0, log
    assert "Sanitizer" not in log, log
    for pid in workers:
        assert wait_for(lambda: not pid_alive(pid), 10), f"{pid} still runs"


def test_listen_mode_echoes_and_exits_cleanly(spawn, program, free_port):
    server = start_echo(spawn, program, free_port, "--mode=listen")
    log = server.wait_log(READY)
    assert f"127.0.0.1:{free_port} (mode listen, pid {server.pid})" in log
    with connect(free_port) as a, connect(free_port) as b:
        assert echo_line(a, b"hello") == b"hello"
        assert echo_line(b, b"second client") == b"second client"
        assert echo_line(a, b"x" * 10000) == b"x" * 10000
        # Left open: shutdown must close them itself.
        assert_clean_exit(server)


def test_line_over_limit_closes_connection(spawn, program, free_port):
    server = start_echo(spawn, program, free_port)
    server.wait_log(READY)
    with connect(free_port) as s:
        s.sendall(b"y" * (64 * 1024 + 10))
        s.settimeout(10)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        assert data == b""
    with connect(free_port) as s:
        assert echo_line(s, b"still serving") == b"still serving"
    assert_clean_exit(server)


def test_unknown_flag_prints_usage(program):
    res = subprocess.run([program("echo_server"), "--bogus"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert "unknown option --bogus" in res.stderr


@pytest.mark.parametrize("args", [["--mode=spawn"], ["--port=eighty"],
                                  ["--processes=-1"]])
def test_bad_flag_values_exit_2(program, args):
    res = subprocess.run([program("echo_server")] + args,
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip()


def test_help_lists_the_flags(program):
    res = subprocess.run([program("echo_server"), "--help"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0
    for flag in ("--port=INT", "--mode=STRING", "--processes=INT",
                 "--max-connections=INT", "--tag-pid"):
        assert flag in res.stdout


@pytest.mark.parametrize("mode", ["start", "sockets"])
def test_two_workers_restart_and_stop(spawn, program, free_port, mode):
    server = start_echo(spawn, program, free_port, f"--mode={mode}",
                        "--processes=2", "--tag-pid")
    server.wait_log(READY, count=2)
    workers = wait_for(lambda: len(children_of(server.pid)) == 2
                       and children_of(server.pid), 10)
    assert workers, server.log()

    # Both workers answer. Which one accepts a connection is the kernel's
    # choice (both wait on the shared socket), and on a busy machine the
    # same one can win every race: so each worker in turn is the only one
    # running (the others stopped), and must answer.
    seen = set()
    for w in workers:
        others = [o for o in workers if o != w]
        for o in others:
            os.kill(o, signal.SIGSTOP)
        try:
            s = connect(free_port)
            try:
                pid, text = tagged(s, b"ping %d" % w)
            finally:
                s.close()
        finally:
            for o in others:
                os.kill(o, signal.SIGCONT)
        assert text == b"ping %d" % w
        seen.add(pid)
    assert seen == set(workers), (seen, workers)

    # A worker killed outright is replaced by a new one.
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    new = wait_for(lambda: (lambda kids: len(kids) == 2 and victim not in kids
                            and kids)(children_of(server.pid)), 20)
    assert new, server.log()
    server.wait_log(READY, count=3)
    fresh = set(new) - set(workers)
    assert len(fresh) == 1
    answered, open_socks = set(), []
    try:
        for i in range(200):
            s = connect(free_port)
            open_socks.append(s)
            pid, _ = tagged(s, b"again")
            answered.add(pid)
            if fresh <= answered:
                break
    finally:
        for s in open_socks:
            s.close()
    assert fresh <= answered, (answered, fresh)
    assert victim not in answered

    assert_clean_exit(server, new)
    # Each worker shut down through its own signal handler.
    log = server.log()
    for pid in new:
        assert any(f" {pid} " in line and "shutting down" in line
                   for line in log.splitlines()), (pid, log)


def test_max_connections(spawn, program, free_port):
    server = start_echo(spawn, program, free_port, "--max-connections=2")
    server.wait_log(READY)
    a = connect(free_port)
    b = connect(free_port)
    assert echo_line(a, b"a") == b"a"
    assert echo_line(b, b"b") == b"b"
    c = connect(free_port)  # completes in the kernel's backlog
    c.sendall(b"c\n")
    c.settimeout(0.5)
    with pytest.raises(socket.timeout):
        c.recv(10)
    a.close()
    c.settimeout(10)
    assert c.recv(10) == b"c\n"
    assert echo_line(b, b"b2") == b"b2"
    b.close()
    c.close()
    assert_clean_exit(server)


def test_out_of_file_descriptors_backs_off(spawn, program, free_port):
    def low_fd_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    server = start_echo(spawn, program, free_port, preexec_fn=low_fd_limit)
    server.wait_log(READY)
    clients = []
    try:
        for _ in range(100):
            clients.append(socket.create_connection(("127.0.0.1", free_port),
                                                    timeout=5))
        server.wait_log("out of file descriptors", timeout=10)
        # Backing off, not spinning: little CPU while the backlog waits.
        before = cpu_seconds(server.pid)
        time.sleep(2.0)
        used = cpu_seconds(server.pid) - before
        assert used < 0.3, f"{used:.2f} s of CPU in 2 s"
        assert server.log().count("out of file descriptors") == 1
    finally:
        for s in clients:
            s.close()
    # Descriptors come back as the clients' connections close.
    server.wait_log("again", timeout=10)
    with connect(free_port) as s:
        s.settimeout(10)
        assert echo_line(s, b"recovered") == b"recovered"
    assert_clean_exit(server)
