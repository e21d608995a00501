"""examples/file_server against real clients (requests, curl, raw sockets):
what a browser or a download tool sees from gust_static_file_handler.

One server per module serves a temporary directory:
    root/hello.txt, index.html, style.css, empty.txt, big.bin (10 MB),
    sub/index.html, nodefault/, inner -> hello.txt and absinner -> the
    absolute path of sub/index.html (symlinks inside root),
    leak -> ../secret.txt and leakdir -> .. (symlinks out of root)
and ../secret.txt beside root, which must never be served.
"""
import email.utils
import hashlib
import os
import signal
import socket
import subprocess
import time

import pytest
import requests

BUILD_DIR = os.environ.get("GUST_BUILD_DIR")
HOST = "127.0.0.1"
SECRET = b"TOP-SECRET-CONTENT"
HELLO = b"Hello, static world!\n"
INDEX = b"<html><body>index</body></html>\n"
SUB_INDEX = b"<html><body>sub index</body></html>\n"
CSS = b"body { color: #123456; }\n"
BIG_SIZE = 10 * 1024 * 1024


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class FileServer:
    def __init__(self, root, log_path, *flags):
        if not BUILD_DIR:
            pytest.fail("GUST_BUILD_DIR is not set (run through ctest)")
        path = os.path.join(BUILD_DIR, "examples", "file_server")
        assert os.access(path, os.X_OK), path
        self.port = free_port()
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [path, f"--root={root}", f"--port={self.port}", *flags],
            stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while b"listening on" not in open(log_path, "rb").read():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail("file_server did not start:\n" + self.log())
            time.sleep(0.05)
        self.url = f"http://{HOST}:{self.port}"

    def log(self):
        return open(self.log_path, "r", errors="replace").read()

    def stop(self):
        """SIGTERM; the server must exit 0 (ASan reports leaks that way)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            pytest.fail("file_server ignored SIGTERM:\n" + self.log())
        finally:
            self._log.close()
        assert rc == 0, self.log()


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("static")
    root = base / "root"
    root.mkdir()
    (base / "secret.txt").write_bytes(SECRET)
    (root / "hello.txt").write_bytes(HELLO)
    (root / "index.html").write_bytes(INDEX)
    (root / "style.css").write_bytes(CSS)
    (root / "empty.txt").write_bytes(b"")
    (root / "big.bin").write_bytes(os.urandom(BIG_SIZE))
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_bytes(SUB_INDEX)
    (root / "nodefault").mkdir()
    os.symlink("hello.txt", root / "inner")
    os.symlink(root / "sub" / "index.html", root / "absinner")
    os.symlink("../secret.txt", root / "leak")
    os.symlink("..", root / "leakdir")
    return root


@pytest.fixture(scope="module")
def server(tree, tmp_path_factory):
    log = tmp_path_factory.mktemp("log") / "file_server.log"
    srv = FileServer(tree, log)
    yield srv
    srv.stop()


def get(server, path, **kw):
    kw.setdefault("timeout", 30)
    kw.setdefault("allow_redirects", False)
    return requests.get(server.url + path, **kw)


def raw(port, request, timeout=10.0):
    """Sends request bytes as they are (no client normalisation of the
    path) and reads until the server closes. Returns the response bytes."""
    with socket.create_connection((HOST, port), timeout) as s:
        s.sendall(request)
        out = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                out += d
        except socket.timeout:
            pass
    return out


def raw_get(port, target):
    return raw(port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n"
               b"Connection: close\r\n\r\n")


def status_of(response_bytes):
    return int(response_bytes.split(b" ", 2)[1])


# ---- plain GET -----------------------------------------------------------

def test_get_headers(server, tree):
    r = get(server, "/hello.txt")
    assert r.status_code == 200
    assert r.content == HELLO
    assert r.headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert r.headers["Content-Length"] == str(len(HELLO))
    assert r.headers["Accept-Ranges"] == "bytes"
    etag = r.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2
    mtime = int(os.stat(tree / "hello.txt").st_mtime)
    assert r.headers["Last-Modified"] == email.utils.formatdate(mtime,
                                                                usegmt=True)
    assert "Cache-Control" not in r.headers
    assert "Content-Encoding" not in r.headers
    # Same file, same validator.
    assert get(server, "/hello.txt").headers["ETag"] == etag


def test_content_types(server):
    assert get(server, "/style.css").headers["Content-Type"] == \
        "text/css; charset=UTF-8"
    assert get(server, "/index.html").headers["Content-Type"] == \
        "text/html; charset=UTF-8"
    assert get(server, "/big.bin").headers["Content-Type"] == \
        "application/octet-stream"


def test_empty_file(server):
    r = get(server, "/empty.txt")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["Content-Length"] == "0"


def test_missing_is_404(server):
    assert get(server, "/nope.txt").status_code == 404
    assert get(server, "/sub/nope/deeper.txt").status_code == 404
    assert get(server, "/hello.txt/more").status_code == 404
    assert get(server, "/hello.txt/").status_code == 404


def test_symlink_inside_root_is_served(server):
    r = get(server, "/inner")
    assert r.status_code == 200
    assert r.content == HELLO
    # An absolute symlink that stays inside root is fine too.
    r = get(server, "/absinner")
    assert r.status_code == 200
    assert r.content == SUB_INDEX


def test_etag_changes_with_file(server, tree):
    path = tree / "changing.txt"
    path.write_bytes(b"one")
    first = get(server, "/changing.txt")
    assert first.content == b"one"
    path.write_bytes(b"two, longer")
    second = get(server, "/changing.txt")
    assert second.content == b"two, longer"
    assert second.headers["ETag"] != first.headers["ETag"]
    # The old validator no longer gets a 304.
    r = get(server, "/changing.txt",
            headers={"If-None-Match": first.headers["ETag"]})
    assert r.status_code == 200


# ---- conditional requests --------------------------------------------------

def test_if_none_match(server):
    etag = get(server, "/hello.txt").headers["ETag"]
    for value in (etag, "W/" + etag, '"other", ' + etag, "*",
                  '"a",W/"b" , ' + etag):
        r = get(server, "/hello.txt", headers={"If-None-Match": value})
        assert r.status_code == 304, value
        assert r.content == b""
        assert r.headers["ETag"] == etag
    r = get(server, "/hello.txt", headers={"If-None-Match": '"other"'})
    assert r.status_code == 200
    assert r.content == HELLO


def test_if_modified_since(server):
    lm = get(server, "/hello.txt").headers["Last-Modified"]
    r = get(server, "/hello.txt", headers={"If-Modified-Since": lm})
    assert r.status_code == 304
    assert r.content == b""
    later = email.utils.formatdate(time.time() + 3600, usegmt=True)
    assert get(server, "/hello.txt",
               headers={"If-Modified-Since": later}).status_code == 304
    old = "Sat, 01 Jan 2000 00:00:00 GMT"
    r = get(server, "/hello.txt", headers={"If-Modified-Since": old})
    assert r.status_code == 200
    assert r.content == HELLO
    # A date that does not parse is ignored.
    assert get(server, "/hello.txt",
               headers={"If-Modified-Since": "yesterday"}).status_code == 200


def test_if_none_match_wins_over_if_modified_since(server):
    lm = get(server, "/hello.txt").headers["Last-Modified"]
    r = get(server, "/hello.txt",
            headers={"If-None-Match": '"other"', "If-Modified-Since": lm})
    assert r.status_code == 200
    assert r.content == HELLO


def test_304_with_curl(server):
    etag = get(server, "/hello.txt").headers["ETag"]
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
         "-H", f"If-None-Match: {etag}", server.url + "/hello.txt"],
        capture_output=True, text=True, timeout=30)
    assert out.stdout == "304"


# ---- ranges -----------------------------------------------------------------

def test_range_206(server, tree):
    data = (tree / "big.bin").read_bytes()
    size = len(data)
    cases = {
        "bytes=0-9": (0, 9),
        "bytes=100-199": (100, 199),
        f"bytes={size - 10}-": (size - 10, size - 1),
        "bytes=-16": (size - 16, size - 1),
        f"bytes=5-{size + 1000}": (5, size - 1),
    }
    for header, (first, last) in cases.items():
        r = get(server, "/big.bin", headers={"Range": header})
        assert r.status_code == 206, header
        assert r.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert r.headers["Content-Length"] == str(last - first + 1)
        assert r.content == data[first:last + 1], header


def test_range_416(server):
    for header in ("bytes=100-", "bytes=500-600", "bytes=-0"):
        r = get(server, "/hello.txt", headers={"Range": header})
        assert r.status_code == 416, header
        assert r.headers["Content-Range"] == f"bytes */{len(HELLO)}"
        assert r.content == b""
    r = get(server, "/empty.txt", headers={"Range": "bytes=0-"})
    assert r.status_code == 416
    assert r.headers["Content-Range"] == "bytes */0"


def test_range_ignored(server):
    # Invalid syntax, another unit, several ranges, the whole file: 200.
    for header in ("bytes=5-1", "bytes=x-y", "items=0-1", "bytes=0-1,4-5",
                   "bytes=0-", f"bytes=0-{len(HELLO) - 1}", "bytes"):
        r = get(server, "/hello.txt", headers={"Range": header})
        assert r.status_code == 200, header
        assert r.content == HELLO
        assert "Content-Range" not in r.headers


def test_if_range(server):
    r0 = get(server, "/hello.txt")
    etag, lm = r0.headers["ETag"], r0.headers["Last-Modified"]
    for validator in (etag, lm):
        r = get(server, "/hello.txt",
                headers={"Range": "bytes=0-4", "If-Range": validator})
        assert r.status_code == 206, validator
        assert r.content == HELLO[:5]
    for validator in ('"stale"', "W/" + etag, "Sat, 01 Jan 2000 00:00:00 GMT"):
        r = get(server, "/hello.txt",
                headers={"Range": "bytes=0-4", "If-Range": validator})
        assert r.status_code == 200, validator
        assert r.content == HELLO


def test_range_with_curl(server, tree, tmp_path):
    out = tmp_path / "part"
    res = subprocess.run(
        ["curl", "-s", "-r", "1000-2999", "-o", str(out), "-w",
         "%{http_code}", server.url + "/big.bin"],
        capture_output=True, text=True, timeout=60)
    assert res.stdout == "206"
    assert out.read_bytes() == (tree / "big.bin").read_bytes()[1000:3000]


# ---- HEAD -------------------------------------------------------------------

def test_head(server):
    r = requests.head(server.url + "/big.bin", timeout=30)
    assert r.status_code == 200
    assert r.headers["Content-Length"] == str(BIG_SIZE)
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert "ETag" in r.headers and "Last-Modified" in r.headers
    # No body: a second request on the same connection is answered right
    # after the HEAD's headers.
    resp = raw(server.port,
               b"HEAD /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n"
               b"Connection: close\r\n\r\n")
    head, rest = resp.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Content-Length: %d" % len(HELLO) in head
    assert rest.startswith(b"HTTP/1.1 200")
    assert rest.endswith(HELLO)


# ---- large file -------------------------------------------------------------

def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def test_big_file_not_read_into_memory(tree, tmp_path):
    # A server of its own, warmed up with small files; then its peak
    # resident size must not grow by anything near the file's size while
    # the 10 MB file is sent several times.
    srv = FileServer(tree, tmp_path / "rss.log")
    try:
        for _ in range(5):
            assert get(srv, "/hello.txt").content == HELLO
        before = peak_rss_kib(srv.proc.pid)
        for _ in range(3):
            with requests.get(srv.url + "/big.bin", stream=True,
                              timeout=60) as r:
                got = sum(len(c) for c in r.iter_content(65536))
                assert got == BIG_SIZE
        grown = peak_rss_kib(srv.proc.pid) - before
        assert grown < BIG_SIZE // 1024 // 2, f"peak RSS grew by {grown} KiB"
    finally:
        srv.stop()


def test_big_file_byte_for_byte(server, tree, tmp_path):
    want = hashlib.sha256((tree / "big.bin").read_bytes()).hexdigest()
    r = get(server, "/big.bin")
    assert r.status_code == 200
    assert len(r.content) == BIG_SIZE
    assert hashlib.sha256(r.content).hexdigest() == want
    out = tmp_path / "big.curl"
    res = subprocess.run(["curl", "-s", "-o", str(out), "-w", "%{http_code}",
                          server.url + "/big.bin"],
                         capture_output=True, text=True, timeout=120)
    assert res.stdout == "200"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == want


# ---- directories ------------------------------------------------------------

def test_directory_default_file(server):
    r = get(server, "/")
    assert r.status_code == 200
    assert r.content == INDEX
    r = get(server, "/sub")
    assert r.status_code == 301
    assert r.headers["Location"] == "/sub/"
    r = get(server, "/sub/")
    assert r.status_code == 200
    assert r.content == SUB_INDEX
    assert r.headers["Content-Type"] == "text/html; charset=UTF-8"
    # A directory without the default file.
    assert get(server, "/nodefault/").status_code in (403, 404)


def test_directory_without_default_filename(tree, tmp_path):
    srv = FileServer(tree, tmp_path / "nodefault.log", "--default-filename=")
    try:
        assert get(srv, "/").status_code == 403
        assert get(srv, "/sub/").status_code == 403
        assert get(srv, "/hello.txt").content == HELLO
    finally:
        srv.stop()


def test_prefix(tree, tmp_path):
    srv = FileServer(tree, tmp_path / "prefix.log", "--prefix=/static/")
    try:
        assert get(srv, "/static/hello.txt").content == HELLO
        assert get(srv, "/hello.txt").status_code == 404
        assert get(srv, "/static/../secret.txt").status_code in (403, 404)
    finally:
        srv.stop()


# ---- traversal ----------------------------------------------------------------

TRAVERSALS = [
    b"/../secret.txt",
    b"/sub/../../secret.txt",
    b"/%2e%2e/secret.txt",
    b"/%2E%2E/secret.txt",
    b"/sub/%2e%2e/%2e%2e/secret.txt",
    b"/..%2fsecret.txt",
    b"/sub%2f..%2f..%2fsecret.txt",
    b"/%2e%2e%2fsecret.txt",
    b"/%252e%252e/secret.txt",
    b"/%252e%252e%252fsecret.txt",
    b"/..%5csecret.txt",
    b"/hello.txt%00.html",
    b"/%00",
    b"/leak",
    b"/leakdir/secret.txt",
    b"/leakdir/",
    b"//etc/passwd",
    b"/%2fetc%2fpasswd",
]


@pytest.mark.parametrize("target", TRAVERSALS,
                         ids=[t.decode() for t in TRAVERSALS])
def test_traversal_refused(server, target):
    resp = raw_get(server.port, target)
    assert resp, target
    assert status_of(resp) in (400, 403, 404), resp[:200]
    assert SECRET not in resp
    assert b"root:" not in resp


def test_traversal_with_curl(server):
    res = subprocess.run(
        ["curl", "-s", "--path-as-is", "-w", "\n%{http_code}",
         server.url + "/../secret.txt"],
        capture_output=True, timeout=30)
    body, _, code = res.stdout.rpartition(b"\n")
    assert code in (b"403", b"404")
    assert SECRET not in body


def test_symlink_out_of_root_is_403(server):
    assert get(server, "/leak").status_code == 403


# ---- versioned URLs ---------------------------------------------------------

def test_versioned_url_cache_header(server):
    r = get(server, "/style.css?v=0123abcd")
    assert r.status_code == 200
    assert r.content == CSS
    cc = r.headers["Cache-Control"]
    assert "max-age=31536000" in cc
    assert "Cache-Control" not in get(server, "/style.css").headers
    # Conditional requests still work on a versioned URL.
    r2 = get(server, "/style.css?v=0123abcd",
             headers={"If-None-Match": r.headers["ETag"]})
    assert r2.status_code == 304


def test_keep_alive_many_requests(server):
    # One requests.Session keeps its connection: files, 304s and ranges
    # in turn on it.
    with requests.Session() as s:
        etag = s.get(server.url + "/hello.txt", timeout=30).headers["ETag"]
        for _ in range(20):
            assert s.get(server.url + "/hello.txt", timeout=30).content == HELLO
            assert s.get(server.url + "/hello.txt", timeout=30,
                         headers={"If-None-Match": etag}).status_code == 304
            r = s.get(server.url + "/style.css", timeout=30,
                      headers={"Range": "bytes=0-3"})
            assert r.status_code == 206 and r.content == CSS[:4]
