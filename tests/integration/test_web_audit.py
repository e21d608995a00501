"""Issue 4 audit: the points of the web framework that test_web.py and
test_static.py leave out, checked from the outside as a user would (curl,
Python requests with its cookie jar, Tornado's client and signing
functions, raw sockets where a client would hide the bytes), against
examples/web_testapp and examples/file_server on 127.0.0.1.

Each test names the issue point it proves; AUDIT.md maps them.
"""
import email.utils
import http.cookiejar
import re
import socket
import subprocess
import time

import pytest
import requests

from conftest import HOST, connect

SECRET = "gust-test-secret"
UNSAFE = ("POST", "PUT", "DELETE", "PATCH")
ALL_METHODS = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS"


@pytest.fixture
def app(program, spawn, free_port):
    def start(*args, workers=1):
        server = spawn([program("web_testapp"), f"--port={free_port}",
                        f"--cookie_secret={SECRET}", *args])
        server.wait_log("listening on", count=workers)
        connect(free_port).close()
        server.port = free_port
        server.base = f"http://{HOST}:{free_port}"
        return server
    return start


def raw(port, request):
    """Sends request bytes as they are and reads until the server closes:
    for what requests would normalise (status lines, repeated headers)."""
    with socket.create_connection((HOST, port), 10) as s:
        s.sendall(request)
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    return out


def raw_get(port, target, extra=b""):
    return raw(port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + extra +
               b"Connection: close\r\n\r\n")


def head_lines(resp):
    return resp.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def xsrf_session(base):
    """A requests session holding an _xsrf cookie, and its token."""
    sess = requests.Session()
    token = sess.get(base + "/xsrf", timeout=10).text
    assert sess.cookies.get("_xsrf")
    return sess, token


def set_cookie_header(r):
    # One Set-Cookie per response in these tests.
    return r.headers["Set-Cookie"]


# ---- Request handlers: methods, 405, XSRF on every unsafe method ----------

def test_every_method_reaches_its_function(app):
    s = app()
    sess, token = xsrf_session(s.base)
    url = s.base + "/methods"
    for m in ("GET", "OPTIONS") + UNSAFE:
        r = sess.request(m, url, headers={"X-Xsrftoken": token}, timeout=10)
        assert r.status_code == 200, m
        assert r.text == m and r.headers["X-Method"] == m
    # HEAD: the method ran (its header is there), the length of what it
    # wrote is announced, no body is sent.
    r = sess.head(url, headers={"Accept-Encoding": "identity"}, timeout=10)
    assert r.status_code == 200 and r.headers["X-Method"] == "HEAD"
    assert r.headers["Content-Length"] == "4" and r.content == b""
    # A method no handler can have, and a class with all seven: Allow
    # lists them all.
    resp = raw(s.port, b"FOO /methods HTTP/1.1\r\nHost: x\r\n"
               b"Connection: close\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 405 ")
    assert b"Allow: " + ALL_METHODS.encode() in head_lines(resp)
    assert s.stop() == 0


def test_xsrf_checked_for_every_unsafe_method(app):
    s = app()
    url = s.base + "/methods"
    for m in UNSAFE:
        # No token at all, then a cookie without the matching token.
        assert requests.request(m, url, timeout=10).status_code == 403, m
        sess, token = xsrf_session(s.base)
        assert sess.request(m, url, timeout=10).status_code == 403, m
        assert sess.request(m, url, headers={"X-Xsrftoken": token},
                            timeout=10).text == m
    # Safe methods need no token.
    for m in ("GET", "HEAD", "OPTIONS"):
        assert requests.request(m, url, timeout=10).status_code == 200, m
    assert s.stop() == 0


# ---- Output: set_status, headers, redirects ---------------------------------

