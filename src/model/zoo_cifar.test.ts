import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { loadCifar10 } from '../data/cifar10.js';
import type { Dataset } from '../data/dataset.js';
import { sliceDataset } from '../data/dataset.js';
import { channelStats, normalizeDataset } from '../data/transform.js';
import { initBackend } from '../engine/backend.js';
import { UserError } from '../errors.js';
import { deriveSeed, Rng } from '../rng.js';
import { applyExitRule, earlyExit } from '../runtime/early_exit.js';
import { rowEntropy } from '../runtime/exit_rule.js';
import { allExitLogits } from '../runtime/full_forward.js';
import { TfjsRunner } from '../runtime/tfjs_runner.js';
import { jointLoss } from '../train/loss.js';
import { createOptimizer } from '../train/trainer.js';
import { analyseSpec, BranchyNet } from './network.js';
import { baselineOf } from './spec.js';
import type { BranchyNetSpec } from './spec.js';
import { bAlexNet, bResNet, zooSpec } from './zoo.js';
import { cifarTestDir, NO_CIFAR } from '../testing/cifar.js';

const cifarDir = cifarTestDir();
/** Tests on real images skip without them. */
const noCifar = cifarDir === undefined ? NO_CIFAR : false;

/** 64 CIFAR-10 test images, normalised (when the files are there). */
let images: Dataset;
before(async () => {
  await initBackend('wasm');
  if (cifarDir === undefined) return;
  const test = sliceDataset(loadCifar10(cifarDir, 'test').test, 0, 64);
  images = normalizeDataset(test, channelStats(test));
});

const conv = (o: number, k: number, cin: number, cout: number) => o * o * k * k * cin * cout;

test('B-AlexNet: the reference shapes (exits after conv2 and conv3; 1024, 512 and 128 dense inputs) and MACs', () => {
  const spec = bAlexNet();
  const { segments, heads } = analyseSpec(spec);
  assert.deepEqual(
    segments.map((s) => s.outputShape),
    [[16, 16, 64], [8, 8, 96], [10]],
  );
  const denseInputs = (layers: { spec: { kind: string }; inputShape: number[] }[]) =>
    layers.filter((l) => l.spec.kind === 'dense').map((l) => l.inputShape[0]);
  assert.deepEqual(denseInputs(segments[2].layers), [1024, 256, 128]);
  assert.deepEqual(denseInputs(heads[0].layers), [512]);
  assert.deepEqual(denseInputs(heads[1].layers), [128]);
  assert.equal(segments[0].macs, conv(32, 5, 3, 32) + conv(16, 5, 32, 64));
  assert.equal(segments[1].macs, conv(8, 3, 64, 96));
  assert.equal(segments[2].macs, conv(8, 3, 96, 96) + conv(8, 3, 96, 64) + 1024 * 256 + 256 * 128 + 128 * 10);
  assert.equal(heads[0].macs, conv(8, 3, 64, 32) + conv(8, 3, 32, 32) + 512 * 10);
  assert.equal(heads[1].macs, conv(4, 3, 96, 32) + 128 * 10);
  // The reference's "about 28.2 M" is the trunk (the baseline AlexNet): 28,247,296; the heads add 2.2 M.
  const trunk = segments.reduce((a, s) => a + s.macs, 0);
  assert.equal(trunk, 28_247_296);
  assert.equal(analyseSpec(baselineOf(spec)).segments[0].macs, trunk);
  assert.equal(trunk + heads[0].macs + heads[1].macs, 30_465_536);
});

test("B-AlexNet@1,2 (the paper's text): the same trunk cut after conv1 and conv2, the reference heads in order", () => {
  const spec = zooSpec('b-alexnet@1,2');
  assert.equal(spec.name, 'b-alexnet@1,2');
  assert.deepEqual(baselineOf(spec).segments, baselineOf(bAlexNet()).segments);
  const { segments, heads } = analyseSpec(spec);
  assert.deepEqual(
    segments.map((s) => s.outputShape),
    [[32, 32, 32], [16, 16, 64], [10]],
  );
  assert.equal(segments[0].macs, conv(32, 5, 3, 32));
  assert.equal(heads[0].macs, conv(16, 3, 32, 32) + conv(16, 3, 32, 32) + 8 * 8 * 32 * 10);
  assert.equal(heads[1].macs, conv(8, 3, 64, 32) + 4 * 4 * 32 * 10);
  assert.equal(zooSpec('b-alexnet@2,3').name, 'b-alexnet');
  assert.deepEqual(zooSpec('b-alexnet@2,3'), bAlexNet());
  assert.equal(analyseSpec(zooSpec('b-alexnet@3')).segments.length, 2);
  for (const bad of ['b-alexnet@0,2', 'b-alexnet@2,2', 'b-alexnet@5', 'b-alexnet@1,2,3'])
    assert.throws(() => zooSpec(bad), /b-alexnet: exits follow/);
});

