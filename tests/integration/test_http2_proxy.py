"""HTTP/2 behind a proxy, as docs/http2.md configures it (the test runs
the blocks between '# begin NAME' and '# end NAME' of that page):
  - nginx speaks h2 to the client over TLS and HTTP/1.1 to Gust: curl
    gets HTTP/2 from nginx, the handler sees "HTTP/1.1";
  - HAProxy speaks HTTP/2 to Gust (`proto h2`, clear text with prior
    knowledge): the handler sees "HTTP/2.0", and HAProxy's requests share
    its connections to Gust (multiplexed streams).
examples/hello_http answers /version with request->version. Only
127.0.0.1; every wait is bounded."""
import os
import re
import shutil
import signal
import socket
import subprocess

from conftest import HOST, wait_for

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
error_log {tmp}/error.log warn;
pid {tmp}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{body}
}}
"""


def doc_block(name):
    here = os.path.dirname(os.path.abspath(__file__))
    doc = open(os.path.join(here, "..", "..", "docs", "http2.md")).read()
    m = re.search(rf"# begin {name}\n(.*?)\n\s*# end {name}", doc, re.S)
    assert m, f"no '# begin {name}' block in docs/http2.md"
    return m.group(1)


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind((HOST, 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def curl(*args):
    r = subprocess.run(["curl", "-sS", "--max-time", "10", *args],
                       capture_output=True, text=True, timeout=30)
    return r


def start_backend(spawn, program, port):
    b = spawn([program("hello_http"), f"--port={port}", "--address=127.0.0.1"])
    b.wait_log("listening on")
    return b


def test_nginx_h2_in_front_of_gust_http1(spawn, program, tmp_path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.access(nginx, os.X_OK), "nginx not installed (make deps-test)"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-keyout", "server.key", "-out", "server.pem", "-subj",
                    "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   cwd=tmp_path, check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    front, back = free_ports(2)
    backend = start_backend(spawn, program, back)
    body = (doc_block("nginx-h2").replace("8001", str(back))
            .replace("listen 443 ", f"listen {HOST}:{front} ")
            .replace("server.pem", str(tmp_path / "server.pem"))
            .replace("server.key", str(tmp_path / "server.key")))
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp_path, body=body))
    proxy = spawn([nginx, "-p", str(tmp_path), "-c", str(conf)])
    url = f"https://127.0.0.1:{front}/version"

    def up():
        return curl("-k", url).returncode == 0
    assert wait_for(up, 20), proxy.log() + (tmp_path / "error.log").read_text()
    r = curl("-k", "--http2", "-w", " %{http_version}", url, url)
    assert r.returncode == 0, r.stderr
    # h2 between curl and nginx, HTTP/1.1 between nginx and Gust.
    assert r.stdout == "HTTP/1.1 2HTTP/1.1 2", r.stdout
    assert proxy.stop() == 0
    assert backend.stop() == 0
    assert "Sanitizer" not in backend.log(), backend.log()


def test_haproxy_speaks_h2_to_gust(spawn, program, tmp_path):
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    assert os.access(haproxy, os.X_OK), "haproxy not installed (make deps-test)"
    front, back = free_ports(2)
    backend = start_backend(spawn, program, back)
    conf = (doc_block("haproxy-h2").replace("8001", str(back))
            .replace("bind :80", f"bind {HOST}:{front}"))
    (tmp_path / "haproxy.cfg").write_text(conf + "\n")
    proxy = spawn([haproxy, "-db", "-f", str(tmp_path / "haproxy.cfg")])
    url = f"http://127.0.0.1:{front}/version"

    def up():
        return curl(url).stdout == "HTTP/2.0"
    assert wait_for(up, 20), proxy.log() + backend.log()
    # Several client connections at once: HAProxy carries their requests
    # to Gust as streams of its own connections.
    r = curl("--parallel", "--parallel-max", "10", *[url] * 20)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "HTTP/2.0" * 20, r.stdout
    backend.send_signal(signal.SIGUSR1)
    log = backend.wait_log("stats: ")
    m = re.search(r"stats: (\d+) connections open, (\d+) accepted, "
                  r"(\d+) requests", log)
    assert m, log
    accepted, requests = int(m[2]), int(m[3])
    assert requests >= 21, log
    # Connections to Gust were reused for several requests (HTTP/2's
    # streams), not one per request.
    assert accepted < requests, (accepted, requests)
    proxy.stop()
    assert backend.stop() == 0
    assert "Sanitizer" not in backend.log(), backend.log()
