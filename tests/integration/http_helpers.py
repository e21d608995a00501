"""Starts a Gust example server on a free 127.0.0.1 port for the HTTP
integration tests, and stops it with SIGTERM, checking it exits 0 (ASan
reports leaks through the exit status)."""
import os
import socket
import subprocess
import time

import pytest

BUILD_DIR = os.environ.get("GUST_BUILD_DIR")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name, *args):
        if not BUILD_DIR:
            pytest.fail("GUST_BUILD_DIR is not set (run through ctest)")
        path = os.path.join(BUILD_DIR, "examples", name)
        assert os.access(path, os.X_OK), path
        self.port = free_port()
        self.proc = subprocess.Popen(
            [path, "--port=%d" % self.port, *args],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            self.proc.kill()
            pytest.fail("%s did not start" % name)
        self.url = "http://127.0.0.1:%d" % self.port

    def stop(self):
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=30)
        assert "listening on" in err
        assert self.proc.returncode == 0, err
        return err


def raw(port, data, timeout=5.0, shut=False):
    """Sends data on a new connection and reads until the server closes (or
    timeout). Returns (bytes received, closed by the server)."""
    s = socket.create_connection(("127.0.0.1", port), timeout)
    s.sendall(data)
    if shut:
        s.shutdown(socket.SHUT_WR)
    out = b""
    closed = False
    try:
        while True:
            d = s.recv(65536)
            if not d:
                closed = True
                break
            out += d
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    return out, closed
