// Headless Chromium loads a page and its assets over HTTPS and reports
// which protocol carried each (test_http2_browser.py).
//
//   node h2_page.js https://localhost:PORT/index.html
//
// The test server's certificate is accepted without a CA
// (ignoreHTTPSErrors). What the page's own script and the browser say:
//   - performance.getEntriesByType('navigation' / 'resource'): the URL and
//     nextHopProtocol of the page and of every asset it loaded;
//   - the Chrome DevTools Protocol's Network.responseReceived for each
//     response: protocol, status and connectionId (which connection it
//     came on: HTTP/2 multiplexes them all on one);
//   - what the page shows: the stylesheet applied, the script ran, the
//     image decoded, a fetch() of a large file arrived whole.
// Output (one JSON line, see js/run.js): {"navigation": {name, protocol},
// "resources": [{name, protocol, initiator}], "cdp": [{url, protocol,
// status, connectionId}], "page": {...}, "console_errors": [...]}.
'use strict';
const { launch } = require('./chromium');
const { run } = require('./run');

run(async () => {
  const url = process.argv[2];
  const { context, page, close } = await launch({ ignoreHTTPSErrors: true });
  try {
    const errors = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));

    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    const responses = [];
    cdp.on('Network.responseReceived', (e) => {
      responses.push({ url: e.response.url, protocol: e.response.protocol,
                       status: e.response.status,
                       connectionId: e.response.connectionId });
    });

    await page.goto(url, { waitUntil: 'load' });
    // The page's script sets data-done once its fetch() has finished.
    await page.waitForSelector('body[data-done]', { timeout: 20000 });

    const report = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const res = performance.getEntriesByType('resource').map((r) => ({
        name: r.name, protocol: r.nextHopProtocol, initiator: r.initiatorType,
        size: r.decodedBodySize,
      }));
      const img = document.querySelector('img');
      return {
        navigation: { name: nav.name, protocol: nav.nextHopProtocol },
        resources: res,
        page: {
          css_color: getComputedStyle(document.querySelector('h1')).color,
          script_ran: document.body.dataset.script === 'ran',
          image_width: img.naturalWidth, image_height: img.naturalHeight,
          fetched: document.body.dataset.fetched,
          fetch_error: document.body.dataset.error || null,
        },
      };
    });
    report.cdp = responses;
    report.console_errors = errors;
    return report;
  } finally {
    await close();
  }
});
