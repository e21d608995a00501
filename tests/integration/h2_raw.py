"""A frame-level HTTP/2 client for the hostile-client tests
(test_http2_limits.py): it writes any frame, valid or not (frames are
built here byte by byte, so nothing refuses to send a DATA frame on
stream 0), encodes header blocks with the hpack package (python3-hpack,
which python3-h2 depends on) or by hand, and reads what the server
answers as plain frames: SETTINGS, GOAWAY, RST_STREAM, responses.

    c = H2Conn(port)                 # preface + SETTINGS sent
    sid = c.request("GET", "/")
    r = c.response(sid)              # Stream: status, headers, body, reset
    c.send_frame(DATA, 0, 0, b"x")   # anything at all
    c.wait_closed(5)                 # GOAWAY read and EOF

Every read is bounded by a timeout. The client answers the server's
SETTINGS and PINGs and gives back the flow-control window of the DATA it
reads, unless told not to (auto_ack / auto_window), so that a flood test
can read nothing at all.
"""
import select
import socket
import ssl
import struct
import time

import hpack

HOST = "127.0.0.1"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 section 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
# Flags.
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# SETTINGS identifiers (section 6.5.2).
HEADER_TABLE_SIZE = 0x1
ENABLE_PUSH = 0x2
MAX_CONCURRENT_STREAMS = 0x3
INITIAL_WINDOW_SIZE = 0x4
MAX_FRAME_SIZE = 0x5
MAX_HEADER_LIST_SIZE = 0x6

# Error codes (section 7).
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
SETTINGS_TIMEOUT = 0x4
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
CONNECT_ERROR = 0xA
ENHANCE_YOUR_CALM = 0xB
INADEQUATE_SECURITY = 0xC
HTTP_1_1_REQUIRED = 0xD

ERROR_NAMES = {v: k for k, v in dict(globals()).items()
               if k.isupper() and isinstance(v, int) and
               (k.endswith("_ERROR") or k in (
                   "NO_ERROR", "SETTINGS_TIMEOUT", "STREAM_CLOSED",
                   "REFUSED_STREAM", "CANCEL", "ENHANCE_YOUR_CALM",
                   "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"))}


def error_name(code):
    return ERROR_NAMES.get(code, f"0x{code:x}") if code is not None else None


def frame(ftype, flags, stream_id, payload=b""):
    """One frame's bytes: 9-byte header and payload, exactly as given (no
    check of any kind, so that malformed frames can be written)."""
    n = len(payload)
    return struct.pack(">BHBBL", n >> 16, n & 0xFFFF, ftype, flags,
                       stream_id & 0xFFFFFFFF) + payload


def settings_frame(settings=None, ack=False):
    payload = b"".join(struct.pack(">HL", k, v)
                       for k, v in (settings or {}).items())
    return frame(SETTINGS, ACK if ack else 0, 0, payload)


def rst_frame(stream_id, code):
    return frame(RST_STREAM, 0, stream_id, struct.pack(">L", code))


def window_update_frame(stream_id, increment):
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">L", increment))


def ping_frame(payload=b"12345678", ack=False):
    return frame(PING, ACK if ack else 0, 0, payload)


def goaway_frame(last_stream_id, code, debug=b""):
    return frame(GOAWAY, 0, 0, struct.pack(">LL", last_stream_id, code) + debug)


# ---- HPACK by hand (RFC 7541), for header blocks hpack.Encoder would not
# write: uppercase names, references into the dynamic table.

