import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs';
import { initBackend } from '../../engine/backend.js';
import { Rng } from '../../rng.js';
import { BranchyNet } from '../network.js';
import type { BranchyNetSpec, LrnSpec } from '../spec.js';
import { readWeights } from '../weights.js';
import { avgPool } from './avg_pool.js';
import { batchNorm } from './batch_norm.js';
import { conv2d } from './conv2d.js';
import { dropout } from './dropout.js';
import { lrn } from './lrn.js';
import { resBlock } from './res_block.js';

before(async () => {
  await initBackend('wasm');
});

function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1e-3, Math.abs(b[i])));
  return worst;
}

/**
 * Central finite differences of sum(f(x) * r) at a few entries of x against tf.grad, as relative errors
 * |numeric - analytic| / max(|numeric|, |analytic|); fails above `tolerance`, returns the largest. The
 * outputs are differenced one by one and summed in float64: differencing the float32 sum would bury
 * gradients of ~0.05 under the sum's rounding. The step is what float32 holds of x +- eps.
 */
function checkGradient(
  f: (x: tf.Tensor) => tf.Tensor,
  x: tf.Tensor,
  seed: number,
  tolerance: number,
  eps = 1e-2,
): number {
  const shape = tf.tidy(() => f(x).shape);
  const rv = randomArray(
    shape.reduce((a, b) => a * b, 1),
    seed,
  );
  const r = tf.tensor(rv, shape);
  const analytic = tf.tidy(() =>
    tf
      .grad((t: tf.Tensor) => tf.sum(tf.mul(f(t), r)))(x)
      .dataSync(),
  );
  r.dispose();
  const values = x.dataSync().slice();
  const rng = new Rng(seed + 1);
  let worst = 0;
  for (let t = 0; t < 8; t++) {
    const i = rng.int(values.length);
    const outputs = (d: number): Float32Array => {
      const v = values.slice();
      v[i] += d;
      return tf.tidy(() => f(tf.tensor(v, x.shape)).dataSync() as Float32Array);
    };
    const [plus, minus] = [outputs(eps), outputs(-eps)];
    const step = Math.fround(values[i] + eps) - Math.fround(values[i] - eps);
    let difference = 0;
    for (let j = 0; j < rv.length; j++) difference += rv[j] * (plus[j] - minus[j]);
    const numeric = difference / step;
    const err = Math.abs(numeric - analytic[i]) / Math.max(Math.abs(numeric), Math.abs(analytic[i]), 1e-12);
    assert.ok(
      err < tolerance,
      `gradient entry ${i}: finite differences ${numeric}, tf.grad ${analytic[i]}, relative error ${err}`,
    );
    worst = Math.max(worst, err);
  }
  return worst;
}

/** Chainer's F.local_response_normalization, written out: y_c = x_c / (k + alpha * sum_{c-n/2..c+n/2} x_j^2)^beta. */
function chainerLrn(x: Float32Array, c: number, n: number, k: number, alpha: number, beta: number): Float32Array {
  const half = Math.floor(n / 2);
  const out = new Float32Array(x.length);
  for (let p = 0; p < x.length / c; p++) {
    for (let ch = 0; ch < c; ch++) {
      let sum = 0;
      for (let j = Math.max(0, ch - half); j <= Math.min(c - 1, ch + half); j++) sum += x[p * c + j] ** 2;
      out[p * c + ch] = x[p * c + ch] / (k + alpha * sum) ** beta;
    }
  }
  return out;
}

test("lrn [2,3,4,7] matches Chainer's formula: reference parameters, defaults and a strong setting", () => {
  const shape = [2, 3, 4, 7];
  const values = randomArray(2 * 3 * 4 * 7, 1, 3);
  const x = tf.tensor(values, shape);
  const cases: [LrnSpec, number, number, number, number][] = [
    [{ kind: 'lrn', n: 3, alpha: 5e-5, beta: 0.75 }, 3, 2, 5e-5, 0.75],
    [{ kind: 'lrn' }, 5, 2, 1e-4, 0.75],
    [{ kind: 'lrn', n: 5, k: 1, alpha: 0.2, beta: 0.5 }, 5, 1, 0.2, 0.5],
    [{ kind: 'lrn', n: 4, k: 1.5, alpha: 0.1, beta: 0.75 }, 4, 1.5, 0.1, 0.75],
  ];
  for (const [spec, n, k, alpha, beta] of cases) {
    const y = tf.tidy(() => lrn.forward(spec, x, {}, { training: false }));
    assert.deepEqual(lrn.outputShape(spec, [3, 4, 7]), [3, 4, 7]);
    const err = maxRelError(y.dataSync(), chainerLrn(values, 7, n, k, alpha, beta));
    assert.ok(err < 1e-5, `${JSON.stringify(spec)}: relative error ${err}`);
    y.dispose();
  }
  checkGradient(
    (t) => lrn.forward({ kind: 'lrn', n: 5, k: 1, alpha: 0.2, beta: 0.5 }, t, {}, { training: true }),
    x,
    3,
    1e-3,
    3e-2,
  );
  x.dispose();
  assert.throws(() => lrn.outputShape({ kind: 'lrn', n: 0 }, [3, 4, 7]), /lrn: n must be an integer >= 1/);
});

