import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../engine/backend.js';
import { BranchyNet } from '../model/network.js';
import { randomDataset, tinySpec } from '../testing/fixtures.js';
import { jointLoss, softmaxCrossEntropy } from './loss.js';

before(async () => {
  await initBackend('wasm');
});

test('softmaxCrossEntropy equals -log softmax of the true class, averaged', () => {
  const logits = tf.tensor2d([[1, 2, 3], [0, 0, 5]]);
  const oneHot = tf.tensor2d([[0, 0, 1], [1, 0, 0]]);
  const lse = (r: number[]) => Math.log(r.reduce((a, b) => a + Math.exp(b), 0));
  const expected = ((lse([1, 2, 3]) - 3) + (lse([0, 0, 5]) - 0)) / 2;
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
