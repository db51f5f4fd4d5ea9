import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { holdOutValidation, sliceDataset } from '../data/dataset.js';
import { loadMnist } from '../data/mnist.js';
import { initBackend } from '../engine/backend.js';
import { UserError } from '../errors.js';
import type { BranchyNet } from '../model/network.js';
import { readWeights } from '../model/weights.js';
import { bLeNet } from '../model/zoo.js';
import type { TrainOptions } from './pipeline.js';
import { DEFAULT_TRAIN_OPTIONS, trainBranchyNet } from './pipeline.js';

before(async () => {
  await initBackend('wasm');
});

const mnist = loadMnist();
const { train, validation } = holdOutValidation(sliceDataset(mnist.train, 0, 700), 200);
const options: TrainOptions = { ...DEFAULT_TRAIN_OPTIONS, baselineEpochs: 2, epochs: 2, batchSize: 64, seed: 3 };
const quiet = () => {};

function weightsOf(net: BranchyNet): number[] {
  return readWeights(net).flatMap((a) => Array.from(a.data));
}

test('B-LeNet learns 500 MNIST digits: loss falls, exits beat chance, warm start copies the trunk', async () => {
  const lines: string[] = [];
  const out = mkdtempSync(join(tmpdir(), 'bn-train-'));
  const r = await trainBranchyNet({ spec: bLeNet(), train, validation, outDir: out, options, resume: false, log: (l) => lines.push(l) });
  assert.equal(r.history.baseline.length, 2);
  assert.equal(r.history.joint.length, 2);
  assert.ok(r.history.baseline[1].loss[0] < r.history.baseline[0].loss[0], 'baseline loss falls');
  const last = r.history.joint[1];
  assert.ok(last.validationAccuracy.every((a) => a > 0.5), `validation accuracies ${last.validationAccuracy}`);
  assert.ok(lines.some((l) => /^\[joint\] epoch 2\/2 .*loss e1 [\d.]+ e2 [\d.]+ .*val acc e1 [\d.]+% e2 [\d.]+% .*img\/s .*ETA/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /warm-started from the baseline \(10 trunk parameters copied\)/.test(l)));
  assert.deepEqual(readdirSync(out), ['checkpoint.bin']);
});

test('a run killed after an epoch resumes to the same weights as an uninterrupted run', async () => {
  const straightDir = mkdtempSync(join(tmpdir(), 'bn-straight-'));
  const straight = await trainBranchyNet({ spec: bLeNet(), train, validation, outDir: straightDir, options, resume: false, log: quiet });

  const dir = mkdtempSync(join(tmpdir(), 'bn-resume-'));
  // "Kill" the run after the first joint epoch's checkpoint by stopping at epoch 1, then resume to 2.
  await trainBranchyNet({ spec: bLeNet(), train, validation, outDir: dir, options: { ...options, epochs: 1 }, resume: false, log: quiet });
  await assert.rejects(
    trainBranchyNet({ spec: bLeNet(), train, validation, outDir: dir, options, resume: false, log: quiet }),
    (e: Error) => e instanceof UserError && /exists: pass --resume/.test(e.message),
  );
  await assert.rejects(
    trainBranchyNet({ spec: bLeNet(), train, validation, outDir: dir, options: { ...options, learningRate: 0.01 }, resume: true, log: quiet }),
    /written with another model, data split or settings/,
  );
  const lines: string[] = [];
  const resumed = await trainBranchyNet({ spec: bLeNet(), train, validation, outDir: dir, options, resume: true, log: (l) => lines.push(l) });
  assert.ok(lines[0].startsWith('resuming'), lines[0]);
  assert.equal(resumed.history.joint.length, 2);
  assert.deepEqual(weightsOf(resumed.net), weightsOf(straight.net));
  assert.deepEqual(resumed.history.joint.map((h) => h.loss), straight.history.joint.map((h) => h.loss));
});
