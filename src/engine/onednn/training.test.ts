import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { createTrainer, lenet2050, syntheticBatches } from '../../bench/train_step.js';
import { bLeNet, MODEL_ZOO, zooSpec } from '../../model/zoo.js';
import { initBackend } from '../backend.js';
import { BATCH_NORM_TRAIN } from './kernel_names.js';
import { oneDnnSkip } from '../../testing/onednn_skip.js';

const skip = oneDnnSkip();

/**
 * Each exit's loss at each step (each step on its own batch), then the first batch's losses again just
 * after the first step (same dropout masks): the same batch before and after one step, so that a step
 * that trains nothing shows.
 */
async function lossCurve(backend: 'onednn' | 'wasm', spec = bLeNet(), steps = 6, batch = 16): Promise<number[][]> {
  await initBackend(backend, { fallback: false });
  const trainer = createTrainer(spec, 3, 1e-3);
  const batches = syntheticBatches(spec, batch, steps, 5);
  let firstAgain: number[] = [];
  const curve = batches.map(({ images, labels }, step) => {
    const losses = Array.from(trainer.step(images, labels));
    if (step === 0) firstAgain = Array.from(trainer.loss(images, labels));
    return losses;
  });
  trainer.dispose();
  return [...curve, firstAgain];
}

/** One step lowered each exit's loss on its batch (the curve's first row against its last). */
function assertTrains(curve: number[][]): void {
  const before = curve[0]!;
  const after = curve[curve.length - 1]!;
  before.forEach((l, k) =>
    assert.ok(after[k]! < l, `exit ${k}: loss on the first batch ${l} before its step, ${after[k]} after`),
  );
}

// B-AlexNet (LRN, dropout, 3 exits) only when the zoo has it; fewer, smaller steps.
const cases = [
  { spec: bLeNet(), steps: 6, batch: 16 },
  { spec: lenet2050(), steps: 6, batch: 16 },
  ...(MODEL_ZOO['b-alexnet'] ? [{ spec: MODEL_ZOO['b-alexnet']!(), steps: 3, batch: 8 }] : []),
];
for (const { spec, steps, batch } of cases) {
  test(
    `${spec.name}: ${steps} Adam steps (batch ${batch}) on onednn give the wasm backend's loss curve`,
    { skip },
    async () => {
      await initBackend('wasm');
      const before = tf.memory().numTensors;
      const native = await lossCurve('onednn', spec, steps, batch);
      const wasm = await lossCurve('wasm', spec, steps, batch);
      native.forEach((losses, step) =>
        losses.forEach((l, k) => {
          const ref = wasm[step]![k]!;
          assert.ok(
            Number.isFinite(l) && Math.abs(l - ref) <= 1e-4 * Math.max(1, Math.abs(ref)),
            `step ${step} exit ${k}: onednn ${l} vs wasm ${ref}`,
          );
        }),
      );
      assertTrains(native);
      assert.equal(tf.memory().numTensors, before);
    },
  );
}

// B-ResNet-20 (batch norm, residual blocks, 3 exits). Its loss curve is touchy: after one Adam step
// (an update of +-lr for every weight, whatever its gradient's size) the curves of onednn and wasm
// differ by ~2e-4 relative, with or without the native batch norm. So: the native batch-norm kernel
// against the composite ops on the same backend (tight), and against wasm (loose).
test(
  "b-resnet-20: 3 Adam steps (batch 8) with the native batch norm give the composite's and wasm's loss curves",
  { skip },
  async () => {
    const spec = zooSpec('b-resnet-20');
    await initBackend('wasm');
    // Tensors left after a curve: none, with the native batch norm or without.
    const left = async (curve: () => Promise<number[][]>): Promise<[number[][], number]> => {
      const before = tf.memory().numTensors;
      const c = await curve();
      return [c, tf.memory().numTensors - before];
    };
    const [native, nativeLeft] = await left(() => lossCurve('onednn', spec, 3, 8));
    const kernel = tf.getKernel(BATCH_NORM_TRAIN, 'onednn')!;
    tf.unregisterKernel(BATCH_NORM_TRAIN, 'onednn');
    let composite: number[][];
    let compositeLeft: number;
    try {
      [composite, compositeLeft] = await left(() => lossCurve('onednn', spec, 3, 8));
    } finally {
      tf.registerKernel(kernel);
    }
    const wasm = await lossCurve('wasm', spec, 3, 8);
    for (const [ref, name, tol] of [
      [composite, 'composite', 1e-4],
      [wasm, 'wasm', 1e-3],
    ] as const) {
      native.forEach((losses, step) =>
        losses.forEach((l, k) => {
          const r = ref[step]![k]!;
          assert.ok(
            Number.isFinite(l) && Math.abs(l - r) <= tol * Math.max(1, Math.abs(r)),
            `step ${step} exit ${k}: onednn ${l} vs ${name} ${r}`,
          );
        }),
      );
    }
    assertTrains(native);
    assert.equal(nativeLeft, 0, 'the trainer leaks no tensors (running statistics included)');
    assert.equal(compositeLeft, 0);
  },
);
