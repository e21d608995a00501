"""A small HTTPS server for the HTTP client's HTTP/2 tests, on python3-h2,
that speaks h2 or HTTP/1.1 (whatever ALPN chose; it offers what it is
told to) and records what a test needs to check from the server's side:
each accepted connection with its protocol, and each RST_STREAM received.

It runs on its own asyncio loop in a thread of the test process, on
127.0.0.1. Paths (every body says which connection served it):
  /hello            "hello conn=N proto=P"
  /big?n=BYTES      BYTES bytes of a repeating pattern (flow-controlled)
  /echo             the request body back (POST; the request body is
                    read with flow control: WINDOW_UPDATE as it is consumed)
  /gzip             a gzip-encoded "hello gzip" (Content-Encoding: gzip)
  /redirect         302 to /hello
  /bighead?n=BYTES  a response with BYTES bytes of header values, in
                    fields x-big-0, x-big-1... of 1000 bytes
  /bighead-one?n=BYTES  one header field of BYTES bytes
  /slow             never answered (until the client resets the stream)
  /badlength        Content-Length 5 and 10 bytes of DATA
  /reset            the stream is reset (RST_STREAM INTERNAL_ERROR)
  /drop             the connection is cut (TCP reset), nothing answered
  /after-reset      answered once this connection has received a
                    RST_STREAM: "reset code=C conn=N"
  /hold             answered once a GOAWAY was sent on this connection
  /goaway           sends GOAWAY with this stream as the last one, then
                    answers "goaway conn=N"; requests on later streams of
                    the connection are never answered (refused by GOAWAY);
                    the client closes the connection once the others are
                    answered.
"""
import asyncio
import gzip
import ssl
import threading
import time
import urllib.parse

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from hyperframe.frame import GoAwayFrame

PATTERN = bytes(range(ord("a"), ord("z") + 1))


def pattern(n):
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


