"""The chat room in a real browser: headless Debian Chromium driven by
playwright-core (js/chat_room.js, through wsbench's node_helpers). Two
people chat over WebSocket, a third whose browser has no WebSocket chats
through long polling in a narrow window; an upload shows its progress and
then appears for the others; a message made of markup is shown as text; a
screenshot of the room is saved under build/ and must not be blank."""
import os
import struct
import zlib

from node_helpers import CHROMIUM, run_js
from test_chat import start_chat, stop_chat


def png_pixels(path):
    """(width, height, distinct row-byte values) of an 8-bit PNG: enough
    to tell a rendered page from a blank one without an image library."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    return width, height, len(set(raw))


def write_png(path, width, height):
    """A gradient image, so that the screenshot shows a real picture."""
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff))
    rows = b"".join(
        b"\x00" + bytes(v for x in range(width)
                        for v in (255 * x // width, 120, 255 * y // height))
        for y in range(height))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" +
                chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                           0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_chat_in_chromium(spawn, build_dir, free_port, tmp_path):
    assert os.access(CHROMIUM, os.X_OK), "chromium missing (make deps-test)"
    server = start_chat(spawn, build_dir, free_port, tmp_path,
                        "--max_upload=8000000")
    shot = os.path.join(build_dir, "chat-room.png")
    if os.path.exists(shot):
        os.unlink(shot)
    image = tmp_path / "sunset.png"
    write_png(image, 160, 100)
    r = run_js(build_dir, "chat_room.js", server.url, shot, image,
               timeout=240,
               env={"GUST_JS_TIMEOUT_MS": 200000})
    assert r["page_errors"] == [], r["page_errors"]
    # Two over WebSocket, one (no WebSocket in her browser) long polling.
    assert r["status"]["alice"] == "live (WebSocket)", r["status"]
    assert r["status"]["bob"] == "live (WebSocket)", r["status"]
    assert r["status"]["carol"] == "live (long polling)", r["status"]
    assert r["status"]["carol_transport"] == "poll"
    assert r["carol_sockets"] == []
    assert r["alice_sockets"] and r["alice_sockets"][0].endswith(
        "/a/socket?cursor=0")
    assert len(r["seen"]) == 9 and all(r["seen"].values()), r["seen"]
    # Markup typed in is shown as text and never runs.
    assert all(r["xss"].values()), r["xss"]
    # The upload's progress went through values between 0 and 100, then
    # the image was shown to everyone.
    progress = r["upload"]["progress"]
    assert any(0 < p < 100 for p in progress), progress
    assert progress == sorted(progress), progress
    assert r["upload"]["bar_hidden_after"] is True
    for name in ("alice", "bob", "carol"):
        assert r["upload"][name + "_loaded"] is True, r["upload"]
    assert "too large" in r["upload"]["too_large_error"]
    # The narrow window (360 px) needs no sideways scrolling.
    narrow = r["narrow"]
    assert narrow["scroll_width"] <= narrow["client_width"], narrow
    assert narrow["composer_visible"], narrow

    width, height, distinct = png_pixels(shot)
    assert (width, height) == (1100, 800)
    assert distinct > 20, "the screenshot looks blank"
    stop_chat(server)


def test_redis_down_is_said_in_the_page(spawn, build_dir, free_port,
                                        tmp_path):
    from test_chat_scale import free_ports, start_redis
    rport, = free_ports(1)
    redis = start_redis(spawn, rport, tmp_path)
    server = start_chat(spawn, build_dir, free_port, tmp_path,
                        f"--redis=127.0.0.1:{rport}")
    redis.kill()
    r = run_js(build_dir, "chat_redis_down.js", server.url, timeout=120)
    assert r["dave"]["transport"] == "websocket", r
    assert r["erin"]["transport"] == "poll", r
    for who in ("dave", "erin"):
        assert "lost its connection to Redis" in r[who]["error"], r
        assert r[who]["field"] == f"{who} speaking while Redis is down", r
        assert r[who]["shown"] is False, r
    stop_chat(server)
