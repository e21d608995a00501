"""systemd socket activation: examples/hello started by Debian's
systemd-socket-activate, which listens first, execs the program on the
first connection and passes the socket as fd 3 (LISTEN_FDS/LISTEN_PID)."""
import shutil

import pytest
import requests

from conftest import HOST, wait_for

ACTIVATE = shutil.which("systemd-socket-activate")


@pytest.fixture(autouse=True)
def need_activate():
    assert ACTIVATE, "systemd-socket-activate not installed (make deps-test)"


def get(port, path="/"):
    return requests.get(f"http://{HOST}:{port}{path}", timeout=20)


def test_program_serves_the_socket_systemd_passed(spawn, program, free_port):
    srv = spawn([ACTIVATE, "-l", f"{HOST}:{free_port}", program("hello"),
                 f"--port={free_port}"])
    # systemd-socket-activate is listening already: the first connection
    # waits in its accept queue while hello starts, and is served by it
    assert wait_for(lambda: "Listening on" in srv.log(), 10)
    r = get(free_port)
    assert r.status_code == 200 and r.text == "Hello, world"
    assert get(free_port, "/index").text == "Hello Itcast!"
    log = srv.wait_log("using the socket passed by systemd (fd 3)")
    # hello did not bind a socket of its own (its bind would have failed
    # with EADDRINUSE, or listened on 0.0.0.0 too)
    assert "cannot start" not in log
    assert srv.stop() == 0
    assert srv.log().count("access] 200 GET") == 2


def test_forked_workers_share_the_passed_socket(spawn, program, free_port):
    srv = spawn([ACTIVATE, "-l", f"{HOST}:{free_port}", program("hello"),
                 f"--port={free_port}", "--processes=2"])
    assert wait_for(lambda: "Listening on" in srv.log(), 10)
    assert get(free_port).ok
    srv.wait_log("listening on", count=2)
    for _ in range(50):
        assert get(free_port).text == "Hello, world"
    log = srv.wait_log("access] 200 GET / ", count=51)
    workers = {line.split()[4] for line in log.splitlines()
               if "access] 200 GET / " in line}
    assert workers <= {"0", "1"} and workers
    assert srv.stop() == 0
