"""The chat room (examples/chat), driven the way people use it: Python
requests for the pages, the forms, the long-polling API and uploads.

The helpers at the top (start_chat, ChatClient) are shared with the other
test_chat_*.py files.
"""
import hashlib
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import HOST, wait_for

CHAT_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "examples",
                        "chat")
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01"
       b"\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8"
       b"\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00"
       b"IEND\xaeB`\x82")


def chat_path(build_dir):
    path = os.path.join(build_dir, "examples", "chat", "chat")
    assert os.access(path, os.X_OK), f"{path} is not built"
    return path


def start_chat(spawn, build_dir, port, tmp_path, *args, name="chat"):
    """Starts the chat on 127.0.0.1:port with its own upload folder and
    waits until it serves /health."""
    uploads = tmp_path / f"{name}-uploads"
    server = spawn([chat_path(build_dir), f"--port={port}",
                    "--address=127.0.0.1", f"--upload_dir={uploads}",
                    "--cookie_secret=test-secret", *args])
    server.port = port
    server.url = f"http://{HOST}:{port}"
    server.uploads = uploads
    server.wait_log("listening on")

    def up():
        try:
            return requests.get(server.url + "/health", timeout=2).status_code
        except requests.RequestException:
            return None
    assert wait_for(up, 20), server.log()
    return server


def stop_chat(server):
    """SIGTERM; the chat must exit 0 (ASan reports leaks through it)."""
    rc = server.stop(signal.SIGTERM)
    assert rc == 0, server.log()


class ChatClient:
    """One person in a browser-like session (cookies kept)."""

    def __init__(self, url):
        self.url = url
        self.s = requests.Session()
        self.xsrf = None

    def form_token(self, path):
        r = self.s.get(self.url + path, timeout=10)
        m = re.search(r'name="_xsrf" value="([^"]+)"', r.text)
        assert m, r.text
        self.xsrf = m.group(1)
        return r

    def login(self, name):
        self.form_token("/login")
        r = self.s.post(self.url + "/login",
                        data={"_xsrf": self.xsrf, "name": name, "next": "/"},
                        allow_redirects=False, timeout=10)
        assert r.status_code == 303, r.text
        return self

    def room(self):
        return self.s.get(self.url + "/", timeout=10)

    def say(self, body, **kw):
        return self.s.post(self.url + "/a/message/new",
                           data={"_xsrf": self.xsrf, "body": body},
                           headers={"Accept": "application/json"},
                           timeout=10, **kw)

    def updates(self, cursor, timeout=15):
        return self.s.post(self.url + "/a/message/updates",
                           data={"_xsrf": self.xsrf, "cursor": cursor},
                           timeout=timeout)

    def messages(self, since=0):
        r = self.s.get(self.url + f"/a/messages?since={since}", timeout=10)
        assert r.status_code == 200, r.text
        return r.json()["messages"]

    def upload(self, name, data, ctype, headers=None):
        h = {"X-Xsrftoken": self.xsrf, "Accept": "application/json"}
        h.update(headers or {})
        return self.s.post(self.url + "/a/upload",
                           files={"file": (name, data, ctype)}, headers=h,
                           timeout=30)


def health(url):
    return requests.get(url + "/health", timeout=5).json()


@pytest.fixture
def chat(spawn, build_dir, free_port, tmp_path):
    server = start_chat(spawn, build_dir, free_port, tmp_path,
                        "--max_upload=200000", "--poll_timeout=20")
    yield server
    stop_chat(server)


def test_pages_redirect_to_the_sign_in_form(chat):
    r = requests.get(chat.url + "/", allow_redirects=False, timeout=5)
    assert r.status_code == 302
    assert r.headers["Location"] == "/login?next=%2F"
    # The API is refused, not redirected.
    r = requests.get(chat.url + "/a/messages", timeout=5)
    assert r.status_code == 403
    page = requests.get(chat.url + "/", timeout=5)
    assert page.url.endswith("/login?next=%2F")
    assert '<form method="post" action="/login"' in page.text
    assert 'name="_xsrf"' in page.text


