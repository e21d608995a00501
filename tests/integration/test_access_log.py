"""The access log of examples/hello as an operator reads it (issue 13):
the line formats, the client address behind a proxy (xheaders), no line
lost at exit or split between workers, rotation of the log file, and no
write system call per request (strace)."""
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import HOST, HTTP2, children_of, wait_for

TORNADO_LINE = re.compile(
    r"^\[([IWE]) (\d{6} \d\d:\d\d:\d\d) (\d+) (-|\d+) access\] "
    r"(\d{3}) (\S+) (\S+) \((\S+)\) (\d+\.\d\dms|\d+us)$")
# The request line's version in the CLF formats: the protocol that carried
# the request.
VERSION = "HTTP/2.0" if HTTP2 else "HTTP/1.1"
CLF_LINE = re.compile(
    r'^(\S+) - (\S+) \[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] '
    r'"((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-)'
    r'(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")?(?: (\d+))?$')


def start_hello(spawn, program, port, *args, env=None):
    srv = spawn([program("hello"), f"--port={port}", "--address=127.0.0.1",
                 *args], env=env)
    srv.wait_log("listening on")
    return srv


def access_lines(text, pattern):
    return [m for m in map(pattern.match, text.splitlines()) if m]


def fetch(port, path="/", n=1, **kw):
    with requests.Session() as s:
        for _ in range(n):
            r = s.get(f"http://{HOST}:{port}{path}", timeout=10, **kw)
    return r


def test_tornado_format_is_the_default(spawn, program, free_port):
    srv = start_hello(spawn, program, free_port)
    fetch(free_port, "/?a=1")
    fetch(free_port, "/missing")
    assert srv.stop() == 0
    lines = access_lines(srv.log(), TORNADO_LINE)
    assert [(m[1], m[5], m[6], m[7], m[8]) for m in lines] == [
        ("I", "200", "GET", "/?a=1", "127.0.0.1"),
        ("W", "404", "GET", "/missing", "127.0.0.1")]
    assert all(m[3] == str(srv.pid) and m[4] == "-" for m in lines)
    assert all(m[9].endswith("ms") for m in lines)
    # the date and time are now's (the prefix is cached per second)
    for m in lines:
        when = time.mktime(time.strptime(m[2], "%y%m%d %H:%M:%S"))
        assert abs(when - time.time()) < 30


def test_microseconds(spawn, program, free_port):
    srv = start_hello(spawn, program, free_port, "--access_log_us")
    fetch(free_port)
    assert srv.stop() == 0
    (m,) = access_lines(srv.log(), TORNADO_LINE)
    assert m[9].endswith("us") and int(m[9][:-2]) >= 0


def test_combined_format(spawn, program, free_port):
    srv = start_hello(spawn, program, free_port, "--access_log=combined",
                      "--access_log_us")
    fetch(free_port, "/index?q=%22x%22",
          headers={"User-Agent": 'agent "quoted" \\ back',
                   "Referer": "http://example.test/from"})
    assert srv.stop() == 0
    (m,) = access_lines(srv.log(), CLF_LINE)
    assert m[1] == "127.0.0.1" and m[2] == "-"
    assert m[4] == "GET /index?q=%22x%22 " + VERSION
    assert m[5] == "200" and m[6] == str(len("Hello Itcast!"))
    assert m[7] == "http://example.test/from"
    assert m[8] == r'agent \"quoted\" \\ back'
    assert int(m[9]) >= 0  # request time in microseconds, as Apache's %D


def test_common_format(spawn, program, free_port):
    srv = start_hello(spawn, program, free_port, "--access_log=common")
    r = requests.head(f"http://{HOST}:{free_port}/", timeout=10)
    assert r.status_code == 405 or r.status_code == 200
    fetch(free_port)
    assert srv.stop() == 0
    lines = access_lines(srv.log(), CLF_LINE)
    assert len(lines) == 2
    assert lines[1][4] == "GET / " + VERSION and lines[1][6] == "12"
    assert lines[1][7] is None and lines[1][9] is None  # no combined fields
    assert lines[0][4] == "HEAD / " + VERSION and lines[0][6] == "0"


def test_json_format(spawn, program, free_port):
    srv = start_hello(spawn, program, free_port, "--access_log=json")
    fetch(free_port, "/?x=\u00e9", headers={"User-Agent": "caf\u00e9"})
    fetch(free_port, "/nowhere")
    assert srv.stop() == 0
    objs = [json.loads(line) for line in srv.log().splitlines()
            if line.startswith("{")]
    assert len(objs) == 2
    assert objs[0]["status"] == 200 and objs[0]["method"] == "GET"
    assert objs[0]["uri"] == "/?x=%C3%A9"
    assert objs[0]["remote_ip"] == "127.0.0.1"
    assert objs[0]["bytes"] == 12 and objs[0]["handler"] == "MainHandler"
    assert isinstance(objs[0]["request_time_us"], int)
    assert objs[0]["time"].endswith("Z") and objs[0]["worker"] is None
    assert objs[1]["status"] == 404


