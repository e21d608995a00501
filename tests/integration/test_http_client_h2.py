"""Gust's HTTP client over HTTP/2 (the client's http2 option), through
tests/test_http_client_cli, against real HTTP/2 servers on 127.0.0.1 with a
throwaway CA: nghttpd (nghttp2-server), h2o, and a python3-h2 server
(h2_server.py) that counts the connections it accepts and the RST_STREAM
frames it receives, and can hold, reset-wait and GOAWAY on request.

Checked: ALPN h2 is chosen and the response says HTTP/2.0; 50 concurrent
fetches share ONE connection (counted by the server); large bodies both
ways (flow control); streaming_callback; gzip and redirects; a timeout
resets only its stream (CANCEL) while the others complete; GOAWAY lets the
accepted streams finish and sends the refused ones again on a new
connection; a lost connection fails each fetch on it clearly; a server
offering only http/1.1, and the option off against an h2 server, give
HTTP/1.1. Every wait is bounded.
"""
import json
import os
import pwd
import shutil
import socket
import subprocess
import time

import pytest

from conftest import wait_for
from h2_server import H2TestServer, pattern

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-days", "2"]


def openssl(cwd, *args):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA and a server certificate it signed for localhost, 127.0.0.1."""
    d = tmp_path_factory.mktemp("h2-certs")
    openssl(d, "req", "-x509", *EC, "-keyout", "ca.key", "-out", "ca.pem",
            "-subj", "/CN=Gust H2 Client Test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    (d / "server.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                  "basicConstraints=CA:FALSE\n"
                                  "extendedKeyUsage=serverAuth\n")
    openssl(d, "req", *EC, "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=gust-h2-test")
    openssl(d, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem",
            "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-out", "server.pem", "-extfile", "server.cnf")
    return d


@pytest.fixture
def fetch(build_dir, certs):
    tool = os.path.join(build_dir, "tests", "test_http_client_cli")

    def run(*args, stats=False):
        out = subprocess.run([tool, "--fetch", "--timeout", "20", "--ca",
                              str(certs / "ca.pem"), "--max-clients", "100",
                              *(["--stats"] if stats else []),
                              *map(str, args)], capture_output=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr.decode(errors="replace")
        lines = [json.loads(line) for line in out.stdout.decode().splitlines()]
        return (lines[:-1], lines[-1]) if stats else lines
    return run


@pytest.fixture
def h2server(certs):
    started = []

    def start(alpn=("h2", "http/1.1")):
        s = H2TestServer(str(certs / "server.pem"), str(certs / "server.key"),
                         alpn).__enter__()
        started.append(s)
        s.url = f"https://127.0.0.1:{s.port}"
        return s
    yield start
    for s in started:
        s.__exit__(None, None, None)


@pytest.fixture
def start_nghttpd(spawn, free_port, certs, tmp_path):
    def start(*extra):
        docroot = tmp_path / "docroot"
        docroot.mkdir()
        (docroot / "index.html").write_text("hello from nghttpd\n")
        (docroot / "big.bin").write_bytes(pattern(3_000_000))
        server = spawn(["nghttpd", "-v", "-a", "127.0.0.1", "-d", docroot,
                        *extra, free_port, certs / "server.key",
                        certs / "server.pem"])
        assert wait_for(lambda: subprocess.run(
            ["ss", "-Hltn", f"sport = :{free_port}"], capture_output=True,
            text=True).stdout.strip(), 10), "nghttpd did not start"
        server.url = f"https://127.0.0.1:{free_port}"
        return server
    return start


@pytest.fixture
def nghttpd(start_nghttpd):
    return start_nghttpd("--echo-upload")


def nghttpd_connections(server):
    """Connections nghttpd saw: its -v log tags each line with [id=N]."""
    ids = set()
    for line in server.log().splitlines():
        if line.startswith("[id=") and "recv HEADERS" in line:
            ids.add(line.split("]", 1)[0])
    return len(ids)


def test_alpn_h2_chosen_and_version_reported(h2server, fetch):
    s = h2server()
    [r] = fetch("--http2", s.url + "/hello")
    assert r["code"] == 200
    assert r["version"] == "HTTP/2.0"
    assert r["body"] == "hello conn=1 proto=h2"
    assert s.connections == ["h2"]


def test_fifty_concurrent_fetches_share_one_connection(h2server, fetch):
    s = h2server()
    rs, stats = fetch("--http2", *[f"{s.url}/hello?i={i}" for i in range(50)],
                      stats=True)
    assert [r["code"] for r in rs] == [200] * 50
    assert {r["body"] for r in rs} == {"hello conn=1 proto=h2"}
    assert s.connections == ["h2"]
    assert stats["connections"] == 1
    assert stats["reused"] == 49


def test_nghttpd_fifty_fetches_one_connection(nghttpd, fetch):
    rs, stats = fetch("--http2", *[f"{nghttpd.url}/index.html?{i}"
                                   for i in range(50)], stats=True)
    assert [r["code"] for r in rs] == [200] * 50
    assert {r["body"] for r in rs} == {"hello from nghttpd\n"}
    assert {r["version"] for r in rs} == {"HTTP/2.0"}
    assert stats["connections"] == 1
    assert nghttpd_connections(nghttpd) == 1


def test_more_fetches_than_max_concurrent_streams_wait(start_nghttpd, fetch):
    # nghttpd -m 4: SETTINGS_MAX_CONCURRENT_STREAMS 4. The first burst goes
    # out before the client has the server's SETTINGS (the protocol allows
    # it); nghttpd refuses the streams past 4 (REFUSED_STREAM), the client
    # sends them again, and from then on holds them until a stream is free.
    server = start_nghttpd("-m", "4")
    rs, stats = fetch("--http2", "--stream", "--no-body",
                      *[f"{server.url}/big.bin?{i}" for i in range(30)],
                      stats=True)
    assert [r["code"] for r in rs] == [200] * 30
    assert {r["streamed_len"] for r in rs} == {3_000_000}
    assert stats["connections"] == 1
    assert nghttpd_connections(server) == 1


def test_nghttpd_large_body_and_post(nghttpd, fetch):
    [big] = fetch("--http2", nghttpd.url + "/big.bin")
    assert big["body_len"] == 3_000_000
    assert big["body"] == pattern(3_000_000).decode()
    # --echo-upload: nghttpd sends the request body back.
    [up] = fetch("--http2", "-X", "POST", "--data-size", 2_000_000,
                 nghttpd.url + "/index.html")
    assert up["code"] == 200
    assert up["body"] == pattern(2_000_000).decode()


def test_head_request(nghttpd, fetch):
    [r] = fetch("--http2", "-X", "HEAD", nghttpd.url + "/big.bin")
    assert r["code"] == 200 and r["version"] == "HTTP/2.0"
    assert r["body_len"] == 0
    assert r["headers"]["content-length"] == "3000000"


def test_response_head_over_max_header_size(h2server, fetch):
    # The client's default max_header_size is 64 KiB, counted as RFC 9113
    # counts a header list; the stream is reset, the connection goes on.
    s = h2server()
    big, small, hello = fetch("--http2", s.url + "/bighead?n=100000",
                              s.url + "/bighead?n=1000", s.url + "/hello")
    assert big["error"] == "GUST_EBUFFERFULL"
    assert "max_header_size" in big["message"]
    assert small["code"] == 200 and small["body"] == "big head"
    assert small["headers"]["x-big-0"] == "v" * 1000
    assert hello["body"] == "hello conn=1 proto=h2"
    assert s.connections == ["h2"]


def test_a_field_past_hpack_limits_is_a_protocol_error(h2server, fetch):
    # One 100 KB field: libnghttp2 refuses it (its HPACK limit, 64 KiB a
    # field) and ends the connection with COMPRESSION_ERROR.
    s = h2server()
    [r] = fetch("--http2", s.url + "/bighead-one?n=100000")
    assert r["error"] == "GUST_EPROTO"
    assert "HTTP/2 protocol error" in r["message"]


def test_large_body_streamed(h2server, fetch):
    s = h2server()
    [r] = fetch("--http2", "--stream", s.url + "/big?n=4000000")
    assert r["code"] == 200 and r["version"] == "HTTP/2.0"
    assert r["body_len"] == 0          # streamed, not kept
    assert r["streamed_len"] == 4_000_000
    assert r["body"] == pattern(4_000_000).decode()
    assert r["chunks"] > 1


def test_post_body_with_flow_control(h2server, fetch):
    # Three times the server's initial 64 KiB window: the client has to
    # wait for WINDOW_UPDATEs.
    s = h2server()
    rs = fetch("--http2", "-X", "POST", "--data-size", 1_000_000,
               s.url + "/echo", s.url + "/echo")
    for r in rs:
        assert r["code"] == 200
        assert r["body_len"] == 1_000_000
        assert r["body"] == pattern(1_000_000).decode()
    assert s.connections == ["h2"]


def test_gzip_and_redirect_over_h2(h2server, fetch):
    s = h2server()
    gz, red = fetch("--http2", s.url + "/gzip", s.url + "/redirect")
    assert gz["body"] == "hello gzip"
    assert gz["headers"].get("X-Consumed-Content-Encoding") == "gzip"
    assert red["code"] == 200 and red["redirects"] == 1
    assert red["effective_url"] == s.url + "/hello"
    assert red["body"] == "hello conn=1 proto=h2"
    assert s.connections == ["h2"]


def test_header_callback_over_h2(h2server, fetch):
    s = h2server()
    [r] = fetch("--http2", "--head-lines", s.url + "/redirect")
    lines = r["head_lines"]
    # The redirect's head, then the final one, as over HTTP/1.
    assert lines[0] == "HTTP/2.0 302 Found\r\n"
    assert "location: /hello\r\n" in lines
    second = lines.index("\r\n") + 1
    assert lines[second] == "HTTP/2.0 200 OK\r\n"
    assert "content-length: 21\r\n" in lines[second:]
    assert lines[-1] == "\r\n"
    assert r["body"] == "hello conn=1 proto=h2"


def test_timeout_resets_only_its_stream(h2server, fetch):
    s = h2server()
    rs = fetch("--http2", "--first-timeout", "1", s.url + "/slow",
               s.url + "/after-reset", s.url + "/hello", s.url + "/hello")
    slow, after, *hellos = rs
    assert slow["error"] == "GUST_ETIMEOUT"
    # Answered only once the server had the reset, on the same connection.
    assert after["code"] == 200
    assert after["body"] == "reset code=8 conn=1"   # 8: CANCEL
    assert [h["body"] for h in hellos] == ["hello conn=1 proto=h2"] * 2
    assert s.resets == [(1, 1, 8)]
    assert s.connections == ["h2"]


def test_goaway_finishes_accepted_streams_and_retries_the_others(h2server,
                                                                 fetch):
    s = h2server()
    urls = [s.url + "/hold"] * 3 + [s.url + "/goaway"] + \
           [s.url + f"/hello?{i}" for i in range(4)]
    rs = fetch("--http2", *urls)
    assert [r["code"] for r in rs] == [200] * 8, \
        [(r["code"], r["error"], r["message"]) for r in rs]
    assert [r["body"] for r in rs[:3]] == ["held conn=1"] * 3
    assert rs[3]["body"] == "goaway conn=1"
    assert [r["body"] for r in rs[4:]] == ["hello conn=2 proto=h2"] * 4
    assert s.connections == ["h2", "h2"]
    # The client closed the first connection once its streams were done.
    assert wait_for(lambda: 1 in s.closed, 10)


def test_lost_connection_fails_each_fetch(h2server, fetch, certs):
    s = h2server()
    rs = fetch("--http2", "--timeout", "10", s.url + "/slow", s.url + "/slow",
               s.url + "/drop")
    for r in rs:
        assert r["code"] == 599
        # The socket's own error: the reset seen by a read, or by a write
        # (EPIPE) if the client was sending at that moment.
        assert r["error"] in ("ECONNRESET", "EPIPE", "GUST_EPROTO")
        assert "HTTP/2 connection lost" in r["message"]


def test_stream_reset_by_the_server_fails_only_that_fetch(h2server, fetch):
    s = h2server()
    reset, hello = fetch("--http2", s.url + "/reset", s.url + "/hello")
    assert reset["code"] == 599 and reset["error"] == "ECONNRESET"
    assert "HTTP/2 stream reset by the server (INTERNAL_ERROR)" in \
        reset["message"]
    assert hello["body"] == "hello conn=1 proto=h2"
    assert s.connections == ["h2"]


def test_malformed_response_fails_only_that_fetch(h2server, fetch):
    s = h2server()
    bad, hello = fetch("--http2", s.url + "/badlength", s.url + "/hello")
    assert bad["code"] == 599 and bad["error"] == "GUST_EPROTO"
    assert "malformed HTTP/2 response (stream reset: PROTOCOL_ERROR)" in \
        bad["message"]
    assert hello["body"] == "hello conn=1 proto=h2"
    assert s.connections == ["h2"]


def test_client_freed_with_streams_open(h2server, fetch):
    s = h2server()
    # 3 s: time enough for /hello on a loaded machine under ASan.
    rs = fetch("--http2", "--free-after", "3", "--stream",
               *[s.url + "/slow"] * 5, s.url + "/hello")
    assert [r["error"] for r in rs[:5]] == ["GUST_ECANCELED"] * 5
    assert rs[5]["code"] == 200


def test_client_freed_inside_a_streaming_callback(h2server, fetch):
    # The callback runs inside the HTTP/2 session's input processing; the
    # other streams on the connection are cancelled with it.
    s = h2server()
    rs = fetch("--http2", "--stream", "--free-on-chunk",
               s.url + "/big?n=3000000", *[s.url + "/slow"] * 3,
               s.url + "/big?n=3000000")
    assert {r["error"] for r in rs} == {"GUST_ECANCELED"}
    assert rs[0]["chunks"] == 1


def test_idle_h2_connection_closed_after_idle_timeout(h2server, fetch):
    s = h2server()
    t0 = time.monotonic()
    [r] = fetch("--http2", "--idle-timeout", "0.5", "--linger", "3",
                s.url + "/hello")
    t1 = time.monotonic()
    assert r["code"] == 200
    # Closed by the client about 0.5 s after the response, while the
    # process still had 2.5 s to linger.
    assert 1 in s.closed
    assert 0.3 < s.closed[1] - s.last_response < 2.0
    assert s.closed[1] < t1 - 0.8 and s.closed[1] > t0


def test_waiters_share_the_connect_timeout_of_a_silent_server(fetch):
    """A server that accepts TCP but never answers the TLS handshake: the
    fetches waiting for the first connection time out, each on its own
    clock (the first to go hands the connection to the next), and no
    second connection is opened."""
    with socket.socket() as ls:
        ls.bind(("127.0.0.1", 0))
        ls.listen(16)
        port = ls.getsockname()[1]
        rs = fetch("--http2", "--timeout", "1",
                   *[f"https://127.0.0.1:{port}/"] * 3)
        # --timeout sets the connect and the request timeouts alike: either
        # may fire first.
        assert len(rs) == 3
        assert {r["error"] for r in rs} <= {"GUST_ETIMEOUT_CONNECT",
                                            "GUST_ETIMEOUT"}
        ls.setblocking(False)
        accepted = 0
        while True:
            try:
                conn, _ = ls.accept()
            except BlockingIOError:
                break
            conn.close()
            accepted += 1
        assert accepted == 1


def test_waiters_of_a_refused_connection_fail_too(fetch):
    with socket.socket() as ls:
        ls.bind(("127.0.0.1", 0))
        port = ls.getsockname()[1]   # bound, not listening: refused
        rs = fetch("--http2", *[f"https://127.0.0.1:{port}/"] * 3)
    assert [r["error"] for r in rs] == ["ECONNREFUSED"] * 3
    assert all(f"127.0.0.1:{port}" in r["message"] for r in rs)


@pytest.mark.parametrize("alpn", [("http/1.1",), ()],
                         ids=["http/1.1 only", "no ALPN"])
def test_server_offering_only_http11_gets_http11(h2server, fetch, alpn):
    s = h2server(alpn=alpn)
    proto = alpn[0] if alpn else "none"
    rs, stats = fetch("--http2", *[s.url + "/hello"] * 5, stats=True)
    assert [r["code"] for r in rs] == [200] * 5
    assert {r["version"] for r in rs} == {"HTTP/1.1"}
    assert all(r["body"].endswith("proto=" + proto) for r in rs)
    assert set(s.connections) == {proto}
    # Fetches that waited for the first connection went on with their own.
    assert len(s.connections) == stats["connections"] == 5


def test_option_off_uses_http11_even_when_h2_is_offered(h2server, fetch):
    s = h2server()
    [r] = fetch(s.url + "/hello")
    assert r["version"] == "HTTP/1.1"
    assert r["body"] == "hello conn=1 proto=http/1.1"
    assert s.connections == ["http/1.1"]


def test_request_flag_overrides_the_client_option(h2server, fetch):
    s = h2server()
    [off] = fetch("--http2", "--request-http2", "no", s.url + "/hello")
    assert off["version"] == "HTTP/1.1"
    assert off["body"] == "hello conn=1 proto=http/1.1"
    [on] = fetch("--request-http2", "yes", s.url + "/hello")
    assert on["version"] == "HTTP/2.0"
    assert on["body"] == "hello conn=2 proto=h2"


@pytest.fixture
def h2o(spawn, free_port, certs, tmp_path):
    if not shutil.which("h2o"):
        pytest.skip("h2o is not installed (apt-get install h2o)")
    docroot = tmp_path / "h2o-docroot"
    docroot.mkdir()
    (docroot / "index.html").write_text("hello from h2o\n")
    conf = tmp_path / "h2o.conf"
    # Started as root, h2o switches to nobody, who cannot read pytest's
    # private directories.
    user = f"user: {pwd.getpwuid(os.geteuid()).pw_name}\n" \
        if os.geteuid() == 0 else ""
    conf.write_text(f"""listen:
  host: 127.0.0.1
  port: {free_port}
  ssl:
    certificate-file: {certs / 'server.pem'}
    key-file: {certs / 'server.key'}