def test_sign_in_and_out(chat):
    alice = ChatClient(chat.url)
    alice.form_token("/login")
    # The form's POST needs its XSRF token.
    r = alice.s.post(chat.url + "/login", data={"name": "alice"},
                     allow_redirects=False, timeout=5)
    assert r.status_code == 403
    r = alice.s.post(chat.url + "/login",
                     data={"_xsrf": alice.xsrf, "name": "alice",
                           "next": "//evil.example/"},
                     allow_redirects=False, timeout=5)
    assert r.status_code == 303
    assert r.headers["Location"] == "/"  # no open redirect
    assert "HttpOnly" in r.headers["Set-Cookie"]
    page = alice.room()
    assert page.status_code == 200 and page.url == chat.url + "/"
    assert '<span class="me">alice</span>' in page.text

    # A cookie changed by hand is not a sign-in.
    forged = requests.Session()
    value = alice.s.cookies.get("chat_user")
    forged.cookies.set("chat_user", value.replace("YWxpY2U=", "bWFsbG9y"))
    r = forged.get(chat.url + "/", allow_redirects=False, timeout=5)
    assert r.status_code == 302

    # Signing out takes an XSRF-checked POST and ends the session.
    alice.form_token("/")
    assert alice.s.post(chat.url + "/logout", timeout=5,
                        allow_redirects=False).status_code == 403
    r = alice.s.post(chat.url + "/logout", data={"_xsrf": alice.xsrf},
                     allow_redirects=False, timeout=5)
    assert r.status_code == 303 and r.headers["Location"] == "/login"
    r = alice.s.get(chat.url + "/", allow_redirects=False, timeout=5)
    assert r.status_code == 302


@pytest.mark.parametrize("name,error", [
    ("", "Choose a name"),
    ("x" * 33, "too long"),
    ("a\x01b", "control characters"),
])
def test_bad_names_are_refused_with_a_reason(chat, name, error):
    c = ChatClient(chat.url)
    c.form_token("/login")
    r = c.s.post(chat.url + "/login", data={"_xsrf": c.xsrf, "name": name},
                 allow_redirects=False, timeout=5)
    assert r.status_code == 400
    assert error in r.text
    assert "chat_user" not in r.headers.get("Set-Cookie", "")


def test_every_post_needs_the_xsrf_token(chat):
    alice = ChatClient(chat.url).login("alice")
    for path, data in [("/a/message/new", {"body": "hi"}),
                       ("/a/message/updates", {"cursor": "0"})]:
        r = alice.s.post(chat.url + path, data=data, timeout=5)
        assert r.status_code == 403, path
        r = alice.s.post(chat.url + path,
                         data=dict(data, _xsrf="2|00|" + "0" * 32 + "|1"),
                         timeout=5)
        assert r.status_code == 403, path
    r = alice.s.post(chat.url + "/a/upload",
                     files={"file": ("a.png", PNG, "image/png")}, timeout=5)
    assert r.status_code == 403
    assert alice.messages() == []


def test_long_poll_waits_for_the_next_message(chat):
    alice = ChatClient(chat.url).login("alice")
    bob = ChatClient(chat.url).login("bob")
    bob.form_token("/")
    alice.form_token("/")
    got = {}

    def poll():
        got["r"] = bob.updates("0")
    t = threading.Thread(target=poll)
    t.start()
    # The poll is parked in the room, and the loop still serves others.
    assert wait_for(lambda: health(chat.url)["listeners"] == 1, 10)
    time.sleep(0.2)
    assert "r" not in got
    r = alice.say("hello bob")
    assert r.status_code == 200, r.text
    sent = r.json()
    assert sent["from"] == "alice" and sent["body"] == "hello bob"
    t.join(10)
    msgs = got["r"].json()["messages"]
    assert [m["id"] for m in msgs] == [sent["id"]]
    assert msgs[0]["body"] == "hello bob"
    assert health(chat.url)["listeners"] == 0

    # Cursor protocol: what is after the cursor comes at once.
    alice.say("second")
    alice.say("third")
    msgs = bob.updates(sent["id"]).json()["messages"]
    assert [m["body"] for m in msgs] == ["second", "third"]
    assert bob.updates("0").json()["messages"][0]["body"] == "hello bob"