test('dropout [4,50]: identity at inference, seeded inverted dropout in training, needs an rng', () => {
  const x = tf.tensor(randomArray(200, 2), [4, 50]);
  const spec = { kind: 'dropout', rate: 0.5 } as const;
  assert.equal(dropout.forward(spec, x, {}, { training: false }), x);
  assert.throws(
    () => dropout.forward(spec, x, {}, { training: true }),
    /dropout: training needs a seeded random source/,
  );
  const a = tf.tidy(() => dropout.forward(spec, x, {}, { training: true, rng: new Rng(7) }).dataSync());
  const b = tf.tidy(() => dropout.forward(spec, x, {}, { training: true, rng: new Rng(7) }).dataSync());
  assert.deepEqual(a, b, 'same seed, same mask');
  const xs = x.dataSync();
  let dropped = 0;
  for (let i = 0; i < 200; i++) {
    if (a[i] === 0) dropped++;
    else assert.ok(Math.abs(a[i] - 2 * xs[i]) < 1e-6, 'kept units are scaled by 1 / (1 - rate)');
  }
  assert.ok(dropped > 70 && dropped < 130, `about half dropped: ${dropped}`);
  // The gradient is the mask.
  const g = tf
    .grad((t: tf.Tensor) => tf.sum(dropout.forward(spec, t, {}, { training: true, rng: new Rng(7) })))(x)
    .dataSync();
  for (let i = 0; i < 200; i++) assert.equal(g[i], a[i] === 0 ? 0 : 2);
  assert.throws(() => dropout.outputShape({ kind: 'dropout', rate: 1 }, [3]), /rate must be in \[0, 1\)/);
  x.dispose();
});

test('avgPool [2,8,8,3] size 6 stride 1 matches a naive average; gradient by finite differences', () => {
  const values = randomArray(2 * 8 * 8 * 3, 4);
  const x = tf.tensor(values, [2, 8, 8, 3]);
  const spec = { kind: 'avgPool', size: 6, stride: 1 } as const;
  assert.deepEqual(avgPool.outputShape(spec, [8, 8, 3]), [3, 3, 3]);
  assert.deepEqual(avgPool.outputShape({ kind: 'avgPool', size: 2 }, [7, 7, 3]), [3, 3, 3]);
  const y = tf.tidy(() => avgPool.forward(spec, x, {}, { training: false }));
  const expected: number[] = [];
  for (let n = 0; n < 2; n++)
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++)
        for (let c = 0; c < 3; c++) {
          let s = 0;
          for (let a = 0; a < 6; a++) for (let b = 0; b < 6; b++) s += values[((n * 8 + i + a) * 8 + j + b) * 3 + c];
          expected.push(s / 36);
        }
  assert.ok(maxRelError(y.dataSync(), expected) < 1e-5);
  // Linear: no truncation error, so a large step (less rounding) and a tight tolerance.
  checkGradient((t) => avgPool.forward(spec, t, {}, { training: true }), x, 5, 1e-4, 1e-1);
  y.dispose();
  x.dispose();
});

/** Naive batch norm over the last axis with given statistics. */
function naiveNorm(
  x: Float32Array,
  c: number,
  mean: ArrayLike<number>,
  variance: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  eps: number,
): Float32Array {
  return x.map((v, i) => ((v - mean[i % c]) / Math.sqrt(variance[i % c] + eps)) * gamma[i % c] + beta[i % c]);
}