class H2TestServer:
    def __init__(self, cert, key, alpn=("h2", "http/1.1")):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.ctx.set_alpn_protocols(list(alpn))
        self.connections = []   # protocol of each accepted connection
        self.resets = []        # (conn number, stream id, error code)
        self.closed = {}        # conn number -> monotonic time of its EOF
        self.last_response = 0  # monotonic time of the last response sent
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.port = None
        self._server = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        ready = threading.Event()
        self._ready = ready
        self._thread.start()
        assert ready.wait(10), "test server did not start"
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self._server = self.loop.run_until_complete(asyncio.start_server(
            self._accept, "127.0.0.1", 0, ssl=self.ctx))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()
        self._server.close()

    async def _accept(self, reader, writer):
        proto = writer.get_extra_info("ssl_object").selected_alpn_protocol()
        with self.lock:
            self.connections.append(proto or "none")
            number = len(self.connections)
        try:
            if proto == "h2":
                await H2Conn(self, number, reader, writer).run()
            else:
                await h1_conn(self, number, proto or "none", reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            with self.lock:
                self.closed[number] = time.monotonic()
            writer.close()


def answer(path, body, conn, proto):
    """(status, headers, body) for a request, or None: not answered now."""
    u = urllib.parse.urlsplit(path)
    q = urllib.parse.parse_qs(u.query)
    if u.path == "/hello":
        return 200, [], f"hello conn={conn} proto={proto}".encode()
    if u.path == "/big":
        return 200, [], pattern(int(q["n"][0]))
    if u.path == "/echo":
        return 200, [], body
    if u.path == "/gzip":
        return 200, [("content-encoding", "gzip")], gzip.compress(b"hello gzip")
    if u.path == "/redirect":
        return 302, [("location", "/hello")], b"moved"
    if u.path == "/bighead-one":
        return 200, [("x-big", "v" * int(q["n"][0]))], b"big head"
    if u.path == "/bighead":
        n = int(q["n"][0])
        return 200, [(f"x-big-{i}", "v" * min(1000, n - i * 1000))
                     for i in range((n + 999) // 1000)], b"big head"
    return 404, [], b"not found"


async def h1_conn(server, number, proto, reader, writer):
    """HTTP/1.1 with keep-alive and Content-Length bodies: enough for the
    fallback tests."""
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        fields = dict(line.split(":", 1) for line in lines[1:] if line)
        fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
        body = await reader.readexactly(int(fields.get("content-length", 0)))
        status, headers, out = answer(path, body, number, proto)
        headers = "".join(f"{k}: {v}\r\n" for k, v in headers)
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {len(out)}\r\n"
                     f"{headers}\r\n".encode() + out)
        await writer.drain()


class H2Conn:
    def __init__(self, server, number, reader, writer):
        self.server, self.number = server, number
        self.reader, self.writer = reader, writer
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8"))
        self.requests = {}      # stream id -> [path, body bytearray]
        self.outgoing = {}      # stream id -> bytes still to send
        self.waiting = []       # (stream id, predicate, make response)
        self.reset_code = None
        self.goaway_last = None

    async def run(self):
        self.h2.initiate_connection()
        self.flush()
        while True:
            data = await self.reader.read(65536)
            if not data:
                return
            for ev in self.h2.receive_data(data):
                self.event(ev)
            self.poll()
            self.flush()
            # After a GOAWAY the client closes once its accepted streams
            # are answered; reading on until then (rather than closing
            # with its later frames unread, which makes the kernel send a
            # reset that can destroy the responses in flight) is what a
            # lingering close does.

    def flush(self):
        out = self.h2.data_to_send()
        if out:
            self.writer.write(out)

    def event(self, ev):
        if isinstance(ev, h2.events.RequestReceived):
            if self.goaway_last is not None and ev.stream_id > self.goaway_last:
                return  # refused by our GOAWAY: never processed
            path = dict(ev.headers)[":path"]
            self.requests[ev.stream_id] = [path, bytearray()]
            if ev.stream_ended:
                self.request_done(ev.stream_id)
        elif isinstance(ev, h2.events.DataReceived):
            self.h2.acknowledge_received_data(ev.flow_controlled_length,
                                              ev.stream_id)
            if ev.stream_id in self.requests:
                self.requests[ev.stream_id][1] += ev.data
        elif isinstance(ev, h2.events.StreamEnded):
            if ev.stream_id in self.requests:
                self.request_done(ev.stream_id)
        elif isinstance(ev, h2.events.StreamReset):
            with self.server.lock:
                self.server.resets.append((self.number, ev.stream_id,
                                           int(ev.error_code)))
            self.reset_code = int(ev.error_code)
            self.outgoing.pop(ev.stream_id, None)
            self.waiting = [w for w in self.waiting if w[0] != ev.stream_id]
        elif isinstance(ev, h2.events.WindowUpdated):
            pass  # poll() sends what the windows now allow

    def request_done(self, sid):
        path, body = self.requests.pop(sid)
        p = urllib.parse.urlsplit(path).path
        if p == "/slow":
            return
        if p == "/badlength":
            # DATA longer than the Content-Length announced.
            self.h2.send_headers(sid, [(":status", "200"),
                                       ("content-length", "5")])
            self.h2.send_data(sid, b"0123456789", end_stream=True)
            return
        if p == "/reset":
            self.h2.reset_stream(sid, error_code=2)  # INTERNAL_ERROR
            return
        if p == "/drop":
            self.writer.transport.abort()
            return
        if p == "/after-reset":
            self.waiting.append((sid, lambda: self.reset_code is not None,
                                 lambda: (200, [], f"reset code={self.reset_code}"
                                          f" conn={self.number}".encode())))
            return
        if p == "/hold":
            self.waiting.append((sid, lambda: self.goaway_last is not None,
                                 lambda: (200, [], f"held conn={self.number}"
                                          .encode())))
            return
        if p == "/goaway":
            self.goaway_last = sid
            # Raw frame: python-h2 itself would refuse to finish the
            # streams at or below the last id once it has sent GOAWAY.
            self.flush()
            self.writer.write(GoAwayFrame(0, last_stream_id=sid,
                                          error_code=0).serialize())
            self.respond(sid, (200, [], f"goaway conn={self.number}".encode()))
            return
        self.respond(sid, answer(path, bytes(body), self.number, "h2"))

    def respond(self, sid, resp):
        status, headers, body = resp
        self.h2.send_headers(sid, [(":status", str(status)),
                                   ("content-length", str(len(body))),
                                   *headers])
        self.outgoing[sid] = body
        self.server.last_response = time.monotonic()
        self.send_data(sid)

    def send_data(self, sid):
        body = self.outgoing[sid]
        while True:
            room = min(self.h2.local_flow_control_window(sid),
                       self.h2.max_outbound_frame_size)
            if room <= 0 and body:
                break
            chunk, body = body[:room], body[room:]
            self.h2.send_data(sid, chunk, end_stream=not body)
            if not body:
                del self.outgoing[sid]
                return
        self.outgoing[sid] = body

    def poll(self):
        for w in list(self.waiting):
            sid, ready, make = w
            if ready():
                self.waiting.remove(w)
                self.respond(sid, make())
        for sid in list(self.outgoing):
            try:
                self.send_data(sid)
            except h2.exceptions.StreamClosedError:
                self.outgoing.pop(sid, None)
