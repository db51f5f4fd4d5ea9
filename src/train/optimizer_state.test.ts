import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../engine/backend.js';
import { createOptimizer, restoreOptimizer, saveOptimizer } from './trainer.js';

before(async () => {
  await initBackend('cpu');
});

const CONFIG = { learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };

/** `steps` Adam steps on one variable, with gradients that vary from step to step. */
function train(opt: tf.AdamOptimizer, v: tf.Variable, from: number, steps: number): void {
  for (let k = from; k < from + steps; k++) {
    tf.tidy(() =>
      opt.applyGradients([{ name: v.name, tensor: tf.tensor1d([Math.sin(k), Math.cos(3 * k), 0.5, -1 / (k + 1)]) }]),
    );
  }
}

test("an Adam checkpoint resumes exactly: after 300 steps, saved and restored, 5 more steps give the straight run's weights bit for bit", async () => {
  const straight = tf.variable(tf.tensor1d([1, -2, 3, 0.5]), true, 'optState/straight');
  const optA = createOptimizer(CONFIG);
  train(optA, straight, 0, 305);

  const killed = tf.variable(tf.tensor1d([1, -2, 3, 0.5]), true, 'optState/killed');
  const optB = createOptimizer(CONFIG);
  train(optB, killed, 0, 300);
  const saved = await saveOptimizer(optB, '');
  assert.deepEqual(
    saved.slice(-2).map((a) => a.name),
    ['#accBeta1', '#accBeta2'],
  );
  const weights = killed.dataSync().slice(); // as a checkpoint holds them
  killed.dispose();
  const resumed = tf.variable(tf.tensor1d(weights), true, 'optState/killed');
  optB.dispose();
  const optC = createOptimizer(CONFIG);
  await restoreOptimizer(optC, saved);
  train(optC, resumed, 300, 5);
  assert.deepEqual(resumed.dataSync(), straight.dataSync());
  const products = (o: tf.AdamOptimizer) => {
    const { accBeta1, accBeta2 } = o as unknown as { accBeta1: tf.Variable; accBeta2: tf.Variable };
    return [accBeta1.dataSync()[0], accBeta2.dataSync()[0]];
  };
  assert.deepEqual(products(optC), products(optA), 'the bias-correction products continue exactly');

  // A checkpoint written before the products were saved still restores, with tfjs's
  // pow(beta, t + 1): products a few float32 steps off the straight run's, weights close.
  const legacy = tf.variable(tf.tensor1d([1, -2, 3, 0.5]), true, 'optState/legacy');
  const optD = createOptimizer(CONFIG);
  train(optD, legacy, 0, 300);
  const old = (await saveOptimizer(optD, '')).filter((a) => !a.name.startsWith('#'));
  optD.dispose();
  const optE = createOptimizer(CONFIG);
  await restoreOptimizer(optE, old);
  assert.notDeepEqual(
    products(optE),
    saved.slice(-2).map((a) => a.data[0]),
    'pow(beta, t + 1) is not the product',
  );
  train(optE, legacy, 300, 5);
  const diff = Math.max(...Array.from(legacy.dataSync(), (x, i) => Math.abs(x - straight.dataSync()[i]!)));
  assert.ok(diff < 1e-5, `legacy resume close to the straight run: ${diff}`);
  tf.dispose([straight, resumed, legacy]);
  [optA, optC, optE].forEach((o) => o.dispose());
});
