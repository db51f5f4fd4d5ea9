import { EarlyExitModel } from '../api/early_exit_model.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../engine/backend.js';
import { loadModel, saveModel } from '../model/io.js';
import { BranchyNet } from '../model/network.js';
import { bLeNet } from '../model/zoo.js';
import { loadOnnxRuntime } from '../node/onnx.js';
import { quantizedRecordOf } from './model_dir.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli.js');
const dir = mkdtempSync(join(tmpdir(), 'bn-int8-cli-'));
let ortError: string | null = null;

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}

before(async () => {
  await initBackend('wasm');
  const net = new BranchyNet(bLeNet(), 4);
  saveModel(join(dir, 'model'), net, null, { thresholds: [0.5], dataset: 'mnist', training: { validationSize: 300 } });
  saveModel(join(dir, 'no-record'), net, null, { thresholds: [0.5], dataset: 'mnist' });
  net.dispose();
  const loaded = await loadOnnxRuntime();
  if ('error' in loaded) ortError = loaded.error;
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('branchynet quantize writes a model directory that eval, export, calibrate and load take', async (t) => {
  if (ortError) return t.skip(`onnxruntime-node did not load: ${ortError}`);
  const q = join(dir, 'int8-model');
  const r = run('quantize', '--model', join(dir, 'model'), '--out', q, '--calibration-samples', '100');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /on its validation split \(300 images, the last of the training set\)/);
  const files = r.stdout.trim().split('\n');
  for (const f of [
    'model.json',
    'weights.bin',
    'int8/manifest.json',
    'int8/stage-1.onnx',
    'int8/stage-2.onnx',
    'int8/baseline.onnx',
    'quantization.md',
  ]) {
    assert.ok(files.includes(join(q, f)), f);
  }
  // Round trip: the record loads, and a re-save (what calibrate does) keeps it.
  const model = loadModel(q);
  const record = quantizedRecordOf(model)!;
  assert.equal(record.calibration.samples, 300);
  assert.equal(record.calibrationSamples, 100);
  saveModel(join(dir, 'resaved'), model.net, model.baseline, model);
  assert.deepEqual(loadModel(join(dir, 'resaved')).quantized, model.quantized);

  const ev = run(
    'eval',
    '--model',
    q,
    '--json',
    '--limit',
    '60',
    '--timing-samples',
    '10',
    '--batch-size',
    '16',
    '--passes',
    '1',
  );
  assert.equal(ev.code, 0, ev.stderr);
  const report = JSON.parse(ev.stdout);
  assert.equal(report.runtime, 'onnx-int8');
  assert.deepEqual(report.thresholds, record.thresholds);
  assert.ok(report.speedupVsFloat > 0 && report.batched.speedupVsFloat > 0 && report.floatBaseline.msPerSample > 0);
  const tfjs = run('eval', '--model', q, '--runtime', 'tfjs', '--limit', '10');
  assert.equal(tfjs.code, 1);
  assert.match(tfjs.stderr, /^branchynet: --runtime: .* is quantised: its int8 stages run on ONNX Runtime only/);

  const out = join(dir, 'exported');
  const ex = run('export', '--model', q, '--out', out);
  assert.equal(ex.code, 0, ex.stderr);
  assert.deepEqual(
    ex.stdout.trim().split('\n'),
    ['baseline.onnx', 'manifest.json', 'stage-1.onnx', 'stage-2.onnx'].map((f) => join(out, f)),
  );
  assert.deepEqual(readFileSync(join(out, 'stage-1.onnx')), readFileSync(join(q, 'int8', 'stage-1.onnx')));
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')).thresholds, record.thresholds);

  // The model API reads the quantised directory (its int8 stages and thresholds) and its int8 export alike.
  const images = Uint8Array.from({ length: 20 * 784 }, (_, i) => (i * 37) % 256);
  const fromDir = await EarlyExitModel.load(q);
  assert.deepEqual(fromDir.thresholds, record.thresholds);
  assert.ok(fromDir.runners.floatBaseline !== undefined, 'the float baseline comes along for comparison');
  const want = await fromDir.classifyBatch(images, { batchSize: 8 });
  await fromDir.dispose();
  const fromExport = await EarlyExitModel.load(out);
  assert.deepEqual(
    (await fromExport.classifyBatch(images, { batchSize: 8 })).map((a) => [a.label, a.exit]),
    want.map((a) => [a.label, a.exit]),
  );
  await fromExport.dispose();
  await assert.rejects(() => EarlyExitModel.load(q, { runtime: 'tfjs' }), /is quantised/);

  const again = run('quantize', '--model', q, '--out', join(dir, 'twice'));
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already quantised/);
});

test("branchynet quantize needs the model's record of its validation split", () => {
  const r = run('quantize', '--model', join(dir, 'no-record'), '--out', join(dir, 'x'));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^branchynet: .*no training record of its validation split/);
});
