"""RFC 6455 / RFC 7692 conformance of Gust's WebSocket server, driven by raw
sockets against examples/ws_echo: one case per rule, each with the outcome
the RFC asks for (an echo, a pong, or a close code then the TCP close).
The server runs with --max-message-size=65536 and --compression."""
import socket
import struct
import time
import zlib

import pytest

from conftest import connect
from ws_helpers import (BINARY, CLOSE, CONT, PING, PONG, TEXT, Peer, accept_for,
                        close_payload, deflate, frame, read_head, request)

MAX = 65536


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import os
    import subprocess
    build = os.environ.get("GUST_BUILD_DIR")
    if not build:
        pytest.fail("GUST_BUILD_DIR is not set (run through ctest)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("ws") / "ws_echo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([os.path.join(build, "examples", "ws_echo"),
                                 f"--port={port}", "--address=127.0.0.1",
                                 f"--max-message-size={MAX}", "--compression"],
                                stdout=out, stderr=subprocess.STDOUT)
    connect(port).close()
    yield port
    proc.terminate()
    try:
        rc = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("ws_echo did not exit on SIGTERM")
    # Under ASan a leak makes the exit status non-zero.
    assert rc == 0, open(log).read()


# ---- Framing: (name, frames sent, expected) -------------------------------
# expected: ("echo", [(opcode, payload), ...]) | ("close", code) |
#           ("pong", payload) then echo

def f(*a, **k):
    return frame(*a, **k)


FRAMING = [
    ("text", [f(TEXT, "hello")], ("echo", [(TEXT, b"hello")])),
    ("binary", [f(BINARY, b"\x00\xff\x01")], ("echo", [(BINARY, b"\x00\xff\x01")])),
    ("empty text", [f(TEXT, b"")], ("echo", [(TEXT, b"")])),
    ("16-bit length", [f(TEXT, b"a" * 300)], ("echo", [(TEXT, b"a" * 300)])),
    ("64-bit length", [f(BINARY, b"b" * 65536)], ("echo", [(BINARY, b"b" * 65536)])),
    ("several in one write", [f(TEXT, "1") + f(TEXT, "2") + f(BINARY, b"3")],
     ("echo", [(TEXT, b"1"), (TEXT, b"2"), (BINARY, b"3")])),
    ("unmasked client frame", [f(TEXT, "x", mask=False)], ("close", 1002)),
    ("reserved opcode 3", [f(3, "x")], ("close", 1002)),
    ("reserved opcode 7", [f(7, "x")], ("close", 1002)),
    ("reserved control opcode 0xB", [f(0xB, "x")], ("close", 1002)),
    ("reserved control opcode 0xF", [f(0xF, "x")], ("close", 1002)),
    ("RSV1 not negotiated", [f(TEXT, "x", rsv=4)], ("close", 1002)),
    ("RSV2", [f(TEXT, "x", rsv=2)], ("close", 1002)),
    ("RSV3", [f(TEXT, "x", rsv=1)], ("close", 1002)),
    ("ping of 126 bytes", [f(PING, b"p" * 126)], ("close", 1002)),
    ("fragmented ping", [f(PING, b"p", fin=False)], ("close", 1002)),
    ("fragmented close", [f(CLOSE, close_payload(1000), fin=False)], ("close", 1002)),
    ("64-bit length with top bit", [bytes([0x82, 0xFF]) + b"\x80" + b"\0" * 7 + b"mask"],
     ("close", 1002)),
    ("fragments", [f(TEXT, "ab", fin=False), f(CONT, "cd", fin=False), f(CONT, "ef")],
     ("echo", [(TEXT, b"abcdef")])),
    ("empty fragments", [f(BINARY, b"", fin=False), f(CONT, b"", fin=False), f(CONT, b"z")],
     ("echo", [(BINARY, b"z")])),
    ("ping between fragments", [f(TEXT, "ab", fin=False), f(PING, "hi"), f(CONT, "cd")],
     ("echo", [(PONG, b"hi"), (TEXT, b"abcd")])),
    ("continuation of nothing", [f(CONT, "x")], ("close", 1002)),
    ("text inside a fragmented message",
     [f(TEXT, "a", fin=False), f(TEXT, "b")], ("close", 1002)),
    ("binary inside a fragmented message",
     [f(TEXT, "a", fin=False), f(BINARY, b"b")], ("close", 1002)),
    ("ping", [f(PING, b"payload")], ("echo", [(PONG, b"payload")])),
    ("empty ping", [f(PING, b"")], ("echo", [(PONG, b"")])),
    ("ping of 125 bytes", [f(PING, b"p" * 125)], ("echo", [(PONG, b"p" * 125)])),
    ("unsolicited pong is ignored", [f(PONG, b"x"), f(TEXT, "after")],
     ("echo", [(TEXT, b"after")])),
    # UTF-8 (section 8.1)
    ("valid UTF-8", [f(TEXT, "κόσμε €𝄞".encode())],
     ("echo", [(TEXT, "κόσμε €𝄞".encode())])),
    ("UTF-8 split across fragments", [f(TEXT, b"\xe2\x82", fin=False), f(CONT, b"\xac")],
     ("echo", [(TEXT, "€".encode())])),
    ("4-byte UTF-8 split in three", [f(TEXT, b"\xf0", fin=False),
                                     f(CONT, b"\x9d\x84", fin=False), f(CONT, b"\x9e")],
     ("echo", [(TEXT, "𝄞".encode())])),
    ("invalid UTF-8", [f(TEXT, b"\xff")], ("close", 1007)),
    ("continuation byte first", [f(TEXT, b"\x80")], ("close", 1007)),
    ("overlong 2-byte", [f(TEXT, b"\xc0\xaf")], ("close", 1007)),
    ("overlong 3-byte", [f(TEXT, b"\xe0\x80\xaf")], ("close", 1007)),
    ("surrogate", [f(TEXT, b"\xed\xa0\x80")], ("close", 1007)),
    ("over U+10FFFF", [f(TEXT, b"\xf4\x90\x80\x80")], ("close", 1007)),
    ("truncated at the end", [f(TEXT, b"a\xe2\x82")], ("close", 1007)),
    ("invalid UTF-8 in the last fragment",
     [f(TEXT, b"ok", fin=False), f(CONT, b"\xce\xba\xed\xa0\x80")], ("close", 1007)),
    ("binary is not checked", [f(BINARY, b"\xff\xfe")], ("echo", [(BINARY, b"\xff\xfe")])),
    # Limits
    ("message over max_message_size", [f(BINARY, b"x" * (MAX + 1))], ("close", 1009)),
    ("fragments over max_message_size",
     [f(BINARY, b"x" * (MAX // 2), fin=False), f(CONT, b"x" * (MAX // 2 + 1))],
     ("close", 1009)),
    ("message of exactly max_message_size", [f(BINARY, b"y" * MAX)],
     ("echo", [(BINARY, b"y" * MAX)])),
    # Close handshake (sections 5.5.1, 7.4)
    ("close 1000", [f(CLOSE, close_payload(1000, b"bye"))], ("close", 1000)),
    ("close without code", [f(CLOSE, b"")], ("close", None)),
    ("close of 1 byte", [f(CLOSE, b"\x03")], ("close", 1002)),
    ("close code 999", [f(CLOSE, close_payload(999))], ("close", 1002)),
    ("close code 1004", [f(CLOSE, close_payload(1004))], ("close", 1002)),
    ("close code 1005", [f(CLOSE, close_payload(1005))], ("close", 1002)),
    ("close code 1006", [f(CLOSE, close_payload(1006))], ("close", 1002)),
    ("close code 1015", [f(CLOSE, close_payload(1015))], ("close", 1002)),
    ("close code 1016", [f(CLOSE, close_payload(1016))], ("close", 1002)),
    ("close code 2999", [f(CLOSE, close_payload(2999))], ("close", 1002)),
    ("close code 5000", [f(CLOSE, close_payload(5000))], ("close", 1002)),
    ("close code 65535", [f(CLOSE, close_payload(65535))], ("close", 1002)),
    ("close code 1001", [f(CLOSE, close_payload(1001))], ("close", 1001)),
    ("close code 1011", [f(CLOSE, close_payload(1011))], ("close", 1011)),
    ("close code 3000", [f(CLOSE, close_payload(3000))], ("close", 3000)),
    ("close code 4999", [f(CLOSE, close_payload(4999))], ("close", 4999)),
    ("close reason not UTF-8", [f(CLOSE, close_payload(1000, b"\xff"))], ("close", 1007)),
    ("nothing is echoed after a close",
     [f(CLOSE, close_payload(1000)) + f(TEXT, "late")], ("close", 1000)),
    ("echo, then close", [f(TEXT, "a"), f(CLOSE, close_payload(1000))],
     ("echo-close", [(TEXT, b"a")], 1000)),
]


@pytest.mark.parametrize("name,frames,expected", FRAMING,
                         ids=[c[0] for c in FRAMING])
def test_framing(server, name, frames, expected):
    p = Peer(server)
    try:
        for data in frames:
            p.send(data)
        check(p, expected)
    finally:
        p.close()


def check(p, expected, inflate=None):
    kind = expected[0]
    if kind == "close":
        p.expect_close(expected[1])
        return
    for op, payload in expected[1]:
        got = p.recv_message(inflate=inflate)
        assert got == (op, payload), (got[0], got[1][:80])
    if kind == "echo-close":
        p.expect_close(expected[2])


def test_byte_by_byte(server):
    """Any split of the input gives the same result: a masked 300-byte
    fragmented text, a ping, and a close, one byte per write."""
    p = Peer(server)
    p.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = (frame(TEXT, "é" * 100, fin=False) + frame(PING, b"x") +
            frame(CONT, "z" * 100))
    for i in range(len(data)):
        p.send(data[i:i + 1])
        if i % 64 == 0:
            time.sleep(0.001)
    assert p.recv_message() == (PONG, b"x")
    assert p.recv_message() == (TEXT, ("é" * 100 + "z" * 100).encode())
    p.send(frame(CLOSE, close_payload(1000)))
    p.expect_close(1000)


def test_invalid_utf8_fails_fast(server):
    """The first fragment already cannot become valid: 1007 comes before
    the message is complete."""
    p = Peer(server)
    p.send(frame(TEXT, b"abc\xc3\x28", fin=False))
    p.expect_close(1007)


def test_frames_pipelined_after_the_handshake(server):
    """Bytes sent in the same packet as the upgrade request belong to the
    WebSocket (the HTTP layer hands them over)."""
    s = socket.create_connection(("127.0.0.1", server), timeout=5)
    req, key = request()
    s.sendall(req + frame(TEXT, "early") + frame(BINARY, b"bird"))
    status, headers, rest = read_head(s)
    assert status == 101 and headers["sec-websocket-accept"] == accept_for(key)
    p = Peer.__new__(Peer)
    p.sock, p.buf = s, rest
    assert p.recv_message() == (TEXT, b"early")
    assert p.recv_message() == (BINARY, b"bird")
    p.close()


def test_server_closes_tcp_after_close_handshake(server):
    p = Peer(server)
    p.send(frame(CLOSE, close_payload(1000)))
    fin, rsv, op, payload = p.recv_frame()
    assert op == CLOSE and payload[:2] == struct.pack("!H", 1000)
    p.expect_eof()  # the server closes TCP first (section 7.1.1)


# ---- Opening handshake (section 4.2) --------------------------------------

def raw_http(port, data):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(data)
    status, headers, rest = read_head(s)
    s.close()
    return status, headers


def upgrade(port, lines):
    return raw_http(port, ("\r\n".join(lines) + "\r\n\r\n").encode())


KEY = "dGhlIHNhbXBsZSBub25jZQ=="
BASE = ["GET /ws HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket",
        "Connection: Upgrade", f"Sec-WebSocket-Key: {KEY}",
        "Sec-WebSocket-Version: 13"]


def without(prefix):
    return [l for l in BASE if not l.startswith(prefix)]


HANDSHAKES = [
    ("valid", BASE, 101),
    ("RFC example key", BASE, 101),
    ("tokens in any case and in lists",
     ["GET /ws HTTP/1.1", "Host: 127.0.0.1", "Upgrade: foo, WebSocket",
      "Connection: keep-alive, UPGRADE", f"Sec-WebSocket-Key: {KEY}",
      "Sec-WebSocket-Version: 13"], 101),
    ("no Upgrade", without("Upgrade:"), 400),
    ("Upgrade to something else", without("Upgrade:") + ["Upgrade: h2c"], 400),
    ("no Connection: upgrade", without("Connection:") + ["Connection: keep-alive"], 400),
    ("no key", without("Sec-WebSocket-Key"), 400),
    ("key of 15 bytes", without("Sec-WebSocket-Key") +
     ["Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA"], 400),
    ("key not base64", without("Sec-WebSocket-Key") +
     ["Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!=="], 400),
    ("two keys", BASE + ["Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA=="], 400),
    ("no version", without("Sec-WebSocket-Version"), 426),
    ("version 8", without("Sec-WebSocket-Version") + ["Sec-WebSocket-Version: 8"], 426),
    ("HTTP/1.0", ["GET /ws HTTP/1.0"] + BASE[1:], 400),
    ("POST", ["POST /ws HTTP/1.1"] + BASE[1:] + ["Content-Length: 0"], 405),
    ("same origin", BASE + ["Origin: http://127.0.0.1"], 101),
    ("cross origin", BASE + ["Origin: http://evil.example"], 403),
    ("origin on another port", BASE + ["Origin: http://127.0.0.1:1"], 403),
]


@pytest.mark.parametrize("name,lines,status", HANDSHAKES,
                         ids=[c[0] for c in HANDSHAKES])
def test_handshake(server, name, lines, status):
    got, headers = upgrade(server, lines)
    assert got == status, headers
    if status == 101:
        assert headers["sec-websocket-accept"] == accept_for(KEY)
        assert headers["upgrade"].lower() == "websocket"
        assert "upgrade" in headers["connection"].lower()
        assert "content-length" not in headers
        assert "sec-websocket-protocol" not in headers  # none offered/chosen
    if status == 426:
        assert headers.get("sec-websocket-version") == "13"


def test_rfc_example_accept(server):
    # RFC 6455 section 1.3: this key gives this accept value.
    got, headers = upgrade(server, BASE)
    assert headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


# ---- permessage-deflate (RFC 7692) ----------------------------------------

NEGOTIATIONS = [
    ("plain offer", "permessage-deflate", "permessage-deflate"),
    ("client_max_window_bits: asked for ours (12)",
     "permessage-deflate; client_max_window_bits",
     "permessage-deflate; client_max_window_bits=12"),
    ("client_max_window_bits=10 kept", "permessage-deflate; client_max_window_bits=10",
     "permessage-deflate; client_max_window_bits=10"),
    ("server_no_context_takeover", "permessage-deflate; server_no_context_takeover",
     "permessage-deflate; server_no_context_takeover"),
    ("client_no_context_takeover", "permessage-deflate; client_no_context_takeover",
     "permessage-deflate; client_no_context_takeover"),
    ("server_max_window_bits=10", "permessage-deflate; server_max_window_bits=10",
     "permessage-deflate; server_max_window_bits=10"),
    ("server_max_window_bits=8 is declined, the next offer taken",
     "permessage-deflate; server_max_window_bits=8, permessage-deflate",
     "permessage-deflate"),
    ("unknown parameter declines the offer", "permessage-deflate; foo=1", None),
    ("duplicate parameter declines the offer",
     "permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
    ("server_max_window_bits without value", "permessage-deflate; server_max_window_bits",
     None),
    ("window bits out of range", "permessage-deflate; client_max_window_bits=16", None),
    ("value on a flag", "permessage-deflate; server_no_context_takeover=1", None),
    ("unknown extension only", "x-webkit-deflate-frame", None),
    ("quoted value", 'permessage-deflate; server_max_window_bits="12"',
     "permessage-deflate; server_max_window_bits=12"),
]


@pytest.mark.parametrize("name,offer,answer", NEGOTIATIONS,
                         ids=[c[0] for c in NEGOTIATIONS])
def test_deflate_negotiation(server, name, offer, answer):
    got, headers = upgrade(server, BASE + [f"Sec-WebSocket-Extensions: {offer}"])
    assert got == 101
    assert headers.get("sec-websocket-extensions") == answer


def deflate_peer(port, params="permessage-deflate"):
    p = Peer(port, extra=[f"Sec-WebSocket-Extensions: {params}"])
    assert p.headers["sec-websocket-extensions"].startswith("permessage-deflate")
    return p


def test_compressed_echo(server):
    p = deflate_peer(server)
    inflate = zlib.decompressobj(-15)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    for i in range(3):  # context taken over between messages, both ways
        msg = ("hello compressed world %d " % i).encode() * 20
        z = c.compress(msg) + c.flush(zlib.Z_SYNC_FLUSH)
        p.send(frame(TEXT, z[:-4], rsv=4))
        fin, rsv, op, payload = p.recv_frame()
        assert op == TEXT and rsv & 4 and fin
        assert len(payload) < len(msg)
        assert inflate.decompress(payload + b"\x00\x00\xff\xff") == msg
    p.send(frame(CLOSE, close_payload(1000)))
    p.expect_close(1000)


def test_compressed_fragments(server):
    p = deflate_peer(server, "permessage-deflate; server_no_context_takeover")
    z = deflate(b"fragmented " * 50)
    p.send(frame(TEXT, z[:5], rsv=4, fin=False) + frame(PING, b"!") +
           frame(CONT, z[5:]))
    assert p.recv_message() == (PONG, b"!")
    op, data = p.recv_message(inflate=zlib.decompressobj(-15))
    assert (op, data) == (TEXT, b"fragmented " * 50)


def test_uncompressed_message_on_deflate_socket(server):
    p = deflate_peer(server)
    p.send(frame(BINARY, b"raw"))
    op, data = p.recv_message(inflate=zlib.decompressobj(-15))
    assert (op, data) == (BINARY, b"raw")


COMPRESSION_ERRORS = [
    ("RSV1 on a continuation", lambda: frame(TEXT, deflate(b"a"), rsv=4, fin=False) +
     frame(CONT, b"", rsv=4), 1002),
    ("RSV1 on a ping", lambda: frame(PING, b"x", rsv=4), 1002),
    ("bad compressed data", lambda: frame(TEXT, b"\xff\xff\xff\xff", rsv=4), 1002),
    ("decompression bomb", lambda: frame(BINARY, deflate(b"\0" * (10 * MAX)), rsv=4),
     1009),
    ("compressed text not UTF-8", lambda: frame(TEXT, deflate(b"\xff"), rsv=4), 1007),
]


@pytest.mark.parametrize("name,make,code", COMPRESSION_ERRORS,
                         ids=[c[0] for c in COMPRESSION_ERRORS])
def test_deflate_errors(server, name, make, code):
    p = deflate_peer(server)
    p.send(make())
    p.expect_close(code)


def test_bomb_is_small(server):
    """A 1 MB-of-zeros bomb (about 1 KiB compressed) is refused without
    the server growing by anything near its inflated size."""
    z = deflate(b"\0" * (64 * MAX))
    assert len(z) < 8192
    p = deflate_peer(server)
    p.send(frame(BINARY, z, rsv=4))
    p.expect_close(1009)
