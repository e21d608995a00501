"""examples/hello_https against real TLS clients: curl, requests and
Python's ssl module verify it with a throwaway CA; clients that are wrong
(bad host name, plain HTTP, a malformed ClientHello, silence) are closed
without harming the server. Only 127.0.0.1; every wait is bounded."""
import os
import signal
import socket
import ssl
import subprocess
import time
import warnings

import pytest
import requests

from conftest import HOST, connect, wait_for

READY = "listening on https://"
EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-days", "2"]


def openssl(cwd, *args):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA and a server certificate it signed for localhost and 127.0.0.1."""
    d = tmp_path_factory.mktemp("certs")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                               "basicConstraints=CA:FALSE\n"
                               "extendedKeyUsage=serverAuth\n")
    openssl(d, "req", "-x509", *EC, "-keyout", "ca.key", "-out", "ca.pem",
            "-subj", "/CN=Gust Test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl(d, "req", *EC, "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost")
    openssl(d, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem",
            "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-out", "server.pem", "-extfile", "ext.cnf")
    return {"ca": str(d / "ca.pem"), "cert": str(d / "server.pem"),
            "key": str(d / "server.key")}


@pytest.fixture
def https(spawn, program, free_port, certs):
    """hello_https on free_port, logging at debug level."""
    env = dict(os.environ, GUST_LOG_LEVEL="debug")
    server = spawn([program("hello_https"), f"--port={free_port}",
                    f"--cert={certs['cert']}", f"--key={certs['key']}"],
                   env=env)
    server.wait_log(READY)
    server.port = free_port
    yield server
    status = server.stop(signal.SIGTERM)
    log = server.log()
    assert status == 0, log
    assert "Sanitizer" not in log, log


def verified_context(certs):
    ctx = ssl.create_default_context(cafile=certs["ca"])
    return ctx


def https_get(port, certs, host="localhost"):
    """One GET over a verified TLS connection; returns the raw response."""
    ctx = verified_context(certs)
    with connect(port) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data
                data += chunk


def test_curl_keep_alive(https, certs):
    url = f"https://localhost:{https.port}/"
    r = subprocess.run(["curl", "-sS", "-v", "--http1.1", "--cacert",
                        certs["ca"],
                        "--resolve", f"localhost:{https.port}:127.0.0.1",
                        url, url], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Hello, world" * 2
    # Two requests, one connection, one handshake.
    assert "Re-using existing connection" in r.stderr, r.stderr
    assert r.stderr.count("SSL connection using") == 1, r.stderr
    assert "ALPN: server accepted http/1.1" in r.stderr, r.stderr
    # Without the CA curl refuses the server.
    r = subprocess.run(["curl", "-sS", "--resolve",
                        f"localhost:{https.port}:127.0.0.1", url],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 60, r.stderr  # peer certificate cannot be verified


def test_request_protocol_is_https(https, certs):
    r = requests.get(f"https://127.0.0.1:{https.port}/protocol",
                     verify=certs["ca"], timeout=10)
    assert r.text == "https"


def test_requests_verify(https, certs):
    with requests.Session() as s:
        for _ in range(3):
            r = s.get(f"https://127.0.0.1:{https.port}/", verify=certs["ca"],
                      timeout=10)
            assert r.status_code == 200
            assert r.text == "Hello, world"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://127.0.0.1:{https.port}/", timeout=10)


def test_wrong_server_hostname_fails(https, certs):
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(https.port, certs, host="example.com")
    # The server is unharmed.
    assert https_get(https.port, certs).endswith(b"Hello, world")


def test_tls_versions_and_python_client(https, certs):
    ctx = verified_context(certs)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with connect(https.port) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.version() in ("TLSv1.2", "TLSv1.3")
            # The server prefers HTTP/2 (tests/integration/test_http2.py).
            assert s.selected_alpn_protocol() == "h2"
    ctx.set_alpn_protocols(["http/1.1"])
    with connect(https.port) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.selected_alpn_protocol() == "http/1.1"
    # TLS 1.1 is refused.
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(certs["ca"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError):
        with connect(https.port) as raw:
            old.wrap_socket(raw, server_hostname="localhost").close()


def read_until_closed(sock, timeout=10.0):
    """Everything the peer sends before closing (a reset counts as closed)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return data
            data += chunk
    except ConnectionResetError:
        return data


