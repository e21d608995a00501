#!/usr/bin/python3
"""Writes the seed corpus of fuzz/fuzz_http2.c into fuzz/corpus/http2/.

Each seed is one byte (how the connection became HTTP/2: 0 ALPN, 1 prior
knowledge, 2 Upgrade: h2c; plus 3 for the server with tiny limits, plus
6 for two connections at once) followed by what a client sends after the
connection preface: its SETTINGS, then requests to the paths the
target's handler answers in its different ways (fuzz_http2.c), with
bodies, trailers, resets, pings, window updates. Frames are built byte by
byte here, header blocks with python3-hpack (a dependency of python3-h2).

    /usr/bin/python3 fuzz/make_http2_corpus.py [OUT_DIR]

The seeds are committed; run this again after changing it.
"""
import os
import struct
import sys

import hpack

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, END_HEADERS, PADDED, PRIO = 0x1, 0x4, 0x8, 0x20


def frame(ftype, flags, sid, payload=b""):
    n = len(payload)
    return struct.pack(">BHBBL", n >> 16, n & 0xFFFF, ftype, flags, sid) + payload


def settings(**kv):
    ids = {"table": 1, "push": 2, "streams": 3, "window": 4, "frame": 5,
           "list": 6}
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HL", ids[k], v)
                                          for k, v in kv.items()))


ACK_SETTINGS = frame(SETTINGS, 1, 0)


class Client:
    def __init__(self, mode=0, **kv):
        self.mode = mode
        self.enc = hpack.Encoder()
        self.out = [bytes([mode]), settings(**kv) if kv else settings(push=0),
                    ACK_SETTINGS]

    def headers(self, sid, method, path, extra=(), end_stream=True,
                huffman=True, split=0):
        block = self.enc.encode([(":method", method), (":scheme", "http"),
                                 (":path", path), (":authority", "fuzz"),
                                 *extra], huffman=huffman)
        flags = END_STREAM if end_stream else 0
        if split:
            self.out.append(frame(HEADERS, flags, sid, block[:split]))
            self.out.append(frame(CONTINUATION, END_HEADERS, sid, block[split:]))
        else:
            self.out.append(frame(HEADERS, flags | END_HEADERS, sid, block))
        return self

    def trailers(self, sid, fields):
        self.out.append(frame(HEADERS, END_HEADERS | END_STREAM, sid,
                              self.enc.encode(fields)))
        return self

    def data(self, sid, payload, end=True, pad=0):
        if pad:
            body = bytes([pad]) + payload + b"\0" * pad
            self.out.append(frame(DATA, (END_STREAM if end else 0) | PADDED,
                                  sid, body))
        else:
            self.out.append(frame(DATA, END_STREAM if end else 0, sid, payload))
        return self

    def raw(self, b):
        self.out.append(b)
        return self

    def bytes(self):
        return b"".join(self.out)


def window(sid, inc):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">L", inc))


def rst(sid, code=8):
    return frame(RST_STREAM, 0, sid, struct.pack(">L", code))