def test_long_poll_is_cleaned_up_when_the_client_goes_away(chat):
    bob = ChatClient(chat.url).login("bob")
    bob.form_token("/")
    cookies = "; ".join(f"{k}={v}" for k, v in bob.s.cookies.items())
    body = f"_xsrf={requests.utils.quote(bob.xsrf)}&cursor=0".encode()
    socks = []
    for _ in range(5):
        s = socket.create_connection((HOST, chat.port), timeout=5)
        s.sendall(b"POST /a/message/updates HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/x-www-form-urlencoded\r\n"
                  b"Cookie: " + cookies.encode() + b"\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
                  + body)
        socks.append(s)
    assert wait_for(lambda: health(chat.url)["listeners"] == 5, 10)
    for s in socks:
        s.close()
    assert wait_for(lambda: health(chat.url)["listeners"] == 0, 10), \
        health(chat.url)
    # The room goes on: a message now reaches a new poller only.
    alice = ChatClient(chat.url).login("alice")
    alice.form_token("/")
    assert alice.say("still here").status_code == 200
    assert alice.messages()[-1]["body"] == "still here"


def test_long_poll_times_out_with_an_empty_list(spawn, build_dir, free_port,
                                                tmp_path):
    server = start_chat(spawn, build_dir, free_port, tmp_path,
                        "--poll_timeout=0.5")
    c = ChatClient(server.url).login("carol")
    c.form_token("/")
    t0 = time.monotonic()
    r = c.updates("0")
    assert r.status_code == 200 and r.json() == {"messages": []}
    assert 0.4 < time.monotonic() - t0 < 5
    stop_chat(server)


def test_history_keeps_the_last_200_messages(chat):
    alice = ChatClient(chat.url).login("alice")
    alice.form_token("/")
    ids = []
    for i in range(205):
        r = alice.say(f"message {i}")
        assert r.status_code == 200
        ids.append(r.json()["id"])
    assert [int(i) for i in ids] == list(range(1, 206))
    page = alice.room().text
    shown = re.findall(r'<li class="message[^"]*" data-id="(\d+)"', page)
    assert shown == [str(i) for i in range(6, 206)]
    assert "message 4<" not in page and "message 5<" in page
    assert f'data-cursor="205"' in page
    everything = alice.messages()
    assert len(everything) == 200 and everything[0]["body"] == "message 5"
    after = alice.messages(since=200)
    assert [m["body"] for m in after] == [f"message {i}" for i in range(200, 205)]
    assert alice.messages(since=205) == []
    # A cursor that is not a number is the start (Tornado: unknown cursor).
    assert len(alice.messages(since="nope")) == 200


def test_messages_are_escaped_everywhere(chat):
    evil = "<script>alert(1)</script>"
    mallory = ChatClient(chat.url).login('<img src=x onerror="alert(2)">')
    mallory.form_token("/")
    r = mallory.say(evil)
    assert r.status_code == 200
    m = r.json()
    assert m["body"] == evil  # the data is kept as typed
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in m["html"]
    assert "<script>" not in m["html"] and "<img" not in m["html"]
    page = ChatClient(chat.url).login("bob").room().text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert evil not in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page
    assert 'onerror="alert(2)"' not in page