test("B-ResNet-(6n+2): shapes and MACs; 110 has the reference's ~232 M, 20 has 37.2 M (pad-0 stem, not He et al.'s 40.6 M)", () => {
  const block = (o: number, cin: number, cout: number) => conv(o, 3, cin, cout) + conv(o, 3, cout, cout);
  for (const [depth, trunkMacs] of [
    [20, 37_217_088],
    [32, 63_243_072],
    [110, 232_411_968],
  ] as const) {
    const n = (depth - 2) / 6;
    const { segments, heads } = analyseSpec(zooSpec(`b-resnet-${depth}`));
    assert.deepEqual(
      segments.map((s) => s.outputShape),
      [[30, 30, 16], [30, 30, 16], [10]],
    );
    assert.equal(segments[0].macs, conv(30, 3, 3, 16));
    assert.equal(segments[1].macs, n * block(30, 16, 16));
    assert.equal(
      segments[2].macs,
      block(15, 16, 32) -
        conv(15, 3, 16, 32) +
        15 * 15 * 32 * 9 * 16 +
        (n - 1) * block(15, 32, 32) +
        block(8, 32, 64) +
        (n - 1) * block(8, 64, 64) +
        576 * 10,
    );
    assert.equal(
      segments.reduce((a, s) => a + s.macs, 0),
      trunkMacs,
    );
    const avg = segments[2].layers.find((l) => l.spec.kind === 'avgPool')!;
    assert.deepEqual(
      [avg.inputShape, avg.outputShape],
      [
        [8, 8, 64],
        [3, 3, 64],
      ],
    );
    assert.equal(heads[0].macs, conv(30, 5, 16, 64) + conv(30, 3, 64, 32) + conv(30, 3, 32, 32) + 28800 * 10);
    assert.equal(heads[1].macs, block(30, 16, 16) + 14400 * 10);
  }
  // He et al.'s ResNet-20 keeps 32x32 (stem pad 1): 40,551,040 MACs, the usual "41 M"; ours is (30/32)^2 of the
  // conv work.
  assert.throws(
    () => bResNet(21),
    (e: Error) => e instanceof UserError && /depth must be 6n\+2/.test(e.message),
  );
  assert.throws(() => zooSpec('b-resnet-7'), /depth must be 6n\+2/);
  assert.throws(() => zooSpec('b-resnet'), /unknown model 'b-resnet'/);
});

test('B-ResNet exit positions and compact heads: segments cut at the named blocks, the trunk (the baseline) unchanged', () => {
  const block = (o: number, cin: number, cout: number) => conv(o, 3, cin, cout) + conv(o, 3, cout, cout);
  const reference = analyseSpec(bResNet(20));
  const trunkMacs = reference.segments.reduce((a, s) => a + s.macs, 0);
  const spec = zooSpec('b-resnet-20-compact@1,3,6');
  assert.equal(spec.name, 'b-resnet-20-compact@1,3,6');
  const unnamed = ({ name: _name, ...rest }: BranchyNetSpec) => rest;
  assert.deepEqual(
    unnamed(baselineOf(spec)),
    unnamed(baselineOf(bResNet(20))),
    'same baseline, so one trained trunk serves every exit layout',
  );
  const { segments, heads } = analyseSpec(spec);
  assert.deepEqual(
    segments.map((s) => s.outputShape),
    [[30, 30, 16], [30, 30, 16], [15, 15, 32], [10]],
  );
  assert.equal(segments[0].macs, conv(30, 3, 3, 16) + block(30, 16, 16));
  assert.equal(segments[1].macs, 2 * block(30, 16, 16));
  assert.equal(
    segments.reduce((a, s) => a + s.macs, 0),
    trunkMacs,
  );
  // Compact head: conv 3x3 stride 2 doubling the channels, batch norm, relu, global average pool, dense.
  assert.equal(heads[0].macs, conv(15, 3, 16, 32) + 32 * 10);
  assert.equal(heads[2].macs, conv(8, 3, 32, 64) + 64 * 10);
  const pool = heads[2].layers.find((l) => l.spec.kind === 'avgPool')!;
  assert.deepEqual(pool.outputShape, [1, 1, 64]);
  assert.deepEqual(zooSpec('b-resnet-20-compact').segments.length, 3);
  // 2conv heads: a second stride-2 convolution doubling the channels again, then the same pooling and dense layer.
  assert.equal(zooSpec('b-resnet-20-2conv@1,3,6').name, 'b-resnet-20-2conv@1,3,6');
  const twoConv = analyseSpec(zooSpec('b-resnet-20-2conv@1,3,6'));
  assert.equal(twoConv.heads[0].macs, conv(15, 3, 16, 32) + conv(8, 3, 32, 64) + 64 * 10);
  assert.equal(twoConv.heads[2].macs, conv(8, 3, 32, 64) + conv(4, 3, 64, 128) + 128 * 10);
  assert.deepEqual(twoConv.heads[2].layers.at(-1)!.outputShape, [10]);
  assert.throws(() => zooSpec('b-resnet-20@1,3'), /reference heads only fit exits after blocks 0 and 3/);
  assert.throws(() => zooSpec('b-resnet-20-compact@3,3'), /exit positions must be increasing block counts from 0 to 8/);
  assert.throws(() => zooSpec('b-resnet-20-compact@9'), /from 0 to 8/);
});

