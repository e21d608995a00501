"""The HTTP/1 server with real clients: curl, requests, http.client (HTTP/1.0),
Tornado's AsyncHTTPClient and raw sockets, against examples/hello_http
(structured responses; /echo and /upload) and examples/raw_http (E1)."""
import hashlib
import http.client
import os
import re
import subprocess

import pytest
import requests

from http_helpers import Server, raw


@pytest.fixture(scope="module")
def hello():
    srv = Server("hello_http")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def rawsrv():
    srv = Server("raw_http")
    yield srv
    srv.stop()


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "20", *args],
                          capture_output=True, timeout=60)


@pytest.mark.h2_client_gap(
    "curl 7.88.1 fails a second URL on a reused h2c prior-knowledge "
    "connection (error 16), against h2o and nghttpd too")
def test_curl_keep_alive_reuses_the_connection(hello):
    r = curl("-v", hello.url + "/", hello.url + "/again")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Hello, worldHello, world"
    assert re.search(rb"Re-?using existing connection", r.stderr), r.stderr


def test_curl_chunked_upload(hello, tmp_path):
    data = os.urandom(300_000)
    f = tmp_path / "up.bin"
    f.write_bytes(data)
    r = curl("-H", "Transfer-Encoding: chunked", "--data-binary",
             "@%s" % f, hello.url + "/echo")
    assert r.returncode == 0, r.stderr
    assert r.stdout == data


@pytest.mark.http1_only("asserts the \"HTTP/1.1 100 Continue\" line curl prints")
def test_curl_expect_100_continue(hello, tmp_path):
    data = os.urandom(5000)
    f = tmp_path / "up.bin"
    f.write_bytes(data)
    r = curl("-v", "-H", "Expect: 100-continue", "--expect100-timeout", "15",
             "--data-binary", "@%s" % f, hello.url + "/echo")
    assert r.returncode == 0, r.stderr
    assert b"HTTP/1.1 100 Continue" in r.stderr
    assert r.stdout == data


@pytest.mark.http1_only("asserts the HTTP/1.1 status line and field-name case "
                        "of curl -I")
def test_curl_head(hello):
    r = curl("-I", hello.url + "/")
    assert r.returncode == 0, r.stderr
    head = r.stdout.decode()
    assert head.startswith("HTTP/1.1 200 OK\r\n")
    assert "Content-Length: 12\r\n" in head
    assert "Server: Gust/" in head and "Date: " in head
    assert head.endswith("\r\n\r\n")


def test_requests_multipart_upload(hello):
    a = os.urandom(200_000)
    b = os.urandom(1234) + b"\r\n--boundary-ish\r\n" + os.urandom(99)
    with requests.Session() as s:
        r = s.post(hello.url + "/upload",
                   files={"first": ("a.bin", a), "second": ("b.bin", b)},
                   data={"field": "value"}, timeout=20)
        assert r.status_code == 200
        body = r.content
        # "<field> <filename> <size>\n" + bytes, for each file in order
        got = {}
        while body:
            line, body = body.split(b"\n", 1)
            field, name, size = line.split(b" ")
            size = int(size)
            got[field.decode()] = (name.decode(), body[:size])
            body = body[size:]
        assert got["first"][0] == "a.bin"
        assert hashlib.sha256(got["first"][1]).digest() == hashlib.sha256(a).digest()
        assert got["second"] == ("b.bin", b)
        # the session kept its connection: a second request works on it
        assert s.get(hello.url + "/").text == "Hello, world"


def test_http_client_http10(hello):
    conn = http.client.HTTPConnection("127.0.0.1", hello.port, timeout=10)
    conn._http_vsn = 10
    conn._http_vsn_str = "HTTP/1.0"
    conn.request("GET", "/")
    r = conn.getresponse()
    assert r.status == 200
    assert r.read() == b"Hello, world"
    assert r.getheader("Connection") == "close"
    conn.close()


def test_tornado_async_http_client(hello):
    from tornado.httpclient import AsyncHTTPClient
    from tornado.ioloop import IOLoop

    async def fetch_all():
        client = AsyncHTTPClient()
        bodies = []
        for i in range(5):
            r = await client.fetch(hello.url + "/t%d" % i)
            bodies.append(r.body)
        r = await client.fetch(hello.url + "/echo", method="POST", body=b"x" * 70000)
        bodies.append(r.body)
        return bodies

    bodies = IOLoop.current().run_sync(fetch_all, timeout=30)
    assert bodies[:5] == [b"Hello, world"] * 5
    assert bodies[5] == b"x" * 70000


def test_raw_pipelining(rawsrv):
    reqs = b"".join(b"GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(10))
    reqs += b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out, closed = raw(rawsrv.port, reqs)
    assert closed
    bodies = re.findall(rb"You requested (\S+)\n", out)
    assert bodies == [b"/p%d" % i for i in range(10)] + [b"/last"]
    assert out.count(b"HTTP/1.1 200 OK\r\n") == 11


def test_raw_e1_answer(rawsrv):
    r = curl("-v", rawsrv.url + "/hello?x=1")
    assert r.stdout == b"You requested /hello?x=1\n"
