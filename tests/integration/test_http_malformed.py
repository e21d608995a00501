"""Malformed requests and request-smuggling attempts over raw sockets
against examples/raw_http: each gets its status, Connection: close, and the
connection is closed; the handler never answers them. A well-formed request
afterwards still works (the server survived)."""
import pytest

from http_helpers import Server, raw


@pytest.fixture(scope="module")
def srv():
    s = Server("raw_http")
    yield s
    err = s.stop()
    # one warning line per rejected request, with the peer address
    assert err.count("127.0.0.1: 4") + err.count("127.0.0.1: 5") >= len(CASES)


CASES = [
    # framing / syntax
    (b"GET / HTTP/1.1\nHost: a\n\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHo\x01st: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n", 400),
    (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    (b"GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400),
    # smuggling
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
     b"Content-Length: 5\r\n\r\nabcde", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\nabcd", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
     400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     501),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"4\r\nabcdXX\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"-1\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"4\nabcd\r\n0\r\n\r\n", 400),
    # limits
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431),
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    # more fields than max_header_count (256 by default, Host included)
    (b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X%d: 1\r\n" % i for i in range(256))
     + b"\r\n", 431),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 200000000\r\n\r\n", 413),
    (b"GET / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n", 417),
]


@pytest.mark.parametrize("request_bytes,status", CASES,
                         ids=[str(i) for i in range(len(CASES))])
def test_malformed(srv, request_bytes, status):
    out, closed = raw(srv.port, request_bytes)
    assert out.startswith(b"HTTP/1.1 %d " % status), out[:80]
    assert b"Connection: close\r\n" in out
    assert b"You requested" not in out
    assert closed


def test_smuggled_second_request_is_not_answered(srv):
    # A request hidden in a body that a lenient parser would see as two.
    out, closed = raw(srv.port,
                      b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n"
                      b"Content-Length: 44\r\n\r\n"
                      b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 ")
    assert b"smuggled" not in out
    assert closed


def test_server_survives(srv):
    out, closed = raw(srv.port,
                      b"GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert out.endswith(b"You requested /ok\n")
    assert closed
