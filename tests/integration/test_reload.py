"""SIGHUP reloads a multi-process server with no refused or failed request
(process.h): the parent execs its command line again, the new image adopts
the listening sockets, forks new workers and stops the old ones.

Run against examples/hello_http --processes=2 (start form 2)."""
import http.client
import os
import shutil
import signal

from conftest import HOST, children_of, pid_alive, wait_for


def start_workers(spawn, path, port):
    server = spawn([path, f"--port={port}", "--processes=2"])
    server.wait_log("listening on", count=2)
    workers = wait_for(lambda: (lambda k: k if len(k) == 2 else None)(
        children_of(server.pid)), 10)
    assert workers, server.log()
    return server, workers


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