def hpack_int(value, prefix_bits, first_byte=0):
    """An integer with an N-bit prefix (RFC 7541 section 5.1)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out = bytearray([first_byte | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_str(s):
    """A string literal without Huffman coding."""
    if isinstance(s, str):
        s = s.encode("latin-1")
    return hpack_int(len(s), 7) + s


def hpack_literal(name, value, index=False):
    """A literal field with a literal name: without indexing (0x00), or
    with incremental indexing (0x40), which adds it to the dynamic table."""
    return (b"\x40" if index else b"\x00") + hpack_str(name) + hpack_str(value)


def hpack_indexed(index):
    """An indexed field (static table 1..61, dynamic table from 62)."""
    return hpack_int(index, 7, 0x80)


def request_block(method="GET", path="/", authority="localhost",
                  scheme="http"):
    """The pseudo-header fields of a request as literals without indexing,
    so that the dynamic table is left as it was."""
    return (hpack_literal(":method", method) + hpack_literal(":scheme", scheme)
            + hpack_literal(":path", path)
            + hpack_literal(":authority", authority))


class Stream:
    def __init__(self, stream_id):
        self.id = stream_id
        self.headers = None      # list of (name, value) str pairs
        self.trailers = None
        self.body = bytearray()
        self.ended = False       # END_STREAM received
        self.reset = None        # RST_STREAM error code received

    @property
    def status(self):
        for name, value in self.headers or ():
            if name == ":status":
                return int(value)
        return None

    @property
    def done(self):
        return self.ended or self.reset is not None

    def __repr__(self):
        return (f"<stream {self.id} status={self.status} "
                f"body={len(self.body)}B ended={self.ended} "
                f"reset={error_name(self.reset)}>")


class GoAway:
    def __init__(self, payload):
        self.last_stream_id, self.error_code = struct.unpack(">LL",
                                                             payload[:8])
        self.last_stream_id &= 0x7FFFFFFF
        self.debug = bytes(payload[8:])

    def __repr__(self):
        return (f"<GOAWAY last={self.last_stream_id} "
                f"{error_name(self.error_code)} {self.debug[:200]!r}>")


class H2Conn:
    """One client connection over a real socket on 127.0.0.1.

    preface: send the connection preface and a SETTINGS frame (with
    `settings`) at once. auto_ack: answer SETTINGS and PING. auto_window:
    give back the window of DATA read (stream and connection). rcvbuf:
    SO_RCVBUF before connecting, to make a client that reads slowly.
    sock: a connected socket to take over (after Upgrade: h2c), with the
    bytes already read from it in `buffered`."""

    def __init__(self, port, settings=None, preface=True, auto_ack=True,
                 auto_window=True, rcvbuf=None, timeout=10.0, host=HOST,
                 sock=None, buffered=b"", first_stream_id=1, tls=False):
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect((host, port))
            if tls:
                sock = tls_wrap(sock)
        self.sock = sock
        self.sock.settimeout(timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.auto_ack = auto_ack
        self.auto_window = auto_window
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        # Bombs we test are the server's problem, not the decoder's.
        self.decoder.max_header_list_size = 1 << 24
        self.buf = bytearray()
        self.server_settings = {}
        self.settings_received = 0
        self.settings_acks = 0
        self.ping_acks = 0
        self.goaway = None
        self.closed = False       # EOF or reset seen
        self.reset_by_peer = False
        self.eof_time = None
        self.frames = []          # (type, flags, stream_id, payload) read
        self.streams = {}
        self.requested = set()    # streams opened by request()
        self.next_stream_id = first_stream_id
        self.peer_window = 65535  # connection send window
        self._block = None        # (stream_id, bytes) of a header block
        self.garbage = b""        # bytes that were not HTTP/2 (an HTTP/1 answer)
        if preface:
            self.send(PREFACE + settings_frame(settings))
        if buffered:
            # Bytes already read from sock (after an HTTP/1 101 answer).
            self.buf += buffered
            self._parse()

    # ---- writing ----------------------------------------------------------

    def send(self, data):
        """Writes data; returns False (and marks the connection closed) if
        the server has closed or reset it. A send timeout is raised."""
        try:
            self.sock.sendall(data)
            return True
        except socket.timeout:
            raise
        except OSError:  # EPIPE, ECONNRESET, or TLS's own ends
            self.closed = True
            self.reset_by_peer = True
            return False

    def send_frame(self, ftype, flags, stream_id, payload=b""):
        return self.send(frame(ftype, flags, stream_id, payload))

    def new_stream_id(self):
        sid = self.next_stream_id
        self.next_stream_id += 2
        return sid

    def encode(self, headers):
        return self.encoder.encode(headers, huffman=False)

    def header_frames(self, stream_id, block, end_stream=True,
                      max_frame=16384):
        """HEADERS (+ CONTINUATION) frames carrying block."""
        out = []
        first = True
        while True:
            part, block = block[:max_frame], block[max_frame:]
            flags = END_HEADERS if not block else 0
            if first:
                flags |= END_STREAM if end_stream else 0
                out.append(frame(HEADERS, flags, stream_id, part))
                first = False
            else:
                out.append(frame(CONTINUATION, flags, stream_id, part))
            if not block:
                return b"".join(out)

    def request(self, method="GET", path="/", extra=(), end_stream=None,
                body=None, stream_id=None, authority="localhost",
                block=None):
        """Opens a stream with a request; returns its id. The header block
        is hpack-encoded from the pseudo-headers and `extra` (a list of
        pairs), unless `block` gives it raw. end_stream (default True)
        ends the request: on HEADERS, or on the last DATA of `body`, which
        is sent following the server's flow-control windows."""
        sid = stream_id if stream_id is not None else self.new_stream_id()
        if stream_id is not None:
            self.next_stream_id = max(self.next_stream_id, stream_id + 2)
        if block is None:
            block = self.encode([(":method", method), (":scheme", "http"),
                                 (":path", path), (":authority", authority),
                                 *extra])
        if end_stream is None:
            end_stream = True
        self.streams[sid] = Stream(sid)
        self.requested.add(sid)
        self.send(self.header_frames(sid, block,
                                     end_stream and body is None))
        if body is not None:
            self.send_body(sid, body, end_stream)
        return sid

    def send_body(self, stream_id, body, end_stream=True, timeout=30.0):
        """Sends body as DATA frames, waiting for WINDOW_UPDATEs when the
        server's windows are spent (at most timeout seconds in all)."""
        deadline = time.monotonic() + timeout
        stream_window = self.server_settings.get(INITIAL_WINDOW_SIZE, 65535)
        self._stream_windows = getattr(self, "_stream_windows", {})
        self._stream_windows.setdefault(stream_id, stream_window)
        max_frame = self.server_settings.get(MAX_FRAME_SIZE, 16384)
        view = memoryview(body)
        while True:
            room = min(self.peer_window, self._stream_windows[stream_id],
                       max_frame, len(view))
            if room > 0 or not view:
                last = len(view) == room
                flags = END_STREAM if last and end_stream else 0
                self.send_frame(DATA, flags, stream_id, bytes(view[:room]))
                self.peer_window -= room
                self._stream_windows[stream_id] -= room
                view = view[room:]
                if last:
                    return True
                continue
            if self.closed or time.monotonic() > deadline:
                return False
            self.read(0.5)

    # ---- reading ----------------------------------------------------------

    def read(self, timeout):
        """Reads what arrives within timeout seconds (at least one recv if
        data is there) and handles every complete frame. Returns False once
        the connection is closed."""
        if self.closed:
            return False
        # (TLS may hold decrypted bytes that select() cannot see.)
        pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
        try:
            ready, _, _ = (([self.sock], None, None) if pending else
                           select.select([self.sock], [], [], max(timeout, 0)))
        except ValueError:
            self.closed = True
            return False
        if not ready:
            return True
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, socket.timeout, OSError) as e:
            if isinstance(e, socket.timeout):
                return True
            self.closed = True
            self.reset_by_peer = True
            self.eof_time = time.monotonic()
            return False
        if not data:
            self.closed = True
            self.eof_time = time.monotonic()
            return False
        self.buf += data
        self._parse()
        return True

    def _parse(self):
        while len(self.buf) >= 9:
            if not self.frames and self.buf[:5] == b"HTTP/":
                # Not HTTP/2 at all: an HTTP/1 server's answer.
                self.garbage += bytes(self.buf)
                self.buf.clear()
                return
            length = (self.buf[0] << 16) | (self.buf[1] << 8) | self.buf[2]
            if len(self.buf) < 9 + length:
                return
            ftype, flags = self.buf[3], self.buf[4]
            sid = struct.unpack(">L", self.buf[5:9])[0] & 0x7FFFFFFF
            payload = bytes(self.buf[9:9 + length])
            del self.buf[:9 + length]
            self.frames.append((ftype, flags, sid, payload))
            self._handle(ftype, flags, sid, payload)

    def _stream(self, sid):
        if sid not in self.streams:
            self.streams[sid] = Stream(sid)
        return self.streams[sid]

    def _handle(self, ftype, flags, sid, payload):
        if ftype == SETTINGS:
            if flags & ACK:
                self.settings_acks += 1
                return
            old_initial = self.server_settings.get(INITIAL_WINDOW_SIZE, 65535)
            for i in range(0, len(payload) - 5, 6):
                k, v = struct.unpack(">HL", payload[i:i + 6])
                self.server_settings[k] = v
                if k == HEADER_TABLE_SIZE:
                    # As a client must (RFC 7541 4.2): the encoder's table
                    # follows, announced in the next header block.
                    self.encoder.header_table_size = v
            delta = self.server_settings.get(INITIAL_WINDOW_SIZE,
                                             65535) - old_initial
            for s in getattr(self, "_stream_windows", {}):
                self._stream_windows[s] += delta
            self.settings_received += 1
            if self.auto_ack:
                self.send(settings_frame(ack=True))
        elif ftype == PING:
            if flags & ACK:
                self.ping_acks += 1
            elif self.auto_ack:
                self.send(ping_frame(payload, ack=True))
        elif ftype == GOAWAY:
            self.goaway = GoAway(payload)
        elif ftype == RST_STREAM:
            self._stream(sid).reset = struct.unpack(">L", payload[:4])[0]
        elif ftype == WINDOW_UPDATE:
            inc = struct.unpack(">L", payload[:4])[0] & 0x7FFFFFFF
            if sid == 0:
                self.peer_window += inc
            else:
                w = getattr(self, "_stream_windows", None)
                if w is not None and sid in w:
                    w[sid] += inc
        elif ftype == DATA:
            data = self._unpad(flags, payload)
            s = self._stream(sid)
            s.body += data
            if flags & END_STREAM:
                s.ended = True
            if self.auto_window and payload:
                self.send(window_update_frame(0, len(payload)))
                if not s.ended:
                    self.send(window_update_frame(sid, len(payload)))
        elif ftype in (HEADERS, PUSH_PROMISE):
            body = self._unpad(flags, payload)
            if ftype == HEADERS and flags & PRIORITY_FLAG:
                body = body[5:]
            if ftype == PUSH_PROMISE:
                body = body[4:]
            self._block = (sid, ftype, flags, bytearray(body))
            if flags & END_HEADERS:
                self._end_block()
        elif ftype == CONTINUATION and self._block:
            self._block[3].extend(payload)
            if flags & END_HEADERS:
                self._end_block()

    def _end_block(self):
        sid, ftype, flags, block = self._block
        self._block = None
        headers = [(n if isinstance(n, str) else n.decode("latin-1"),
                    v if isinstance(v, str) else v.decode("latin-1"))
                   for n, v in self.decoder.decode(bytes(block))]
        if ftype != HEADERS:
            return
        s = self._stream(sid)
        if s.headers is None:
            s.headers = headers
        else:
            s.trailers = headers
        if flags & END_STREAM:
            s.ended = True

    @staticmethod
    def _unpad(flags, payload):
        if flags & PADDED and payload:
            pad = payload[0]
            return payload[1:len(payload) - pad]
        return payload

    def pump(self, predicate, timeout):
        """Reads until predicate() is true, the connection closes or
        timeout seconds pass; returns predicate()'s last value."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0 or not self.read(min(left, 0.5)):
                return predicate()

    def handshake(self, timeout=10.0):
        """Waits for the server's SETTINGS; returns them (a dict)."""
        self.pump(lambda: self.settings_received, timeout)
        return self.server_settings if self.settings_received else None

    def response(self, stream_id, timeout=10.0):
        """Waits until the stream ends or is reset, or the connection is
        closed; returns the Stream."""
        s = self._stream(stream_id)
        self.pump(lambda: s.done, timeout)
        return s

    def wait_closed(self, timeout):
        """Reads (handling frames) until EOF or reset; True if it came."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self.read(min(0.5, deadline - time.monotonic()))
        return self.closed

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def tls_wrap(sock):
    """TLS on a connected socket, offering only "h2" by ALPN, with no
    check of the test server's certificate. Raises unless h2 was chosen."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    s = ctx.wrap_socket(sock, server_hostname="localhost")
    if s.selected_alpn_protocol() != "h2":
        raise ssl.SSLError(f"ALPN chose {s.selected_alpn_protocol()!r}")
    return s


def h2_get(port, path="/", timeout=10.0, tls=False):
    """One GET over a new connection (prior knowledge, or TLS with ALPN h2):
    (status, body), or (None, reason) if the server did not answer over
    HTTP/2."""
    try:
        with H2Conn(port, timeout=timeout, tls=tls) as c:
            if not c.handshake(timeout):
                return None, f"no SETTINGS (read {bytes(c.garbage[:80])!r})"
            sid = c.request("GET", path)
            r = c.response(sid, timeout)
            if not r.ended:
                return None, f"{r} goaway={c.goaway} closed={c.closed}"
            return r.status, bytes(r.body)
    except OSError as e:
        return None, repr(e)
