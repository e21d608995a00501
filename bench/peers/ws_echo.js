// Node `ws` echo server for bench/ws_compare.sh (the npm package, from
// build/npm/node_modules through NODE_PATH).
//
//   node ws_echo.js --port=N [--broadcast]
//
// Echoes every message on /ws with its type. With --broadcast, a text
// message that starts with "broadcast:" is sent instead to every open
// connection (the sender included), the way ws's README broadcasts.
// permessage-deflate is accepted when offered (ws's defaults), so that the
// idle-memory figure with compression is ws's own.
'use strict';
const WebSocket = require('ws');

const arg = (name) => process.argv.find((a) => a === name || a.startsWith(name + '='));
const port = Number((arg('--port') || '--port=8888').split('=')[1]);
const broadcast = !!arg('--broadcast');

const wss = new WebSocket.WebSocketServer({
  host: '127.0.0.1', port, path: '/ws', perMessageDeflate: true,
  clientTracking: true, backlog: 4096,
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    if (broadcast && !isBinary && data.length >= 10 &&
        data.toString('latin1', 0, 10) === 'broadcast:') {
      for (const client of wss.clients)
        if (client.readyState === WebSocket.OPEN) client.send(data, { binary: false });
      return;
    }
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', () => {});
});
wss.on('listening', () => console.log(`ws_echo.js listening on 127.0.0.1:${port}`));
process.on('SIGTERM', () => process.exit(0));
