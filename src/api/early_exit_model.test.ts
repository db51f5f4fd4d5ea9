import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadMnist } from '../data/mnist.js';
import { normalizeDataset } from '../data/transform.js';
import { initBackend } from '../engine/backend.js';
import { UserError } from '../errors.js';
import { loadModel, saveModel } from '../model/io.js';
import { BranchyNet } from '../model/network.js';
import type { BranchyNetSpec } from '../model/spec.js';
import { loadOnnxRuntime } from '../node/onnx.js';
import { exportModel } from '../onnx/export.js';
import { earlyExit } from '../runtime/early_exit.js';
import { TfjsRunner } from '../runtime/tfjs_runner.js';
import { randomDataset } from '../testing/fixtures.js';
import { EarlyExitModel } from './early_exit_model.js';

const LENET = 'models/b-lenet-mnist';
const COUNT = 300;
let pixels: Uint8Array;
let labels: Uint8Array;
let ortMissing = '';
const scratch = mkdtempSync(join(tmpdir(), 'branchynet-api-'));

before(async () => {
  await initBackend('wasm');
  const { test: digits } = loadMnist();
  // Back to the bytes of the IDX file: what a user holds.
  pixels = Uint8Array.from(digits.images.subarray(0, COUNT * 784), (v) => Math.round(v * 255));
  labels = digits.labels.subarray(0, COUNT);
  const loaded = await loadOnnxRuntime();
  if ('error' in loaded) ortMissing = `onnxruntime-node did not load: ${loaded.error}`;
});

after(() => rmSync(scratch, { recursive: true, force: true }));

const digit = (i: number) => pixels.subarray(i * 784, (i + 1) * 784);

test('classify: one MNIST digit of models/b-lenet-mnist as raw bytes gives a label, its class name, a 1-based exit and a softmax', async () => {
  const model = await EarlyExitModel.load(LENET, { runtime: 'tfjs' });
  try {
    const answer = await model.classify(digit(0));
    assert.equal(answer.label, labels[0]);
    assert.equal(answer.className, String(labels[0]));
    assert.ok(answer.exit === 1 || answer.exit === 2);
    const sum = answer.probabilities.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-5, `probabilities sum to ${sum}`);
    assert.equal(answer.probabilities.indexOf(Math.max(...answer.probabilities)), answer.label);
    const entropy = -answer.probabilities.reduce((h, p) => h + (p > 0 ? p * Math.log(p) : 0), 0);
    assert.ok(
      Math.abs(entropy - answer.entropy) < 1e-4,
      `entropy ${answer.entropy} vs ${entropy} from the probabilities`,
    );
    assert.deepEqual(model.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    assert.deepEqual(model.inputShape, [28, 28, 1]);
    assert.equal(model.exits, 2);
    const macs = model.macs();
    assert.equal(macs.perExit.length, 2);
    assert.ok(macs.perExit[0] < macs.baseline && macs.perExit[1] > macs.baseline);
  } finally {
    await model.dispose();
  }
});

test('classify and classifyBatch answer the same on ONNX Runtime and tfjs, at batch 1 and batched, as the evaluation pipeline does', async (t) => {
  if (ortMissing) return t.skip(ortMissing);
  const onnx = await EarlyExitModel.load(LENET);
  const tfjs = await EarlyExitModel.load(LENET, { runtime: 'tfjs' });
  try {
    assert.equal(onnx.runtime, 'onnx');
    assert.equal(tfjs.runtime, 'tfjs');
    const byOnnx = await onnx.classifyBatch(pixels, { batchSize: 64 });
    const byTfjs = await tfjs.classifyBatch(pixels, { batchSize: 1 });
    assert.equal(byOnnx.length, COUNT);
    assert.deepEqual(
      byOnnx.map((a) => a.label),
      byTfjs.map((a) => a.label),
    );
    assert.deepEqual(
      byOnnx.map((a) => a.exit),
      byTfjs.map((a) => a.exit),
    );
    for (let i = 0; i < COUNT; i++)
      assert.ok(Math.abs(byOnnx[i].entropy - byTfjs[i].entropy) < 1e-4, `entropy of digit ${i}`);
    for (let i = 0; i < 5; i++) assert.deepEqual(await onnx.classify(digit(i)), byOnnx[i]);
    // The reference: the loader's images through the tfjs runner with the model's thresholds.
    const loaded = loadModel(LENET);
    const reference = earlyExit(
      new TfjsRunner(loaded.net),
      Float32Array.from(pixels, (v) => v / 255),
      COUNT,
      loaded.thresholds!,
      16,
    );
    loaded.net.dispose();
    loaded.baseline?.dispose();
    assert.deepEqual(
      byOnnx.map((a) => a.label),
      [...reference.predictions],
    );
    assert.deepEqual(
      byOnnx.map((a) => a.exit),
      [...reference.exitTaken],
    );
    const accuracy = byOnnx.filter((a, i) => a.label === labels[i]).length / COUNT;
    assert.ok(accuracy > 0.95, `accuracy ${accuracy} on ${COUNT} test digits`);
  } finally {
    await Promise.all([onnx.dispose(), tfjs.dispose()]);
  }
});

