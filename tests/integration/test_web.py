"""The web framework (include/gust/web.h) from the outside: curl, Python
requests with a cookie jar and Tornado's own client and signing functions,
against examples/web_testapp and examples/hello on 127.0.0.1.
"""
import gzip
import subprocess
import time

import pytest
import requests

from conftest import HOST, HTTP2, connect

SECRET = "gust-test-secret"


@pytest.fixture
def app(program, spawn, free_port):
    def start(*args):
        server = spawn([program("web_testapp"), f"--port={free_port}",
                        f"--cookie_secret={SECRET}", *args])
        server.wait_log("listening on")
        connect(free_port).close()
        server.base = f"http://{HOST}:{free_port}"
        return server
    return start


def test_routing_and_arguments(app):
    s = app()
    b = s.base
    r = requests.get(b + "/", timeout=10)
    assert r.status_code == 200 and r.text == "Hello, world"
    assert r.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert requests.get(b + "/item/17", timeout=10).text == "item 17"
    # Anchored: a longer path is not the route's.
    assert requests.get(b + "/item/17/x", timeout=10).status_code == 404
    assert requests.get(b + "/user/bob", timeout=10).text == \
        "user bob, see /item/42"
    assert requests.get(b + "/args", params={"name": " a b "},
                        timeout=10).text == "a b"
    r = requests.get(b + "/args/many?name=1&name=%C3%A9&name=3", timeout=10)
    assert r.text == "1,\u00e9,3"
    r = requests.get(b + "/need", timeout=10)
    assert r.status_code == 400
    assert requests.get(b + "/need?q=x", timeout=10).text == "q=x"
    r = requests.get(b + "/nope", timeout=10)
    assert r.status_code == 404
    assert r.text == ("<html><title>404: Not Found</title>"
                      "<body>404: Not Found</body></html>")
    assert s.stop() == 0


