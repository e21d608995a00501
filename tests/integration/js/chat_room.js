// The chat room (examples/chat) in headless Chromium, three people at once.
//
//   node chat_room.js http://127.0.0.1:PORT SCREENSHOT.png IMAGE.png
//
// alice and bob chat over WebSocket; carol's browser has no WebSocket
// (window.WebSocket = undefined before any script runs) and a narrow
// window, so her page falls back to long polling. Each signs in through
// the form, they write to each other, alice sends a message that would be
// script if it were not escaped and uploads an image (upload bandwidth
// throttled so that the progress bar has something to show; IMAGE.png,
// 160 px wide, with filler appended after its end), which the
// others then see. Ends with a screenshot of alice's room.
// Output (js/run.js): {"status": {name: text}, "seen": {...}, "xss": {...},
// "upload": {...}, "carol_sockets", "narrow": {...}, "screenshot"}.
'use strict';
const { chromium } = require('playwright-core');
const { CHROMIUM, FLAGS } = require('./chromium');
const { run } = require('./run');

const fs = require('fs');

async function person(browser, url, name, opts = {}) {
  const context = await browser.newContext({ viewport: opts.viewport || { width: 1100, height: 800 } });
  if (opts.noWebSocket) {
    await context.addInitScript(() => { window.WebSocket = undefined; });
  }
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url + '/');
  if (!page.url().includes('/login')) throw new Error(`${name}: not sent to the sign-in form: ${page.url()}`);
  await page.fill('#name', name);
  await Promise.all([page.waitForURL(url + '/'), page.click('button[type=submit]')]);
  await page.waitForSelector('#status[data-state="live"]');
  return { context, page, sockets, errors, name };
}

async function say(p, text) {
  await p.page.fill('#body', text);
  await p.page.press('#body', 'Enter');
}

// Waits until p's page shows a message whose body text is exactly text.
async function sees(p, text) {
  await p.page.waitForFunction((t) => Array.from(document.querySelectorAll('#messages .body'))
    .some((b) => b.textContent === t), text);
  return true;
}

run(async () => {
  const [url, shot, image] = [process.argv[2], process.argv[3], process.argv[4]];
  const PNG = fs.readFileSync(image);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  try {
    const alice = await person(browser, url, 'alice');
    const bob = await person(browser, url, 'bob');
    const carol = await person(browser, url, 'carol', { noWebSocket: true, viewport: { width: 360, height: 700 } });
    const all = [alice, bob, carol];
    const status = {};
    for (const p of all) {
      status[p.name] = await p.page.textContent('#status');
      status[p.name + '_transport'] = await p.page.evaluate(() => window.gustChat.transport());
    }

    const seen = {};
    const lines = [[alice, 'hello from alice'], [bob, 'hi alice, bob here'],
                   [carol, 'carol, on long polling']];
    for (const [who, text] of lines) {
      await say(who, text);
      for (const p of all) seen[`${p.name}: ${text}`] = await sees(p, text);
    }

    const evil = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">';
    await say(alice, evil);
    const xss = {};
    for (const p of all) {
      await sees(p, evil);
      xss[p.name] = await p.page.evaluate(() => window.__xss === undefined &&
        document.querySelectorAll('#messages img[src="x"], #messages script').length === 0);
    }

    // The upload: 3 MB at 1.5 MB/s, progress sampled as the page shows it.
    const cdp = await alice.context.newCDPSession(alice.page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 1.5 * 1024 * 1024,
    });
    await alice.page.evaluate(() => {
      window.__progress = [];
      window.__sampler = setInterval(() => {
        const box = document.getElementById('upload');
        if (!box.hidden) window.__progress.push(document.getElementById('upload-progress').value);
      }, 25);
    });
    const big = Buffer.concat([PNG, Buffer.alloc(3 * 1024 * 1024, 7)]);
    await alice.page.setInputFiles('#file', { name: 'sunset.png', mimeType: 'image/png', buffer: big });
    const imgSel = '#messages a.attachment.image img[alt="sunset.png"]';
    const upload = {};
    for (const p of all) {
      await p.page.waitForSelector(imgSel);
      upload[p.name + '_loaded'] = await p.page.waitForFunction((s) => {
        const img = document.querySelector(s);
        return img && img.complete && img.naturalWidth === 160;
      }, imgSel).then(() => true);
    }
    upload.progress = await alice.page.evaluate(() => { clearInterval(window.__sampler); return window.__progress; });
    upload.bar_hidden_after = await alice.page.evaluate(() => document.getElementById('upload').hidden);
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1,
    });

    // Too large for the room: refused in the page, with a message.
    await alice.page.setInputFiles('#file', { name: 'huge.zip', mimeType: 'application/zip',
      buffer: Buffer.alloc(Number(await alice.page.getAttribute('#room', 'data-max-upload')) + 1, 1) });
    await alice.page.waitForSelector('#error:not([hidden])');
    upload.too_large_error = await alice.page.textContent('#error');

    const narrow = await carol.page.evaluate(() => ({
      scroll_width: document.documentElement.scrollWidth,
      client_width: document.documentElement.clientWidth,
      composer_visible: document.getElementById('composer').getBoundingClientRect().bottom <= window.innerHeight,
    }));

    await alice.page.evaluate(() => { window.scrollTo(0, 0); });
    await alice.page.screenshot({ path: shot, fullPage: false });
    return {
      status, seen, xss, upload, narrow,
      carol_sockets: carol.sockets, alice_sockets: alice.sockets,
      page_errors: all.flatMap((p) => p.errors),
      screenshot: shot,
    };
  } finally {
    await browser.close();
  }
});
