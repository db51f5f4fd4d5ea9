/**
 * One BranchyNet training step (joint loss, Adam), as src/train/trainer.ts does it,
 * on synthetic data: shared by the training-throughput benchmark and the
 * backend-agreement tests.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs';
import { BranchyNet } from '../model/network.js';
import type { BranchyNetSpec } from '../model/spec.js';
import { baselineOf } from '../model/spec.js';
import { bResNet, MODEL_ZOO } from '../model/zoo.js';
import { Rng } from '../rng.js';
import { FusedAdamOptimizer } from '../train/fused_adam.js';
import { jointLoss } from '../train/loss.js';

/** Plain LeNet (20/50 channels, as Caffe's): one exit. */
export function lenet2050(): BranchyNetSpec {
  return {
    name: 'lenet-20-50',
    input: [28, 28, 1],
    classes: 10,
    segments: [[
      { kind: 'conv2d', filters: 20, kernel: 5 },
      { kind: 'maxPool', size: 2, stride: 2 },
      { kind: 'relu' },
      { kind: 'conv2d', filters: 50, kernel: 5 },
      { kind: 'maxPool', size: 2, stride: 2 },
      { kind: 'relu' },
      { kind: 'flatten' },
      { kind: 'dense', units: 500 },
      { kind: 'relu' },
      { kind: 'dense', units: 10 },
    ]],
    heads: [[]],
    lossWeights: [1],
  };
}

/**
 * The networks the training benchmarks time, by name: the zoo's B-LeNet, B-AlexNet and
 * B-ResNet-20, a 20/50 LeNet, and the plain ResNet-20 (B-ResNet-20's trunk alone, the network the
 * training-speed bar names).
 */
export const BENCH_MODELS: Readonly<Record<string, () => BranchyNetSpec>> = {
  'b-lenet': MODEL_ZOO['b-lenet']!,
  'lenet-20-50': lenet2050,
  'b-alexnet': MODEL_ZOO['b-alexnet']!,
  'b-resnet-20': MODEL_ZOO['b-resnet-20']!,
  'resnet-20': () => ({ ...baselineOf(bResNet(20)), name: 'resnet-20' }),
};

/** Deterministic synthetic batches: `count` batches of `batchSize` images (uniform [0,1)) and labels. */
export function syntheticBatches(spec: BranchyNetSpec, batchSize: number, count: number, seed = 1): { images: Float32Array; labels: Int32Array }[] {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  const size = spec.input.reduce((a, b) => a * b, 1);
  return Array.from({ length: count }, () => {
    const images = new Float32Array(batchSize * size);
    for (let i = 0; i < images.length; i++) images[i] = next();
    const labels = new Int32Array(batchSize);
    for (let i = 0; i < batchSize; i++) labels[i] = Math.floor(next() * spec.classes);
    return { images, labels };
  });
}

/** A net and its Adam optimiser on the current backend; `step` trains one batch and returns each exit's loss. */
export function createTrainer(spec: BranchyNetSpec, seed = 0, learningRate = 1e-3): {
  net: BranchyNet;
  step(images: Float32Array, labels: Int32Array): Float32Array;
  dispose(): void;
} {
  const net = new BranchyNet(spec, seed);
  const optimizer = new FusedAdamOptimizer(learningRate);
  const variables = net.variables;
  const rng = new Rng(seed + 1);   // dropout masks
  const lossWeights = spec.lossWeights ?? spec.segments.map(() => 1);
  return {
    net,
    step(images, labels) {
      const n = labels.length;
      const perExit = tf.tidy(() => {
        const x = tf.tensor4d(images, [n, ...spec.input] as [number, number, number, number]);
        const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), spec.classes);
        let losses: tf.Tensor | undefined;
        const { grads } = tf.variableGrads(() => {
          const { total, perExit } = jointLoss(net.forwardAll(x, { training: true, rng }), oneHot, lossWeights);
          losses = tf.keep(tf.stack(perExit));
          return total;
        }, variables);
        optimizer.applyGradients(grads as unknown as Parameters<tf.AdamOptimizer['applyGradients']>[0]);
        return losses!;
      });
      const values = perExit.dataSync() as Float32Array;
      perExit.dispose();
      return values;
    },
    dispose() {
      optimizer.dispose();
      net.dispose();   // its trainable variables and layer state (batch-norm running statistics)
    },
  };
}