/**
 * One Adam step of the joint loss as the trainer takes it (with a seeded rng for dropout); returns the per-exit
 * losses.
 */
function trainStep(net: BranchyNet, data: Dataset, rng: Rng): number[] {
  const optimizer = createOptimizer({ learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
  const losses = tf.tidy(() => {
    const x = tf.tensor4d(data.images, [data.count, ...data.shape]);
    const oneHot = tf.oneHot(tf.tensor1d(data.labels, 'int32'), 10);
    let perExit: tf.Tensor | undefined;
    const { grads } = tf.variableGrads(() => {
      const r = jointLoss(net.forwardAll(x, { training: true, rng }), oneHot, [1, 1, 1]);
      perExit = tf.keep(tf.stack(r.perExit));
      return r.total;
    }, net.variables);
    for (const g of Object.values(grads)) assert.ok(tf.all(tf.isFinite(g)).dataSync()[0], 'finite gradients');
    optimizer.applyGradients(grads as unknown as Parameters<tf.AdamOptimizer['applyGradients']>[0]);
    return perExit!;
  });
  const out = Array.from(losses.dataSync());
  losses.dispose();
  optimizer.dispose();
  return out;
}

for (const [name, make] of [
  ['B-AlexNet', bAlexNet],
  ['B-ResNet-20', () => bResNet(20)],
] as const) {
  test(
    `${name}: a forward pass and one training step on 8 CIFAR images stay finite and move the weights`,
    { skip: noCifar },
    () => {
      const net = new BranchyNet(make(), 3);
      const batch = sliceDataset(images, 0, 8);
      const logits = allExitLogits(net, batch);
      for (const l of logits) assert.ok(l.every(Number.isFinite), 'finite logits');
      const weightsBefore = net.variables.map((v) => v.dataSync().slice());
      const stateNames = net.paramList.filter((p) => p.decl.trainable === false).map((p) => p.name);
      const stateBefore = stateNames.map((n) => net.params.get(n)!.dataSync().slice());
      const before = tf.memory().numTensors;
      const losses = trainStep(net, batch, new Rng(deriveSeed(1, 'test')));
      assert.equal(tf.memory().numTensors, before, 'the step leaks no tensors');
      assert.equal(losses.length, 3);
      for (const l of losses) assert.ok(Number.isFinite(l) && l > 0 && l < 50, `loss ${l}`);
      const moved = net.variables.filter((v, i) => v.dataSync().some((x, j) => x !== weightsBefore[i][j])).length;
      assert.equal(moved, net.variables.length, 'every trainable parameter moved');
      stateNames.forEach((n, i) => {
        const now = net.params.get(n)!.dataSync();
        assert.ok(
          now.every(Number.isFinite) && now.some((x, j) => x !== stateBefore[i][j]),
          `${n} updated by the training forward`,
        );
      });
      for (const l of allExitLogits(net, batch)) assert.ok(l.every(Number.isFinite), 'finite logits after the step');
      net.dispose();
    },
  );
}

for (const [name, make, count] of [
  ['B-AlexNet', () => bAlexNet(), 40],
  ['B-AlexNet@1,2', () => bAlexNet({ exitsAfter: [1, 2] }), 40],
  ['B-ResNet-20', () => bResNet(20), 12],
] as const)
  test(
    `${name} (random weights, inference): batch-1 and batched early exit give the full forward pass's answers`,
    { skip: noCifar },
    () => {
      const net = new BranchyNet(make(), 5);
      const data = sliceDataset(images, 0, count);
      const logits = allExitLogits(net, data, 17);
      const thresholds = logits.slice(0, -1).map((l) => {
        const h = Array.from({ length: count }, (_, i) => rowEntropy(l, i, 10).entropy).sort((a, b) => a - b);
        return h[Math.floor(0.4 * (count - 1))];
      });
      const reference = applyExitRule(logits, count, 10, thresholds);
      const exitCounts = [0, 0, 0];
      reference.exitTaken.forEach((k) => exitCounts[k - 1]++);
      assert.ok(
        exitCounts.every((c) => c > 0),
        `every exit answers some samples: ${exitCounts}`,
      );
      const before = tf.memory().numTensors;
      for (const batchSize of [1, 7, count]) {
        const r = earlyExit(new TfjsRunner(net), data.images, count, thresholds, batchSize);
        assert.deepEqual(r.predictions, reference.predictions, `predictions at batch ${batchSize}`);
        assert.deepEqual(r.exitTaken, reference.exitTaken, `exits at batch ${batchSize}`);
        for (let i = 0; i < count; i++) assert.ok(Math.abs(r.entropies[i] - reference.entropies[i]) < 1e-4);
      }
      assert.equal(tf.memory().numTensors, before, 'early exit leaks no tensors');
      if (name === 'B-AlexNet') {
        // The exit-1 head and the trunk share relu, pool and LRN: computed once, at the end of segment 1.
        assert.deepEqual(
          net.stages.segments[0].map((l) => l.spec.kind),
          ['conv2d', 'relu', 'maxPool', 'lrn', 'conv2d', 'relu', 'maxPool', 'lrn'],
        );
      }
      net.dispose();
    },
  );
