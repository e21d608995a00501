"""Gust's WebSocket server and client against real peers written by others:
Python's websockets (Debian python3-websockets) and Tornado (python3-tornado),
in both directions, with and without permessage-deflate; graceful stop;
pings; sockets cut mid-frame, mid-handshake and mid-close (under ASan the
server's exit status tells of any leak). Only 127.0.0.1; waits bounded."""
import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import connect, wait_for
from ws_helpers import CLOSE, PING, TEXT, Peer, frame, request

websockets = pytest.importorskip("websockets")
tornado_ws = pytest.importorskip("tornado.websocket")


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture
def echo(spawn, program, free_port):
    def start(*flags):
        srv = spawn([program("ws_echo"), f"--port={free_port}",
                     "--address=127.0.0.1", *flags])
        connect(free_port).close()
        srv.port = free_port
        srv.url = f"ws://127.0.0.1:{free_port}/ws"
        return srv
    return start


def stop_clean(srv):
    assert srv.stop() == 0, srv.log()


# ---- Python websockets as client ----------------------------------------

@pytest.mark.parametrize("compression", [None, "deflate"])
def test_websockets_client(echo, compression):
    srv = echo("--compression")

    async def go():
        async with websockets.connect(srv.url, compression=compression,
                                      max_size=None) as ws:
            ext = ws.response_headers.get("Sec-WebSocket-Extensions")
            assert (ext is not None) == (compression == "deflate")
            for msg in ["hello", "", "κόσμε", "x" * 100_000]:
                await ws.send(msg)
                assert await ws.recv() == msg
            for msg in [b"\x00\xff", b"", os.urandom(70_000)]:
                await ws.send(msg)
                assert await ws.recv() == msg
            # Fragmented by the client: one message on our side.
            await ws.send(iter(["frag", "ment", "ed"]))
            assert await ws.recv() == "fragmented"
            # Many in flight, answered in order.
            for i in range(200):
                await ws.send(f"m{i}")
            for i in range(200):
                assert await ws.recv() == f"m{i}"
            pong = await ws.ping(b"are you there")
            await asyncio.wait_for(pong, 5)
            await ws.close(code=4000, reason="bye")
            assert ws.close_code == 4000
    run(go())
    stop_clean(srv)


def test_websockets_client_subprotocol(echo):
    srv = echo()

    async def go():
        async with websockets.connect(srv.url, subprotocols=["chat", "echo"]) as ws:
            assert ws.subprotocol == "echo"
        async with websockets.connect(srv.url, subprotocols=["chat"]) as ws:
            assert ws.subprotocol is None
    run(go())
    stop_clean(srv)


def test_websockets_client_too_big(echo):
    srv = echo("--max-message-size=1000")

    async def go():
        async with websockets.connect(srv.url, compression=None) as ws:
            await ws.send("a" * 1000)
            assert await ws.recv() == "a" * 1000
            await ws.send("a" * 1001)
            with pytest.raises(websockets.ConnectionClosed) as e:
                await ws.recv()
            assert e.value.rcvd.code == 1009
    run(go())
    stop_clean(srv)


def test_graceful_stop_sends_1001(echo):
    srv = echo()

    async def go():
        conns = [await websockets.connect(srv.url) for _ in range(5)]
        for ws in conns:
            await ws.send("up")
            assert await ws.recv() == "up"
        srv.send_signal(signal.SIGTERM)
        for ws in conns:
            with pytest.raises(websockets.ConnectionClosed) as e:
                await asyncio.wait_for(ws.recv(), 10)
            assert e.value.rcvd.code == 1001
    run(go())
    assert srv.proc.wait(timeout=20) == 0, srv.log()


def test_pings_and_ping_timeout(echo):
    """--ping-interval=0.2: the server pings; a peer that never answers is
    closed (1011) within about 3 intervals."""
    srv = echo("--ping-interval=0.2")
    p = Peer(srv.port)
    fin, rsv, op, payload = p.recv_frame(timeout=3)
    assert op == PING
    t0 = time.monotonic()
    p.expect_close(1011, timeout=5)
    assert time.monotonic() - t0 < 3
    p.close()

    async def go():  # a peer that answers stays open
        async with websockets.connect(srv.url) as ws:
            await asyncio.sleep(1.2)
            await ws.send("still here")
            assert await ws.recv() == "still here"
    run(go())
    stop_clean(srv)


# ---- Tornado as client ----------------------------------------------------

@pytest.mark.parametrize("compress", [False, True])
def test_tornado_client(echo, compress):
    srv = echo("--compression")

    async def go():
        ws = await tornado_ws.websocket_connect(
            srv.url, compression_options={} if compress else None)
        ext = ws.headers.get("Sec-WebSocket-Extensions")
        assert (ext is not None and ext.startswith("permessage-deflate")) == compress
        for msg in ["hello", "é" * 1000]:
            await ws.write_message(msg)
            assert await ws.read_message() == msg
        await ws.write_message(b"\x01\x02", binary=True)
        assert await ws.read_message() == b"\x01\x02"
        ws.close(1000, "done")
        assert await ws.read_message() is None
        assert ws.close_code == 1000
    run(go())
    stop_clean(srv)