num-threads: 1
{user}error-log: {tmp_path / 'h2o-error.log'}
access-log:
  path: {tmp_path / 'h2o-access.log'}
  format: "%H %r"
hosts:
  default:
    paths:
      /:
        file.dir: {docroot}
""")
    server = spawn(["h2o", "-c", conf])
    assert wait_for(lambda: subprocess.run(
        ["ss", "-Hltn", f"sport = :{free_port}"], capture_output=True,
        text=True).stdout.strip(), 10), "h2o did not start"
    server.url = f"https://127.0.0.1:{free_port}"
    server.access_log = tmp_path / "h2o-access.log"
    return server


def test_h2o_h2_with_option_and_http11_without(h2o, fetch):
    on = fetch("--http2", *[h2o.url + "/index.html"] * 10)
    assert {r["version"] for r in on} == {"HTTP/2.0"}
    assert {r["body"] for r in on} == {"hello from h2o\n"}
    [off] = fetch(h2o.url + "/index.html")
    assert off["version"] == "HTTP/1.1"
    assert off["body"] == "hello from h2o\n"
    assert wait_for(lambda: h2o.access_log.exists() and
                    len(h2o.access_log.read_text().splitlines()) == 11, 10)
    protos = [line.split()[0] for line in
              h2o.access_log.read_text().splitlines()]
    assert protos.count("HTTP/2") == 10
    assert protos.count("HTTP/1.1") == 1