def seeds():
    yield "get", Client().headers(1, "GET", "/")
    yield "get_prior_knowledge", Client(1).headers(1, "GET", "/")
    yield "upgrade_h2c", Client(2).headers(3, "GET", "/echo?second=1")
    yield "echo_headers", Client().headers(1, "GET", "/echo?a=1&b=2", [
        ("cookie", "a=1"), ("cookie", "b=2; c=3"), ("user-agent", "fuzz"),
        ("x-forwarded-for", "10.0.0.1, 192.0.2.7"), ("x-scheme", "https"),
        ("accept-encoding", "gzip")])
    yield "post_urlencoded", Client().headers(1, "POST", "/echo", [
        ("content-type", "application/x-www-form-urlencoded"),
        ("content-length", "11")], end_stream=False).data(1, b"x=1&y=2&z=3")
    body = (b"--B\r\nContent-Disposition: form-data; name=\"f\"; "
            b"filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nfile\r\n"
            b"--B\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\nv\r\n"
            b"--B--\r\n")
    yield "post_multipart", Client().headers(1, "POST", "/echo", [
        ("content-type", "multipart/form-data; boundary=B")],
        end_stream=False).data(1, body[:40], end=False).data(1, body[40:])
    yield "stream_body", Client().headers(1, "POST", "/stream",
                                          end_stream=False).data(
        1, b"a" * 1000, end=False).data(1, b"b" * 1000, end=False,
                                        pad=7).data(1, b"c")
    yield "stream_refused", Client().headers(1, "POST", "/stream",
                                             end_stream=False).data(
        1, b"!no", end=False).headers(3, "GET", "/")
    yield "stream_answered_midway", Client().headers(
        1, "POST", "/stream", end_stream=False).data(1, b"#stop", end=False) \
        .data(1, b"more", end=False).data(1, b"end")
    yield "pause_body", Client().headers(1, "PUT", "/pause",
                                         end_stream=False).data(
        1, b"p" * 5000, end=False).data(1, b"q" * 5000, end=False).data(1, b"r")
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello"
    yield "raw_response", Client().headers(1, "POST", "/raw", [
        ("content-length", str(len(raw)))], end_stream=False).data(1, raw)
    raw2 = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: keep-alive\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    yield "raw_chunked", Client().headers(1, "POST", "/raw",
                                          end_stream=False).data(1, raw2)
    yield "raw_garbage", Client().headers(1, "POST", "/raw",
                                          end_stream=False).data(
        1, b"HTTP/1.1 2x0 Nope\r\n\r\n")
    yield "flush", Client().headers(1, "GET", "/flush?n=4").headers(
        3, "GET", "/flush?n=2&len=1")
    yield "sendfile", Client().headers(1, "GET", "/sendfile?off=10&len=5000&cl=1") \
        .headers(3, "GET", "/sendfile").headers(5, "HEAD", "/sendfile?cl=1&len=9")
    yield "sendfile_past_end", Client().headers(
        1, "GET", "/sendfile?off=99990&len=5000&cl=1")
    yield "big_with_windows", Client(window=1024).headers(1, "GET", "/big?n=8") \
        .raw(window(1, 65536) + window(0, 1 << 20) + window(1, 1 << 20))
    yield "big_zero_window", Client(window=0).headers(1, "GET", "/big?n=2") \
        .raw(settings(window=100) + window(1, 5000))
    yield "abort", Client().headers(1, "GET", "/abort").headers(3, "GET", "/")
    yield "late", Client().headers(1, "GET", "/late").headers(3, "GET", "/late")
    for code in (204, 304, 101, 199, 100, 999):
        yield f"status_{code}", Client().headers(1, "GET", f"/status?code={code}")
    yield "head", Client().headers(1, "HEAD", "/echo").headers(3, "HEAD", "/")
    yield "early_answer", Client().headers(1, "POST", "/early",
                                           end_stream=False).data(
        1, b"e" * 3000, end=False).data(1, b"e").headers(3, "GET", "/")
    yield "trailers", Client().headers(1, "POST", "/echo", end_stream=False) \
        .data(1, b"body", end=False).trailers(1, [("x-trailer", "t")])
    yield "continuation", Client().headers(1, "GET", "/echo", [
        ("x-long", "l" * 300)], huffman=False, split=20)
    yield "many_streams", Client().headers(1, "GET", "/").headers(
        3, "GET", "/late").headers(5, "POST", "/stream", end_stream=False) \
        .raw(rst(3)).data(5, b"x").headers(7, "GET", "/flush") \
        .raw(frame(PING, 0, 0, b"pingpong")).headers(9, "GET", "/big?n=1") \
        .raw(frame(PRIORITY, 0, 9, struct.pack(">LB", 7, 200)))
    yield "reset_midbody", Client().headers(1, "POST", "/echo",
                                            end_stream=False).data(
        1, b"half", end=False).raw(rst(1, 2)).headers(3, "GET", "/")
    yield "goaway_from_client", Client().headers(1, "GET", "/late").raw(
        frame(GOAWAY, 0, 0, struct.pack(">LL", 0, 0)))
    yield "header_too_large", Client().headers(1, "GET", "/echo", [
        (f"x-h{i}", "v" * 900) for i in range(12)], huffman=False)
    yield "body_too_large", Client().headers(1, "POST", "/echo", [
        ("content-length", "300000")], end_stream=False).data(
        1, b"z" * 16000, end=False)
    yield "content_length_mismatch", Client().headers(1, "POST", "/echo", [
        ("content-length", "3")], end_stream=False).data(1, b"toolong")
    yield "connect_method", Client().raw(frame(HEADERS, END_HEADERS, 1,
                                               hpack.Encoder().encode([
        (":method", "CONNECT"), (":authority", "fuzz:443")])))
    yield "bad_pseudo", Client().raw(frame(
        HEADERS, END_HEADERS | END_STREAM, 1, hpack.Encoder().encode([
            (":method", "GET"), (":path", "/"), (":foo", "x"),
            (":scheme", "http")])))
    # The same against the server with tiny limits (first byte 3..5).
    yield "tiny_limits_body", Client(3).headers(1, "POST", "/echo",
                                                end_stream=False).data(
        1, b"w" * 100, end=False).raw(window(1, 5000)).data(1, b"v" * 2000)
    yield "tiny_limits_streams", Client(4).headers(1, "GET", "/late").headers(
        3, "GET", "/late").headers(5, "GET", "/").raw(rst(1) + rst(3))
    yield "tiny_limits_headers", Client(5).headers(3, "GET", "/echo", [
        (f"x-{i}", "v" * 60) for i in range(10)])
    # Two connections at once (first byte 6..11).
    yield "two_connections_big", Client(6, window=2000).headers(
        1, "GET", "/big?n=3").raw(window(0, 1 << 20) + window(1, 30000)) \
        .headers(3, "GET", "/flush?n=5")
    yield "two_connections_bodies", Client(7).headers(
        1, "POST", "/pause", end_stream=False).data(1, b"a" * 4000, end=False) \
        .data(1, b"b" * 4000).headers(3, "GET", "/sendfile?len=40000")
    yield "big_response_head", Client().headers(1, "GET", "/bighead") \
        .headers(3, "GET", "/bighead?n=20")
    yield "two_connections_big_heads", Client(6).headers(
        1, "GET", "/bighead").headers(3, "GET", "/big?n=2").headers(
        5, "GET", "/bighead?n=63")
    yield "prior_knowledge_many", Client(1, streams=2).headers(
        1, "GET", "/echo").headers(3, "GET", "/late").headers(
        5, "GET", "/flush")


def hibernating(mode):
    """A client of the tiny server (no HPACK table) that pauses after its
    first frames (fuzz_http2.c), long enough for it to hibernate."""
    c = Client(mode)
    c.enc.header_table_size = 0
    return c


def hibernate_seeds():
    # Pause after SETTINGS and its ACK: a request wakes the connection.
    yield "hibernate_then_request", hibernating(40).headers(
        1, "POST", "/echo", end_stream=False).data(1, b"x" * 300) \
        .raw(frame(PING, 0, 0, b"12345678"))
    # A request, the pause, then HEADERS on that stream again and a new one.
    yield "hibernate_old_stream", hibernating(64).headers(1, "GET", "/") \
        .headers(3, "GET", "/echo").headers(1, "GET", "/")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus",
                                                             "http2")
    os.makedirs(out, exist_ok=True)
    for name, client in [*seeds(), *hibernate_seeds()]:
        with open(os.path.join(out, name), "wb") as f:
            f.write(client.bytes())


if __name__ == "__main__":
    main()