def test_set_status_with_and_without_reason(app):
    s = app()
    assert raw_get(s.port, b"/status?code=299&reason=Custom%20Thing") \
        .startswith(b"HTTP/1.1 299 Custom Thing\r\n")
    # Without a reason: the standard phrase, or "Unknown" (Tornado's).
    assert raw_get(s.port, b"/status?code=201") \
        .startswith(b"HTTP/1.1 201 Created\r\n")
    assert raw_get(s.port, b"/status?code=299") \
        .startswith(b"HTTP/1.1 299 Unknown\r\n")
    # Out of range, or a reason that would inject a header: refused.
    assert raw_get(s.port, b"/status?code=600").startswith(b"HTTP/1.1 400 ")
    resp = raw_get(s.port, b"/status?code=200&reason=a%0d%0aX-Evil:%201")
    assert resp.startswith(b"HTTP/1.1 400 ")
    assert b"X-Evil" not in resp
    assert s.stop() == 0


def test_set_add_clear_header(app):
    s = app()
    lines = head_lines(raw_get(s.port, b"/headers"))
    # set_header replaces, add_header adds a line, clear_header removes.
    assert [l for l in lines if l.startswith(b"X-Set:")] == [b"X-Set: second"]
    assert [l for l in lines if l.startswith(b"X-Multi:")] == \
        [b"X-Multi: one", b"X-Multi: two"]
    assert not [l for l in lines if l.startswith(b"X-Gone")]
    # CR, LF or another control in a value: both calls refuse it.
    for bad in ("a\r\nX-Evil: 1", "a\nX-Evil: 1", "a\rX-Evil: 1",
                "a\x01b"):
        r = requests.get(s.base + "/headers", params={"bad": bad}, timeout=10)
        assert r.text == "set=-22 add=-22", repr(bad)
        assert "X-Evil" not in r.headers and "X-Bad" not in r.headers
    assert s.stop() == 0


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_statuses(app, status):
    s = app()
    url = s.base + f"/redirect?to=/item/5&status={status}"
    r = requests.get(url, timeout=10, allow_redirects=False)
    assert r.status_code == status
    assert r.headers["Location"] == "/item/5"
    # A real client follows it.
    r = requests.get(url, timeout=10)
    assert r.text == "item 5" and [h.status_code for h in r.history] == \
        [status]
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w",
                          "%{http_code} %{redirect_url}", url],
                         capture_output=True, text=True, timeout=30).stdout
    assert out == f"{status} {s.base}/item/5"
    assert s.stop() == 0


def test_redirect_refuses_other_statuses(app):
    s = app()
    for status in (200, 300, 304, 399):
        r = requests.get(s.base + f"/redirect?to=/&status={status}",
                         timeout=10, allow_redirects=False)
        assert r.status_code == 400, status
        assert "Location" not in r.headers
    assert s.stop() == 0


# ---- Cookies: every set_cookie attribute, clear_cookie --------------------

def attrs(base, sess=None, **query):
    return (sess or requests).get(base + "/cookie/attrs", params=query,
                                  timeout=10)


def test_cookie_domain(app):
    s = app()
    r = attrs(s.base, name="d", value="1", domain="example.com")
    assert set_cookie_header(r) == "d=1; Domain=example.com; Path=/"
    # A cookie jar refuses a cookie for another domain than the server's.
    sess = requests.Session()
    attrs(s.base, sess, name="d", value="1", domain="example.com")
    assert "d" not in sess.cookies
    # Injection through the domain is refused.
    assert attrs(s.base, name="d", domain="a.com; Secure").status_code == 400
    assert s.stop() == 0


def test_cookie_path(app):
    s = app()
    sess = requests.Session()
    r = attrs(s.base, sess, name="p", value="in", path="/cookie")
    assert set_cookie_header(r) == "p=in; Path=/cookie"
    attrs(s.base, sess, name="q", value="out", path="/elsewhere")
    # The jar sends each only under its path.
    assert sess.get(s.base + "/cookie/get?name=p", timeout=10).text == "in"
    assert sess.get(s.base + "/cookie/get?name=q", timeout=10).text == \
        "(none)"
    # Without a path: "/", as Tornado's set_cookie.
    assert set_cookie_header(attrs(s.base, name="r", value="1")) == \
        "r=1; Path=/"
    assert s.stop() == 0