# ---- Our client against their servers ------------------------------------

def peer_server(tmp_path, code):
    """Runs a Python echo server (websockets or Tornado) on a free port in a
    child process; returns (proc, port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = tmp_path / "peer.py"
    script.write_text(textwrap.dedent(code).replace("PORT", str(port)))
    proc = subprocess.Popen([sys.executable, str(script)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    connect(port).close()
    return proc, port


WEBSOCKETS_SERVER = """
    import asyncio, websockets
    async def echo(ws):
        async for m in ws:
            await ws.send(m)
    async def main():
        async with websockets.serve(echo, "127.0.0.1", PORT,
                                    subprotocols=["echo"]):
            await asyncio.sleep(60)
    asyncio.run(main())
"""

TORNADO_SERVER = """
    import asyncio, tornado.web, tornado.websocket
    class Echo(tornado.websocket.WebSocketHandler):
        def get_compression_options(self):
            return {}
        def select_subprotocol(self, subprotocols):
            return "echo" if "echo" in subprotocols else None
        def on_message(self, m):
            self.write_message(m, binary=isinstance(m, bytes))
    async def main():
        tornado.web.Application([(r"/ws", Echo)]).listen(PORT, "127.0.0.1")
        await asyncio.sleep(60)
    asyncio.run(main())
"""


@pytest.mark.parametrize("peer", ["websockets", "tornado"])
@pytest.mark.parametrize("flags", [[], ["--compression"], ["--binary"],
                                   ["--subprotocol=echo"]])
def test_our_client_against(tmp_path, program, peer, flags):
    proc, port = peer_server(tmp_path, WEBSOCKETS_SERVER if peer == "websockets"
                             else TORNADO_SERVER)
    try:
        msgs = ["hello", "wörld", "z" * 20000]
        out = subprocess.run([program("ws_client"),
                              f"--url=ws://127.0.0.1:{port}/ws", *flags, *msgs],
                             capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr.decode()
        assert out.stdout.decode().split("\n")[:-1] == msgs
        if "--subprotocol=echo" in flags:
            assert b"subprotocol: echo" in out.stderr
        # permessage-deflate only when offered, and then accepted.
        assert (b"extensions: permessage-deflate" in out.stderr) == \
            ("--compression" in flags)
    finally:
        proc.kill()
        proc.wait(timeout=10)


# ---- Abrupt closes (ASan: no leak, no crash) ------------------------------

def test_abrupt_closes(echo):
    srv = echo("--compression")
    port = srv.port
    req, _ = request()
    cases = [
        req[:20],                                      # mid-handshake
        req,                                           # right after it
        req + frame(TEXT, b"x" * 1000)[:500],          # mid-frame
        req + frame(TEXT, b"x" * 100_000)[:70_000],    # mid-large-frame
        req + frame(TEXT, b"ab", fin=False),           # mid-message
        req + frame(TEXT, b"\xe2\x82", fin=False),     # mid-character
        req + frame(CLOSE, b"\x03\xe8")[:3],           # mid-close frame
        req + frame(CLOSE, b"\x03\xe8"),               # close, no wait
        req + frame(PING, b"p")[:4],                   # mid-ping
    ]
    ext = request(extra=["Sec-WebSocket-Extensions: permessage-deflate"])[0]
    cases.append(ext + frame(TEXT, b"\x4a\x4c", rsv=4, fin=False))  # mid-inflate
    for data in cases * 3:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(data)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
        s.close()
    # Mid-close: the server sends its close, we vanish before answering.
    for _ in range(3):
        p = Peer(port)
        p.send(frame(TEXT, "x"))
        p.recv_message()
        p.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          b"\x01\x00\x00\x00\x00\x00\x00\x00")
        p.close()
    # Still serving.
    p = Peer(port)
    p.send(frame(TEXT, "alive"))
    assert p.recv_message() == (TEXT, b"alive")
    p.close()
    stop_clean(srv)


def test_stop_with_peer_that_ignores_close(echo):
    """A peer that never answers the 1001 is cut after the close timeout
    (5 s); the server still exits cleanly."""
    srv = echo()
    p = Peer(srv.port)
    t0 = time.monotonic()
    srv.send_signal(signal.SIGTERM)
    fin, rsv, op, payload = p.recv_frame(timeout=5)
    assert op == CLOSE and payload[:2] == b"\x03\xe9"
    assert srv.proc.wait(timeout=20) == 0, srv.log()
    assert 4 < time.monotonic() - t0 < 15
    p.close()


def test_broadcast(echo):
    """ws_echo --broadcast: a text message starting with "broadcast:" goes to
    every open socket, the sender included; others are still echoed."""
    srv = echo("--broadcast", "--compression")

    async def go():
        conns = [await websockets.connect(srv.url, compression=c)
                 for c in [None, "deflate", None, "deflate"]]
        await conns[1].send("broadcast: to all")
        for ws in conns:
            assert await asyncio.wait_for(ws.recv(), 5) == "broadcast: to all"
        await conns[0].close()  # a closed one is dropped from the list
        await conns[2].send("broadcast: again")
        for ws in conns[1:]:
            assert await asyncio.wait_for(ws.recv(), 5) == "broadcast: again"
        await conns[3].send("just me")
        assert await conns[3].recv() == "just me"
        for ws in conns[1:]:
            await ws.close()
    run(go())
    stop_clean(srv)


# ---- wss:// (our client, TLS through tls.h) --------------------------------

WSS_SERVER = """
    import asyncio, ssl, websockets
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain("CERT", "KEY")
    async def echo(ws):
        async for m in ws:
            await ws.send(m)
    async def main():
        async with websockets.serve(echo, "127.0.0.1", PORT, ssl=ctx):
            await asyncio.sleep(60)
    asyncio.run(main())
