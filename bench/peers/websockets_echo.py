"""Python `websockets` echo server for bench/ws_compare.sh
(python3-websockets, the asyncio implementation).

    /usr/bin/python3 websockets_echo.py --port=N [--broadcast]

Echoes every message on /ws with its type. With --broadcast, a text message
that starts with "broadcast:" is sent instead to every open connection (the
sender included) with websockets.broadcast(). permessage-deflate is accepted
when offered (compression="deflate", the library's default); no keepalive
pings, so idle connections stay idle.
"""
import asyncio
import signal
import sys

import websockets

PORT = 8888
BROADCAST = False
for arg in sys.argv[1:]:
    if arg.startswith("--port="):
        PORT = int(arg.split("=", 1)[1])
    elif arg == "--broadcast":
        BROADCAST = True

CLIENTS = set()


async def echo(ws, path=None):
    CLIENTS.add(ws)
    try:
        async for message in ws:
            if BROADCAST and isinstance(message, str) and \
                    message.startswith("broadcast:"):
                websockets.broadcast(CLIENTS, message)
            else:
                await ws.send(message)
    except websockets.ConnectionClosed:
        pass
    finally:
        CLIENTS.discard(ws)


async def main():
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM,
                                                  stop.set_result, None)
    async with websockets.serve(echo, "127.0.0.1", PORT, compression="deflate",
                                ping_interval=None, max_size=10 << 20,
                                backlog=4096):
        print(f"websockets_echo listening on 127.0.0.1:{PORT}", flush=True)
        await stop


asyncio.run(main())