def test_cookie_expires(app):
    s = app()
    later = int(time.time()) + 3 * 86400
    r = attrs(s.base, name="e", value="1", expires=str(later))
    # RFC 6265 sane-cookie-date: an IMF-fixdate.
    assert set_cookie_header(r) == \
        f"e=1; Path=/; Expires={email.utils.formatdate(later, usegmt=True)}"
    sess = requests.Session()
    attrs(s.base, sess, name="e", value="1", expires=str(later))
    kept = [c for c in sess.cookies if c.name == "e"]
    assert len(kept) == 1 and kept[0].expires == later
    # An Expires in the past removes the cookie from the jar.
    attrs(s.base, sess, name="e", value="1", expires=str(later - 10 * 86400))
    assert "e" not in sess.cookies
    assert s.stop() == 0


def test_cookie_max_age(app):
    s = app()
    r = attrs(s.base, name="m", value="1", max_age="60")
    assert set_cookie_header(r) == "m=1; Path=/; Max-Age=60"
    sess = requests.Session()
    attrs(s.base, sess, name="m", value="1", max_age="60")
    kept = [c for c in sess.cookies if c.name == "m"]
    assert len(kept) == 1
    assert abs(kept[0].expires - (time.time() + 60)) < 30
    # Max-Age=0 removes it; a negative one is refused.
    attrs(s.base, sess, name="m", value="1", max_age="0")
    assert "m" not in sess.cookies
    assert attrs(s.base, name="m", max_age="-1").status_code == 400
    assert s.stop() == 0


def test_cookie_secure(app):
    s = app()
    sess = requests.Session()
    r = attrs(s.base, sess, name="s", value="1", secure="1")
    assert set_cookie_header(r) == "s=1; Path=/; Secure"
    # The jar keeps it but never sends it over plain http.
    assert [c.secure for c in sess.cookies if c.name == "s"] == [True]
    assert sess.get(s.base + "/cookie/get?name=s", timeout=10).text == \
        "(none)"
    # A "__Secure-" name without Secure is refused (browsers drop it).
    assert attrs(s.base, name="__Secure-x").status_code == 400
    assert s.stop() == 0


def test_cookie_httponly(app):
    s = app()
    sess = requests.Session()
    r = attrs(s.base, sess, name="h", value="1", httponly="1")
    assert set_cookie_header(r) == "h=1; Path=/; HttpOnly"
    c = [c for c in sess.cookies if c.name == "h"][0]
    assert c.has_nonstandard_attr("HttpOnly")
    # Still sent back to the server.
    assert sess.get(s.base + "/cookie/get?name=h", timeout=10).text == "1"
    assert s.stop() == 0


def test_cookie_samesite(app):
    s = app()
    for value, want in (("strict", "Strict"), ("lax", "Lax")):
        r = attrs(s.base, name="ss", value="1", samesite=value)
        assert set_cookie_header(r) == f"ss=1; Path=/; SameSite={want}"
    # None needs Secure (browsers drop it otherwise).
    assert attrs(s.base, name="ss", samesite="none").status_code == 400
    r = attrs(s.base, name="ss", value="1", samesite="none", secure="1")
    assert set_cookie_header(r) == "ss=1; Path=/; Secure; SameSite=None"
    assert s.stop() == 0


def test_cookie_all_attributes_parsed_by_a_jar(app):
    s = app()
    later = int(time.time()) + 86400
    r = attrs(s.base, name="all", value="v", domain="example.com",
              path="/p", expires=str(later), max_age="60", secure="1",
              httponly="1", samesite="lax")
    header = set_cookie_header(r)
    assert header == (f"all=v; Domain=example.com; Path=/p; Expires="
                      f"{email.utils.formatdate(later, usegmt=True)}; "
                      "Max-Age=60; Secure; HttpOnly; SameSite=Lax")
    # The standard library's RFC 6265 reader sees every attribute.
    parsed = http.cookiejar.parse_ns_headers([header])[0]
    got = dict((k.lower(), v) for k, v in parsed)
    assert got["all"] == "v" and got["domain"] == "example.com"
    assert got["path"] == "/p" and got["max-age"] == "60"
    assert "secure" in got and "httponly" in got and got["samesite"] == "Lax"
    assert s.stop() == 0


