import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { initBackend } from '../engine/backend.js';
import { UserError } from '../errors.js';
import { tinySpec } from '../testing/fixtures.js';
import { loadModel, saveModel } from './io.js';
import { BranchyNet } from './network.js';
import { baselineOf } from './spec.js';
import { readWeights } from './weights.js';

before(async () => {
  await initBackend('wasm');
});

test('a saved model directory loads back with the same weights, baseline and thresholds', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bn-model-'));
  const net = new BranchyNet(tinySpec(), 1);
  const baseline = new BranchyNet(baselineOf(tinySpec()), 2);
  saveModel(dir, net, baseline, { thresholds: [0.1, 0.5], dataset: 'mnist' });
  const loaded = loadModel(dir);
  assert.deepEqual(loaded.thresholds, [0.1, 0.5]);
  assert.deepEqual(loaded.spec, net.spec);
  assert.deepEqual(readWeights(loaded.net), readWeights(net));
  assert.deepEqual(readWeights(loaded.baseline!), readWeights(baseline));
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  assert.deepEqual(json.macs.segments, net.macs().segments);
});

test('re-saving a loaded model (as calibrate does) writes only the metadata, not the loaded networks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bn-model-'));
  const net = new BranchyNet(tinySpec(), 1);
  const baseline = new BranchyNet(baselineOf(tinySpec()), 2);
  saveModel(dir, net, baseline, { thresholds: [0.1, 0.5], dataset: 'mnist', training: { seconds: 1 } });
  const loaded = loadModel(dir);
  saveModel(dir, loaded.net, loaded.baseline, { ...loaded, thresholds: [0.2, 0.3] });
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  assert.deepEqual(Object.keys(json).sort(), [
    'baseline',
    'dataset',
    'format',
    'macs',
    'normalization',
    'spec',
    'thresholds',
    'training',
    'version',
    'weights',
  ]);
  assert.deepEqual(json.thresholds, [0.2, 0.3]);
  assert.deepEqual(json.training, { seconds: 1 });
  [net, baseline, loaded.net, loaded.baseline!].forEach((n) => n.dispose());
});

test('broken model directories give clear one-line errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bn-broken-'));
  assert.throws(
    () => loadModel(dir),
    (e: Error) => e instanceof UserError && /model\.json: no such file/.test(e.message),
  );
  const net = new BranchyNet(tinySpec(), 1);
  saveModel(dir, net, null, { thresholds: null });
  const weights = readFileSync(join(dir, 'weights.bin'));
  writeFileSync(join(dir, 'weights.bin'), weights.subarray(0, 100));
  assert.throws(
    () => loadModel(dir),
    (e: Error) => e instanceof UserError && /weights\.bin: truncated/.test(e.message),
  );
  writeFileSync(join(dir, 'model.json'), '{"format": "something-else"}');
  assert.throws(() => loadModel(dir), /not a branchynet model/);
  writeFileSync(join(dir, 'model.json'), '{nope');
  assert.throws(() => loadModel(dir), /not valid JSON/);
});
