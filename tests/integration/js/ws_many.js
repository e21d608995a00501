// Many Node `ws` clients at once against an echo server: CLIENTS sockets,
// each sends MESSAGES distinct text messages without waiting and checks
// that they come back in order.
//
//   node ws_many.js URL CLIENTS MESSAGES
//
// Output: {"clients": N opened, "echoed": messages echoed in order,
// "errors": [...]}.
'use strict';
const WebSocket = require('ws');
const { run } = require('./run');

run(async () => {
  const [url, clients, count] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
  const errors = [];
  let opened = 0, echoed = 0;
  await Promise.all(Array.from({ length: clients }, (_, c) => new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: c % 2 === 0 });
    let next = 0;
    ws.on('open', () => {
      opened++;
      for (let i = 0; i < count; i++) ws.send(`client ${c} message ${i}`);
    });
    ws.on('message', (data) => {
      const want = `client ${c} message ${next}`;
      if (data.toString() !== want) errors.push(`client ${c}: got ${data} for ${want}`);
      else echoed++;
      if (++next === count) ws.close(1000);
    });
    ws.on('error', (err) => errors.push(`client ${c}: ${err.message}`));
    ws.on('close', () => resolve());
  })));
  return { clients: opened, echoed, errors };
});
