"""Prometheus metrics of examples/hello (--metrics_path), read with the
parser of Debian's python3-prometheus-client, in one process and with
forked workers, where one scrape of the port shows every worker."""
import socket

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import HOST, wait_for


def scrape(port):
    r = requests.get(f"http://{HOST}:{port}/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def samples(families, family, name=None, **labels):
    """Samples of family (named name, default the family's) whose labels
    include labels."""
    name = name or family
    return [s for s in families[family].samples if s.name == name and
            all(s.labels.get(k) == v for k, v in labels.items())]


def value(families, family, name=None, **labels):
    return sum(s.value for s in samples(families, family, name, **labels))


def test_single_process(spawn, program, free_port):
    srv = spawn([program("hello"), f"--port={free_port}",
                 "--address=127.0.0.1", "--metrics_path=/metrics"])
    srv.wait_log("listening on")
    with requests.Session() as s:
        for _ in range(7):
            assert s.get(f"http://{HOST}:{free_port}/", timeout=10).ok
        for _ in range(3):
            assert s.get(f"http://{HOST}:{free_port}/nope",
                         timeout=10).status_code == 404
    # a malformed request is counted too (400 from the server itself)
    with socket.create_connection((HOST, free_port), timeout=10) as c:
        c.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n")
        assert c.recv(100).startswith(b"HTTP/1.1 400")
    with requests.Session() as s:
        s.get(f"http://{HOST}:{free_port}/", timeout=10)  # an open connection
        fams = scrape(free_port)
    assert {f.type for f in fams.values()} >= {"counter", "gauge", "histogram"}
    assert samples(fams, "gust_http_requests", "gust_http_requests_total",
                   worker="main")
    assert value(fams, "gust_http_requests", "gust_http_requests_total",
                 code="2xx") == 8
    assert value(fams, "gust_http_requests", "gust_http_requests_total",
                 code="4xx") == 4
    # the scrape's own connection, and the session's kept-alive one
    assert value(fams, "gust_http_connections_open") >= 1
    assert value(fams, "gust_http_connections", "gust_http_connections_total") == 4
    assert value(fams, "gust_websockets_open") == 0
    assert value(fams, "gust_http_received_bytes",
                 "gust_http_received_bytes_total") > 11 * 30
    assert value(fams, "gust_http_sent_bytes",
                 "gust_http_sent_bytes_total") > 8 * len("Hello, world")
    hist = "gust_http_request_duration_seconds"
    count = value(fams, hist, hist + "_count")
    assert count == 12
    buckets = samples(fams, hist, hist + "_bucket")
    les = [b.labels["le"] for b in buckets]
    assert les[-1] == "+Inf" and len(les) == 17
    cum = [b.value for b in buckets]
    assert cum == sorted(cum) and cum[-1] == count
    assert 0 <= value(fams, hist, hist + "_sum") < 12 * 1.0
    assert srv.stop() == 0


@pytest.mark.parametrize("form", ["2", "3"])
def test_forked_workers_seen_from_any_worker(spawn, program, free_port, form):
    """Start forms 2 (bind, start(2)) and 3 (--sockets: bind_sockets,
    fork_processes(2), a server per worker)."""
    srv = spawn([program("hello"), f"--port={free_port}",
                 "--address=127.0.0.1", "--processes=2",
                 "--metrics_path=/metrics"] +
                (["--sockets"] if form == "3" else []))
    srv.wait_log("listening on", count=2)
    # many short connections: the kernel spreads them over both workers
    total = 0
    for _ in range(200):
        assert requests.get(f"http://{HOST}:{free_port}/", timeout=10).ok
        total += 1
    def both_seen():
        fams = scrape(free_port)
        per = {s.labels["worker"]: s.value for s in samples(
            fams, "gust_http_requests", "gust_http_requests_total",
            code="2xx")}
        return (fams, per) if len(per) == 2 else None
    got = wait_for(both_seen, 10)
    assert got, "a scrape shows only one worker"
    fams, per = got
    assert set(per) == {"0", "1"}
    # every request of ours is counted once, by whichever worker served it
    # (earlier scrapes are 2xx requests too; this one is not counted yet)
    scrapes = sum(per.values()) - total
    assert 0 <= scrapes <= 10 * 20
    pids = {s.labels["worker"]: s.labels["pid"] for s in
            samples(fams, "gust_worker_info")}
    assert set(pids) == {"0", "1"} and len(set(pids.values())) == 2
    hist = "gust_http_request_duration_seconds"
    assert {s.labels["worker"] for s in
            samples(fams, hist, hist + "_count")} == {"0", "1"}
    assert srv.stop() == 0
