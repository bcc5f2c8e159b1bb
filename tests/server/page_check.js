// Drives wanwu serve's page in headless Chromium (Debian's /usr/bin/chromium)
// with playwright-core: upload an image, press 识别, read the top-3 list.
// Run by test_server_browser.py, which passes everything through the environment:
//   WANWU_URL, WANWU_IMAGE, WANWU_EXPECTED (JSON: the CLI's top-3), WANWU_ARTIFACTS
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const url = process.env.WANWU_URL;
const image = process.env.WANWU_IMAGE;
const expected = JSON.parse(process.env.WANWU_EXPECTED);
const artifacts = process.env.WANWU_ARTIFACTS;

let failures = 0;
function check(ok, what, detail) {
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) {
    failures++;
    if (detail !== undefined) console.log('       ' + JSON.stringify(detail));
  }
}

async function topList(page) {
  return page.$$eval('#results li', (items) =>
    items.map((li) => ({
      label: li.querySelector('.label').textContent,
      pct: li.querySelector('.pct').textContent,
      bar: li.querySelector('.fill').style.width,
    })));
}

async function main() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wanwu-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    locale: 'zh-CN',
    viewport: { width: 390, height: 844 }, // a phone
  });
  const origin = new URL(url).origin;
  const offHost = [];
  const pageErrors = [];
  try {
    // The page must need nothing but this server.
    await context.route('**/*', (route) => {
      const u = route.request().url();
      if (u.startsWith(origin) || u.startsWith('blob:') || u.startsWith('data:')) return route.continue();
      offHost.push(u);
      return route.abort();
    });
    const page = context.pages()[0] || (await context.newPage());
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });

    await page.goto(url, { waitUntil: 'load' });
    await page.waitForSelector('#model option', { state: 'attached', timeout: 30000 });
    check(await page.getAttribute('html', 'lang') === 'zh-CN', 'a zh-CN browser gets the Chinese page');
    const models = await page.$$eval('#model option', (o) => o.map((x) => x.value));
    check(models.length >= 1 && models[0] === expected.model, 'model selector lists the default model', models);

    await page.setInputFiles('#file', image);
    await page.waitForSelector('#preview:not([hidden])');
    const previewOk = await page.$eval('#preview', (img) => img.complete && img.naturalWidth > 0);
    check(previewOk, 'the chosen image is previewed');

    await page.getByRole('button', { name: '识别' }).click();
    await page.waitForSelector('#result:not([hidden])', { timeout: 60000 });
    const top = await topList(page);
    check(top.length === 3, 'three classes are listed', top);
    check(top.length > 0 && top[0].label === expected.top[0].label,
      `the top class is ${expected.top[0].label}`, top);
    const wantPct = expected.top.map((e) => (e.prob * 100).toFixed(1) + '%');
    check(JSON.stringify(top.map((t) => t.pct)) === JSON.stringify(wantPct),
      `percentages ${wantPct.join(', ')}`, top);
    check(top.length > 0 && /^\d+(\.\d+)?%$/.test(top[0].bar), 'confidence bars are drawn', top);
    const timings = await page.textContent('#timings');
    check(/解码 [\d.]+ ms · 预处理 [\d.]+ ms · 推理 [\d.]+ ms/.test(timings), 'decode / preprocess / inference times', timings);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    check(width <= 390, 'fits a 390px-wide phone screen without sideways scrolling', width);
    await page.screenshot({ path: path.join(artifacts, 'serve-page-phone-zh.png'), fullPage: true });

    // English.
    await page.click('#lang');
    check(await page.textContent('#classify') === 'Classify', 'switching to English relabels the button');
    check(/decode [\d.]+ ms/.test(await page.textContent('#timings')), 'and the times');

    // Errors in plain words: a damaged image is refused by the server (400).
    await page.setInputFiles('#file', { name: 'broken.jpg', mimeType: 'image/jpeg',
      buffer: Buffer.from('\xff\xd8\xff\xe0 this is not really a JPEG', 'latin1') });
    await page.getByRole('button', { name: 'Classify' }).click();
    await page.waitForSelector('#error:not([hidden])', { timeout: 30000 });
    const error = await page.textContent('#error');
    check(/not an image wanwu can read|damaged/.test(error), 'a damaged image gives a plain-words error', error);
    await page.setViewportSize({ width: 1100, height: 800 });
    await page.screenshot({ path: path.join(artifacts, 'serve-page-desktop-en-error.png'), fullPage: true });
    await page.click('#lang');
    check(/这不是可识别的图片/.test(await page.textContent('#error')), 'the error is shown in Chinese too');

    check(offHost.length === 0, 'no request leaves the server (air-gapped)', offHost);
    check(pageErrors.filter((e) => !/status of 400/.test(e)).length === 0, 'no script errors', pageErrors);
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().then(() => {
  console.log(failures ? `page_check: ${failures} FAILED` : 'page_check: all passed');
  process.exit(failures ? 1 : 0);
}, (e) => {
  console.log('page_check: error: ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
