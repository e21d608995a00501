"""WebSockets against Node's `ws` package, a client and server written by
others (npm, pinned in js/package-lock.json): `ws` as a client of
examples/ws_echo (text, binary, a fragmented large message, ping, the close
handshake with a code and reason, permessage-deflate on and off and with
its parameters), and `ws` as the server for examples/ws_client.
Only 127.0.0.1; every wait is bounded (js/run.js, node_helpers.run_js)."""
import hashlib
import json
import signal

import pytest

from node_helpers import json_events, run_js, spawn_js
from conftest import wait_for


def xorshift_bytes(n, seed):
    """The bytes js/ws_client.js sends for {"random": n, "seed": seed}."""
    out = bytearray(n)
    x = seed & 0xFFFFFFFF or 1
    for i in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = x & 0xFF
    return bytes(out)


def sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def start_ws_echo(spawn, program, free_port):
    """start_ws_echo(*flags) -> (url, server): examples/ws_echo on a free
    port; at the end of the test it must exit cleanly on SIGTERM (no leak
    under ASan, every socket closed)."""
    started = []

    def start(*flags):
        server = spawn([program("ws_echo"), f"--port={free_port}",
                        "--address=127.0.0.1", *flags])
        server.wait_log("listening on")
        started.append(server)
        return f"ws://127.0.0.1:{free_port}/ws", server
    yield start
    for server in started:
        status = server.stop(signal.SIGTERM)
        assert status == 0, server.log()
        assert "Sanitizer" not in server.log(), server.log()


@pytest.fixture
def ws_echo(start_ws_echo):
    """ws_echo accepting permessage-deflate (--compression)."""
    return start_ws_echo("--compression")


def client(build_dir, url, steps, **options):
    return run_js(build_dir, "ws_client.js", url,
                  json.dumps({"options": options, "steps": steps}))


def test_text_and_binary_echo(build_dir, ws_echo):
    url, _ = ws_echo
    binary = xorshift_bytes(1000, 7)
    report = client(build_dir, url, [
        {"text": "hello"},
        {"text": ""},
        {"text": "héllo wörld ✓ 😀"},
        {"random": 1000, "seed": 7},
        {"random": 70000, "seed": 9},   # a 64-bit length on the wire
        {"wait_messages": 5},
        {"close": [1000, ""]},
    ])
    assert report["errors"] == []
    got = report["messages"]
    assert [m["binary"] for m in got] == [False, False, False, True, True]
    assert got[0]["text"] == "hello"
    assert got[1]["length"] == 0
    assert got[2]["text"] == "héllo wörld ✓ 😀"
    assert got[3]["sha256"] == sha(binary)
    assert got[4]["length"] == 70000
    assert got[4]["sha256"] == sha(xorshift_bytes(70000, 9))
    assert report["close"]["code"] == 1000


def test_fragmented_large_message(build_dir, ws_echo):
    url, _ = ws_echo
    # About 4 MiB of text in 64 frames, cut inside multi-byte UTF-8
    # sequences, then a short binary message in 3 frames with a ping
    # between its first two.
    unit = "fragmented é ✓ 😀 "   # 1 + 2 + 3 + 4 byte sequences
    count = (4 << 20) // len(unit.encode())
    report = client(build_dir, url, [
        {"split_text": unit, "count": count, "pieces": 64},
        {"fragments": ["ab", "", "cd"], "binary": True,
         "ping_between": "between"},
        {"wait_messages": 2},
        {"wait_pongs": 1},
        {"close": [1000, ""]},
    ])
    assert report["errors"] == []
    big, small = report["messages"]
    whole = (unit * count).encode()
    assert (big["binary"], big["length"]) == (False, len(whole))
    assert big["sha256"] == sha(whole)
    assert (small["binary"], small["text"]) == (True, "abcd")
    assert report["pongs"] == ["between"]


