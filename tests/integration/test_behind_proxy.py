"""Gust behind a proxy, as docs/deployment.md configures it: nginx (and
HAProxy) in front of two examples/hello processes on their own ports, with
--xheaders. The client connects from another loopback address (127.0.0.5)
so that its address differs from the proxy's (127.0.0.1): the backends'
access logs must show the client's, taken from X-Real-Ip, and both
backends must get requests."""
import http.client
import os
import re
import shutil
import socket
import subprocess

import pytest

from conftest import HOST, wait_for

CLIENT_IP = "127.0.0.5"
ACCESS = re.compile(r"access\] (\d{3}) GET (\S+) \((\S+)\)")


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((HOST, 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def get(port, path):
    """GET through the proxy from CLIENT_IP; returns (status, body)."""
    c = http.client.HTTPConnection(HOST, port, timeout=10,
                                   source_address=(CLIENT_IP, 0))
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def answers(port):
    try:
        return get(port, "/")[0] == 200
    except OSError:
        return False


def start_backends(spawn, program, ports):
    backends = []
    for p in ports:
        b = spawn([program("hello"), f"--port={p}", "--address=127.0.0.1",
                   "--xheaders"])
        b.wait_log("listening on")
        backends.append(b)
    return backends


def check_backends(backends, count):
    """Every request of ours was logged by one backend with the client's
    address, and each backend got some."""
    seen = []
    for b in backends:
        assert b.stop() == 0
        lines = [m for m in map(ACCESS.search, b.log().splitlines()) if m]
        mine = [m for m in lines if m[2].startswith("/index?n=")]
        assert mine, f"backend got none of the requests:\n{b.log()}"
        assert all(m[3] == CLIENT_IP for m in mine), b.log()
        seen += [m[2] for m in mine]
    assert sorted(seen) == sorted(f"/index?n={i}" for i in range(count))


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


def deployment_block(name):
    """The config block between '# begin NAME' and '# end NAME' in
    docs/deployment.md: the test runs what the documentation says."""
    here = os.path.dirname(os.path.abspath(__file__))
    doc = open(os.path.join(here, "..", "..", "docs", "deployment.md")).read()
    m = re.search(rf"# begin {name}\n(.*?)\n\s*# end {name}", doc, re.S)
    assert m, f"no '# begin {name}' block in docs/deployment.md"
    return m.group(1)


def test_nginx_in_front_of_two_processes(spawn, program, tmp_path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.access(nginx, os.X_OK), "nginx not installed (make deps-test)"
    front, b1, b2 = free_ports(3)
    backends = start_backends(spawn, program, [b1, b2])
    body = (deployment_block("nginx")
            .replace("8001", str(b1)).replace("8002", str(b2))
            .replace("listen 80;", f"listen {HOST}:{front};"))
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp_path, body=body))
    proxy = spawn([nginx, "-p", str(tmp_path), "-c", str(conf)])
    assert wait_for(lambda: answers(front), 20), proxy.log() + (
        tmp_path / "error.log").read_text()
    for i in range(10):
        assert get(front, f"/index?n={i}") == (200, "Hello Itcast!")
    assert proxy.stop() == 0
    # nginx's own log has the client too
    assert CLIENT_IP in (tmp_path / "access.log").read_text()
    check_backends(backends, 10)


def test_haproxy_in_front_of_two_processes(spawn, program, tmp_path):
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    assert os.access(haproxy, os.X_OK), "haproxy not installed (make deps-test)"
    front, b1, b2 = free_ports(3)
    backends = start_backends(spawn, program, [b1, b2])
    conf = (deployment_block("haproxy")
            .replace("8001", str(b1)).replace("8002", str(b2))
            .replace("bind :80", f"bind {HOST}:{front}"))
    (tmp_path / "haproxy.cfg").write_text(conf + "\n")
    proxy = spawn([haproxy, "-db", "-f", str(tmp_path / "haproxy.cfg")])
    assert wait_for(lambda: answers(front), 20), proxy.log()
    for i in range(10):
        assert get(front, f"/index?n={i}") == (200, "Hello Itcast!")
    proxy.stop()
    check_backends(backends, 10)
