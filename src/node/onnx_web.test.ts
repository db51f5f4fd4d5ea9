import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Answer } from '../api/early_exit_model.js';
import { EarlyExitModel } from '../api/early_exit_model.js';
import { loadMnist } from '../data/mnist.js';
import { initBackend } from '../engine/backend.js';
import { loadModel } from '../model/io.js';
import { exportModel } from '../onnx/export.js';
import { chooseRuntime, loadAnyOnnxRuntime, loadOnnxRuntime, NODE_ORT_ENV } from './onnx.js';

const LENET = 'models/b-lenet-mnist';
const COUNT = 300;
let pixels: Uint8Array;
let nativeMissing = '';
const scratch = mkdtempSync(join(tmpdir(), 'branchynet-ort-web-'));

before(async () => {
  await initBackend('wasm');
  const { test: digits } = loadMnist();
  pixels = Uint8Array.from(digits.images.subarray(0, COUNT * 784), (v) => Math.round(v * 255));
  const loaded = await loadOnnxRuntime();
  if ('error' in loaded) nativeMissing = `onnxruntime-node did not load: ${loaded.error}`;
});

after(() => {
  delete process.env[NODE_ORT_ENV];
  rmSync(scratch, { recursive: true, force: true });
});

/** Runs `body` as a project without onnxruntime-node would. */
async function withoutNativeOrt<T>(body: () => Promise<T>): Promise<T> {
  process.env[NODE_ORT_ENV] = '0';
  try {
    return await body();
  } finally {
    delete process.env[NODE_ORT_ENV];
  }
}

async function answers(location: string, batchSize: number, notices: string[] = []): Promise<Answer[]> {
  const model = await EarlyExitModel.load(location, { notice: (line) => notices.push(line) });
  try {
    assert.equal(model.runtime, 'onnx');
    return await model.classifyBatch(pixels, { batchSize });
  } finally {
    await model.dispose();
  }
}

const labelsAndExits = (list: Answer[]) => list.map((a) => `${a.label}@${a.exit}`);

test(`${NODE_ORT_ENV}=0: 'auto' runs onnxruntime-web and says why`, async () => {
  await withoutNativeOrt(async () => {
    const loaded = await loadAnyOnnxRuntime();
    assert.ok('ort' in loaded, 'error' in loaded ? loaded.error : '');
    assert.equal(loaded.name, 'onnxruntime-web');
    assert.match(loaded.fallbackReason ?? '', new RegExp(`${NODE_ORT_ENV}=0`));
    const notices: string[] = [];
    assert.equal(await chooseRuntime(undefined, (line) => notices.push(line)), 'onnx');
    assert.equal(await chooseRuntime('onnx'), 'onnx');
    assert.equal(notices.length, 1);
    assert.match(notices[0], /onnxruntime-node is not available \(turned off by .*\); using onnxruntime-web/);
  });
  // Turned back on, onnxruntime-node runs again where it is installed.
  const loaded = await loadAnyOnnxRuntime();
  assert.ok('ort' in loaded);
  assert.equal(loaded.name, nativeMissing ? 'onnxruntime-web' : 'onnxruntime-node');
});

test(`onnxruntime-web gives onnxruntime-node's labels, exits and entropies on ${COUNT} MNIST digits (model and export directories, batch 1 and 64)`, async (t) => {
  if (nativeMissing) return t.skip(nativeMissing);
  const exported = join(scratch, 'export');
  const loadedModel = loadModel(LENET);
  try {
    exportModel(loadedModel, exported);
  } finally {
    loadedModel.net.dispose();
    loadedModel.baseline?.dispose();
  }
  for (const location of [LENET, exported]) {
    const want = await answers(location, 64);
    const exits = new Set(want.map((a) => a.exit));
    assert.ok(exits.has(1) && exits.has(2), `both exits answer some of the digits from ${location}`);
    for (const batchSize of [1, 64]) {
      const notices: string[] = [];
      const got = await withoutNativeOrt(() => answers(location, batchSize, notices));
      assert.ok(
        notices.includes('runtime: ONNX Runtime (onnxruntime-web)'),
        `${location}: notices ${JSON.stringify(notices)}`,
      );
      assert.deepEqual(labelsAndExits(got), labelsAndExits(want), `${location}, batch ${batchSize}`);
      for (let i = 0; i < COUNT; i++)
        assert.ok(
          Math.abs(got[i].entropy - want[i].entropy) < 1e-4,
          `${location}, batch ${batchSize}, digit ${i}: entropy ${got[i].entropy} vs ${want[i].entropy}`,
        );
    }
  }
});