def test_json_line_stays_valid_with_bytes_that_are_not_utf8(
        spawn, program, free_port):
    srv = start_hello(spawn, program, free_port, "--access_log=json")
    import socket
    with socket.create_connection((HOST, free_port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: a\xff\xfeb\"\r\n"
                  b"Connection: close\r\n\r\n")
        while s.recv(4096):
            pass
    assert srv.stop() == 0
    (obj,) = [json.loads(line) for line in srv.log().splitlines()
              if line.startswith("{")]
    assert obj["user_agent"] == "a\ufffd\ufffdb\""


def test_client_address_honours_xheaders(spawn, program, free_port):
    srv = start_hello(spawn, program, free_port, "--xheaders")
    fetch(free_port, headers={"X-Real-Ip": "203.0.113.7"})
    fetch(free_port, headers={"X-Forwarded-For": "198.51.100.1, 192.0.2.9"})
    assert srv.stop() == 0
    assert [m[8] for m in access_lines(srv.log(), TORNADO_LINE)] == [
        "203.0.113.7", "192.0.2.9"]


def test_xheaders_ignored_when_off(spawn, program, free_port):
    srv = start_hello(spawn, program, free_port)
    fetch(free_port, headers={"X-Real-Ip": "203.0.113.7"})
    assert srv.stop() == 0
    assert [m[8] for m in access_lines(srv.log(), TORNADO_LINE)] == [
        "127.0.0.1"]


def test_lines_appear_soon_while_idle(spawn, program, free_port):
    """Buffered lines are written within the flush interval even when no
    other request comes to end a loop turn."""
    srv = start_hello(spawn, program, free_port)
    fetch(free_port, "/index")
    srv.wait_log("GET /index", timeout=2.0)
    assert srv.proc.poll() is None


def test_no_line_lost_at_exit(spawn, program, free_port):
    srv = start_hello(spawn, program, free_port)
    fetch(free_port, n=300)
    assert srv.stop() == 0
    assert len(access_lines(srv.log(), TORNADO_LINE)) == 300


def test_workers_sharing_a_pipe_never_split_a_line(program, free_port):
    """Two workers write to one pipe (as under systemd or docker); every
    line arrives whole and none is lost."""
    proc = subprocess.Popen(
        [program("hello"), f"--port={free_port}", "--address=127.0.0.1",
         "--processes=2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL)
    chunks = []
    reader = threading.Thread(target=lambda: chunks.extend(
        iter(lambda: proc.stderr.read(65536), b"")), daemon=True)
    reader.start()
    try:
        ok = wait_for(lambda: _answers(free_port), 20)
        assert ok
        n = 0
        for _ in range(8):
            with requests.Session() as s:
                for _ in range(250):
                    # long URIs make lines long, so a batch is many KiB
                    s.get(f"http://{HOST}:{free_port}/?" + "p" * 300,
                          timeout=10)
                    n += 1
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = b"".join(chunks).decode()
    access = [line for line in text.splitlines() if "access]" in line]
    good = access_lines(text, TORNADO_LINE)
    assert len(good) == len(access)
    # the probe of _answers is logged too
    assert len([m for m in good if len(m[7]) > 300]) == n


def _answers(port):
    try:
        return requests.get(f"http://{HOST}:{port}/", timeout=2).ok
    except requests.RequestException:
        return False


def test_log_file_rotation_keeps_every_line_whole(spawn, program, free_port,
                                                  tmp_path):
    path = tmp_path / "access.log"
    srv = spawn([program("hello"), f"--port={free_port}",
                 "--address=127.0.0.1", f"--log-file-prefix={path}",
                 "--log-file-max-size=4000", "--log-file-num-backups=50"])
    assert wait_for(lambda: _answers(free_port), 20)
    fetch(free_port, "/index", n=200)
    assert srv.stop() == 0
    files = [path] + sorted(tmp_path.glob("access.log.*"),
                            key=lambda p: -int(p.suffix[1:]))
    assert len(files) > 3
    lines = []
    for f in files:
        data = f.read_text()
        assert len(data) <= 4000
        assert data.endswith("\n")
        lines += data.splitlines()
    access = [line for line in lines if "access]" in line]
    assert len(access) == 201  # with the probe of _answers
    assert all(TORNADO_LINE.match(line) for line in access)


def test_keep_alive_load_makes_no_write_per_request(program, free_port,
                                                    tmp_path):
    """strace counts the server's write calls during 400 keep-alive
    requests: the access log must not add one per request."""
    trace = tmp_path / "trace"
    proc = subprocess.Popen(
        ["strace", "-f", "-qq", "-e", "trace=write,writev,ioctl,getpid",
         "-o", str(trace), program("hello"), f"--port={free_port}",
         "--address=127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        # LeakSanitizer cannot work under ptrace (and would add its calls)
        env={**os.environ, "GUST_IO_URING": "0",
             "ASAN_OPTIONS": "detect_leaks=0"})
    try:
        assert wait_for(lambda: _answers(free_port), 30)
        mark = trace.stat().st_size
        fetch(free_port, n=400)
        (server,) = children_of(proc.pid)  # strace's child: hello itself
        os.kill(server, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(access_lines(err.decode(), TORNADO_LINE)) == 401
    calls = trace.read_text()[mark:].splitlines()
    log_writes = [c for c in calls if re.search(r"\bwrite\(2,", c)]
    ioctls = [c for c in calls if "ioctl(2" in c]
    getpids = [c for c in calls if "getpid()" in c]
    # 400 requests over ~1 s: a write per 50 ms at most, plus the exit's
    assert len(log_writes) < 40, "\n".join(log_writes[:5])
    assert not ioctls and not getpids
