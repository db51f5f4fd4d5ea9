import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { createTrainer, lenet2050, syntheticBatches } from '../../bench/train_step.js';
import { bLeNet, MODEL_ZOO } from '../../model/zoo.js';
import { initBackend } from '../backend.js';
import { loadOneDnnAddon } from './addon.js';

const { addon, reason } = loadOneDnnAddon();
const skip = addon === null ? `onednn addon unavailable (${reason}); see docs/onednn.md` : false;

async function lossCurve(backend: 'onednn' | 'wasm', spec = bLeNet(), steps = 6, batch = 16): Promise<number[][]> {
  await initBackend(backend, { fallback: false });
  const trainer = createTrainer(spec, 3, 1e-3);
  const curve = syntheticBatches(spec, batch, steps, 5).map(({ images, labels }) => Array.from(trainer.step(images, labels)));
  trainer.dispose();
  return curve;
}

// B-AlexNet (LRN, dropout, 3 exits) only when the zoo has it; fewer, smaller steps.
const cases = [{ spec: bLeNet(), steps: 6, batch: 16 }, { spec: lenet2050(), steps: 6, batch: 16 },
  ...(MODEL_ZOO['b-alexnet'] ? [{ spec: MODEL_ZOO['b-alexnet']!(), steps: 3, batch: 8 }] : [])];
for (const { spec, steps, batch } of cases) {
  test(`${spec.name}: ${steps} Adam steps (batch ${batch}) on onednn give the wasm backend's loss curve`, { skip }, async () => {
    await initBackend('wasm');
    const before = tf.memory().numTensors;
    const native = await lossCurve('onednn', spec, steps, batch);
    const wasm = await lossCurve('wasm', spec, steps, batch);
    native.forEach((losses, step) => losses.forEach((l, k) => {
      const ref = wasm[step]![k]!;
      assert.ok(Number.isFinite(l) && Math.abs(l - ref) <= 1e-4 * Math.max(1, Math.abs(ref)),
        `step ${step} exit ${k}: onednn ${l} vs wasm ${ref}`);
    }));
    // The loss moves (the step trains something).
    assert.notEqual(native[0]![0], native[native.length - 1]![0]);
    assert.equal(tf.memory().numTensors, before);
  });
}
