// Headless Chromium against examples/ws_echo's page, as a user would use it.
//
//   node ws_echo_page.js http://127.0.0.1:PORT/ LINE
//
// 1. Opens the page and waits for the WebSocket its script opens.
// 2. Types LINE into the page's text field and presses Enter (then clicks
//    its button if Enter did not send), and waits until LINE is shown on
//    the page and the page's socket has received it.
// 3. In the page, opens a WebSocket of its own to ws://HOST/ws and echoes
//    text, binary (ArrayBuffer) and a 1 MiB text message through it, each
//    compared in the page with what was sent.
// Output (one JSON line, see js/run.js): {"page_socket": {"url", "sent",
// "received"} (text frames of the page's own socket), "line_shown",
// "page_text", "how_sent", "own": {"extensions", "protocol", "text_ok",
// "binary_ok", "binary_length", "large_ok", "close_code", "close_clean"}}.
'use strict';
const { launch } = require('./chromium');
const { run } = require('./run');

run(async () => {
  const [url, line] = [process.argv[2], process.argv[3]];
  const { page, close } = await launch();
  try {
    const frames = { url: null, sent: [], received: [] };
    const pageSocket = new Promise((resolve) => {
      page.on('websocket', (ws) => {
        if (frames.url) return;
        frames.url = ws.url();
        ws.on('framesent', (f) => frames.sent.push(String(f.payload)));
        ws.on('framereceived', (f) => frames.received.push(String(f.payload)));
        resolve(ws);
      });
    });
    await page.goto(url, { waitUntil: 'load' });
    await Promise.race([pageSocket, page.waitForTimeout(10000)]);
    if (!frames.url) throw new Error('the page opened no WebSocket within 10 s');

    const field = page.locator('input[type="text"], input:not([type]), textarea').first();
    await field.waitFor({ state: 'visible' });
    // Let the socket open before typing (the page may not queue the line).
    await page.waitForTimeout(300);
    await field.fill(line);
    await field.press('Enter');
    let howSent = 'Enter';
    const echoed = () => frames.received.some((p) => p.includes(line));
    const deadline = Date.now() + 3000;
    while (!echoed() && Date.now() < deadline) await page.waitForTimeout(50);
    if (!echoed()) {
      const button = page.locator('button, input[type="submit"], input[type="button"]').first();
      if (await button.count()) {
        if (!(await field.inputValue())) await field.fill(line);
        await button.click();
        howSent = 'button';
      }
    }
    const end = Date.now() + 7000;
    let shown = false;
    while (Date.now() < end) {
      shown = (await page.locator('body').innerText()).includes(line);
      if (shown && echoed()) break;
      await page.waitForTimeout(50);
    }

    const own = await page.evaluate(async () => {
      const ws = new WebSocket(`ws://${location.host}/ws`);
      ws.binaryType = 'arraybuffer';
      const queue = [], waiters = [];
      ws.onmessage = (e) => (waiters.length ? waiters.shift()(e.data) : queue.push(e.data));
      const next = () => new Promise((resolve, reject) => {
        if (queue.length) return resolve(queue.shift());
        const t = setTimeout(() => reject(new Error('no echo within 10 s')), 10000);
        waiters.push((d) => { clearTimeout(t); resolve(d); });
      });
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error('WebSocket to /ws failed'));
      });
      const out = { extensions: ws.extensions, protocol: ws.protocol };
      ws.send('text from the page ✓');
      out.text_ok = (await next()) === 'text from the page ✓';
      const bin = new Uint8Array(256 * 1000);
      for (let i = 0; i < bin.length; i++) bin[i] = (i * 7 + (i >> 8)) & 0xff;
      ws.send(bin.buffer);
      const back = await next();
      out.binary_length = back instanceof ArrayBuffer ? back.byteLength : -1;
      out.binary_ok = back instanceof ArrayBuffer && back.byteLength === bin.length &&
        new Uint8Array(back).every((b, i) => b === bin[i]);
      const large = 'a compressible line of text ✓\n'.repeat(36000);
      ws.send(large);
      out.large_ok = (await next()) === large;
      const closed = new Promise((resolve) => { ws.onclose = resolve; });
      ws.close(1000, 'done');
      const ev = await closed;
      out.close_code = ev.code;
      out.close_clean = ev.wasClean;
      return out;
    });
    return { page_socket: frames, line_shown: shown, how_sent: howSent,
             page_text: (await page.locator('body').innerText()).slice(0, 2000), own };
  } finally {
    await close();
  }
});
