"""Chat load client for bench/chat_compare.sh: many WebSocket and
long-polling clients on one or more chat servers (examples/chat and
bench/peers/tornado_chat.py speak the same protocol), one post at a time,
timed until every client has it.

    /usr/bin/python3 chat_load.py --secret=S --ws=N --poll=M --rounds=R \\
        NAME=URL,PID [NAME=URL,PID ...]

For each server: its RSS before and after N idle WebSocket clients (and M
parked long polls); then, rounds alternating between the servers (all of
them keep their clients connected throughout): one message posted, the time
until all N sockets (then all M polls) have it, and the server's CPU time
(utime + stime from /proc) over the rounds. Prints one JSON line per server.
Plain asyncio sockets, no WebSocket library: the client's own cost stays
small and the same for every server. Only 127.0.0.1; every wait is bounded.
"""
import argparse
import asyncio
import json
import os
import re
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, "/usr/lib/python3/dist-packages")
import tornado.web  # noqa: E402  (create_signed_value: the cookie format)

CLK = os.sysconf("SC_CLK_TCK")


def cpu(pid):
    """CPU seconds of pid's main thread: schedstat counts nanoseconds
    (stat's clock ticks are too coarse for one round); both servers do
    their work on that one thread."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Round:
    """What the clients wait for: a marker, and how many still miss it."""

    def __init__(self):
        self.marker = None
        self.left = 0
        self.done = None
        self.last = 0.0
        self.total = 0  # a busy round: how many posts each client waits for

    def start(self, marker, count, total=0):
        self.marker = marker
        self.left = count
        self.total = total
        self.done = asyncio.get_running_loop().create_future()

    def hit(self):
        self.left -= 1
        self.last = time.monotonic()
        if self.left == 0 and not self.done.done():
            self.done.set_result(None)


class WSClient(asyncio.Protocol):
    def __init__(self, target, rnd):
        self.t, self.rnd = target, rnd
        self.open = asyncio.get_running_loop().create_future()
        self.head = b""
        self.tail = b""
        self.seen = None
        self.got = set()  # the busy round's posts seen

    def connection_made(self, transport):
        self.transport = transport
        transport.write(
            f"GET /a/socket?cursor={self.t.cursor} HTTP/1.1\r\n"
            f"Host: {self.t.hostport}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Cookie: {self.t.cookie}\r\n\r\n".encode())

    def data_received(self, data):
        if not self.open.done():
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.head.startswith(b"HTTP/1.1 101"):
                self.open.set_exception(RuntimeError(self.head[:200]))
                return
            self.open.set_result(None)
            data = self.head[end + 4:]
        m = self.rnd.marker
        if self.rnd.total and m is not None:  # a busy round: every post
            # Each post's marker is distinct, and a message may show its
            # text more than once (body and html): a set counts posts.
            buf = self.tail + data
            before = len(self.got)
            for g in re.finditer(re.escape(m) + rb"(\d+\.\d+)~", buf):
                self.got.add(g.group(1))
            if before < self.rnd.total <= len(self.got):
                self.rnd.hit()
            self.tail = buf[-64:]
            return
        if m is None or self.seen == m:
            self.tail = data[-64:]
            return
        buf = self.tail + data
        self.tail = buf[-64:]
        if m in buf:
            self.seen = m
            self.rnd.hit()

    def connection_lost(self, exc):
        if not self.open.done():
            self.open.set_exception(RuntimeError("closed"))


class PollClient(asyncio.Protocol):
    """One keep-alive connection that long-polls once per round."""

    def __init__(self, target, rnd):
        self.t, self.rnd = target, rnd
        self.ready = asyncio.get_running_loop().create_future()
        self.buf = b""
        self.got = set()  # the busy round's posts seen

    def connection_made(self, transport):
        self.transport = transport
        self.ready.set_result(None)

    def poll(self, cursor):
        body = f"cursor={cursor}&_xsrf={urllib.parse.quote(self.t.xsrf)}"
        self.transport.write(
            f"POST /a/message/updates HTTP/1.1\r\nHost: {self.t.hostport}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Cookie: {self.t.cookie}\r\nContent-Length: {len(body)}\r\n\r\n"
            f"{body}".encode())

    def data_received(self, data):
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        m = re.search(rb"(?i)content-length: *(\d+)", self.buf[:end])
        length = int(m.group(1)) if m else 0
        if len(self.buf) < end + 4 + length:
            return
        body = self.buf[end + 4:end + 4 + length]
        self.buf = self.buf[end + 4 + length:]
        if self.rnd.total and self.rnd.marker is not None:
            # A busy round: count the posts, poll again after the last id.
            msgs = json.loads(body)["messages"]
            before = len(self.got)
            for g in re.finditer(re.escape(self.rnd.marker) +
                                 rb"(\d+\.\d+)~", body):
                self.got.add(g.group(1))
            if before < self.rnd.total <= len(self.got):
                self.rnd.hit()
            elif msgs:
                self.poll(msgs[-1]["id"])
            return
        if self.rnd.marker and self.rnd.marker in body:
            self.rnd.hit()


class Target:
    def __init__(self, spec, secret):
        name, rest = spec.split("=", 1)
        url, pid = rest.rsplit(",", 1)
        self.name, self.url, self.pid = name, url, int(pid)
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        assert self.host == "127.0.0.1"
        self.hostport = f"{self.host}:{self.port}"
        user = tornado.web.create_signed_value(secret, "chat_user",
                                               "bench").decode()
        # The _xsrf cookie the server sets, sent back as form field too.
        resp = urllib.request.urlopen(url + "/login", timeout=10)
        xsrf = re.search(r"_xsrf=([^;]+)", resp.headers["Set-Cookie"])
        self.xsrf = urllib.parse.unquote(xsrf.group(1))
        self.cookie = f"chat_user={user}; _xsrf={xsrf.group(1)}"
        self.cursor = self.health()["last_id"]
        self.ws_rnd, self.poll_rnd = Round(), Round()
        self.ws, self.polls = [], []
        self.result = {"server": name}

    def health(self):
        with urllib.request.urlopen(self.url + "/health", timeout=10) as r:
            return json.loads(r.read())

    def post(self, body):
        data = urllib.parse.urlencode({"body": body,
                                       "_xsrf": self.xsrf}).encode()
        req = urllib.request.Request(self.url + "/a/message/new", data=data,
                                     headers={"Cookie": self.cookie})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())


async def connect(t, cls, count):
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(100)
    out = []

    async def one():
        async with sem:
            _, p = await asyncio.wait_for(loop.create_connection(
                lambda: cls(t, t.ws_rnd if cls is WSClient else t.poll_rnd),
                t.host, t.port), 30)
            await asyncio.wait_for(p.open if cls is WSClient else p.ready,
                                   30)
            out.append(p)
    await asyncio.gather(*(one() for _ in range(count)))
    return out


async def wait_listeners(t, count, timeout=60):
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        h = await loop.run_in_executor(None, t.health)
        if h["listeners"] >= count:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{t.name}: {count} listeners not reached")


async def wait_listeners_at_most(t, count, timeout=60):
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        h = await loop.run_in_executor(None, t.health)
        if h["listeners"] <= count:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{t.name}: still more than {count} listeners")


async def one_round(t, rnd, count, tag):
    loop = asyncio.get_running_loop()
    marker = f"bench-{tag}-{time.monotonic_ns()}"
    rnd.start(marker.encode(), count)
    c0 = cpu(t.pid)
    t0 = time.monotonic()
    msg = await loop.run_in_executor(None, t.post, marker)
    await asyncio.wait_for(rnd.done, 120)
    elapsed = rnd.last - t0
    used = cpu(t.pid) - c0
    t.cursor = msg["id"]
    return elapsed, used


async def busy_round(t, rnd, count, tag, posters, posts, pool, clients=None):
    """posters clients post posts messages each, every one as soon as the
    previous answer came (a busy room: posts arrive while the server is
    still sending the last ones); done when every socket has them all."""
    loop = asyncio.get_running_loop()
    prefix = f"busy-{tag}-{time.monotonic_ns()}-"
    for c in (t.ws if clients is None else clients):
        c.got = set()
    rnd.start(prefix.encode(), count, posters * posts)
    for c in clients or ():
        c.poll(t.cursor)  # parked before the first post
    if clients:
        await wait_listeners(t, count)

    async def poster(i):
        for k in range(posts):
            await loop.run_in_executor(pool, t.post, f"{prefix}{i}.{k}~")

    c0 = cpu(t.pid)
    t0 = time.monotonic()
    await asyncio.gather(*(poster(i) for i in range(posters)))
    await asyncio.wait_for(rnd.done, 300)
    elapsed = rnd.last - t0
    used = cpu(t.pid) - c0
    t.cursor = t.health()["last_id"]
    rnd.start(None, 0)
    return elapsed, used


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secret", required=True)
    ap.add_argument("--ws", type=int, default=0)
    ap.add_argument("--poll", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--posters", type=int, default=0,
                    help="then a busy round per server: POSTERS clients "
                    "posting POSTS messages each, back to back")
    ap.add_argument("--posts", type=int, default=20)
    ap.add_argument("targets", nargs="+")
    a = ap.parse_args()
    targets = [Target(s, a.secret) for s in a.targets]

    for t in targets:
        before = rss_kib(t.pid)
        if a.ws:
            t.ws = await connect(t, WSClient, a.ws)
            await wait_listeners(t, a.ws)
            await asyncio.sleep(1.0)
            t.result["ws_clients"] = len(t.ws)
            t.result["rss_per_ws_client_bytes"] = round(
                (rss_kib(t.pid) - before) * 1024 / a.ws)
    for r in range(a.rounds if a.ws else 0):
        for t in targets:
            el, used = await one_round(t, t.ws_rnd, a.ws, f"ws{r}")
            t.result.setdefault("ws_round_s", []).append(round(el, 4))
            t.result["ws_cpu_s"] = t.result.get("ws_cpu_s", 0) + used

    if a.ws and a.posters:
        from concurrent.futures import ThreadPoolExecutor
        pool = ThreadPoolExecutor(max_workers=a.posters)
        for r in range(2):  # alternating, as the rounds above
            for t in targets:
                el, used = await busy_round(t, t.ws_rnd, a.ws, f"b{r}",
                                            a.posters, a.posts, pool)
                t.result.setdefault("busy_round_s", []).append(round(el, 3))
                t.result["busy_cpu_s"] = t.result.get("busy_cpu_s", 0) + used
        pool.shutdown()
        for t in targets:
            t.result["busy_delivered_per_cpu_s"] = round(
                a.ws * a.posters * a.posts * 2 / max(t.result["busy_cpu_s"], 1e-3))

    # The sockets go first, so that the polls' figures are theirs alone.
    for t in targets:
        for p in t.ws:
            p.transport.close()
        t.ws = []
    if a.poll:
        for t in targets:
            await wait_listeners_at_most(t, 0)
            before = rss_kib(t.pid)
            t.polls = await connect(t, PollClient, a.poll)
            t.result["poll_clients"] = len(t.polls)
            for r in range(a.rounds):
                for p in t.polls:
                    p.poll(t.cursor)
                await wait_listeners(t, a.poll)
                if r == 0:
                    await asyncio.sleep(1.0)
                    t.result["rss_per_poll_client_bytes"] = round(
                        (rss_kib(t.pid) - before) * 1024 / a.poll)
                el, used = await one_round(t, t.poll_rnd, a.poll, f"poll{r}")
                t.result.setdefault("poll_round_s", []).append(round(el, 4))
                t.result["poll_cpu_s"] = t.result.get("poll_cpu_s", 0) + used
                await asyncio.sleep(0.2)
            if a.posters:
                from concurrent.futures import ThreadPoolExecutor
                pool = ThreadPoolExecutor(max_workers=a.posters)
                for r in range(2):
                    el, used = await busy_round(t, t.poll_rnd, a.poll, f"pb{r}",
                                                a.posters, a.posts, pool,
                                                t.polls)
                    t.result.setdefault("poll_busy_round_s", []).append(
                        round(el, 3))
                    t.result["poll_busy_cpu_s"] = (
                        t.result.get("poll_busy_cpu_s", 0) + used)
                    await asyncio.sleep(0.2)
                pool.shutdown()
                t.result["poll_busy_delivered_per_cpu_s"] = round(
                    a.poll * a.posters * a.posts * 2 /
                    max(t.result["poll_busy_cpu_s"], 1e-3))

    for t in targets:
        res = t.result
        if a.ws:
            res["ws_delivered_per_cpu_s"] = round(
                a.ws * a.rounds / max(res["ws_cpu_s"], 1e-3))
        if a.poll:
            res["poll_delivered_per_cpu_s"] = round(
                a.poll * a.rounds / max(res["poll_cpu_s"], 1e-3))
        print(json.dumps(res), flush=True)
    for t in targets:
        for p in t.ws + t.polls:
            p.transport.close()
    await asyncio.sleep(0.5)


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(), 900))
