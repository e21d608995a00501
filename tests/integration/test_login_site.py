"""examples/login_site with Python requests as the browser: sign-in through
login_url and ?next=, an authenticated page rendered with current_user,
static_url, reverse_url and linkify, private files behind the sign-in
(the static file handler extended with .base), default headers on every
response including error pages, and a signed cookie that Tornado itself
reads (tornado.web.decode_signed_value with the same secret)."""
import hashlib
import os
import re
import urllib.parse

import requests
from tornado.web import decode_signed_value

from conftest import HOST, connect

SECRET = "login-site-example"
EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


def start(program, spawn, free_port, tmp_path):
    private = tmp_path / "private"
    private.mkdir()
    (private / "report.txt").write_text("quarterly numbers\n")
    s = spawn([program("login_site"), f"--port={free_port}",
               f"--private={private}"])
    s.wait_log("listening on")
    connect(free_port).close()
    return s, f"http://{HOST}:{free_port}"


def xsrf_of(html):
    return re.search(r'name="_xsrf" value="([^"]+)"', html).group(1)


def test_sign_in_flow(program, spawn, free_port, tmp_path):
    s, base = start(program, spawn, free_port, tmp_path)
    browser = requests.Session()
    # Not signed in: the account page sends us to the login page, with
    # where we wanted to go.
    r = browser.get(base + "/account?tab=2", allow_redirects=False, timeout=10)
    assert r.status_code == 302
    assert r.headers["Location"] == "/login?" + urllib.parse.urlencode(
        {"next": "/account?tab=2"})
    assert r.headers["X-Frame-Options"] == "DENY"
    # Following it gives the form, with the next URL and a versioned
    # stylesheet (static_url) and the form's action (reverse_url).
    r = browser.get(base + "/account?tab=2", timeout=10)
    assert r.status_code == 200 and r.url.startswith(base + "/login?next=")
    assert 'action="/login"' in r.text
    assert 'value="/account?tab=2"' in r.text
    m = re.search(r'href="(/static/site\.css\?v=([0-9a-f]{8}))"', r.text)
    assert m, r.text
    assert m.group(2) == hashlib.sha256(
        open(EXAMPLES + "/static/site.css", "rb").read()).hexdigest()[:8]
    assert browser.get(base + m.group(1), timeout=10).status_code == 200
    token = xsrf_of(r.text)
    # A wrong password: 403 with the default headers on the error page.
    bad = browser.post(base + "/login", data={"_xsrf": token, "name": "ann",
                                              "password": "nope",
                                              "next": "/account?tab=2"},
                       allow_redirects=False, timeout=10)
    assert bad.status_code == 403
    assert bad.headers["X-Frame-Options"] == "DENY"
    # The right one: back to where we were going, signed in.
    r = browser.post(base + "/login", data={"_xsrf": token, "name": "ann",
                                            "password": "secret",
                                            "next": "/account?tab=2"},
                     timeout=10)
    assert r.status_code == 200
    assert r.url == base + "/account?tab=2"
    assert "<h1>Hello, ann</h1>" in r.text
    assert "<title>ann's account</title>" in r.text
    assert ('<a href="https://example.com/gust">https://example.com/gust</a>'
            ' &amp; friends.') in r.text
    # The cookie is Tornado's signed value: Tornado reads it.
    assert decode_signed_value(SECRET, "user",
                               browser.cookies["user"]) == b"ann"
    # An open redirect through next is refused.
    r = browser.post(base + "/login", data={"_xsrf": token, "name": "ann",
                                            "password": "secret",
                                            "next": "//evil.example/"},
                     allow_redirects=False, timeout=10)
    assert r.headers["Location"] == "/account"
    # Signing out ends it.
    page = browser.get(base + "/account", timeout=10).text
    browser.post(base + "/logout", data={"_xsrf": xsrf_of(page)}, timeout=10)
    r = browser.get(base + "/account", allow_redirects=False, timeout=10)
    assert r.status_code == 302
    assert s.stop() == 0


def test_private_files(program, spawn, free_port, tmp_path):
    s, base = start(program, spawn, free_port, tmp_path)
    r = requests.get(base + "/private/report.txt", allow_redirects=False,
                     timeout=10)
    assert r.status_code == 302
    assert r.headers["Location"] == "/login?next=%2Fprivate%2Freport.txt"
    assert "quarterly" not in r.text
    browser = requests.Session()
    token = xsrf_of(browser.get(base + "/login", timeout=10).text)
    r = browser.post(base + "/login", data={"_xsrf": token, "name": "bo",
                                            "password": "secret",
                                            "next": "/private/report.txt"},
                     timeout=10)
    assert r.status_code == 200
    assert r.text == "quarterly numbers\n"
    # Still the static handler: ETag, 304, ranges, traversal refused.
    etag = r.headers["Etag"]
    assert browser.get(base + "/private/report.txt",
                       headers={"If-None-Match": etag},
                       timeout=10).status_code == 304
    part = browser.get(base + "/private/report.txt",
                       headers={"Range": "bytes=0-8"}, timeout=10)
    assert part.status_code == 206 and part.text == "quarterly"
    assert browser.get(base + "/private/..%2f..%2fetc%2fpasswd",
                       timeout=10).status_code in (403, 404)
    assert r.headers["X-Frame-Options"] == "DENY"
    assert s.stop() == 0