def test_clear_cookie(app):
    s = app()
    sess = requests.Session()
    sess.get(s.base + "/cookie/set?name=gone&value=1", timeout=10)
    assert sess.cookies.get("gone") == "1"
    r = sess.get(s.base + "/cookie/clear?name=gone", timeout=10)
    header = set_cookie_header(r)
    m = re.fullmatch(r"gone=; Path=/; Expires=(.*); Max-Age=0", header)
    assert m, header
    assert email.utils.parsedate_to_datetime(m.group(1)).timestamp() < \
        time.time() - 86400
    assert "gone" not in sess.cookies
    assert sess.get(s.base + "/cookie/get?name=gone", timeout=10).text == \
        "(none)"
    assert s.stop() == 0


# ---- Signed cookies: default expiry, key versions ---------------------------

def test_signed_cookie_expires_in_30_days(app):
    s = app()
    r = requests.get(s.base + "/signed/set?value=a", timeout=10)
    m = re.search(r"Expires=([^;]+)", set_cookie_header(r))
    expires = email.utils.parsedate_to_datetime(m.group(1)).timestamp()
    assert abs(expires - (time.time() + 30 * 86400)) < 60
    assert s.stop() == 0


def test_signed_cookie_key_versions(app):
    from tornado.web import create_signed_value, decode_signed_value
    secrets = {0: "old-secret", 1: "new-secret"}
    s = app("--key_secrets=old-secret,new-secret", "--key_version=1")
    b = s.base
    sess = requests.Session()
    sess.get(b + "/signed/set?value=carol", timeout=10)
    raw_value = sess.cookies.get("user")
    # Signed with version 1, which the value names; Tornado agrees.
    assert raw_value.split("|")[1] == "1:1"
    assert decode_signed_value(secrets, "user", raw_value) == b"carol"
    assert decode_signed_value({0: "old-secret"}, "user", raw_value) is None
    # A value signed under the old version is still read...
    old = create_signed_value(secrets, "user", "dave", key_version=0).decode()
    r = requests.get(b + "/signed/get", cookies={"user": old}, timeout=10)
    assert r.text == "dave"
    # ...one naming a version the app does not have is not...
    unknown = create_signed_value({**secrets, 5: "x"}, "user", "eve",
                                  key_version=5).decode()
    assert requests.get(b + "/signed/get", cookies={"user": unknown},
                        timeout=10).status_code == 403
    # ...nor one whose version was changed after signing.
    forged = old.replace("|1:0|", "|1:1|", 1)
    assert requests.get(b + "/signed/get", cookies={"user": forged},
                        timeout=10).status_code == 403
    assert s.stop() == 0


# ---- Input: query and body arguments, files ---------------------------------

def test_query_and_body_arguments(app):
    s = app()
    sess, token = xsrf_session(s.base)
    r = sess.post(s.base + "/args/split?name=q1&name=q2",
                  data=[("name", " b1 "), ("name", "b2"), ("_xsrf", token)],
                  timeout=10)
    assert r.status_code == 200
    # Query first, then body, as Tornado's request.arguments; stripped.
    assert r.text == ("query=q2 body=b2 any=b2 queries=q1,q2 bodies=b1,b2 "
                      "all=q1,q2,b1,b2")
    r = requests.get(s.base + "/args/split", timeout=10)
    assert r.text == "query=- body=- any=- queries= bodies= all="
    assert s.stop() == 0


