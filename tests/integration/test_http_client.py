"""Gust's HTTP client against real servers on 127.0.0.1: nginx (keep-alive
reuse seen in its access log), Tornado's HTTP server (chunked, gzip,
redirects, a 307 that keeps its body) and Gust's own hello_http; refused
connections and timeouts.

The client is driven through `test_http_client_cli --fetch` (built from
tests/test_http_client_cli.c), which prints one JSON line per URL.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import HOST, connect, wait_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture
def fetch(build_dir):
    tool = os.path.join(build_dir, "tests", "test_http_client_cli")
    assert os.access(tool, os.X_OK), f"{tool} is not built"

    def run(*args, timeout=60):
        out = subprocess.run([tool, "--fetch", *map(str, args)],
                             capture_output=True, timeout=timeout)
        assert out.returncode == 0, out.stderr.decode(errors="replace")
        return [json.loads(line) for line in out.stdout.decode().splitlines()]
    return run


# ---- nginx -----------------------------------------------------------------

@pytest.fixture
def nginx(tmp_path, free_port, spawn):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("nginx is not installed (Debian: nginx-light)")
    prefix = tmp_path / "nginx"
    (prefix / "logs").mkdir(parents=True)
    (prefix / "html").mkdir()
    (prefix / "html" / "big.txt").write_text("gust " * 4000)
    conf = prefix / "nginx.conf"
    conf.write_text(textwrap.dedent(f"""
        daemon off;
        master_process off;
        worker_processes 1;
        pid {prefix}/nginx.pid;
        error_log {prefix}/logs/error.log warn;
        events {{ worker_connections 256; }}
        http {{
            log_format conn '$connection $connection_requests $request $status';
            access_log {prefix}/logs/access.log conn;
            client_body_temp_path {prefix}/body;
            proxy_temp_path {prefix}/proxy;
            fastcgi_temp_path {prefix}/fastcgi;
            uwsgi_temp_path {prefix}/uwsgi;
            scgi_temp_path {prefix}/scgi;
            keepalive_requests 1000;
            server {{
                listen {HOST}:{free_port};
                root {prefix}/html;
                gzip on;
                gzip_types text/plain;
                gzip_min_length 100;
                location = /hello {{ return 200 "hello from nginx"; }}
                location = /moved {{ return 301 /hello; }}
                location = /gone {{ return 410 "gone"; }}
            }}
        }}
    """))
    server = spawn([NGINX, "-p", str(prefix), "-c", str(conf)])
    connect(free_port).close()
    server.port = free_port
    server.access_log = prefix / "logs" / "access.log"
    server.big = "gust " * 4000
    yield server
    server.stop()


def access_lines(nginx, count):
    def lines():
        try:
            got = nginx.access_log.read_text().splitlines()
        except OSError:
            return None
        return got if len(got) >= count else None
    got = wait_for(lines, 10)
    assert got, "nginx did not log the requests"
    return [line.split() for line in got]


def test_nginx_keep_alive_reuse(fetch, nginx):
    url = f"http://{HOST}:{nginx.port}/hello"
    results = fetch("--max-clients", "1", *[url] * 5)
    assert [r["code"] for r in results] == [200] * 5
    assert all(r["body"] == "hello from nginx" for r in results)
    assert [r["reused"] for r in results] == [False] + [True] * 4
    log = access_lines(nginx, 5)
    # One connection number, its request counter going 1..5.
    assert len({line[0] for line in log}) == 1
    assert [int(line[1]) for line in log] == [1, 2, 3, 4, 5]


def test_nginx_gzip_redirect_and_error(fetch, nginx):
    base = f"http://{HOST}:{nginx.port}"
    big, moved, gone = fetch(f"{base}/big.txt", f"{base}/moved",
                             f"{base}/gone")
    assert big["code"] == 200
    assert big["body"] == nginx.big
    assert big["headers"].get("X-Consumed-Content-Encoding") == "gzip"
    assert moved["code"] == 200 and moved["redirects"] == 1
    assert moved["effective_url"] == f"{base}/hello"
    assert gone["code"] == 410 and gone["body"] == "gone"
    raw = fetch("--no-decompress", f"{base}/big.txt")[0]
    assert "Content-Encoding" not in raw["headers"]  # not asked for gzip
    assert raw["body"] == nginx.big


# ---- Tornado ---------------------------------------------------------------

TORNADO_APP = textwrap.dedent("""
    import sys
    import tornado.ioloop
    import tornado.web

    class Chunked(tornado.web.RequestHandler):
        async def get(self):
            for i in range(5):
                self.write("part%d;" % i)
                await self.flush()

    class Echo(tornado.web.RequestHandler):
        def get(self):
            self.write("GET:" + self.request.body.decode())
        def post(self):
            self.write("POST:" + self.request.body.decode())
        put = post

    class Redirect(tornado.web.RequestHandler):
        def get(self, code):
            self.redirect("/echo", status=int(code))
        post = get
        put = get

    class Big(tornado.web.RequestHandler):
        def get(self):
            self.write("tornado " * 5000)

    app = tornado.web.Application([
        (r"/chunked", Chunked), (r"/echo", Echo),
        (r"/redirect/(\\d+)", Redirect), (r"/big", Big),
    ], compress_response=True)
    app.listen(int(sys.argv[1]), address="127.0.0.1")
    print("ready", flush=True)
    tornado.ioloop.IOLoop.current().start()