"""


def test_wss_client_verifies(tmp_path, program):
    """wss:// verifies the certificate by default: refused without a trusted
    CA, accepted with the CA (--ca-file) or with --insecure."""
    ca, cert, key = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    ca.write_bytes(cert.read_bytes())  # self-signed: its own CA
    code = WSS_SERVER.replace("CERT", str(cert)).replace("KEY", str(key))
    proc, port = peer_server(tmp_path, code)
    url = f"--url=wss://127.0.0.1:{port}/ws"
    try:
        bad = subprocess.run([program("ws_client"), url, "x"],
                             capture_output=True, timeout=60)
        assert bad.returncode != 0 and bad.stdout == b""
        for flag in (f"--ca-file={ca}", "--insecure"):
            ok = subprocess.run([program("ws_client"), url, flag, "--compression",
                                 "secure", "z" * 50000],
                                capture_output=True, timeout=60)
            assert ok.returncode == 0, ok.stderr.decode()
            assert ok.stdout.decode().split("\n")[:-1] == ["secure", "z" * 50000]
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_wss_server(echo, tmp_path):
    """ws_echo --cert --key serves wss://: Python websockets verifies the
    certificate and talks through TLS, with and without compression."""
    import ssl
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    srv = echo(f"--cert={cert}", f"--key={key}", "--compression")
    ctx = ssl.create_default_context(cafile=str(cert))

    async def go():
        for compression in (None, "deflate"):
            async with websockets.connect(f"wss://127.0.0.1:{srv.port}/ws", ssl=ctx,
                                          compression=compression) as ws:
                for msg in ["over tls", "t" * 100_000, b"\x00\x01"]:
                    await ws.send(msg)
                    assert await ws.recv() == msg
    run(go())
    stop_clean(srv)


def test_echo_page(echo):
    """/ serves the page whose script opens the socket at /ws."""
    import urllib.request
    srv = echo()
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/", timeout=10) as r:
        page = r.read().decode()
        assert r.headers["Content-Type"].startswith("text/html")
    assert "new WebSocket(" in page and "'/ws'" in page
    stop_clean(srv)


def test_our_client_masks_each_frame(program):
    """A raw server: every frame from ws_client is masked, each with its own
    key, and unmasks to what was sent (RFC 6455 section 5.3)."""
    import base64, hashlib, struct, threading
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    port = lst.getsockname()[1]
    seen = {}

    def serve():
        conn, _ = lst.accept()
        conn.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(4096)
        head, _, buf = data.partition(b"\r\n\r\n")
        key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
               if l.lower().startswith(b"sec-websocket-key:")][0]
        acc = base64.b64encode(hashlib.sha1(
            key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + acc + b"\r\n\r\n")
        keys, texts = [], []
        while len(texts) < 3:
            while len(buf) < 2 or len(buf) < 6 + (buf[1] & 0x7F):
                buf += conn.recv(4096)
            assert buf[1] & 0x80, "client frame not masked"
            n = buf[1] & 0x7F
            mask, payload = buf[2:6], buf[6:6 + n]
            buf = buf[6 + n:]
            keys.append(mask)
            texts.append(bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
            conn.sendall(bytes([0x81, n]) + texts[-1])  # unmasked echo
        seen["keys"], seen["texts"] = keys, texts
        conn.sendall(b"\x88\x02\x03\xe8")  # close 1000
        conn.settimeout(2)
        try:
            while conn.recv(4096):
                pass
        except OSError:
            pass
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    out = subprocess.run([program("ws_client"), f"--url=ws://127.0.0.1:{port}/",
                          "same", "same", "same"], capture_output=True, timeout=60)
    t.join(10)
    lst.close()
    assert out.returncode == 0, out.stderr.decode()
    assert seen["texts"] == [b"same"] * 3
    assert len(set(seen["keys"])) == 3  # a fresh key for every frame