@pytest.mark.http1_only("plain HTTP/1.1 sent to the TLS port; its answer is an "
                        "HTTP/1.1 400")
def test_plain_http_to_tls_port_gets_a_short_400(https, certs):
    # As nginx: the person who typed http:// learns why, then the close.
    r = subprocess.run(["curl", "-sS", "-i", "--max-time", "10",
                        f"http://127.0.0.1:{https.port}/"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"HTTP/1.1 400 Bad Request\r\n"), r.stdout
    assert r.stdout.endswith(b"The plain HTTP request was sent to HTTPS "
                             b"port\n"), r.stdout
    https.wait_log("plain HTTP request on the TLS port, answered 400")
    with connect(https.port) as s:
        s.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert read_until_closed(s).startswith(b"HTTP/1.1 400 ")
    assert https_get(https.port, certs).endswith(b"Hello, world")


def s_client(port, *args, ca=None):
    """openssl s_client with args, its stdin closed: returns (exit code,
    output). It exits 0 once a handshake succeeded."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                        "-servername", "localhost", *args],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=30)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def test_tls12_offers_only_aead_suites_with_forward_secrecy(https, certs):
    # The server's key is ECDSA: its CBC suites are refused, its AEAD ones
    # accepted.
    for suite in ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384"]:
        rc, out = s_client(https.port, "-tls1_2", "-cipher", suite)
        assert rc != 0, (suite, out)
    for suite in ["ECDHE-ECDSA-AES128-GCM-SHA256",
                  "ECDHE-ECDSA-CHACHA20-POLY1305"]:
        rc, out = s_client(https.port, "-tls1_2", "-cipher", suite)
        assert rc == 0 and suite in out, (suite, out)
    assert https_get(https.port, certs).endswith(b"Hello, world")


def test_tls12_with_an_rsa_key_refuses_static_rsa_and_cbc(
        spawn, program, free_port, tmp_path):
    openssl(tmp_path, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-days", "2", "-keyout", "rsa.key", "-out", "rsa.pem",
            "-subj", "/CN=localhost")
    server = spawn([program("hello_https"), f"--port={free_port}",
                    f"--cert={tmp_path / 'rsa.pem'}",
                    f"--key={tmp_path / 'rsa.key'}"])
    server.wait_log(READY)
    # Static RSA key exchange (no forward secrecy), with AEAD or CBC, and
    # ECDHE with CBC: all refused.
    for suite in ["AES128-GCM-SHA256", "AES256-SHA", "ECDHE-RSA-AES128-SHA",
                  "DHE-RSA-AES128-SHA256"]:
        rc, out = s_client(free_port, "-tls1_2", "-cipher", suite)
        assert rc != 0, (suite, out)
    for suite in ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-CHACHA20-POLY1305",
                  "DHE-RSA-AES256-GCM-SHA384"]:
        rc, out = s_client(free_port, "-tls1_2", "-cipher", suite)
        assert rc == 0 and suite in out, (suite, out)
    assert server.stop() == 0


def test_malformed_client_hello_logged_and_closed(https, certs):
    # A handshake record holding a ClientHello whose lengths are nonsense.
    # The random is followed by a session id "255 bytes long" that is not.
    hello = b"\x03\x03" + b"\xff" * 44
    body = b"\x01" + len(hello).to_bytes(3, "big") + hello
    record = b"\x16\x03\x01" + len(body).to_bytes(2, "big") + body
    with connect(https.port) as s:
        s.sendall(record)
        data = read_until_closed(s)
    assert data == b"" or data[0] == 0x15
    https.wait_log("server handshake")
    assert https_get(https.port, certs).endswith(b"Hello, world")


def test_silent_client_dropped_after_handshake_timeout(https, certs):
    with connect(https.port) as s:
        start = time.monotonic()
        data = read_until_closed(s, timeout=30)
        elapsed = time.monotonic() - start
    assert data == b""
    assert 8 <= elapsed <= 25, elapsed
    https.wait_log("timed out after 10 s")


def test_shutdown_with_a_client_in_its_handshake(https, certs):
    # The fixture's SIGTERM must still end with status 0 and no leak while
    # this client has sent only half a ClientHello.
    with connect(https.port) as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01")
        assert https_get(https.port, certs).endswith(b"Hello, world")
        status = https.stop(signal.SIGTERM)
        assert status == 0, https.log()
