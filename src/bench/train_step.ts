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
    segments: [
      [
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
      ],
    ],
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
export function syntheticBatches(
  spec: BranchyNetSpec,
  batchSize: number,
  count: number,
  seed = 1,
): { images: Float32Array; labels: Int32Array }[] {
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

/**
 * A net and its Adam optimiser on the current backend; `step` trains one batch and returns each exit's
 * loss (before the update). `loss` returns each exit's loss on a batch as the first step saw it
 * (training mode, the first step's dropout masks) without an update: the same batch before and after
 * steps tells whether they trained anything. It moves batch norm's running statistics, as a step does.
 */
export function createTrainer(
  spec: BranchyNetSpec,
  seed = 0,
  learningRate = 1e-3,
): {
  net: BranchyNet;
  step(images: Float32Array, labels: Int32Array): Float32Array;
  loss(images: Float32Array, labels: Int32Array): Float32Array;
  dispose(): void;
} {
  const net = new BranchyNet(spec, seed);
  const optimizer = new FusedAdamOptimizer(learningRate);
  const variables = net.variables;
  const dropoutSeed = seed + 1;
  const rng = new Rng(dropoutSeed); // dropout masks of the steps
  const lossWeights = spec.lossWeights ?? spec.segments.map(() => 1);
  /** Inside tf.tidy: the joint loss and each exit's loss of a batch. */
  const jointLossOf = (images: Float32Array, labels: Int32Array, masks: Rng) => {
    const n = labels.length;
    const x = tf.tensor4d(images, [n, ...spec.input] as [number, number, number, number]);
    const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), spec.classes);
    return jointLoss(net.forwardAll(x, { training: true, rng: masks }), oneHot, lossWeights);
  };
  const read = (t: tf.Tensor): Float32Array => {
    const values = t.dataSync() as Float32Array;
    t.dispose();
    return values;
  };
  return {
    net,
    step(images, labels) {
      return read(
        tf.tidy(() => {
          let losses: tf.Tensor | undefined;
          const { grads } = tf.variableGrads(() => {
            const { total, perExit } = jointLossOf(images, labels, rng);
            losses = tf.keep(tf.stack(perExit));
            return total;
          }, variables);
          optimizer.applyGradients(grads as unknown as Parameters<tf.AdamOptimizer['applyGradients']>[0]);
          return losses!;
        }),
      );
    },
    loss(images, labels) {
      return read(tf.tidy(() => tf.stack(jointLossOf(images, labels, new Rng(dropoutSeed)).perExit)));
    },
    dispose() {
      optimizer.dispose();
      net.dispose(); // its trainable variables and layer state (batch-norm running statistics)
    },
  };
}
