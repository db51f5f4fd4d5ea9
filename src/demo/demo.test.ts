import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { initBackend } from '../engine/backend.js';
import { UserError } from '../errors.js';
import { findChromium, launchChromium, NO_CHROMIUM } from '../testing/chromium.js';
import { parsePort } from './command.js';
import type { RunningDemo } from './demo_server.js';
import { startDemo } from './demo_server.js';
import { cifarTestDir, NO_CIFAR } from '../testing/cifar.js';

const LENET = 'models/b-lenet-mnist';
const chromium = findChromium();
let demo: RunningDemo;

before(async () => {
  await initBackend('wasm');
  demo = await startDemo({ model: LENET, testImages: 300 });
});

after(() => demo.close());

test('the demo serves on the loopback address, with the page, the library, the export and the test images', async () => {
  assert.match(demo.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const info = (await (await fetch(new URL('info.json', demo.url))).json()) as { testCount: number; dataset: string };
  assert.equal(info.testCount, 300);
  assert.equal(info.dataset, 'mnist');
  assert.equal((await fetch(new URL('testset.bin', demo.url))).headers.get('content-length'), String(300 * 784));
  for (const path of ['', 'app.js', 'lib/branchynet.js', 'lib/ort-wasm-simd-threaded.wasm', 'model/manifest.json'])
    assert.equal((await fetch(new URL(path, demo.url))).status, 200, path);
  for (const path of ['model/../../package.json', 'lib/nothing.js', '%2e%2e/package.json'])
    assert.equal((await fetch(new URL(path, demo.url))).status, 404, path);
});

test('the demo also serves an export directory, and refuses a directory that is neither', async () => {
  const fromExport = await startDemo({ model: demo.exportDir, testImages: 20 });
  try {
    const info = (await (await fetch(new URL('info.json', fromExport.url))).json()) as { testCount: number };
    assert.equal(info.testCount, 20);
    assert.equal(fromExport.exportDir, demo.exportDir);
  } finally {
    await fromExport.close();
  }
  await assert.rejects(
    () => startDemo({ model: 'src' }),
    (e: unknown) => e instanceof UserError && e.option === 'location' && /neither model.json/.test(e.message),
  );
});

test('--port takes 0-65535 only', () => {
  assert.equal(parsePort('8080'), 8080);
  assert.equal(parsePort(undefined), 0);
  for (const bad of ['-1', '65536', 'http', '1.5']) assert.throws(() => parsePort(bad), /--port: expected an integer/);
});

test('branchynet demo prints its URL and stops on SIGINT', async () => {
  const child = spawn(process.execPath, ['dist/cli.js', 'demo', '--model', LENET], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(out);
      if (m) resolve(m[0]);
    });
    child.on('exit', (code) => reject(new Error(`exited ${code} before printing a URL`)));
    setTimeout(() => reject(new Error('no URL within 60 s')), 60_000).unref();
  });
  assert.equal((await fetch(url)).status, 200);
  const code = await new Promise<number | null>((resolve) => {
    child.on('exit', resolve);
    child.kill('SIGINT');
  });
  assert.equal(code, 0);
});

test('in headless Chromium: a drawn stroke gets an answer and its exit; a threshold slider changes the accuracy', async (t) => {
  if (!chromium) return t.skip(NO_CHROMIUM);
  const browser = await launchChromium(chromium);
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const problems: string[] = [];
    page.on('console', (m) => void (m.type() === 'error' && problems.push(m.text())));
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('response', (r) => void (r.status() >= 400 && problems.push(`${r.status()} ${r.url()}`)));
    await page.goto(demo.url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });

    // A "1": one vertical stroke down the middle of the pad.
    const pad = (await page.locator('#pad').boundingBox())!;
    await page.mouse.move(pad.x + pad.width * 0.5, pad.y + pad.height * 0.2);
    await page.mouse.down();
    for (let s = 1; s <= 10; s++) await page.mouse.move(pad.x + pad.width * 0.5, pad.y + pad.height * (0.2 + 0.06 * s));
    await page.mouse.up();
    await page.waitForFunction(() => document.querySelector('#label')?.textContent !== '–');
    assert.equal(await page.textContent('#label'), '1');
    assert.match((await page.textContent('#exit-line')) ?? '', /^from exit [12] of 2/);
    assert.ok((await page.locator('#trace tbody tr').count()) >= 1, 'an entropy row per exit that ran');
    assert.match((await page.textContent('#timing')) ?? '', /against [\d.]+ ms for the full network/);

    const before = await page.textContent('#accuracy');
    const mixBefore = await page.textContent('#mix-text');
    await page.locator('#t0').focus();
    await page.keyboard.press('Home'); // threshold 0: every image goes on to the last exit
    const after = await page.textContent('#accuracy');
    assert.notEqual(after, before);
    assert.match((await page.textContent('#mix-text')) ?? '', /exit 1 0\.0%, exit 2 100\.0%/);
    assert.notEqual(await page.textContent('#mix-text'), mixBefore);
    assert.match(
      (await page.textContent('#speedup')) ?? '',
      /0\.\d+x/,
      'all through exit 2 costs more than the baseline',
    );
    await page.keyboard.press('End');
    assert.match((await page.textContent('#mix-text')) ?? '', /exit 1 100\.0%, exit 2 0\.0%/);
    await page.locator('#t0').fill('0.1');
    await page.locator('#t0').dispatchEvent('input');

    await page.click('#bench');
    await page.waitForSelector('#bench-table:not([hidden])', { timeout: 120_000 });
    const rows = await page.locator('#bench-table tbody tr').allTextContents();
    assert.equal(rows.length, 2);
    for (const row of rows) assert.match(row, /[\d.]+ ms[\d.]+ ms[\d.]+x$/);

    const shot = join(mkdtempSync(join(tmpdir(), 'branchynet-demo-')), 'demo.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot: ${shot}`);
    assert.deepEqual(problems, [], 'no console errors');
  } finally {
    await browser.close();
  }
});

test('in headless Chromium, a CIFAR-10 model shows a strip of test images; picking one gets an answer', async (t) => {
  if (!chromium) return t.skip(NO_CHROMIUM);
  if (cifarTestDir() === undefined) return t.skip(NO_CIFAR);
  const cifar = await startDemo({ model: 'models/b-alexnet-cifar10', testImages: 100 });
  const browser = await launchChromium(chromium);
  try {
    assert.equal(cifar.testSet?.dataset, 'cifar10');
    const page = await browser.newPage();
    await page.goto(cifar.url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
    assert.equal(await page.locator('#strip button').count(), 16);
    assert.ok(await page.isHidden('#pad'));
    await page.locator('#strip button').nth(2).press('Enter');
    await page.waitForFunction(() => document.querySelector('#label')?.textContent !== '–');
    const names = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
    assert.ok(names.includes((await page.textContent('#label')) ?? ''));
    assert.match((await page.textContent('#exit-line')) ?? '', /^from exit [123] of 3.*; true label (\w+)$/);
    assert.equal(await page.locator('#sliders input').count(), 2);
  } finally {
    await browser.close();
    await cifar.close();
  }
});
