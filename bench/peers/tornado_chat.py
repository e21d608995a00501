"""Tornado's chat demo (demos/chat, with demos/websocket's socket handler)
under python3-tornado, the peer of bench/chat_compare.sh. Written here after
the demos' semantics, with what examples/chat adds that costs per message
kept equal: a signed-cookie sign-in (@authenticated), XSRF on POST, the
message's HTML rendered once from an autoescaped template, the last 200
messages kept, numeric ids so that one load client drives both servers.

    /usr/bin/python3 tornado_chat.py --port=N --cookie_secret=S

    GET  /login                sets the _xsrf cookie (the bench signs in by
                               making the signed chat_user cookie itself)
    POST /a/message/new        body=...: the message, as JSON
    POST /a/message/updates    cursor=ID: long poll (Condition.wait)
    GET  /a/socket             WebSocket: every new message, as
                               {"type": "message", "message": {...}}
    GET  /health               {"last_id": ..., "listeners": ...}
"""
import asyncio
import json
import time

import tornado.escape
import tornado.locks
import tornado.template
import tornado.web
import tornado.websocket
from tornado.options import define, options, parse_command_line

define("port", default=8890, type=int)
define("cookie_secret", default="bench-secret")

MESSAGE = tornado.template.Template(
    '<div class="meta"><span class="from">{{ message["from"] }}</span>'
    '<time datetime="{{ message["time"] }}">{{ message["time"] }}</time>'
    '</div><div class="body">{{ message["body"] }}</div>')


class MessageBuffer:
    """demos/chat's MessageBuffer, with numeric ids."""

    def __init__(self):
        self.cond = tornado.locks.Condition()
        self.cache = []
        self.cache_size = 200
        self.next_id = 0
        self.waiting = 0

    def get_messages_since(self, cursor):
        results = []
        for msg in reversed(self.cache):
            if msg["id"] == cursor:
                break
            results.append(msg)
        results.reverse()
        return results

    def add_message(self, message):
        self.cache.append(message)
        if len(self.cache) > self.cache_size:
            self.cache = self.cache[-self.cache_size:]
        self.cond.notify_all()


buffer = MessageBuffer()
sockets = set()


def new_message(user, body):
    buffer.next_id += 1
    message = {"id": str(buffer.next_id), "from": user, "body": body,
               "ts": int(time.time() * 1000),
               "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    message["html"] = tornado.escape.to_unicode(
        MESSAGE.generate(message=message))
    buffer.add_message(message)
    frame = json.dumps({"type": "message", "message": message})
    for s in sockets:
        s.write_message(frame)
    return message


class Base(tornado.web.RequestHandler):
    def get_current_user(self):
        v = self.get_secure_cookie("chat_user")
        return v.decode() if v else None


class Login(Base):
    def get(self):
        self.write(self.xsrf_form_html())


class MessageNew(Base):
    @tornado.web.authenticated
    def post(self):
        self.write(new_message(self.current_user, self.get_argument("body")))


class MessageUpdates(Base):
    @tornado.web.authenticated
    async def post(self):
        cursor = self.get_argument("cursor", None)
        messages = buffer.get_messages_since(cursor)
        while not messages:
            self.wait_future = buffer.cond.wait()
            buffer.waiting += 1
            try:
                await self.wait_future
            except asyncio.CancelledError:
                return
            finally:
                buffer.waiting -= 1
            messages = buffer.get_messages_since(cursor)
        if self.request.connection.stream.closed():
            return
        self.write(dict(messages=messages))

    def on_connection_close(self):
        if getattr(self, "wait_future", None):
            self.wait_future.cancel()


class Socket(tornado.websocket.WebSocketHandler):
    def get_current_user(self):
        v = self.get_secure_cookie("chat_user")
        return v.decode() if v else None

    def open(self):
        if not self.current_user:
            self.close(1008)
            return
        sockets.add(self)

    def on_close(self):
        sockets.discard(self)

    def on_message(self, data):
        body = json.loads(data).get("body")
        if body:
            new_message(self.current_user, body)


class Health(tornado.web.RequestHandler):
    def get(self):
        self.write({"last_id": buffer.next_id,
                    "listeners": buffer.waiting + len(sockets)})


def main():
    parse_command_line()
    app = tornado.web.Application(
        [("/login", Login), ("/a/message/new", MessageNew),
         ("/a/message/updates", MessageUpdates), ("/a/socket", Socket),
         ("/health", Health)],
        cookie_secret=options.cookie_secret, xsrf_cookies=True,
        login_url="/login")
    app.listen(options.port, address="127.0.0.1")
    print(f"listening on {options.port}", flush=True)
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
