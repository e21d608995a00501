// The chat room's pages while Redis is down (run by test_chat_browser.py
// after it stopped Redis under a chat started with --redis): two people,
// one over WebSocket, one without WebSocket (long polling), each types a
// message and must see a clear error in the page, with the text kept in
// the field to send again.
//
//   node chat_redis_down.js http://127.0.0.1:PORT
//
// Output (js/run.js): {name: {"transport", "error", "field"}}.
'use strict';
const { chromium } = require('playwright-core');
const { CHROMIUM, FLAGS } = require('./chromium');
const { run } = require('./run');

async function attempt(browser, url, name, noWebSocket) {
  const context = await browser.newContext();
  if (noWebSocket) await context.addInitScript(() => { window.WebSocket = undefined; });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  await page.goto(url + '/');
  await page.fill('#name', name);
  await Promise.all([page.waitForURL(url + '/'), page.click('button[type=submit]')]);
  await page.waitForSelector('#status[data-state="live"]');
  const text = `${name} speaking while Redis is down`;
  await page.fill('#body', text);
  await page.press('#body', 'Enter');
  await page.waitForSelector('#error:not([hidden])');
  await page.waitForFunction((t) => document.getElementById('body').value === t, text);
  const out = {
    transport: await page.evaluate(() => window.gustChat.transport()),
    error: await page.textContent('#error'),
    field: await page.inputValue('#body'),
    shown: await page.evaluate((t) => Array.from(document.querySelectorAll('#messages .body'))
      .some((b) => b.textContent === t), text),
  };
  await context.close();
  return out;
}

run(async () => {
  const url = process.argv[2];
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  try {
    return {
      dave: await attempt(browser, url, 'dave', false),
      erin: await attempt(browser, url, 'erin', true),
    };
  } finally {
    await browser.close();
  }
});
