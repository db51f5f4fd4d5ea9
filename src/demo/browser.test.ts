import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { EarlyExitModel } from '../api/early_exit_model.js';
import { loadMnist } from '../data/mnist.js';
import { initBackend } from '../engine/backend.js';
import { loadModel } from '../model/io.js';
import { exportModel } from '../onnx/export.js';
import { findChromium, launchChromium, NO_CHROMIUM } from '../testing/chromium.js';
import { browserLibraryFiles } from './assets.js';
import { serve } from './server.js';

const LENET = 'models/b-lenet-mnist';
const COUNT = 500;
const chromium = findChromium();
const scratch = mkdtempSync(join(tmpdir(), 'branchynet-browser-'));
const exported = join(scratch, 'export');
let digits: Uint8Array;

before(async () => {
  await initBackend('wasm');
  const { test: mnist } = loadMnist();
  digits = Uint8Array.from(mnist.images.subarray(0, COUNT * 784), (v) => Math.round(v * 255));
  const model = loadModel(LENET);
  try {
    exportModel(model, exported);
  } finally {
    model.net.dispose();
    model.baseline?.dispose();
  }
});

after(() => rmSync(scratch, { recursive: true, force: true }));

// What an app writes: onnxruntime-web and the browser build from one directory, the model by URL.
const PAGE = `<!doctype html><meta charset="utf-8"><title>parity</title><link rel="icon" href="data:,">
<script type="module">
import * as ort from '/lib/ort.wasm.min.mjs';
import { EarlyExitModel } from '/lib/branchynet.js';
window.classifyDigits = async (count) => {
  const model = await EarlyExitModel.load('/model/', { ort });
  const bytes = new Uint8Array(await (await fetch('/digits.bin')).arrayBuffer());
  const one = [];
  for (let i = 0; i < count; i++) {
    const a = await model.classify(bytes.subarray(i * 784, (i + 1) * 784));
    one.push(a.label + '@' + a.exit);
  }
  const batched = (await model.classifyBatch(bytes, { batchSize: 32 })).map((a) => a.label + '@' + a.exit);
  const runtime = model.runtime;
  await model.dispose();
  return { one, batched, runtime };
};
window.pageReady = true;
</script>`;

test(`in headless Chromium, the browser build on onnxruntime-web gives Node's labels and exits on ${COUNT} MNIST digits`, async (t) => {
  if (!chromium) return t.skip(NO_CHROMIUM);
  const node = await EarlyExitModel.load(exported);
  const want = (await node.classifyBatch(digits, { batchSize: 64 })).map((a) => `${a.label}@${a.exit}`);
  await node.dispose();
  assert.ok(want.some((a) => a.endsWith('@1')) && want.some((a) => a.endsWith('@2')), 'both exits answer some digits');

  const lib = browserLibraryFiles();
  const server = await serve((path) => {
    if (path === '/') return { body: PAGE, type: 'text/html; charset=utf-8' };
    if (path === '/digits.bin') return { body: digits, type: 'application/octet-stream' };
    if (path.startsWith('/lib/') && lib.has(path.slice(5))) return { file: lib.get(path.slice(5))! };
    if (path.startsWith('/model/') && !path.includes('..')) return { file: join(exported, path.slice(7)) };
    return null;
  });
  const browser = await launchChromium(chromium);
  try {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => void (m.type() === 'error' && problems.push(m.text())));
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('response', (r) => void (r.status() >= 400 && problems.push(`${r.status()} ${r.url()}`)));
    await page.goto(server.url);
    await page.waitForFunction(() => (window as { pageReady?: boolean }).pageReady === true, null, { timeout: 30_000 });
    const got = (await page.evaluate(
      (count) => (window as unknown as { classifyDigits(n: number): Promise<unknown> }).classifyDigits(count),
      COUNT,
    )) as { one: string[]; batched: string[]; runtime: string };
    assert.equal(got.runtime, 'onnx');
    assert.deepEqual(got.one, want, 'batch 1');
    assert.deepEqual(got.batched, want, 'batched');
    assert.deepEqual(problems, [], 'no console errors');
  } finally {
    await browser.close();
    await server.close();
  }
});