def test_message_form_without_javascript(chat):
    alice = ChatClient(chat.url).login("alice")
    alice.form_token("/")
    r = alice.s.post(chat.url + "/a/message/new",
                     data={"_xsrf": alice.xsrf, "body": "no js",
                           "next": "/"}, allow_redirects=False, timeout=5)
    assert r.status_code == 303 and r.headers["Location"] == "/"
    assert "no js" in alice.room().text
    for body, why in [("", "empty"), ("x" * 2001, "too long")]:
        r = alice.say(body)
        assert r.status_code == 400 and why in r.json()["error"]


def test_static_assets_have_hashed_urls_and_long_cache(chat):
    page = ChatClient(chat.url).login("alice").room().text
    for name in ("chat.css", "chat.js"):
        m = re.search(r'/static/' + name + r'\?v=([0-9a-f]{8})"', page)
        assert m, name
        with open(os.path.join(CHAT_DIR, "static", name), "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        assert m.group(1) == digest[:8]
        r = requests.get(f"{chat.url}/static/{name}?v={m.group(1)}", timeout=5)
        assert r.status_code == 200
        assert "max-age=31536000" in r.headers["Cache-Control"]
    css = requests.get(chat.url + "/static/chat.css", timeout=5)
    assert css.headers["Content-Type"].startswith("text/css")


def test_health(chat):
    r = requests.get(chat.url + "/health", timeout=5)
    assert r.status_code == 200
    j = r.json()
    assert j["status"] == "ok" and j["redis"] == "off"
    assert j["pid"] == chat.pid


def test_upload_an_image_and_a_file(chat):
    alice = ChatClient(chat.url).login("alice")
    alice.form_token("/")
    r = alice.upload("../../dot.png", PNG, "image/png")
    assert r.status_code == 200, r.text
    m = r.json()
    f = m["file"]
    assert f["name"] == "dot.png" and f["image"] is True
    assert f["size"] == len(PNG)
    assert re.fullmatch(r"/files/[0-9a-f]{32}\.png", f["url"])
    assert f'<img src="{f["url"]}"' in m["html"]
    got = requests.get(chat.url + f["url"], timeout=5)
    assert got.content == PNG
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["X-Content-Type-Options"] == "nosniff"

    r = alice.upload("notes <b>.txt", b"plain words\n", "text/plain")
    assert r.status_code == 200, r.text
    f = r.json()["file"]
    assert f["image"] is False
    page = ChatClient(chat.url).login("bob").room().text
    assert f'href="{f["url"]}" download="notes &lt;b&gt;.txt"' in page
    assert requests.get(chat.url + f["url"], timeout=5).content == \
        b"plain words\n"
    # Only the two stored files are left, nothing half-written.
    assert sorted(p.suffix for p in chat.uploads.iterdir()) == [".png",
                                                               ".txt"]


@pytest.mark.parametrize("name,data,ctype,status,why", [
    ("page.html", b"<script>alert(1)</script>", "text/html", 415,
     "Only images"),
    ("fake.png", b"<html><script>x</script></html>", "image/png", 415,
     "not what its type says"),
    ("tiny.gif", b"GIF", "image/gif", 415, "not what its type says"),
    ("bin.txt", b"abc\x00def", "text/plain", 415, "not a text file"),
])
def test_uploads_are_checked(chat, name, data, ctype, status, why):
    alice = ChatClient(chat.url).login("alice")
    alice.form_token("/")
    r = alice.upload(name, data, ctype)
    assert r.status_code == status, r.text
    assert why in r.json()["error"]
    # As a page for a browser without JavaScript.
    r = alice.upload(name, data, ctype, headers={"Accept": "text/html"})
    assert r.status_code == status
    assert why in r.text and "<!doctype html>" in r.text
    assert list(chat.uploads.iterdir()) == []
    assert alice.messages() == []


@pytest.mark.h2_client_gap(
    "httpcore 0.16 must send the whole body before it reads a response, so "
    "a 413 answered early and the stream reset (NO_ERROR, RFC 9113 8.1) "
    "fails it; nghttp -d gets the 413 page")
def test_upload_over_the_limit_gets_a_413_page(chat):
    alice = ChatClient(chat.url).login("alice")
    alice.form_token("/")
    big = b"PK\x03\x04" + b"z" * 400000
    r = alice.upload("big.zip", big, "application/zip",
                     headers={"Accept": "text/html"})
    assert r.status_code == 413
    assert "413" in r.text and "too large" in r.text
    assert "limited to 0.2 MB" in r.text  # --max_upload=200000
    # Chunked, so no Content-Length to judge by: refused once it passes.

    def chunks():
        yield (b"--B\r\nContent-Disposition: form-data; name=\"file\"; "
               b"filename=\"big.zip\"\r\nContent-Type: application/zip"
               b"\r\n\r\nPK\x03\x04")
        for _ in range(30):
            yield b"y" * 10000
        yield b"\r\n--B--\r\n"
    r = alice.s.post(chat.url + "/a/upload", data=chunks(),
                     headers={"X-Xsrftoken": alice.xsrf,
                              "Content-Type": "multipart/form-data; "
                                              "boundary=B",
                              "Accept": "application/json"}, timeout=30)
    assert r.status_code == 413 and "too large" in r.json()["error"]
    assert list(chat.uploads.iterdir()) == []
    # Just under the limit is fine.
    r = alice.upload("ok.zip", b"PK\x03\x04" + b"z" * 150000,
                     "application/zip")
    assert r.status_code == 200, r.text


def test_upload_abandoned_midway_leaves_nothing(chat):
    alice = ChatClient(chat.url).login("alice")
    alice.form_token("/")
    cookies = "; ".join(f"{k}={v}" for k, v in alice.s.cookies.items())
    s = socket.create_connection((HOST, chat.port), timeout=5)
    head = (b"--B\r\nContent-Disposition: form-data; name=\"file\"; "
            b"filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n" + PNG)
    s.sendall(b"POST /a/upload HTTP/1.1\r\nHost: x\r\nCookie: "
              + cookies.encode() + b"\r\nX-Xsrftoken: " + alice.xsrf.encode()
              + b"\r\nContent-Type: multipart/form-data; boundary=B\r\n"
              b"Content-Length: 100000\r\n\r\n" + head)
    assert wait_for(lambda: list(chat.uploads.iterdir()), 10)
    s.close()
    assert wait_for(lambda: list(chat.uploads.iterdir()) == [], 10)
    assert health(chat.url)["messages"] == 0


def test_processes_need_redis(build_dir, free_port, tmp_path):
    p = subprocess.run([chat_path(build_dir), f"--port={free_port}",
                        "--processes=2", f"--upload_dir={tmp_path}/u"],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 2
    assert "--redis" in p.stderr and "its own room" in p.stderr


def test_unknown_page_is_a_404_page(chat):
    r = requests.get(chat.url + "/nope", timeout=5)
    assert r.status_code == 404
    assert "There is no page here." in r.text and "<!doctype html>" in r.text


# ---- The WebSocket half (Python websockets) ---------------------------------

def ws_headers(client, origin=None):
    cookie = "; ".join(f"{k}={v}" for k, v in client.s.cookies.items())
    h = {"Cookie": cookie}
    if origin:
        h["Origin"] = origin
    return h


def run(coro):
    import asyncio
    return asyncio.run(asyncio.wait_for(coro, 30))


async def ws_next(ws, kind):
    """The next frame of type kind (others are skipped), as JSON."""
    import json
    while True:
        j = json.loads(await ws.recv())
        if j["type"] == kind:
            return j


def test_websocket_and_long_polling_share_the_room(chat):
    import json
    import websockets
    alice = ChatClient(chat.url).login("alice")
    bob = ChatClient(chat.url).login("bob")
    carol = ChatClient(chat.url).login("carol")  # long polling
    carol.form_token("/")
    first = carol.say("before anyone connected").json()
    wsurl = f"ws://{HOST}:{chat.port}/a/socket"
    got = {}

    def poll():
        got["r"] = carol.updates(first["id"])

    async def scenario():
        async with websockets.connect(
                wsurl + "?cursor=0",
                extra_headers=ws_headers(alice, chat.url)) as a, \
                websockets.connect(wsurl + f"?cursor={first['id']}",
                                   extra_headers=ws_headers(bob)) as b:
            # What came before the cursor is replayed on open.
            backlog = await ws_next(a, "messages")
            assert [m["body"] for m in backlog["messages"]] == \
                ["before anyone connected"]
            assert wait_for(lambda: health(chat.url)["listeners"] == 2, 5)
            t = threading.Thread(target=poll)
            t.start()
            assert wait_for(lambda: health(chat.url)["listeners"] == 3, 5)
            await b.send(json.dumps({"body": "<b>from bob</b>"}))
            for ws in (a, b):
                m = (await ws_next(ws, "message"))["message"]
                assert m["from"] == "bob" and m["body"] == "<b>from bob</b>"
                assert "&lt;b&gt;from bob&lt;/b&gt;" in m["html"]
            t.join(10)
            polled = got["r"].json()["messages"]
            assert [x["body"] for x in polled] == ["<b>from bob</b>"]
            # And the other way: a long-polling post reaches the sockets.
            carol.say("from carol")
            for ws in (a, b):
                m = (await ws_next(ws, "message"))["message"]
                assert m["from"] == "carol"
            # Bad input gets an error frame, not a crash or a message.
            await a.send("not json")
            assert "body" in (await ws_next(a, "error"))["error"]
            await a.send(json.dumps({"body": "x" * 2001}))
            assert "too long" in (await ws_next(a, "error"))["error"]
    run(scenario())
    assert wait_for(lambda: health(chat.url)["listeners"] == 0, 10)
    bodies = [m["body"] for m in alice.messages()]
    assert bodies == ["before anyone connected", "<b>from bob</b>",
                      "from carol"]


def test_websocket_needs_a_sign_in_and_the_same_origin(chat):
    import websockets
    alice = ChatClient(chat.url).login("alice")
    wsurl = f"ws://{HOST}:{chat.port}/a/socket"

    async def refused(headers):
        try:
            async with websockets.connect(wsurl, extra_headers=headers):
                return None
        except websockets.exceptions.InvalidStatusCode as e:
            return e.status_code
    assert run(refused({})) == 403
    assert run(refused(ws_headers(alice, "http://evil.example"))) == 403
    assert run(refused(ws_headers(alice, chat.url))) is None


def test_websocket_can_be_turned_off(spawn, build_dir, free_port, tmp_path):
    server = start_chat(spawn, build_dir, free_port, tmp_path,
                        "--websocket=false")
    alice = ChatClient(server.url).login("alice")
    assert 'data-websocket="0"' in alice.room().text
    r = alice.s.get(server.url + "/a/socket", timeout=5)
    assert r.status_code == 404
    stop_chat(server)


@pytest.mark.h2_client_gap(
    "python3-h2 4.1 closes its side on any GOAWAY, so the answer a graceful "
    "stop sends after its GOAWAY (RFC 9113 6.8) is refused; nghttp gets the "
    "200 {\"messages\": []}")
def test_stop_does_not_wait_for_parked_long_polls(spawn, build_dir, free_port,
                                                  tmp_path):
    server = start_chat(spawn, build_dir, free_port, tmp_path,
                        "--poll_timeout=60")
    bob = ChatClient(server.url).login("bob")
    bob.form_token("/")
    got = {}
    t = threading.Thread(target=lambda: got.update(r=bob.updates("0", 30)))
    t.start()
    assert wait_for(lambda: health(server.url)["listeners"] == 1, 10)
    t0 = time.monotonic()
    stop_chat(server)
    assert time.monotonic() - t0 < 10
    t.join(10)
    assert got["r"].status_code == 200
    assert got["r"].json() == {"messages": []}