def test_uploaded_files(app):
    s = app()
    sess, token = xsrf_session(s.base)
    content = bytes(range(256)) * 40  # binary, NULs included
    r = sess.post(s.base + "/upload",
                  files={"doc": ("report.bin", content,
                                 "application/octet-stream"),
                         "other": ("b.txt", b"second", "text/plain")},
                  data={"_xsrf": token, "note": "hi"}, timeout=10)
    assert r.status_code == 200
    head, rest = r.content.split(b"|", 3)[:3], r.content.split(b"|", 3)[3]
    assert head == [b"report.bin", b"application/octet-stream",
                    str(len(content)).encode()]
    assert rest == content + b"|files=2|note=hi"
    # The same with curl -F (a part without its own Content-Type).
    out = subprocess.run(
        ["curl", "-s", "-H", f"X-Xsrftoken: {token}", "-b", f"_xsrf={token}",
         "-F", "doc=@-;filename=x.txt", s.base + "/upload"],
        input=b"from curl", capture_output=True, timeout=30).stdout
    assert out.startswith(b"x.txt|") and b"|9|from curl|files=1" in out
    assert s.stop() == 0


# ---- Streaming body ---------------------------------------------------------

def fnv1a32(data):
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def test_streaming_body(app):
    s = app()
    sess, token = xsrf_session(s.base)
    data = bytes((i * 7 + i // 251) & 0xFF for i in range(3 * 1024 * 1024))

    def pieces():  # sent chunked, as a client streaming an upload does
        for i in range(0, len(data), 100000):
            yield data[i:i + 100000]
    r = sess.put(s.base + "/sink", data=pieces(),
                 headers={"X-Xsrftoken": token}, timeout=60)
    assert r.status_code == 200, r.text
    fields = dict(f.split("=") for f in r.text.split())
    # Every byte reached data_received, in several chunks, none buffered.
    assert fields["bytes"] == str(len(data))
    assert int(fields["chunks"]) > 1 and fields["buffered"] == "0"
    assert fields["fnv"] == f"{fnv1a32(data):08x}"
    # With Content-Length too; the XSRF check can only use the header.
    r = sess.put(s.base + "/sink", data=data[:5000],
                 headers={"X-Xsrftoken": token}, timeout=60)
    assert r.text.startswith("bytes=5000 ")
    assert sess.put(s.base + "/sink", data=b"x" * 10,
                    timeout=60).status_code == 403
    assert s.stop() == 0


# ---- Settings: default handler, log function, access log --------------------

def test_default_handler_setting(app):
    s = app("--default_handler")
    r = requests.get(s.base + "/no/such/page", timeout=10)
    assert r.status_code == 404 and r.text == "no route for /no/such/page"
    # Routes still win.
    assert requests.get(s.base + "/", timeout=10).text == "Hello, world"
    assert s.stop() == 0


def test_log_function_setting(app):
    s = app("--custom_log")
    requests.get(s.base + "/args?name=x", timeout=10)
    requests.get(s.base + "/nope", timeout=10)
    assert s.stop() == 0
    log = s.log()
    assert "data-ok custom-log 200 GET /args?name=x" in log
    assert "data-ok custom-log 404 GET /nope" in log
    # It replaces the default line.
    assert "access]" not in log


def test_error_reason_logged(app):
    # As Tornado's log_exception: why a 4xx was sent is logged as a
    # warning (the page itself does not say, outside debug mode).
    s = app()
    r = requests.get(s.base + "/need", timeout=10)
    assert r.status_code == 400 and "Missing argument" not in r.text
    assert s.stop() == 0
    assert re.search(r"^\[W .* web\] 400 GET /need \(.*\): "
                     r"Missing argument q$", s.log(), re.M)


def test_access_log_line(app):
    s = app()
    requests.get(s.base + "/args?name=x", timeout=10)
    requests.get(s.base + "/nope", timeout=10)
    requests.get(s.base + "/error", timeout=10)
    assert s.stop() == 0
    log = s.log()
    # status, method, uri, remote ip, time in ms; the level follows the
    # status as Tornado's log_request.
    for level, line in (("I", r"200 GET /args\?name=x"),
                        ("W", "404 GET /nope"), ("E", "500 GET /error")):
        assert re.search(r"^\[" + level + r" .* access\] " + line +
                         r" \(127\.0\.0\.1\) \d+\.\d\dms$", log, re.M), line


# ---- Routing: route data, host-based routes, start forms -----------------

def test_route_data_reaches_initialize(app):
    s = app()
    b = s.base
    assert requests.get(b + "/greet/en?who=Ann", timeout=10).text == \
        "Hello, Ann"
    assert requests.get(b + "/greet/fr", timeout=10).text == "Bonjour, you"
    # initialize failing: 500, the method never runs.
    r = requests.get(b + "/greet/none", timeout=10)
    assert r.status_code == 500 and "you" not in r.text
    assert s.stop() == 0
    assert "initialize failed" in s.log()


def test_host_based_route(app):
    s = app()
    r = requests.get(s.base + "/", headers={"Host": "api.example.com"},
                     timeout=10)
    assert r.text == "api host"
    r = requests.get(s.base + "/", headers={"Host": "api.example.com:80"},
                     timeout=10)
    assert r.text == "api host"
    for host in ("www.example.com", "apixexample.com", "x.api.example.com"):
        r = requests.get(s.base + "/", headers={"Host": host}, timeout=10)
        assert r.text == "Hello, world", host
    assert s.stop() == 0


@pytest.mark.parametrize("form,workers", [("explicit", 1), ("sockets", 2)])
def test_start_forms(app, form, workers):
    # gust_http_server_new(app) + listen; and form 3 (bind_sockets,
    # fork_processes, add_sockets). Form 2 is test_web's test_hello_forked.
    s = app(f"--form={form}", workers=workers)
    from tornado.httpclient import HTTPClient
    client = HTTPClient()
    try:
        for _ in range(4):
            r = client.fetch(s.base + "/item/3")
            assert r.code == 200 and r.body == b"item 3"
    finally:
        client.close()
    assert s.stop() == 0


# ---- Settings: static_url_prefix, compress_response ----------------------

def test_static_url_prefix_setting(app, tmp_path):
    root = tmp_path / "files"
    root.mkdir()
    (root / "a.js").write_text("var a = 1;\n")
    s = app(f"--static_path={root}", "--static_url_prefix=/assets/")
    url = requests.get(s.base + "/static_url?path=a.js", timeout=10).text
    assert url.startswith("/assets/a.js?v=")
    r = requests.get(s.base + url, timeout=10)
    assert r.status_code == 200 and r.text == "var a = 1;\n"
    assert requests.get(s.base + "/static/a.js", timeout=10).status_code \
        == 404
    assert s.stop() == 0


def test_compress_response_off(app):
    s = app("--compress_response=false")
    r = requests.get(s.base + "/big", headers={"Accept-Encoding": "gzip"},
                     timeout=10)
    assert "Content-Encoding" not in r.headers
    assert r.text.count("compressible body") == 2000
    assert s.stop() == 0


def test_gzip_refused_with_q0(app):
    s = app()
    for ae in ("gzip;q=0", "gzip;q=0, deflate", "*;q=0", "identity"):
        r = requests.get(s.base + "/big", headers={"Accept-Encoding": ae},
                         timeout=10)
        assert "Content-Encoding" not in r.headers, ae
        assert r.headers["Vary"] == "Accept-Encoding"
    for ae in ("*", "deflate, gzip;q=0.5", "x-gzip"):
        r = requests.get(s.base + "/big", headers={"Accept-Encoding": ae},
                         timeout=10)
        assert r.headers.get("Content-Encoding") == "gzip", ae
    assert s.stop() == 0


# ---- flush with Tornado's client, templates over HTTP --------------------

def test_flush_streams_chunks_to_tornado_client(app):
    s = app("--compress_response=false")
    from tornado.httpclient import HTTPClient
    chunks = []
    client = HTTPClient()
    try:
        r = client.fetch(s.base + "/stream", streaming_callback=chunks.append)
    finally:
        client.close()
    assert r.code == 200
    assert r.headers["Transfer-Encoding"] == "chunked"
    assert b"".join(chunks) == b"".join(
        b"part %d of a streamed body\n" % i for i in range(3))
    assert s.stop() == 0


def test_template_inheritance_over_http(app):
    s = app()
    r = requests.get(s.base + "/template?name=Ann", timeout=10)
    # base.html's frame around page.html's blocks.
    assert r.text.startswith("<!DOCTYPE html>")
    assert "<title>Hello, Ann</title>" in r.text
    assert "<li>one</li>" in r.text and "<li>three</li>" in r.text
    assert r.text.rstrip().endswith("</html>")
    assert s.stop() == 0


def test_template_error_names_file_and_line(app):
    s = app()
    r = requests.get(s.base + "/template/broken", timeout=10)
    assert r.status_code == 500
    assert "missing" not in r.text  # details stay in the log
    r = requests.get(s.base + "/template/broken?syntax=1", timeout=10)
    assert r.status_code == 500 and "expected" not in r.text
    assert s.stop() == 0
    log = s.log()
    assert "broken.html:3: name 'missing' is not defined" in log
    # A syntax error: file, line, and what was expected.
    assert "unclosed.html:5: expected {% end %} for {% for %} opened at " \
        "line 2" in log


# ---- Responses without a body carry no representation metadata ----------
# RFC 9110 15.4.5 (304: SHOULD NOT send representation metadata beyond the
# listed fields) and Tornado's finish(), which clears Content-Type,
# Content-Encoding and Content-Language for 1xx, 204 and 304.


def test_304_and_204_without_content_type(app):
    s = app()
    etag = requests.get(s.base + "/", timeout=10).headers["Etag"]
    lines = head_lines(raw_get(s.port, b"/", b"If-None-Match: " +
                               etag.encode() + b"\r\n"))
    assert lines[0].startswith(b"HTTP/1.1 304 ")
    assert b"Etag: " + etag.encode() in lines  # the validator stays
    assert not [l for l in lines if l.lower().startswith(b"content-type")]
    lines = head_lines(raw_get(s.port, b"/status?code=204"))
    assert lines[0].startswith(b"HTTP/1.1 204 ")
    assert not [l for l in lines if l.lower().startswith(b"content-type")]
    assert s.stop() == 0


def test_static_304_without_content_type(app, tmp_path):
    root = tmp_path / "files"
    root.mkdir()
    (root / "a.css").write_text("a { }\n")
    s = app(f"--static_path={root}")
    r = requests.get(s.base + "/static/a.css", timeout=10)
    lines = head_lines(raw_get(s.port, b"/static/a.css",
                               b"If-None-Match: " +
                               r.headers["ETag"].encode() + b"\r\n"))
    assert lines[0].startswith(b"HTTP/1.1 304 ")
    # ETag and Last-Modified stay (they guide the cache), the type goes.
    assert b"ETag: " + r.headers["ETag"].encode() in lines
    assert [l for l in lines if l.startswith(b"Last-Modified: ")]
    assert not [l for l in lines if l.lower().startswith(b"content-type")]
    assert s.stop() == 0


def test_clear_prefixed_cookie(app):
    # A "__Host-" / "__Secure-" cookie is only replaced by a Set-Cookie
    # with Secure (browsers ignore others, and set_cookie refuses them), so
    # clear_cookie must send Secure for such names.
    s = app()
    for name in ("__Host-sid", "__Secure-sid"):
        sess = requests.Session()
        attrs(s.base, sess, name=name, value="1", secure="1")
        assert [c.name for c in sess.cookies] == [name]
        r = sess.get(s.base + f"/cookie/clear?name={name}", timeout=10)
        assert r.status_code == 200, name
        assert re.fullmatch(name + r"=; Path=/; Expires=[^;]+; Max-Age=0; "
                            r"Secure", set_cookie_header(r)), name
        assert name not in sess.cookies
    # Other names are cleared without Secure, as before.
    r = requests.get(s.base + "/cookie/clear?name=plain", timeout=10)
    assert not set_cookie_header(r).endswith("Secure")
    assert s.stop() == 0
