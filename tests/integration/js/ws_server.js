// A Node `ws` server for tests of Gust's WebSocket client (and a stand-in
// peer wherever a test needs a real third-party server).
//
//   node ws_server.js PORT [DEFLATE]
//
// Listens on 127.0.0.1:PORT, path any. DEFLATE: "on" (accept
// permessage-deflate offers, ws's defaults, threshold 0 so that every
// message is compressed) or "off" (default: never negotiate it). Echoes
// every message with its type; a text message "close:CODE:REASON" makes
// the server close with that code and reason instead. Prints one JSON line
// per event on stdout: {"event": "listening", "port"}, {"event": "open",
// "path", "extensions", "protocol", "headers"}, {"event": "message",
// "binary", "length", "text" (up to 256 bytes)}, {"event": "ping", "data"},
// {"event": "close", "code", "reason"}, {"event": "error", "message"}.
// Stops on SIGTERM, or by itself after GUST_WS_SERVER_LIFETIME_MS (default
// 120 s) so that a forgotten one cannot linger.
'use strict';
const WebSocket = require('ws');

const port = Number(process.argv[2]);
const deflate = process.argv[3] === 'on' ? { threshold: 0 } : false;
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const wss = new WebSocket.WebSocketServer({
  host: '127.0.0.1', port, perMessageDeflate: deflate,
  maxPayload: 64 * 1024 * 1024,
  handleProtocols: (protocols) => (protocols.size ? protocols.values().next().value : false),
});
wss.on('listening', () => out({ event: 'listening', port: wss.address().port }));
wss.on('connection', (ws, req) => {
  out({ event: 'open', path: req.url, extensions: ws.extensions,
        protocol: ws.protocol, headers: req.headers });
  ws.on('message', (data, isBinary) => {
    const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data);
    const m = { event: 'message', binary: isBinary, length: buf.length };
    if (buf.length <= 256) m.text = buf.toString('utf8');
    out(m);
    const close = !isBinary && /^close:(\d+):(.*)$/s.exec(m.text || '');
    if (close) ws.close(Number(close[1]), close[2]);
    else ws.send(buf, { binary: isBinary });
  });
  ws.on('ping', (data) => out({ event: 'ping', data: data.toString('utf8') }));
  ws.on('close', (code, reason) => out({ event: 'close', code, reason: reason.toString('utf8') }));
  ws.on('error', (err) => out({ event: 'error', message: String(err.message || err) }));
});
const stop = () => { wss.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setTimeout(stop, Number(process.env.GUST_WS_SERVER_LIFETIME_MS || 120000)).unref();