""")


@pytest.fixture
def tornado_server(tmp_path, free_port, spawn):
    script = tmp_path / "tornado_app.py"
    script.write_text(TORNADO_APP)
    server = spawn(["/usr/bin/python3", script, free_port])
    server.wait_log("ready")
    connect(free_port).close()
    server.port = free_port
    yield server
    server.stop()


def test_tornado_chunked_and_gzip(fetch, tornado_server):
    base = f"http://{HOST}:{tornado_server.port}"
    chunked, big = fetch(f"{base}/chunked", f"{base}/big")
    assert chunked["code"] == 200
    assert chunked["body"] == "".join("part%d;" % i for i in range(5))
    assert big["body"] == "tornado " * 5000
    assert big["headers"].get("X-Consumed-Content-Encoding") == "gzip"


def test_tornado_redirects(fetch, tornado_server):
    base = f"http://{HOST}:{tornado_server.port}"
    for code in (301, 302, 303):
        r = fetch("-X", "POST", "-d", "payload", f"{base}/redirect/{code}")[0]
        assert r["code"] == 200 and r["redirects"] == 1
        assert r["body"] == "GET:", code
    for code in (307, 308):
        r = fetch("-X", "POST", "-d", "payload", f"{base}/redirect/{code}")[0]
        assert r["body"] == "POST:payload", code
        r = fetch("-X", "PUT", "-d", "put-body", f"{base}/redirect/{code}")[0]
        assert r["body"] == "POST:put-body", code  # Echo.put is post
    r = fetch("--no-redirects", f"{base}/redirect/302")[0]
    assert r["code"] == 302 and r["headers"]["Location"] == "/echo"


# ---- Gust's own server ------------------------------------------------------

def test_gust_server(fetch, program, free_port, spawn):
    server = spawn([program("hello_http"), f"--port={free_port}",
                    f"--address={HOST}"])
    connect(free_port).close()
    url = f"http://{HOST}:{free_port}/"
    results = fetch("--max-clients", "1", url, url, url)
    assert all(r["code"] == 200 for r in results)
    assert all("Hello" in r["body"] for r in results)
    assert [r["reused"] for r in results] == [False, True, True]
    echo = fetch("-X", "POST", "-d", "x" * 10000, f"{url}echo")[0]
    assert echo["body"] == "x" * 10000
    server.stop()


# ---- Failures ----------------------------------------------------------------

def test_refused_and_timeout(fetch, free_port):
    r = fetch(f"http://{HOST}:{free_port}/")[0]
    assert r["code"] == 599 and r["error"] == "ECONNREFUSED"
    assert f"{HOST}:{free_port}" in r["message"]
    # A peer that accepts and never answers.
    import socket
    import time
    with socket.socket() as s:
        s.bind((HOST, 0))
        s.listen(8)
        port = s.getsockname()[1]
        t0 = time.monotonic()
        r = fetch("--timeout", "0.5", f"http://{HOST}:{port}/")[0]
        assert r["error"] == "GUST_ETIMEOUT"
        assert time.monotonic() - t0 < 20
