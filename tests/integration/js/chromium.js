// Headless Debian Chromium driven by playwright-core, for the browser tests
// (test_websocket_browser.py, and the chat demo's later). Never a browser of
// playwright's own: executablePath is /usr/bin/chromium (Debian's package).
//
//   const { launch } = require('./chromium');
//   const { browser, page, close } = await launch();
//   ... await close();   // closes the browser and removes its profile
//
// launch({ ignoreHTTPSErrors: true }) accepts a test server's certificate
// without a CA (the HTTP/2 test, js/h2_page.js).
//
// Every start gets a new empty profile (--user-data-dir in a fresh temporary
// directory). The background-networking flags matter here: without them
// Chromium keeps trying to reach Google's hosts, and this machine's closed
// network refuses those connections by the dozen.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.GUST_CHROMIUM || '/usr/bin/chromium';
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

async function launch(options = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'gust-chromium-'));
  // launchPersistentContext is how playwright takes a --user-data-dir.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    timeout: options.timeout || 30000,
    ignoreHTTPSErrors: Boolean(options.ignoreHTTPSErrors),
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(options.timeout || 10000);
  let closed = false;
  async function close() {
    if (closed) return;
    closed = true;
    try { await context.close(); } finally {
      fs.rmSync(profile, { recursive: true, force: true });
    }
  }
  return { context, page, close };
}

module.exports = { launch, CHROMIUM, FLAGS };
