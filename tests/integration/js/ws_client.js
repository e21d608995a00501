// A Node `ws` client that plays a plan against a WebSocket server and
// reports what it saw, for test_websocket_node.py (and any later test that
// needs a real third-party client).
//
//   node ws_client.js URL PLAN_JSON
//
// PLAN_JSON: {"options": {...}, "steps": [...]}
//   options.deflate   false: offer no extension; true: ws's default
//                     permessage-deflate offer; an object: ws's
//                     perMessageDeflate options (serverNoContextTakeover,
//                     clientNoContextTakeover, serverMaxWindowBits,
//                     clientMaxWindowBits, threshold)
//   options.protocols subprotocols to offer
//   options.headers   extra request headers
// steps, each one of:
//   {"text": S}                       send S as one text message
//   {"text_repeat": S, "count": N}    send S repeated N times as one message
//   {"random": N, "seed": K}          send N pseudo-random bytes as binary
//   {"fragments": [S...], "binary": B} one message in len(S) frames (FIN on
//                                     the last only); binary sends the UTF-8
//                                     bytes with the binary opcode;
//                                     "ping_between": P sends a ping with
//                                     payload P after the first fragment
//   {"split_text": S, "count": N, "pieces": K} S repeated N times as one
//                                     text message in K frames of equal byte
//                                     length, cut wherever that falls (inside
//                                     a UTF-8 sequence too)
//   {"ping": S}                       send a ping with payload S
//   {"wait_messages": N}              wait until N messages have arrived
//   {"wait_pongs": N}                 wait until N pongs have arrived
//   {"close": [CODE, REASON]}         start the close handshake, wait for it
//   {"wait_close": true}              wait for the server to close
// Output (one JSON line): {"extensions", "protocol", "response_headers",
//   "messages": [{"binary", "length", "sha256", "text"?}], "pongs": [S],
//   "close": {"code", "reason"} or null, "bytes_read", "bytes_written"
//   (the TCP bytes as of the last message received),
//   "errors": [S]}. "text" is included for messages up to 256 bytes.
'use strict';
const crypto = require('crypto');
const WebSocket = require('ws');
const { run } = require('./run');

const WAIT_MS = Number(process.env.GUST_WS_WAIT_MS || 20000);

function randomBytes(n, seed) {
  // Deterministic (xorshift32), so the Python side can recompute it.
  const buf = Buffer.alloc(n);
  let x = (seed >>> 0) || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    buf[i] = x & 0xff;
  }
  return buf;
}

function sha256(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

run(async () => {
  const url = process.argv[2];
  const plan = JSON.parse(process.argv[3] || '{}');
  const opt = plan.options || {};
  const report = {
    extensions: null, protocol: null, response_headers: null,
    messages: [], pongs: [], close: null, bytes_read: 0, bytes_written: 0,
    errors: [],
  };
  const ws = new WebSocket(url, opt.protocols || [], {
    perMessageDeflate: opt.deflate === undefined ? false : opt.deflate,
    headers: opt.headers || {},
    handshakeTimeout: WAIT_MS,
    maxPayload: 64 * 1024 * 1024,
  });
  ws.on('upgrade', (res) => { report.response_headers = res.headers; });
  let wake = () => {};
  const changed = () => { const w = wake; wake = () => {}; w(); };
  ws.on('open', changed);
  ws.on('message', (data, isBinary) => {
    const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data);
    const m = { binary: isBinary, length: buf.length, sha256: sha256(buf) };
    if (buf.length <= 256) m.text = buf.toString('utf8');
    report.messages.push(m);
    if (ws._socket) {
      report.bytes_read = ws._socket.bytesRead;
      report.bytes_written = ws._socket.bytesWritten;
    }
    changed();
  });
  ws.on('pong', (data) => { report.pongs.push(data.toString('utf8')); changed(); });
  ws.on('close', (code, reason) => {
    report.close = { code, reason: reason.toString('utf8') };
    changed();
  });
  ws.on('error', (err) => { report.errors.push(String(err.message || err)); changed(); });

  // Resolves when cond() holds; rejects after WAIT_MS or if the socket
  // closed first (unless closing is what we wait for).
  async function until(cond, what, closeOk = false) {
    const deadline = Date.now() + WAIT_MS;
    while (!cond()) {
      if (report.close && !closeOk)
        throw new Error(`closed (${JSON.stringify(report.close)}) while waiting for ${what}; ` +
                        `errors: ${report.errors.join('; ')}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`timed out waiting for ${what}; got ${report.messages.length} messages`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        wake = () => { clearTimeout(t); resolve(); };
      });
    }
  }
  const send = (data, options) => new Promise((resolve, reject) =>
    ws.send(data, options, (err) => (err ? reject(err) : resolve())));

  await until(() => ws.readyState === WebSocket.OPEN || report.errors.length, 'open', true);
  if (ws.readyState !== WebSocket.OPEN)
    throw new Error(`handshake failed: ${report.errors.join('; ')}`);
  report.extensions = ws.extensions;
  report.protocol = ws.protocol;

  for (const step of plan.steps || []) {
    if ('text' in step) {
      await send(step.text, { binary: false });
    } else if ('text_repeat' in step) {
      await send(step.text_repeat.repeat(step.count), { binary: false });
    } else if ('random' in step) {
      await send(randomBytes(step.random, step.seed || 1), { binary: true });
    } else if ('fragments' in step) {
      const parts = step.fragments;
      for (let i = 0; i < parts.length; i++) {
        await send(Buffer.from(parts[i], 'utf8'),
                   { binary: !!step.binary, fin: i === parts.length - 1 });
        // A control frame between two fragments (RFC 6455 5.4 allows it).
        if (i === 0 && 'ping_between' in step)
          await new Promise((resolve, reject) =>
            ws.ping(step.ping_between, undefined, (err) => (err ? reject(err) : resolve())));
      }
    } else if ('split_text' in step) {
      const all = Buffer.from(step.split_text.repeat(step.count), 'utf8');
      const k = step.pieces, size = Math.ceil(all.length / k);
      for (let i = 0; i < k; i++)
        await send(all.subarray(i * size, Math.min(all.length, (i + 1) * size)),
                   { binary: false, fin: i === k - 1 });
    } else if ('ping' in step) {
      await new Promise((resolve, reject) =>
        ws.ping(step.ping, undefined, (err) => (err ? reject(err) : resolve())));
    } else if ('wait_messages' in step) {
      await until(() => report.messages.length >= step.wait_messages,
                  `${step.wait_messages} messages`);
    } else if ('wait_pongs' in step) {
      await until(() => report.pongs.length >= step.wait_pongs, `${step.wait_pongs} pongs`);
    } else if ('close' in step) {
      ws.close(step.close[0], step.close[1]);
      await until(() => report.close, 'the close handshake', true);
    } else if ('wait_close' in step) {
      await until(() => report.close, 'the server to close', true);
    } else {
      throw new Error(`unknown step ${JSON.stringify(step)}`);
    }
  }
  if (!report.close) {
    ws.close(1000);
    await until(() => report.close, 'the final close', true);
  }
  return report;
});
