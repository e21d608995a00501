"""Tornado WebSocket echo server for bench/ws_compare.sh (python3-tornado).

    /usr/bin/python3 tornado_ws_echo.py --port=N [--broadcast]

Echoes every message on /ws with its type. With --broadcast, a text message
that starts with "broadcast:" is written instead to every open connection
(the sender included), as Tornado's chat demo does. permessage-deflate is
accepted when offered (get_compression_options returns {}: Tornado's
defaults), so that the idle-memory figure with compression is Tornado's.
"""
import signal
import sys

import tornado.ioloop
import tornado.web
import tornado.websocket

PORT = 8888
BROADCAST = False
for arg in sys.argv[1:]:
    if arg.startswith("--port="):
        PORT = int(arg.split("=", 1)[1])
    elif arg == "--broadcast":
        BROADCAST = True

CLIENTS = set()


class Echo(tornado.websocket.WebSocketHandler):
    def check_origin(self, origin):
        return True

    def get_compression_options(self):
        return {}

    def open(self):
        CLIENTS.add(self)

    def on_close(self):
        CLIENTS.discard(self)

    def on_message(self, message):
        binary = isinstance(message, bytes)
        if BROADCAST and not binary and message.startswith("broadcast:"):
            for client in list(CLIENTS):
                try:
                    client.write_message(message)
                except tornado.websocket.WebSocketClosedError:
                    pass
            return
        self.write_message(message, binary=binary)


def main():
    app = tornado.web.Application([(r"/ws", Echo)])
    app.listen(PORT, address="127.0.0.1", backlog=4096)
    loop = tornado.ioloop.IOLoop.current()
    # Stop the loop from the signal rather than raising inside it: with
    # 10,000 sockets open, sys.exit() in the handler was seen to hang.
    signal.signal(signal.SIGTERM,
                  lambda *_: loop.add_callback_from_signal(loop.stop))
    print(f"tornado_ws_echo listening on 127.0.0.1:{PORT}", flush=True)
    loop.start()


main()