def test_styles_json_and_errors(app):
    s = app()
    b = s.base
    assert requests.get(b + "/coro", timeout=10).text == "coroutine done"
    assert requests.get(b + "/async", timeout=10).text == "async done"
    r = requests.get(b + "/json", timeout=10)
    assert r.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert r.json() == {"message": "Hello, World!"}
    r = requests.get(b + "/error", timeout=10)
    assert r.status_code == 500
    assert "never seen" not in r.text
    # Without --debug the page says nothing about the handler.
    assert "handler" not in r.text
    r = requests.post(b + "/json", timeout=10,
                      headers={"X-Xsrftoken": "x"})
    assert r.status_code in (403, 405)
    r = requests.delete(b + "/", timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"
    assert s.stop() == 0
    assert "500 GET /error" in s.log()


def test_debug_page(app):
    s = app("--debug")
    r = requests.get(s.base + "/teapot", timeout=10)
    assert r.status_code == 418
    # Details, escaped.
    assert "handler: teapot" in r.text
    assert "I&#39;m a &lt;teapot&gt;" in r.text
    r = requests.get(s.base + "/error", timeout=10)
    assert "route: /error" in r.text
    assert s.stop() == 0


def test_cookies(app):
    s = app()
    sess = requests.Session()
    b = s.base
    assert sess.get(b + "/cookie/set?name=flavour&value=mint",
                    timeout=10).text == "set"
    assert sess.cookies.get("flavour") == "mint"
    assert sess.get(b + "/cookie/get?name=flavour", timeout=10).text == "mint"
    # A value that could inject an attribute is refused.
    r = sess.get(b + "/cookie/set", params={"name": "x", "value": "a; b"},
                 timeout=10)
    assert r.status_code == 400 and "x" not in sess.cookies
    sess.get(b + "/cookie/clear?name=flavour", timeout=10)
    assert "flavour" not in sess.cookies
    assert s.stop() == 0


def test_signed_cookies(app):
    from tornado.web import create_signed_value, decode_signed_value
    s = app()
    b = s.base
    sess = requests.Session()
    sess.get(b + "/signed/set?value=alice", timeout=10)
    raw = sess.cookies.get("user")
    # Gust's cookie is read by Tornado...
    assert decode_signed_value(SECRET, "user", raw) == b"alice"
    assert sess.get(b + "/signed/get", timeout=10).text == "alice"
    # ...tampered ones are not accepted...
    parts = raw.split("|")
    parts[4] = "8:Ym9iYm9i"  # "bobbob"
    tampered = "|".join(parts)
    assert requests.get(b + "/signed/get", cookies={"user": tampered},
                        timeout=10).status_code == 403
    # The signature itself altered.
    sig = raw[:-1] + ("0" if raw[-1] != "0" else "1")
    assert requests.get(b + "/signed/get", cookies={"user": sig},
                        timeout=10).status_code == 403
    # ...and Tornado's are read by Gust.
    tv = create_signed_value(SECRET, "user", "from-tornado").decode()
    r = requests.get(b + "/signed/get", cookies={"user": tv}, timeout=10)
    assert r.text == "from-tornado"
    # Expired: signed 40 days ago, accepted for 31 days by default but a
    # max age of 60 days takes it.
    old = create_signed_value(SECRET, "user", "old",
                              clock=lambda: time.time() - 40 * 86400).decode()
    r = requests.get(b + "/signed/get", cookies={"user": old}, timeout=10)
    assert r.status_code == 403
    r = requests.get(b + "/signed/get?days=60", cookies={"user": old},
                     timeout=10)
    assert r.text == "old"
    # Another secret: refused.
    other = create_signed_value("other", "user", "x").decode()
    r = requests.get(b + "/signed/get", cookies={"user": other}, timeout=10)
    assert r.status_code == 403
    assert s.stop() == 0


def test_xsrf(app):
    s = app()
    b = s.base
    # Without any token: 403.
    assert requests.post(b + "/xsrf", timeout=10).status_code == 403
    sess = requests.Session()
    token = sess.get(b + "/xsrf", timeout=10).text
    assert sess.cookies.get("_xsrf")
    # Cookie + form field.
    r = sess.post(b + "/xsrf", data={"_xsrf": token}, timeout=10)
    assert r.status_code == 200 and r.text == "ok"
    # Cookie + header (both names).
    assert sess.put(b + "/xsrf", headers={"X-Xsrftoken": token},
                    timeout=10).text == "ok"
    assert sess.post(b + "/xsrf", headers={"X-Csrftoken": token},
                     timeout=10).text == "ok"
    # The cookie alone, or a token of another client, is not enough.
    assert sess.post(b + "/xsrf", timeout=10).status_code == 403
    other = requests.get(b + "/xsrf", timeout=10).text
    assert sess.post(b + "/xsrf", data={"_xsrf": other},
                     timeout=10).status_code == 403
    # A form field without the cookie.
    assert requests.post(b + "/xsrf", data={"_xsrf": token},
                         timeout=10).status_code == 403
    assert s.stop() == 0


def test_redirects(app):
    s = app()
    b = s.base
    r = requests.get(b + "/redirect?to=/item/5", timeout=10)
    assert r.status_code == 200 and r.text == "item 5"
    assert [h.status_code for h in r.history] == [302]
    r = requests.get(b + "/moved", timeout=10, allow_redirects=False)
    assert r.status_code == 301 and r.headers["Location"] == "/"
    r = requests.get(b + "/redirect", params={"to": "/x\r\nX-Evil: 1"},
                     timeout=10, allow_redirects=False)
    assert r.status_code == 400 and "X-Evil" not in r.headers
    r = requests.get(b + "/redirect?to=/&status=200", timeout=10,
                     allow_redirects=False)
    assert r.status_code == 400
    assert s.stop() == 0


def test_gzip(app):
    s = app()
    b = s.base
    r = requests.get(b + "/big", timeout=10)  # requests accepts gzip
    assert r.headers["Content-Encoding"] == "gzip"
    assert r.headers["Vary"] == "Accept-Encoding"
    assert r.text.count("compressible body") == 2000
    raw = subprocess.run(["curl", "-s", "-H", "Accept-Encoding: gzip",
                          b + "/big"], capture_output=True, timeout=30).stdout
    assert len(raw) < len(r.text) // 5
    assert gzip.decompress(raw).decode() == r.text
    # A flushed response: chunked (over HTTP/2, DATA frames and never a
    # Transfer-Encoding field), gzip flushed at each part.
    r = requests.get(b + "/stream", timeout=10)
    assert r.headers["Content-Encoding"] == "gzip"
    if HTTP2:
        assert "Transfer-Encoding" not in r.headers
    else:
        assert r.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in r.headers
    assert r.text == "".join(f"part {i} of a streamed body\n"
                             for i in range(3))
    r = requests.get(b + "/big", headers={"Accept-Encoding": "identity"},
                     timeout=10)
    assert "Content-Encoding" not in r.headers
    assert r.text.count("compressible body") == 2000
    assert s.stop() == 0


def test_template(app):
    s = app()
    r = requests.get(s.base + "/template", params={"name": "<b>&"},
                     timeout=10)
    assert r.status_code == 200
    assert "<h1>Hello, &lt;b&gt;&amp;!</h1>" in r.text
    assert "<li>&lt;two&gt;</li>" in r.text
    assert 'name="_xsrf" value="2|' in r.text
    assert "You asked for /template." in r.text
    assert s.stop() == 0


def test_hello_with_curl_and_tornado_client(program, spawn, free_port):
    s = spawn([program("hello"), f"--port={free_port}",
               "--address=127.0.0.1"])
    s.wait_log("listening on")
    connect(free_port).close()
    out = subprocess.run(["curl", "-s", f"http://{HOST}:{free_port}/"],
                         capture_output=True, text=True, timeout=30).stdout
    assert out == "Hello, world"

    from tornado.httpclient import AsyncHTTPClient
    from tornado.ioloop import IOLoop

    async def fetch_both():
        client = AsyncHTTPClient()
        a = await client.fetch(f"http://{HOST}:{free_port}/")
        b = await client.fetch(f"http://{HOST}:{free_port}/index")
        c = await client.fetch(f"http://{HOST}:{free_port}/missing",
                               raise_error=False)
        return a, b, c

    a, b, c = IOLoop.current().run_sync(fetch_both, timeout=30)
    assert a.code == 200 and a.body == b"Hello, world"
    assert b.body == b"Hello Itcast!"
    assert c.code == 404
    assert s.stop() == 0
    assert "200 GET /index" in s.log()


def test_template_page_form(program, spawn, free_port):
    s = spawn([program("template_page"), f"--port={free_port}"])
    s.wait_log("listening on")
    connect(free_port).close()
    b = f"http://{HOST}:{free_port}"
    sess = requests.Session()
    r = sess.get(b + "/?name=<script>", timeout=10)
    assert r.status_code == 200
    assert "<h1>Hello, &lt;script&gt;!</h1>" in r.text
    assert "<li>&lt;escaping&gt;</li>" in r.text
    token = r.text.split('name="_xsrf" value="', 1)[1].split('"', 1)[0]
    # The form as a browser posts it, with the cookie and the hidden field.
    r = sess.post(b + "/", data={"_xsrf": token, "name": "Ann & Bob"},
                  timeout=10)
    assert r.status_code == 200
    assert "<p>Thanks, Ann &amp; Bob.</p>" in r.text
    # Without the token: 403.
    assert sess.post(b + "/", data={"name": "x"}, timeout=10).status_code \
        == 403
    assert s.stop() == 0


def test_static_path_and_static_url(app, tmp_path):
    import hashlib
    root = tmp_path / "static"
    root.mkdir()
    (root / "app.css").write_text("body { color: teal }\n" * 50)
    s = app(f"--static_path={root}")
    b = s.base
    digest = hashlib.sha256((root / "app.css").read_bytes()).hexdigest()[:8]
    url = requests.get(b + "/static_url?path=app.css", timeout=10).text
    assert url == f"/static/app.css?v={digest}"
    r = requests.get(b + url, timeout=10)
    assert r.status_code == 200
    assert r.text == (root / "app.css").read_text()
    assert r.headers["Content-Type"].startswith("text/css")
    # Versioned URLs are cached for a long time.
    assert "max-age=31536000" in r.headers.get("Cache-Control", "")
    # sendfile bodies are never gzipped, even for a client that accepts it.
    assert "Content-Encoding" not in r.headers
    assert requests.get(b + "/static_url?path=missing.css",
                        timeout=10).text == "/static/missing.css"
    assert requests.get(b + "/static/missing.css",
                        timeout=10).status_code == 404
    assert requests.get(b + "/static/../secret",
                        timeout=10).status_code in (403, 404)
    assert s.stop() == 0


def test_hello_forked(program, spawn, free_port):
    # Start form 2: bind, fork two processes, each serving the app.
    s = spawn([program("hello"), f"--port={free_port}",
               "--address=127.0.0.1", "--processes=2"])
    s.wait_log("listening on", count=2)
    connect(free_port).close()
    for _ in range(6):
        r = requests.get(f"http://{HOST}:{free_port}/index", timeout=10)
        assert r.text == "Hello Itcast!"
    assert s.stop() == 0