test('batchNorm [3,2,2,4]: batch statistics and running-average updates in training, running statistics at inference', () => {
  const c = 4;
  const values = randomArray(3 * 2 * 2 * c, 6, 2).map((v, i) => v + (i % c));
  const x = tf.tensor(values, [3, 2, 2, c]);
  const gamma = Float32Array.from([1, 2, 0.5, -1]);
  const beta = Float32Array.from([0, 1, -1, 0.5]);
  const runMean = [0.1, 0.2, 0.3, 0.4];
  const runVar = [1, 2, 3, 4];
  const params = {
    gamma: tf.tensor(gamma),
    beta: tf.tensor(beta),
    mean: tf.variable(tf.tensor(runMean), false),
    variance: tf.variable(tf.tensor(runVar), false),
  };
  const spec = { kind: 'batchNorm' } as const;
  const m = values.length / c;
  const mean = [0, 1, 2, 3].map((k) => values.filter((_, i) => i % c === k).reduce((a, b) => a + b, 0) / m);
  const variance = [0, 1, 2, 3].map(
    (k) => values.filter((_, i) => i % c === k).reduce((a, b) => a + (b - mean[k]) ** 2, 0) / m,
  );
  const yTrain = tf.tidy(() => batchNorm.forward(spec, x, params, { training: true }).dataSync());
  assert.ok(maxRelError(yTrain, naiveNorm(values, c, mean, variance, gamma, beta, 2e-5)) < 1e-4);
  // Chainer: running = 0.9 running + 0.1 batch, the variance unbiased (m / (m - 1)).
  const expMean = runMean.map((r, k) => 0.9 * r + 0.1 * mean[k]);
  const expVar = runVar.map((r, k) => 0.9 * r + 0.1 * variance[k] * (m / (m - 1)));
  assert.ok(maxRelError(params.mean.dataSync(), expMean) < 1e-5);
  assert.ok(maxRelError(params.variance.dataSync(), expVar) < 1e-5);
  const yInfer = tf.tidy(() => batchNorm.forward(spec, x, params, { training: false }).dataSync());
  assert.ok(maxRelError(yInfer, naiveNorm(values, c, expMean, expVar, gamma, beta, 2e-5)) < 1e-5);
  assert.ok(maxRelError(params.mean.dataSync(), expMean) < 1e-5, 'inference leaves the running statistics alone');
  // Affine at inference: as avgPool.
  checkGradient((t) => batchNorm.forward(spec, t, params, { training: false }), x, 8, 1e-4, 1e-1);
  // Batch statistics make it nonlinear (and ill-conditioned in float32, engine notes): a looser tolerance.
  const frozen = { ...params, mean: tf.tensor(runMean), variance: tf.tensor(runVar) };
  checkGradient((t) => batchNorm.forward(spec, t, frozen, { training: true }), x, 9, 1e-3, 3e-2);
  tf.dispose([x, ...Object.values(params), frozen.mean, frozen.variance]);
});

test('batch norm state is saved with the weights but kept out of the optimiser; training updates it', () => {
  const spec: BranchyNetSpec = {
    name: 'bn',
    input: [4, 4, 2],
    classes: 3,
    segments: [
      [
        { kind: 'conv2d', filters: 3, kernel: 3, pad: 1 },
        { kind: 'batchNorm' },
        { kind: 'relu' },
        { kind: 'flatten' },
        { kind: 'dense', units: 3 },
      ],
    ],
    heads: [[]],
  };
  const net = new BranchyNet(spec, 1);
  const names = net.paramList.map((p) => p.name);
  assert.deepEqual(names, [
    'trunk.0.w',
    'trunk.0.b',
    'trunk.1.gamma',
    'trunk.1.beta',
    'trunk.1.mean',
    'trunk.1.variance',
    'trunk.4.w',
    'trunk.4.b',
  ]);
  assert.equal(net.variables.length, 6);
  assert.ok(!net.variables.includes(net.params.get('trunk.1.mean')!));
  assert.equal(net.params.get('trunk.1.mean')!.trainable, false);
  assert.deepEqual(
    readWeights(net).map((a) => a.name),
    names,
  );
  const x = tf.tensor(randomArray(5 * 32, 10), [5, 4, 4, 2]);
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    const { grads } = tf.variableGrads(
      () => tf.sum(net.forwardAll(x, { training: true })[0]) as tf.Scalar,
      net.variables,
    );
    assert.deepEqual(Object.keys(grads).length, 6);
  });
  assert.equal(tf.memory().numTensors, before, 'no tensors leak from the running-average update');
  assert.notDeepEqual([...net.params.get('trunk.1.mean')!.dataSync()], [0, 0, 0]);
  tf.tidy(() => net.forwardAll(x, { training: false }));
  x.dispose();
  net.dispose();
});

