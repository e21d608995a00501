"""Raw WebSocket frames over plain sockets, for the conformance tests: the
handshake, masked frames, and reading what the server sends back. Nothing
here is clever: each test states the bytes it sends."""
import base64
import hashlib
import os
import socket
import struct
import time
import zlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

TEXT, BINARY, CLOSE, PING, PONG, CONT = 1, 2, 8, 9, 10, 0


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def request(path="/ws", key=None, extra=(), version="13", host="127.0.0.1"):
    key = key or base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
             f"Sec-WebSocket-Version: {version}", *extra, "", ""]
    return "\r\n".join(lines).encode(), key


def read_head(sock, timeout=5.0):
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0] else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
    """One frame; length overrides the encoded payload length (to lie)."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", first, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", first, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class Peer:
    """A handshaken raw connection."""

    def __init__(self, port, extra=(), path="/ws"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        req, key = request(path, extra=extra)
        self.sock.sendall(req)
        self.status, self.headers, self.buf = read_head(self.sock)
        assert self.status == 101, (self.status, self.headers)
        assert self.headers["sec-websocket-accept"] == accept_for(key)

    def send(self, data):
        self.sock.sendall(data)

    def _need(self, n, deadline):
        while len(self.buf) < n:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed")
            self.buf += chunk

    def recv_frame(self, timeout=5.0):
        """(fin, rsv, opcode, payload) of the next frame; EOFError if the
        server closed the connection first."""
        deadline = time.monotonic() + timeout
        self._need(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "server frames must not be masked"
        n, at = b1 & 0x7F, 2
        if n == 126:
            self._need(4, deadline)
            n, at = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10, deadline)
            n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(at + n, deadline)
        payload = self.buf[at:at + n]
        self.buf = self.buf[at + n:]
        return bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, payload

    def recv_message(self, timeout=5.0, inflate=None):
        """(opcode, payload) of the next data message, answering nothing;
        control frames in between are returned as they come."""
        op, parts, compressed = None, [], False
        while True:
            fin, rsv, o, payload = self.recv_frame(timeout)
            if o >= 8:
                return o, payload
            if op is None:
                op, compressed = o, bool(rsv & 4)
            parts.append(payload)
            if fin:
                data = b"".join(parts)
                if compressed:
                    data = inflate.decompress(data + b"\x00\x00\xff\xff")
                return op, data

    def expect_close(self, code, timeout=5.0):
        """The server's next frames end with a close carrying code (None:
        an empty close), then the TCP connection closes."""
        while True:
            fin, rsv, op, payload = self.recv_frame(timeout)
            if op == CLOSE:
                break
            assert op in (PONG, TEXT, BINARY, CONT), op
        if code is None:
            assert payload == b""
        else:
            assert len(payload) >= 2, payload
            assert struct.unpack("!H", payload[:2])[0] == code, payload
        # Our close goes back, then the server closes TCP.
        try:
            self.send(frame(CLOSE, payload[:2]))
        except OSError:
            pass
        self.expect_eof(timeout)

    def expect_eof(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return
            if not chunk:
                return
            assert time.monotonic() < deadline, "no EOF"

    def close(self):
        self.sock.close()


def deflate(data, wbits=15):
    c = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]