test('thresholds are settable: 0 sends every image to the last exit, a huge one every image out at exit 1; bad ones are refused', async () => {
  const model = await EarlyExitModel.load(LENET, { runtime: 'tfjs' });
  try {
    const images = pixels.subarray(0, 20 * 784);
    model.thresholds = [0];
    assert.deepEqual(
      (await model.classifyBatch(images)).map((a) => a.exit),
      new Array(20).fill(2),
    );
    model.thresholds = [100];
    assert.deepEqual(
      (await model.classifyBatch(images)).map((a) => a.exit),
      new Array(20).fill(1),
    );
    assert.deepEqual(model.thresholds, [100]);
    assert.throws(
      () => (model.thresholds = [0.1, 0.2]),
      (e: unknown) => e instanceof UserError && e.option === 'thresholds' && /needs 1 thresholds/.test(e.message),
    );
    assert.throws(
      () => (model.thresholds = [-1]),
      (e: unknown) => e instanceof UserError && /threshold must be a number >= 0, got -1/.test(e.message),
    );
    await assert.rejects(
      () => model.classifyBatch(images, { batchSize: 0 }),
      (e: unknown) => e instanceof UserError && e.option === 'batchSize',
    );
  } finally {
    await model.dispose();
  }
});

test('input errors name what was wrong and what the model expects', async () => {
  const model = await EarlyExitModel.load(LENET, { runtime: 'tfjs' });
  const rejects = (input: unknown, pattern: RegExp, batch = false) =>
    assert.rejects(
      () => (batch ? model.classifyBatch(input as Uint8Array) : model.classify(input as Uint8Array)),
      (e: unknown) => e instanceof UserError && pattern.test(e.message) && !e.message.includes('\n'),
    );
  try {
    await rejects(
      new Uint8Array(100),
      /100 values; the model takes \[28, 28, 1\] \(height, width, channels: 784 values per image, 0-255\)/,
    );
    await rejects(new Uint8Array(784 * 2), /1568 values hold 2 images; use classifyBatch/);
    await rejects(new Float32Array(784).fill(NaN), /value NaN at index 0 is not a pixel value in \[0, 255\]/);
    await rejects(
      Float32Array.from({ length: 784 }, (_, i) => (i === 5 ? 300 : 0)),
      /value 300 at index 5/,
    );
    await rejects('a string', /string is not an image/);
    await rejects(
      { data: new Uint8ClampedArray(32 * 32 * 4), width: 32, height: 32 },
      /ImageData is 32x32; the model takes 28x28 images/,
    );
    await rejects(
      { shape: [2, 28, 28, 1], dtype: 'float32', dataSync: () => new Float32Array(2 * 784) },
      /a batch of 2 images; use classifyBatch/,
    );
    await rejects(
      { shape: [28, 28, 3], dtype: 'float32', dataSync: () => new Float32Array(3 * 784) },
      /a tensor of shape \[28, 28, 3\]; the model takes \[28, 28, 1\]/,
    );
    await rejects(new Uint8Array(785), /785 values; the model takes .*, or N such images packed/, true);
  } finally {
    await model.dispose();
  }
  await assert.rejects(() => model.classify(digit(0)), /disposed/);
});

test('images as users hold them: ImageData (RGBA, grey drawn), a tfjs-like tensor and a list all give the answers of the raw bytes', async () => {
  const model = await EarlyExitModel.load(LENET, { runtime: 'tfjs' });
  try {
    const want = await model.classifyBatch(pixels.subarray(0, 4 * 784), { batchSize: 4 });
    const imageData = (i: number) => {
      const data = new Uint8ClampedArray(784 * 4);
      digit(i).forEach((v, p) => data.set([v, v, v, 255], 4 * p));
      return { data, width: 28, height: 28 };
    };
    const asImageData = await model.classifyBatch([0, 1, 2, 3].map(imageData));
    const asTensor = await model.classifyBatch({
      shape: [4, 28, 28, 1],
      dtype: 'int32',
      dataSync: () => pixels.subarray(0, 4 * 784),
    });
    const asList = await model.classifyBatch([0, 1, 2, 3].map(digit));
    for (const got of [asImageData, asTensor, asList])
      assert.deepEqual(
        got.map((a) => [a.label, a.exit]),
        want.map((a) => [a.label, a.exit]),
      );
  } finally {
    await model.dispose();
  }
});

