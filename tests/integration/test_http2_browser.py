"""A page and its assets over HTTPS and HTTP/2 in headless Chromium
(Debian's /usr/bin/chromium driven by playwright-core, js/h2_page.js),
served by examples/file_server --cert/--key, which offers "h2" by ALPN.

The browser, not the test, decides the protocol: the page's own
performance entries (navigation and resource timing) must say
nextHopProtocol "h2" for the page and every asset, the DevTools protocol
must report every response as h2 on one connection (HTTP/2 multiplexes
them), and the page must work: stylesheet applied, script run, images
decoded, a 1 MiB fetch() received byte for byte. The certificate is a
throwaway one that the browser is told to accept (ignoreHTTPSErrors).
Only 127.0.0.1; every wait is bounded."""
import os
import signal
import struct
import subprocess
import zlib

import pytest

from node_helpers import CHROMIUM, run_js

ICONS = 12
FETCHED_SIZE = 1 << 20


def png(width, height, rgb):
    """A small truecolour PNG of one colour."""
    def chunk(kind, data):
        body = kind + data
        return (struct.pack(">L", len(data)) + body +
                struct.pack(">L", zlib.crc32(body) & 0xFFFFFFFF))
    row = b"\0" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">LLBBBBB", width, height, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


def fetched_bytes():
    return bytes((i * 31 + (i >> 9)) & 0xFF for i in range(FETCHED_SIZE))


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    icons = "\n".join(f'<img class="icon" src="icons/{i}.png" alt="">'
                      for i in range(ICONS))
    (root / "index.html").write_text(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Gust over HTTP/2</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="style.css">
<script src="app.js" defer></script>
</head><body>
<h1>Gust over HTTP/2</h1>
<img id="logo" src="logo.png" alt="logo">
{icons}
</body></html>
""")
    (root / "style.css").write_text("h1 { color: rgb(12, 34, 56); }\n"
                                    ".icon { width: 8px; }\n")
    (root / "app.js").write_text("""'use strict';
document.body.dataset.script = 'ran';
fetch('data.bin').then((r) => r.arrayBuffer()).then((b) => {
  const v = new Uint8Array(b);
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum = (sum * 31 + v[i]) >>> 0;
  document.body.dataset.fetched = `${v.length}:${sum}`;
}).catch((e) => { document.body.dataset.error = String(e); })
  .finally(() => { document.body.dataset.done = '1'; });
""")
    (root / "logo.png").write_bytes(png(48, 24, (200, 40, 40)))
    (root / "icons").mkdir()
    for i in range(ICONS):
        (root / "icons" / f"{i}.png").write_bytes(png(8, 8, (i * 20, 100, 50)))
    (root / "data.bin").write_bytes(fetched_bytes())
    return root


@pytest.fixture
def cert(tmp_path):
    d = tmp_path / "cert"
    d.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-keyout", "key.pem", "-out", "cert.pem",
                    "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   cwd=d, check=True, timeout=60, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return d / "cert.pem", d / "key.pem"


@pytest.fixture
def https_files(spawn, program, free_port, site, cert):
    server = spawn([program("file_server"), f"--root={site}",
                    f"--port={free_port}", "--address=127.0.0.1",
                    f"--cert={cert[0]}", f"--key={cert[1]}"])
    server.wait_log("listening on https://")
    yield free_port, server
    status = server.stop(signal.SIGTERM)
    log = server.log()
    assert status == 0, log
    assert "Sanitizer" not in log, log


def _checksum(data):
    s = 0
    for b in data:
        s = (s * 31 + b) & 0xFFFFFFFF
    return s


def test_page_and_assets_over_h2_in_chromium(build_dir, https_files):
    assert os.access(CHROMIUM, os.X_OK), "chromium missing (make deps-test)"
    port, server = https_files
    base = f"https://127.0.0.1:{port}/"
    report = run_js(build_dir, "h2_page.js", base + "index.html", timeout=120)

    nav = report["navigation"]
    assert nav["name"] == base + "index.html", nav
    assert nav["protocol"] == "h2", report

    # Every asset the page loaded, each over h2.
    resources = {r["name"]: r for r in report["resources"]}
    wanted = ([base + "style.css", base + "app.js", base + "logo.png",
               base + "data.bin"] +
              [base + f"icons/{i}.png" for i in range(ICONS)])
    missing = [u for u in wanted if u not in resources]
    assert not missing, (missing, sorted(resources))
    not_h2 = {u: r["protocol"] for u, r in resources.items()
              if r["protocol"] != "h2"}
    assert not not_h2, not_h2

    # The browser's own view of the responses: all h2, all 200, and all on
    # one connection.
    cdp = [r for r in report["cdp"] if r["url"].startswith(base)]
    assert len(cdp) >= len(wanted) + 1, cdp
    assert all(r["protocol"] == "h2" for r in cdp), cdp
    assert all(r["status"] == 200 for r in cdp), cdp
    connections = {r["connectionId"] for r in cdp}
    assert len(connections) == 1, connections

    # And the page works.
    page = report["page"]
    assert page["css_color"] == "rgb(12, 34, 56)", page
    assert page["script_ran"], page
    assert (page["image_width"], page["image_height"]) == (48, 24), page
    assert page["fetch_error"] is None, page
    assert page["fetched"] == f"{FETCHED_SIZE}:{_checksum(fetched_bytes())}", page
    assert report["console_errors"] == [], report["console_errors"]

    # The server saw each request once (its access log), and nothing of
    # them went to HTTP/1.
    log = server.log()
    for u in wanted:
        path = "/" + u[len(base):]
        assert f"GET {path} " in log, (path, log[-3000:])
