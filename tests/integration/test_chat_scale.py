"""The chat room on several processes (--redis): redis-server on a free
127.0.0.1 port, two chat processes, nginx in front with the recipe of
docs/deployment.md; all started and stopped by PID. A message posted
through one process reaches a WebSocket client on the other; history
survives a chat process's restart; Redis is killed and restarted and the
room goes on. Also --processes=N with Redis."""
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import textwrap

import pytest
import requests
import websockets

from conftest import HOST, children_of, wait_for
from test_chat import (ChatClient, chat_path, health, start_chat, stop_chat,
                       ws_headers)

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs",
                    "deployment.md")


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind((HOST, 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def redis_ping(port):
    try:
        with socket.create_connection((HOST, port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(spawn, port, tmp_path):
    # No persistence: a restart loses everything, the hardest case.
    server = spawn([REDIS, "--port", str(port), "--bind", HOST, "--save", "",
                    "--appendonly", "no", "--dir", str(tmp_path)])
    assert wait_for(lambda: redis_ping(port), 10), server.log()
    return server


def start_nginx(spawn, tmp_path, port, upstreams):
    """nginx with the http block of docs/deployment.md, ports replaced."""
    with open(DOCS) as f:
        docs = f.read()
    m = re.search(r"<!-- chat-nginx-begin -->\s*```nginx\n(.*?)```", docs,
                  re.S)
    assert m, "the nginx recipe is missing from docs/deployment.md"
    block = textwrap.dedent(m.group(1))
    block = block.replace("127.0.0.1:8001", f"127.0.0.1:{upstreams[0]}")
    block = block.replace("127.0.0.1:8002", f"127.0.0.1:{upstreams[1]}")
    block = block.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    prefix = tmp_path / "nginx"
    (prefix / "logs").mkdir(parents=True)
    conf = prefix / "nginx.conf"
    conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/logs/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{block}
}}
""")
    server = spawn([NGINX, "-p", str(prefix), "-c", str(conf)])

    def up():
        try:
            return requests.get(f"http://{HOST}:{port}/health",
                                timeout=2).status_code == 200
        except requests.RequestException:
            return False
    assert wait_for(up, 15), server.log()
    server.url = f"http://{HOST}:{port}"
    return server


async def ws_next(ws, kind, timeout=10):
    while True:
        j = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if j["type"] == kind:
            return j


def redis_up_everywhere(*servers):
    return all(health(s.url)["redis"] == "connected" for s in servers)


def test_two_processes_behind_nginx_share_one_room(spawn, build_dir,
                                                   tmp_path):
    if not os.access(NGINX, os.X_OK) or not os.access(REDIS, os.X_OK):
        pytest.fail("nginx-light and redis-server are needed (make deps-test)")
    rport, p1, p2, pn = free_ports(4)
    redis = start_redis(spawn, rport, tmp_path)
    common = (f"--redis=127.0.0.1:{rport}", "--xheaders")
    one = start_chat(spawn, build_dir, p1, tmp_path, *common, name="shared")
    two = start_chat(spawn, build_dir, p2, tmp_path, *common, name="shared")
    assert wait_for(lambda: redis_up_everywhere(one, two), 10)
    nginx = start_nginx(spawn, tmp_path, pn, (p1, p2))

    alice = ChatClient(one.url).login("alice")
    alice.form_token("/")
    bob_on_two = ChatClient(two.url).login("bob")
    # Cookies signed by one process are good on the other (same secret).
    assert bob_on_two.room().status_code == 200
    carol = ChatClient(nginx.url).login("carol")
    carol.form_token("/")
    wsurl2 = f"ws://{HOST}:{p2}/a/socket?cursor=0"
    wsurl_nginx = f"ws://{HOST}:{pn}/a/socket?cursor=0"

    async def across():
        async with websockets.connect(
                wsurl2, extra_headers=ws_headers(bob_on_two)) as bob, \
                websockets.connect(
                    wsurl_nginx,
                    extra_headers=ws_headers(carol, nginx.url)) as c:
            r = alice.say("posted through process one")
            assert r.status_code == 200, r.text
            for ws in (bob, c):
                m = (await ws_next(ws, "message"))["message"]
                assert m["body"] == "posted through process one"
            # Through nginx, over the proxied socket, to process two.
            await c.send(json.dumps({"body": "from carol via nginx"}))
            m = (await ws_next(bob, "message"))["message"]
            assert m["from"] == "carol"
    asyncio.run(asyncio.wait_for(across(), 30))
    ids = [int(m["id"]) for m in bob_on_two.messages()]
    assert ids == [1, 2]
    assert [m["id"] for m in alice.messages()] == ["1", "2"]

    # An attachment streamed through nginx to one process is served by the
    # other (one upload folder for both, as the recipe says).
    r = carol.upload("note.txt", b"shared by both processes\n", "text/plain")
    assert r.status_code == 200, r.text
    url = r.json()["file"]["url"]
    got = requests.get(two.url + url, timeout=5)
    assert got.content == b"shared by both processes\n"
    assert bob_on_two.messages()[-1]["file"]["url"] == url

    # History survives the restart of a chat process.
    stop_chat(one)
    one = start_chat(spawn, build_dir, p1, tmp_path, *common, name="shared")
    assert wait_for(lambda: redis_up_everywhere(one), 10)
    page = alice.room().text  # the same cookie, the restarted process
    assert "posted through process one" in page
    assert "from carol via nginx" in page

    # Redis goes away: a clear error, not a silent loss.
    redis.kill()
    assert wait_for(lambda: health(one.url)["redis"] == "down", 10)
    r = requests.get(one.url + "/health", timeout=5)
    assert r.status_code == 503
    r = alice.say("while Redis is down")
    assert r.status_code == 503
    assert "lost its connection to Redis" in r.json()["error"]
    r = alice.s.post(one.url + "/a/message/new",
                     data={"_xsrf": alice.xsrf, "body": "form, no js"},
                     timeout=5)
    assert r.status_code == 503 and "Redis" in r.text  # the HTML page

    async def ws_while_down():
        async with websockets.connect(
                wsurl2, extra_headers=ws_headers(bob_on_two)) as bob:
            await ws_next(bob, "messages")  # the backlog
            await bob.send(json.dumps({"body": "socket while down"}))
            e = await ws_next(bob, "error")
            assert "Redis" in e["error"] and e["body"] == "socket while down"
    asyncio.run(asyncio.wait_for(ws_while_down(), 30))

    # Redis comes back (empty: no persistence): the room goes on, with its
    # history and ids given back by the chat processes.
    redis = start_redis(spawn, rport, tmp_path)
    assert wait_for(lambda: redis_up_everywhere(one, two), 20)

    bob_on_two.form_token("/")

    async def after():
        async with websockets.connect(
                f"ws://{HOST}:{p1}/a/socket?cursor=3",
                extra_headers=ws_headers(alice)) as a:
            r = bob_on_two.s.post(
                two.url + "/a/message/new",
                data={"_xsrf": bob_on_two.xsrf, "body": "Redis is back"},
                headers={"Accept": "application/json"}, timeout=10)
            assert r.status_code == 200, r.text
            m = (await ws_next(a, "message"))["message"]
            assert m["body"] == "Redis is back" and m["id"] == "4"
    asyncio.run(asyncio.wait_for(after(), 30))
    bodies = [m["body"] for m in carol.messages()]
    assert bodies == ["posted through process one", "from carol via nginx",
                      "", "Redis is back"]

    assert nginx.stop() == 0
    stop_chat(one)
    stop_chat(two)
    redis.stop()


def test_processes_with_redis(spawn, build_dir, free_port, tmp_path):
    rport, = free_ports(1)
    redis = start_redis(spawn, rport, tmp_path)
    server = start_chat(spawn, build_dir, free_port, tmp_path,
                        f"--redis=127.0.0.1:{rport}", "--processes=2")
    assert wait_for(lambda: len(children_of(server.pid)) == 2, 10)
    workers = set(children_of(server.pid))
    alice = ChatClient(server.url).login("alice")
    alice.form_token("/")
    # Each request on a new connection goes to either worker: all of them
    # see the same room once Redis has spread the message.
    assert wait_for(lambda: all(
        requests.get(server.url + "/health", timeout=5).json()["redis"] ==
        "connected" for _ in range(10)), 10)
    assert alice.say("to every worker").status_code == 200
    pids = set()
    for _ in range(40):
        s = requests.Session()
        s.cookies.update(alice.s.cookies)
        j = s.get(server.url + "/health", timeout=5).json()
        pids.add(j["pid"])
        msgs = s.get(server.url + "/a/messages", timeout=5).json()["messages"]
        assert [m["body"] for m in msgs] == ["to every worker"]
    assert pids <= workers
    assert server.stop() == 0, server.log()
    redis.stop()
