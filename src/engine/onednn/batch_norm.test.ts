import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node build registers no gradients; the union package's does.
import '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import { countNativeCalls } from '../../testing/native_calls.js';
import { BATCH_NORM_TRAIN, BATCH_NORM_TRAIN_GRAD, RELU_GRAD } from './kernel_names.js';
import { batchNormForward } from '../../model/layers/batch_norm.js';
import { sizeOf, uniform as rng } from '../../testing/kernel_cases.js';
import type { Result } from '../../testing/assert_close.js';
import { assertCloseAll as assertClose } from '../../testing/assert_close.js';
import { oneDnnSkip } from '../../testing/onednn_skip.js';

/** Skip message when the addon is not built (docs/onednn.md). */
const skip = oneDnnSkip();

function randomValues(shape: readonly number[], rand: () => number, scale = 1, offset = 0): Float32Array {
  const v = new Float32Array(sizeOf(shape));
  for (let i = 0; i < v.length; i++) v[i] = rand() * scale + offset;
  return v;
}

/** Runs `fn` on `backend`, reads back its outputs and counts the calls of the onednn kernels. */
async function on(
  backend: 'onednn' | 'cpu',
  fn: () => tf.Tensor[],
): Promise<{ results: Result[]; calls: Map<string, number> }> {
  await initBackend(backend, { fallback: false });
  const before = tf.memory().numTensors;
  const { value: outs, calls } = countNativeCalls(() => tf.tidy(fn));
  const results = outs.map((o) => ({ shape: o.shape.slice(), values: o.dataSync() as Float32Array }));
  tf.dispose(outs);
  assert.equal(tf.memory().numTensors, before, `${backend}: tensors leaked`);
  return { results, calls };
}

// Odd sizes, batch 1 (one row per channel when H = W = 1), rank 2, and one large enough for the
// threaded statistics (> 2^16 elements).
const SHAPES: number[][] = [
  [4, 5, 6, 8],
  [1, 3, 3, 7],
  [1, 1, 1, 5],
  [3, 1, 1, 4],
  [2, 16],
  [3, 7, 5, 13],
  [9, 16, 16, 32],
];

test(
  'onednn batch norm (training): output, dx, dgamma, dbeta and running statistics match the composite on cpu',
  { skip },
  async () => {
    const rand = rng(31);
    for (const shape of SHAPES) {
      const c = shape[shape.length - 1]!;
      // An offset mean and a non-unit spread, as after a convolution.
      const xv = randomValues(shape, rand, 2, 0.7);
      const dyv = randomValues(shape, rand);
      const gv = randomValues([c], rand, 0.5, 1);
      const bv = randomValues([c], rand, 0.5);
      const mv = randomValues([c], rand, 0.1);
      const vv = randomValues([c], rand, 0.2, 1);
      for (const momentum of [0.9, 0.5]) {
        const run = (): tf.Tensor[] => {
          const x = tf.tensor(xv, shape);
          const gamma = tf.tensor1d(gv);
          const beta = tf.tensor1d(bv);
          const mean = tf.variable(tf.tensor1d(mv), false);
          const variance = tf.variable(tf.tensor1d(vv), false);
          const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor =>
            batchNormForward(
              { kind: 'batchNorm', momentum, epsilon: 1e-3 },
              a,
              { gamma: g, beta: b, mean, variance },
              true,
            );
          const y = f(x, gamma, beta);
          const grads = tf.grads(f)([x, gamma, beta], tf.tensor(dyv, shape));
          // Two updates of the running statistics (the forward call, then the one inside tf.grads).
          const out = [y, ...grads, mean.clone(), variance.clone()];
          mean.dispose();
          variance.dispose();
          return out;
        };
        const what = `batchNorm x[${shape}] momentum ${momentum}`;
        const native = await on('onednn', run);
        const cpu = await on('cpu', run);
        assertClose(native.results, cpu.results, what, 2e-5);
        assert.equal(native.calls.get(BATCH_NORM_TRAIN), 2, `${what}: native forward calls`);
        assert.equal(native.calls.get(BATCH_NORM_TRAIN_GRAD), 1, `${what}: native gradient calls`);
        assert.equal(cpu.calls.size, 0, `${what}: no onednn kernel on cpu`);
      }
    }
  },
);