test('resBlock [2,6,6,3] -> stride 2, 5 filters: shape, MACs, zero-padded subsampled shortcut, main path as its parts', () => {
  const spec = { kind: 'resBlock', filters: 5, stride: 2 } as const;
  assert.deepEqual(resBlock.outputShape(spec, [6, 6, 3]), [3, 3, 5]);
  assert.deepEqual(resBlock.outputShape(spec, [15, 15, 3]), [8, 8, 5]);
  assert.equal(resBlock.macs(spec, [6, 6, 3]), 3 * 3 * 5 * 9 * 3 + 3 * 3 * 5 * 9 * 5);
  assert.throws(
    () => resBlock.outputShape({ kind: 'resBlock', filters: 2 }, [6, 6, 3]),
    /cannot shrink 3 channels to 2/,
  );
  const decls = resBlock.params(spec, [6, 6, 3]);
  assert.deepEqual(
    decls.filter((d) => d.trainable === false).map((d) => d.name),
    ['bn1.mean', 'bn1.variance', 'bn2.mean', 'bn2.variance'],
  );
  const values = randomArray(2 * 6 * 6 * 3, 11);
  const x = tf.tensor(values, [2, 6, 6, 3]);
  const params: Record<string, tf.Tensor> = {};
  decls.forEach((d, i) => {
    const size = d.shape.reduce((a, b) => a * b, 1);
    params[d.name] = d.name.endsWith('variance')
      ? tf.tensor(
          randomArray(size, 20 + i).map((v) => 0.5 + v * v),
          d.shape,
        )
      : tf.tensor(randomArray(size, 20 + i, 0.3), d.shape);
  });
  // Shortcut alone (bn2's gamma and beta zero, so the main path is 0): relu of [zeros, x[::2, ::2]].
  const shortcutOnly = { ...params, 'bn2.gamma': tf.zeros([5]), 'bn2.beta': tf.zeros([5]) };
  const s = tf.tidy(() => resBlock.forward(spec, x, shortcutOnly, { training: false }).dataSync());
  for (let n = 0; n < 2; n++)
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++)
        for (let c = 0; c < 5; c++) {
          const expected = c < 2 ? 0 : Math.max(0, values[((n * 6 + 2 * i) * 6 + 2 * j) * 3 + (c - 2)]);
          assert.equal(s[((n * 3 + i) * 3 + j) * 5 + c], Math.fround(expected), `(${n}, ${i}, ${j}, ${c})`);
        }
  // Main path: the same arithmetic as conv2d and batchNorm layers composed (inference and training).
  const sub = (prefix: string) =>
    Object.fromEntries(
      Object.entries(params)
        .filter(([k]) => k.startsWith(prefix))
        .map(([k, v]) => [k.slice(prefix.length), v]),
    );
  for (const training of [false, true]) {
    const got = tf.tidy(() => resBlock.forward(spec, x, shortcutOnly, { training }).dataSync());
    const full = tf.tidy(() => resBlock.forward(spec, x, params, { training }).dataSync());
    const ref = tf.tidy(() => {
      let h = conv2d.forward({ kind: 'conv2d', filters: 5, kernel: 3, stride: 2, pad: 1 }, x, sub('conv1.'), {
        training,
      });
      h = tf.relu(batchNorm.forward({ kind: 'batchNorm' }, h, sub('bn1.'), { training }));
      h = conv2d.forward({ kind: 'conv2d', filters: 5, kernel: 3, pad: 1 }, h, sub('conv2.'), { training });
      return batchNorm.forward({ kind: 'batchNorm' }, h, sub('bn2.'), { training }).dataSync();
    });
    for (let i = 0; i < full.length; i++) {
      const shortcut = got[i]; // relu(shortcut) (>= 0), known exactly from above
      const expected = Math.max(0, ref[i] + (i % 5 < 2 ? 0 : s[i] > 0 ? s[i] : NaN));
      if (Number.isNaN(expected)) continue; // negative shortcut entry: its value is lost to the relu above
      assert.ok(
        Math.abs(full[i] - expected) < 1e-4,
        `training=${training} entry ${i}: ${full[i]} vs ${expected} (shortcut ${shortcut})`,
      );
    }
  }
  // Piecewise linear (relu): a large step, none of the checked entries crossing a kink.
  checkGradient((t) => resBlock.forward(spec, t, params, { training: false }), x, 12, 1e-3, 1e-1);
  x.dispose();
  tf.dispose(Object.values(params));
  tf.dispose([shortcutOnly['bn2.gamma'], shortcutOnly['bn2.beta']]);
});
