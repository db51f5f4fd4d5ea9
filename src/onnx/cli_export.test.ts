import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../engine/backend.js';
import { saveModel } from '../model/io.js';
import { BranchyNet } from '../model/network.js';
import { bLeNet } from '../model/zoo.js';
import { loadOnnxRuntime } from '../node/onnx.js';
import type { OnnxManifest } from './manifest.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli.js');
const dir = mkdtempSync(join(tmpdir(), 'bn-onnx-cli-'));
let ortError: string | null = null;

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}

before(async () => {
  await initBackend('wasm');
  const net = new BranchyNet(bLeNet(), 2);
  saveModel(join(dir, 'model'), net, null, { thresholds: [0.5], dataset: 'mnist' });
  net.dispose();
  const loaded = await loadOnnxRuntime();
  if ('error' in loaded) ortError = loaded.error;
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('branchynet export writes a manifest, one ONNX model per stage and the baseline', () => {
  const out = join(dir, 'onnx');
  const r = run('export', '--model', join(dir, 'model'), '--out', out);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    r.stdout.trim().split('\n').sort(),
    [
      'baseline.onnx',
      'baseline.packed.onnx',
      'manifest.json',
      'stage-1.onnx',
      'stage-1.packed.onnx',
      'stage-2.onnx',
    ].map((f) => join(out, f)),
  );
  assert.match(r.stderr, /^exported b-lenet: 2 stages \+ baseline, opset 13, thresholds \[0\.5\]$/);
  const manifest: OnnxManifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  assert.deepEqual(manifest.thresholds, [0.5]);
  for (const s of [...manifest.stages, manifest.baseline]) assert.ok(existsSync(join(out, s.file)));
  const missing = run('export', '--model', join(dir, 'model'));
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^branchynet: --out DIR is required/);
});

test('branchynet eval --runtime onnx --json reports the same fields as --runtime tfjs', (t) => {
  if (ortError) return t.skip(`onnxruntime-node did not load: ${ortError}`);
  const args = [
    'eval',
    '--model',
    join(dir, 'model'),
    '--json',
    '--limit',
    '40',
    '--timing-samples',
    '10',
    '--batch-size',
    '8',
  ];
  const onnx = run(...args, '--runtime', 'onnx');
  const tfjs = run(...args, '--runtime', 'tfjs');
  assert.equal(onnx.code, 0, onnx.stderr);
  assert.equal(tfjs.code, 0, tfjs.stderr);
  const a = JSON.parse(onnx.stdout);
  const b = JSON.parse(tfjs.stdout);
  assert.equal(a.runtime, 'onnx');
  assert.equal(b.runtime, 'tfjs');
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  for (const k of ['baseline', 'batched', 'macs', 'timing'])
    assert.deepEqual(Object.keys(a[k]).sort(), Object.keys(b[k]).sort(), k);
  assert.deepEqual([a.accuracy, a.exitFractions], [b.accuracy, b.exitFractions]);
  const bad = run('eval', '--model', join(dir, 'model'), '--runtime', 'torch');
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, "branchynet: --runtime: expected onnx or tfjs, got 'torch'");
});
