"""Gust's HTTP client over TLS against examples/hello_https with a throwaway
CA: a valid certificate is accepted (by name and by IP address), a wrong
host name, an unknown CA and a self-signed certificate are rejected with
GUST_ETLSVERIFY by default, and accepted only with validate_cert off.
Keep-alive reuse works over TLS too. Only 127.0.0.1; every wait is bounded.
"""
import json
import os
import signal
import subprocess

import pytest

from conftest import HOST

READY = "listening on https://"
EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-days", "2"]


def openssl(cwd, *args):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA; a server certificate it signed for localhost and 127.0.0.1; one
    it signed for another name; and a self-signed one."""
    d = tmp_path_factory.mktemp("client-certs")
    openssl(d, "req", "-x509", *EC, "-keyout", "ca.key", "-out", "ca.pem",
            "-subj", "/CN=Gust Client Test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, san in (("good", "DNS:localhost,IP:127.0.0.1"),
                      ("wrong", "DNS:other.example")):
        (d / f"{name}.cnf").write_text(f"subjectAltName={san}\n"
                                       "basicConstraints=CA:FALSE\n"
                                       "extendedKeyUsage=serverAuth\n")
        openssl(d, "req", *EC, "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", "/CN=gust-test")
        openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem",
                "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                "-out", f"{name}.pem", "-extfile", f"{name}.cnf")
    openssl(d, "req", "-x509", *EC, "-keyout", "self.key", "-out", "self.pem",
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    return d


@pytest.fixture
def fetch(build_dir):
    tool = os.path.join(build_dir, "tests", "test_http_client_cli")

    def run(*args):
        out = subprocess.run([tool, "--fetch", "--timeout", "10",
                              *map(str, args)], capture_output=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr.decode(errors="replace")
        return [json.loads(line) for line in out.stdout.decode().splitlines()]
    return run


@pytest.fixture
def https(spawn, program, free_port, certs):
    started = []

    def start(name):
        server = spawn([program("hello_https"), f"--port={free_port}",
                        f"--address={HOST}", f"--cert={certs / (name + '.pem')}",
                        f"--key={certs / (name + '.key')}"])
        server.wait_log(READY)
        server.port = free_port
        started.append(server)
        return server
    yield start
    for server in started:
        server.stop(signal.SIGTERM)


def test_valid_certificate(fetch, https, certs):
    port = https("good").port
    ca = certs / "ca.pem"
    by_name, by_ip = fetch("--ca", ca, f"https://localhost:{port}/",
                           f"https://{HOST}:{port}/")
    assert by_name["code"] == 200 and by_name["body"] == "Hello, world", by_name
    assert by_ip["code"] == 200 and by_ip["body"] == "Hello, world", by_ip


def test_keep_alive_over_tls(fetch, https, certs):
    port = https("good").port
    url = f"https://{HOST}:{port}/"
    results = fetch("--max-clients", "1", "--ca", certs / "ca.pem",
                    url, url, url)
    assert [r["code"] for r in results] == [200] * 3
    assert [r["reused"] for r in results] == [False, True, True]


def test_unknown_ca_rejected_by_default(fetch, https):
    port = https("good").port
    r = fetch(f"https://{HOST}:{port}/")[0]  # system CAs only
    assert r["code"] == 599 and r["error"] == "GUST_ETLSVERIFY", r


def test_wrong_host_rejected(fetch, https, certs):
    port = https("wrong").port
    r = fetch("--ca", certs / "ca.pem", f"https://localhost:{port}/")[0]
    assert r["error"] == "GUST_ETLSVERIFY", r
    r = fetch("--insecure", f"https://localhost:{port}/")[0]
    assert r["code"] == 200, r


def test_self_signed_rejected_unless_insecure(fetch, https):
    port = https("self").port
    r = fetch(f"https://localhost:{port}/")[0]
    assert r["error"] == "GUST_ETLSVERIFY", r
    r = fetch("--insecure", f"https://localhost:{port}/")[0]
    assert r["code"] == 200 and r["body"] == "Hello, world", r


def test_plain_server_is_a_tls_error(fetch, program, spawn, free_port):
    spawn([program("hello_http"), f"--port={free_port}", f"--address={HOST}"])
    from conftest import connect
    connect(free_port).close()
    r = fetch(f"https://{HOST}:{free_port}/")[0]
    assert r["code"] == 599 and r["error"] == "GUST_ETLS", r