/** A small 3-channel net (so the model's own normalisation matters). */
function colourSpec(): BranchyNetSpec {
  return {
    name: 'colour',
    input: [8, 8, 3],
    classes: 3,
    segments: [
      [{ kind: 'conv2d', filters: 4, kernel: 3, pad: 1 }, { kind: 'relu' }],
      [{ kind: 'flatten' }, { kind: 'dense', units: 3 }],
    ],
    heads: [[{ kind: 'flatten' }, { kind: 'dense', units: 3 }], []],
  };
}

test('the model applies the normalisation saved with it: raw pixels answer as the normalised images do in evaluation', async () => {
  const net = new BranchyNet(colourSpec(), 3);
  const normalization = { mean: [0.2, 0.5, 0.7], std: [0.1, 0.3, 0.05] };
  const dir = join(scratch, 'colour');
  saveModel(dir, net, null, { thresholds: [0.6], normalization, dataset: 'toy', classNames: ['red', 'green', 'blue'] });
  const data = randomDataset(40, [8, 8, 3], 3, 5);
  const raw = Float32Array.from(data.images, (v) => Math.round(v * 255));
  const loaderForm = { ...data, images: Float32Array.from(raw, (v) => v / 255) };
  const reference = earlyExit(new TfjsRunner(net), normalizeDataset(loaderForm, normalization).images, 40, [0.6], 8);
  const unnormalised = earlyExit(new TfjsRunner(net), loaderForm.images, 40, [0.6], 8);
  assert.notDeepEqual(
    [...unnormalised.predictions],
    [...reference.predictions],
    'the test needs normalisation to change answers',
  );
  net.dispose();
  for (const runtime of ortMissing ? (['tfjs'] as const) : (['tfjs', 'onnx'] as const)) {
    const model = await EarlyExitModel.load(dir, { runtime });
    try {
      const answers = await model.classifyBatch(raw, { batchSize: 8 });
      assert.deepEqual(
        answers.map((a) => a.label),
        [...reference.predictions],
        runtime,
      );
      assert.deepEqual(
        answers.map((a) => a.exit),
        [...reference.exitTaken],
        runtime,
      );
      assert.equal(answers[0].className, ['red', 'green', 'blue'][answers[0].label]);
    } finally {
      await model.dispose();
    }
  }
});

test("an export directory loads by path and over HTTP (with a given ONNX Runtime module) with the model directory's answers", async (t) => {
  if (ortMissing) return t.skip(ortMissing);
  const out = join(scratch, 'export');
  exportModel(loadModel(LENET), out);
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  assert.deepEqual(manifest.preprocessing, { pixelRange: 255 });
  const images = pixels.subarray(0, 64 * 784);
  const fromDir = await EarlyExitModel.load(LENET);
  const want = (await fromDir.classifyBatch(images, { batchSize: 64 })).map((a) => [a.label, a.exit]);
  await fromDir.dispose();
  const exported = await EarlyExitModel.load(out);
  assert.deepEqual(
    (await exported.classifyBatch(images, { batchSize: 64 })).map((a) => [a.label, a.exit]),
    want,
  );
  await exported.dispose();
  await assert.rejects(
    () => EarlyExitModel.load(out, { runtime: 'tfjs' }),
    (e: unknown) => e instanceof UserError && e.option === 'runtime',
  );

  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    const file = join(out, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    try {
      res.end(readFileSync(file));
    } catch {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const loaded = await loadOnnxRuntime();
    if ('error' in loaded) throw new Error(loaded.error);
    const remote = await EarlyExitModel.load(`http://127.0.0.1:${port}/`, { ort: loaded.ort });
    assert.deepEqual(
      (await remote.classifyBatch(images, { batchSize: 64 })).map((a) => [a.label, a.exit]),
      want,
    );
    await remote.dispose();
    assert.ok(requests >= 3, `${requests} requests`);
    await assert.rejects(
      () => EarlyExitModel.load(`http://127.0.0.1:${port}/nothing/`),
      /neither model.json .* nor manifest.json/,
    );
  } finally {
    server.close();
  }
});

test('load refuses what is not a model with one clear line', async () => {
  await assert.rejects(
    () => EarlyExitModel.load(scratch),
    (e: unknown) =>
      e instanceof UserError && /neither model.json \(a model directory\) nor manifest.json/.test(e.message),
  );
  await assert.rejects(
    () => EarlyExitModel.load(LENET, { runtime: 'gpu' as 'onnx' }),
    (e: unknown) => e instanceof UserError && e.option === 'runtime',
  );
});