test('onednn batch norm kernel: gradients through its mean and variance outputs too', { skip }, async () => {
  const rand = rng(37);
  for (const shape of [
    [3, 4, 5, 6],
    [1, 1, 1, 3],
    [7, 11],
  ]) {
    const c = shape[shape.length - 1]!;
    const xv = randomValues(shape, rand, 3, -1);
    const dyv = randomValues(shape, rand);
    const gv = randomValues([c], rand, 0.5, 1);
    const bv = randomValues([c], rand);
    const uv = randomValues([c], rand);
    const wv = randomValues([c], rand);
    const eps = 2e-5;
    const loss = (y: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor): tf.Scalar =>
      tf.add(
        tf.sum(tf.mul(y, tf.tensor(dyv, shape))),
        tf.add(tf.sum(tf.mul(mean, tf.tensor1d(uv))), tf.sum(tf.mul(variance, tf.tensor1d(wv)))),
      );
    const inputs = (): tf.Tensor[] => [tf.tensor(xv, shape), tf.tensor1d(gv), tf.tensor1d(bv)];
    const native = await on('onednn', () => {
      const f = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Scalar => {
        const [y, mean, variance] = tf
          .engine()
          .runKernel(BATCH_NORM_TRAIN, { x, gamma: g, beta: b }, { epsilon: eps }) as tf.Tensor[];
        return loss(y!, mean!, variance!);
      };
      return [f(...(inputs() as [tf.Tensor, tf.Tensor, tf.Tensor])), ...tf.grads(f)(inputs())];
    });
    const cpu = await on('cpu', () => {
      const f = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Scalar => {
        const { mean, variance } = tf.moments(
          x,
          shape.slice(0, -1).map((_, i) => i),
        );
        const y = tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), g), b);
        return loss(y, mean, variance);
      };
      return [f(...(inputs() as [tf.Tensor, tf.Tensor, tf.Tensor])), ...tf.grads(f)(inputs())];
    });
    assertClose(native.results, cpu.results, `batch norm kernel x[${shape}] with statistics in the loss`, 1e-4);
    assert.equal(native.calls.get(BATCH_NORM_TRAIN_GRAD), 1);
  }
});

test(
  'onednn Relu gradient runs as one native kernel, matches the cpu backend (0, NaN, -0), stock gradient elsewhere',
  { skip },
  async () => {
    const rand = rng(41);
    const shape = [3, 5, 7, 2];
    const xv = randomValues(shape, rand);
    const dyv = randomValues(shape, rand);
    xv[0] = 0;
    xv[1] = NaN;
    xv[2] = -0;
    dyv[3] = Infinity;
    const run = (): tf.Tensor[] => {
      const x = tf.tensor(xv, shape);
      const g = tf.grad((t: tf.Tensor) => tf.relu(t))(x, tf.tensor(dyv, shape));
      return [g];
    };
    const native = await on('onednn', run);
    const cpu = await on('cpu', run);
    // Bit for bit (NaN where x is NaN, infinities, signed zeros).
    const a = native.results[0]!.values;
    const e = cpu.results[0]!.values;
    assert.equal(a.length, e.length);
    for (let i = 0; i < e.length; i++) assert.ok(Object.is(a[i], e[i]), `relu gradient [${i}]: ${a[i]} vs ${e[i]}`);
    assert.equal(native.calls.get(RELU_GRAD), 1);
    assert.equal(native.calls.get(tf.Step), undefined, 'no Step on onednn');
    assert.equal(cpu.calls.size, 0);
    // The same gradient on a backend without the kernel: tfjs's composite.
    await initBackend('cpu');
    const kernels: string[] = [];
    const prof = await tf.profile(() => {
      tf.dispose(run());
    });
    for (const k of prof.kernels) kernels.push(k.name);
    assert.ok(kernels.includes('Step') && !kernels.includes(RELU_GRAD), kernels.join(','));
  },
);