def test_ping_is_answered_with_its_payload(build_dir, ws_echo):
    url, _ = ws_echo
    report = client(build_dir, url, [
        {"ping": "p1"}, {"ping": ""}, {"ping": "x" * 125},
        {"wait_pongs": 3},
        {"text": "after pings"}, {"wait_messages": 1},
        {"close": [1000, ""]},
    ])
    assert report["pongs"] == ["p1", "", "x" * 125]
    assert report["messages"][0]["text"] == "after pings"


@pytest.mark.parametrize("code,reason", [(1000, ""), (1001, "going away"),
                                          (4001, "bye ✓")])
def test_close_handshake_with_code_and_reason(build_dir, ws_echo, code,
                                              reason):
    url, _ = ws_echo
    report = client(build_dir, url, [
        {"text": "x"}, {"wait_messages": 1}, {"close": [code, reason]},
    ])
    # ws reports 1006 when the TCP connection ends without a close frame.
    # The server answers with a close frame that typically echoes the code
    # (RFC 6455 5.5.1; Tornado and ws do), or carries none (1005) or 1000.
    assert report["close"]["code"] in (code, 1000, 1005), report
    assert report["errors"] == []


def compressible_text(n):
    return ("the quick brown fox jumps over the lazy dog " * (n // 44 + 1))[:n]


def test_permessage_deflate_negotiated_and_used(build_dir, ws_echo):
    url, _ = ws_echo
    size = 1 << 20
    report = client(build_dir, url, [
        {"text_repeat": "the quick brown fox jumps over the lazy dog ",
         "count": size // 44},
        {"text": "short"},
        {"random": 5000, "seed": 3},
        {"wait_messages": 3},
        {"close": [1000, ""]},
    ], deflate=True)
    assert report["errors"] == []
    assert "permessage-deflate" in report["extensions"], report
    ext = report["response_headers"]["sec-websocket-extensions"]
    assert ext.split(";")[0].strip() == "permessage-deflate"
    big, short, binary = report["messages"]
    text = "the quick brown fox jumps over the lazy dog " * (size // 44)
    assert big["sha256"] == sha(text.encode())
    assert short["text"] == "short"
    assert binary["sha256"] == sha(xorshift_bytes(5000, 3))
    # The echo came back compressed: far fewer bytes on the wire than the
    # 1 MiB message (handshake and the short messages included).
    assert report["bytes_read"] < size // 10, report["bytes_read"]


@pytest.mark.parametrize("server_flags,offer", [
    ((), True),                 # offered, but the server does not accept it
    (("--compression",), False),  # accepted if offered, but not offered
])
def test_without_permessage_deflate(build_dir, start_ws_echo, server_flags,
                                    offer):
    url, _ = start_ws_echo(*server_flags)
    size = 1 << 20
    report = client(build_dir, url, [
        {"text_repeat": "the quick brown fox jumps over the lazy dog ",
         "count": size // 44},
        {"wait_messages": 1},
        {"close": [1000, ""]},
    ], deflate=offer)
    assert report["errors"] == []
    assert report["extensions"] == ""
    assert "sec-websocket-extensions" not in report["response_headers"]
    assert report["messages"][0]["length"] == (size // 44) * 44
    assert report["bytes_read"] >= (size // 44) * 44


@pytest.mark.parametrize("params", [
    {"serverNoContextTakeover": True, "clientNoContextTakeover": True},
    {"serverMaxWindowBits": 9, "clientMaxWindowBits": 10},
    {"clientMaxWindowBits": True},
    {"serverNoContextTakeover": True, "serverMaxWindowBits": 15},
])
def test_permessage_deflate_parameters(build_dir, ws_echo, params):
    """ws checks the server's answer against its offer (RFC 7692 7.1) and
    fails the handshake if the server breaks a rule; each echo checks that
    both sides inflate what the other deflated with those parameters."""
    url, _ = ws_echo
    text = "parameters " * 3000
    report = client(build_dir, url, [
        {"text": text}, {"text": text}, {"text": "y" * 2000},
        {"wait_messages": 3},
        {"close": [1000, ""]},
    ], deflate=dict(params, threshold=0))
    assert report["errors"] == []
    ext = report["response_headers"].get("sec-websocket-extensions", "")
    assert ext.startswith("permessage-deflate"), report["response_headers"]
    if params.get("serverNoContextTakeover"):
        # A server that accepts the offer must honour this parameter.
        assert "server_no_context_takeover" in ext
    if params.get("serverMaxWindowBits") == 9:
        # 8 would be outside the RFC's 8..15 only if we asked for less.
        assert "server_max_window_bits=9" in ext or \
            "server_max_window_bits=8" in ext, ext
    got = report["messages"]
    assert got[0]["sha256"] == got[1]["sha256"] == sha(text.encode())
    assert got[2]["sha256"] == sha(b"y" * 2000)


def test_many_clients_at_once(build_dir, ws_echo):
    url, _ = ws_echo
    report = run_js(build_dir, "ws_many.js", url, 50, 20)
    assert report == {"clients": 50, "echoed": 50 * 20, "errors": []}


# ---- Node's ws as the server, examples/ws_client as the client ------------

@pytest.fixture
def node_server(spawn, build_dir, free_port):
    def start(deflate):
        server = spawn_js(spawn, build_dir, "ws_server.js", free_port,
                          deflate)
        server.wait_log('"event":"listening"')
        return f"ws://127.0.0.1:{free_port}/chat", server
    return start


@pytest.mark.parametrize("deflate,flags", [
    ("off", ()),
    ("on", ("--compression",)),
    ("off", ("--binary",)),
    ("on", ("--compression", "--binary")),
])
def test_ws_client_against_node_ws_server(node_server, program, spawn,
                                          deflate, flags):
    url, server = node_server(deflate)
    messages = ["hello", "héllo ✓", "z" * 5000]
    cli = spawn([program("ws_client"), f"--url={url}", *flags, *messages])
    status = cli.proc.wait(timeout=30)
    out = cli.log()
    assert status == 0, out
    assert "Sanitizer" not in out, out
    # Each reply printed on its own line, in order.
    lines = out.splitlines()
    for m in messages:
        assert m in lines, out
    assert lines.index(messages[0]) < lines.index(messages[1]) < \
        lines.index(messages[2])
    events = wait_for(lambda: [e for e in json_events(server)
                               if e["event"] == "close"] and
                      json_events(server), 10)
    assert events, server.log()
    opened = [e for e in events if e["event"] == "open"]
    assert opened and opened[0]["path"] == "/chat"
    negotiated = "permessage-deflate" in opened[0]["extensions"]
    assert negotiated == (deflate == "on" and "--compression" in flags), \
        opened
    got = [e for e in events if e["event"] == "message"]
    # ws refuses unmasked client frames (1002), so reaching here means the
    # client masked every frame.
    binary = "--binary" in flags
    assert [e["binary"] for e in got] == [binary] * 3, got
    assert [e.get("text") for e in got[:2]] == messages[:2]
    assert got[2]["length"] == 5000
    closes = [e for e in events if e["event"] == "close"]
    assert closes[0]["code"] == 1000, closes


def test_ws_client_sees_server_close(node_server, program, spawn):
    """The server closes with 4002 mid-conversation: ws_client must not
    report success, and must answer the close (ws logs a clean close)."""
    url, server = node_server("off")
    cli = spawn([program("ws_client"), f"--url={url}", "first",
                 "close:4002:server says bye", "never answered"])
    status = cli.proc.wait(timeout=30)
    out = cli.log()
    assert "Sanitizer" not in out, out
    assert "first" in out.splitlines(), out
    assert status == 1, out
    closes = wait_for(lambda: [e for e in json_events(server)
                               if e["event"] == "close"], 10)
    # The close frame ws_client answered with (1006 would mean none).
    assert closes and closes[0]["code"] in (4002, 1000, 1005), server.log()
