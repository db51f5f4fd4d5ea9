import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../engine/backend.js';
import { BranchyNet } from '../model/network.js';
import { randomDataset, tinySpec } from '../testing/fixtures.js';
import { jointLoss, softmaxCrossEntropy, stopGradient } from './loss.js';

before(async () => {
  await initBackend('wasm');
});

test('softmaxCrossEntropy equals -log softmax of the true class, averaged', () => {
  const logits = tf.tensor2d([
    [1, 2, 3],
    [0, 0, 5],
  ]);
  const oneHot = tf.tensor2d([
    [0, 0, 1],
    [1, 0, 0],
  ]);
  const lse = (r: number[]) => Math.log(r.reduce((a, b) => a + Math.exp(b), 0));
  const expected = (lse([1, 2, 3]) - 3 + (lse([0, 0, 5]) - 0)) / 2;
  assert.ok(Math.abs(softmaxCrossEntropy(logits, oneHot).dataSync()[0] - expected) < 1e-6);
  tf.dispose([logits, oneHot]);
});

test('gradients of the weighted joint loss of a 3-exit net match central finite differences', () => {
  const spec = tinySpec();
  const net = new BranchyNet(spec, 4);
  const data = randomDataset(6, spec.input, spec.classes, 8);
  const x = tf.tensor4d(data.images, [6, ...spec.input]);
  const oneHot = tf.oneHot(tf.tensor1d(Array.from(data.labels), 'int32'), spec.classes);
  const weights = [1, 0.3, 0.7];
  const loss = () => jointLoss(net.forwardAll(x, { training: true }), oneHot, weights).total;
  const { grads } = tf.variableGrads(loss, net.variables);
  const names = net.paramList.map((p) => p.name);
  let checked = 0;
  let kinks = 0;
  for (const [i, v] of net.variables.entries()) {
    const g = grads[v.name].dataSync();
    const values = v.dataSync().slice();
    // A few coordinates per parameter, in float32 with step 1e-3. Where a relu or max pool
    // switches inside the step, the one-sided slopes disagree: such a kink is no test of the
    // gradient and is skipped (and counted, so that skipping cannot hide everything).
    for (const j of [0, Math.floor(values.length / 2), values.length - 1]) {
      const eps = 1e-3;
      const at = (delta: number) => {
        const copy = values.slice();
        copy[j] += delta;
        v.assign(tf.tensor(copy, v.shape));
        return tf.tidy(() => loss().dataSync()[0]);
      };
      const [minus, zero, plus] = [at(-eps), at(0), at(eps)];
      v.assign(tf.tensor(values, v.shape));
      const left = (zero - minus) / eps;
      const right = (plus - zero) / eps;
      const tol = 2e-3 + 2e-2 * Math.abs(g[j]);
      if (Math.abs(left - right) > tol) {
        kinks++;
        continue;
      }
      const numeric = (plus - minus) / (2 * eps);
      assert.ok(Math.abs(g[j] - numeric) < tol, `${names[i]}[${j}]: analytic ${g[j]}, numeric ${numeric}`);
      checked++;
    }
  }
  assert.ok(checked >= 0.8 * 3 * names.length, `only ${checked} coordinates checked, ${kinks} at kinks`);
  tf.dispose([x, oneHot, ...Object.values(grads)]);
  net.dispose();
});

test('stopGradient passes the value on and no gradient back', () => {
  const x = tf.tensor1d([0.5, -2, 3]);
  // d/dx sum(stop(x) * x) = stop(x) = x; without the stop it would be 2x.
  const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(stopGradient(a), a)))(x);
  assert.deepEqual(Array.from(g.dataSync()), [0.5, -2, 3]);
  assert.deepEqual(Array.from(stopGradient(x).dataSync()), [0.5, -2, 3]);
  tf.dispose([x, g]);
});

test('distillation: earlier exits get the soft-target gradient, the last exit (the teacher) none of it', () => {
  const rows = [
    [1, -0.5, 2, 0],
    [0.3, 0.1, -1, 1.5],
  ];
  const early = tf.tensor2d(rows);
  const mid = tf.tensor2d([
    [0, 1, 0.5, -1],
    [2, 0, 0, 1],
  ]);
  const last = tf.tensor2d([
    [2, 0, -1, 0.5],
    [-1, 3, 0, 0],
  ]);
  const oneHot = tf.tensor2d([
    [0, 0, 1, 0],
    [0, 0, 0, 1],
  ]);
  const weights = [2, 0.5, 1];
  const distill = { weight: 0.7, temperature: 3 };
  const grads = (d?: typeof distill) =>
    tf
      .grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => jointLoss([a, b, c], oneHot, weights, d).total)([
        early,
        mid,
        last,
      ])
      .map((t) => Array.from(t.dataSync()));
  const [gEarly, gMid, gLast] = grads(distill);
  const [hEarly, hMid, hLast] = grads();
  const softmax = (r: number[], t: number) => {
    const e = r.map((v) => Math.exp(v / t));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  };
  const lastRows = last.arraySync();
  const n = rows.length;
  // d/dz of w * alpha * T^2 * mean(CE(softmax(z / T), p_teacher)) = w * alpha * T * (q - p) / n.
  const expectExtra = (k: number, zRows: number[][]) =>
    zRows.flatMap((r, i) => {
      const q = softmax(r, distill.temperature);
      const p = softmax(lastRows[i], distill.temperature);
      return q.map((qc, c) => (weights[k] * distill.weight * distill.temperature * (qc - p[c])) / n);
    });
  const close = (a: number[], b: number[], what: string) =>
    a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-5, `${what}[${i}]: ${v} vs ${b[i]}`));
  close(
    gEarly.map((v, i) => v - hEarly[i]),
    expectExtra(0, rows),
    'exit 1',
  );
  close(
    gMid.map((v, i) => v - hMid[i]),
    expectExtra(1, mid.arraySync()),
    'exit 2',
  );
  close(gLast, hLast, 'last exit');
  // Weight 0 is the plain joint loss.
  close(grads({ weight: 0, temperature: 3 })[0], hEarly, 'weight 0');
  tf.dispose([early, mid, last, oneHot]);
});
