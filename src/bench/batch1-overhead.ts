/**
 * Where batch-1 time goes on the tfjs runtime: kernels launched per sample on the early-exit path
 * and on the baseline, the fixed cost of one tiny kernel, and the bound that puts on the batch-1
 * speed-up. Usage: node dist/bench/batch1-overhead.js [--model DIR] [--samples N]
 */
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { loadMnist } from '../data/mnist.js';
import { initBackend } from '../engine/backend.js';
import { loadModel, trunkOf } from '../model/io.js';
import { earlyExit } from '../runtime/early_exit.js';
import { TfjsRunner } from '../runtime/tfjs_runner.js';

const { values } = parseArgs({ options: { model: { type: 'string' }, samples: { type: 'string' } } });
await initBackend('wasm');
const model = loadModel(values.model ?? 'models/b-lenet-mnist');
const baselineNet = model.baseline ?? trunkOf(model.net);
const thresholds = model.thresholds!;
const early = new TfjsRunner(model.net);
const base = new TfjsRunner(baselineNet);
const { test } = loadMnist();
const samples = Number(values.samples ?? 2000);
const size = 28 * 28;

async function kernelsPerSample(run: () => void): Promise<number> {
  const info = await tf.profile(run);
  // tf.profile also lists op scopes (named '<op>__op'); count kernels only.
  return info.kernels.filter((k) => !k.name.endsWith('__op')).length;
}
const one = test.images.subarray(0, size);
// Kernels for one sample leaving at exit 1, one going on to exit 2, and the baseline.
const exitOne = await kernelsPerSample(() =>
  earlyExit(
    early,
    one,
    1,
    thresholds.map(() => Infinity),
    1,
  ),
);
const exitLast = await kernelsPerSample(() =>
  earlyExit(
    early,
    one,
    1,
    thresholds.map(() => 0),
    1,
  ),
);
const baseline = await kernelsPerSample(() => earlyExit(base, one, 1, [], 1));

// The fixed cost of launching a kernel: a relu on four numbers, plus the read-back of a result.
const tiny = tf.tensor2d([1, -2, 3, -4], [1, 4]);
const reps = 5000;
for (let i = 0; i < reps; i++) tf.relu(tiny).dispose();
let t = performance.now();
for (let i = 0; i < reps; i++) tf.relu(tiny).dispose();
const perKernelUs = ((performance.now() - t) * 1000) / reps;
t = performance.now();
for (let i = 0; i < reps; i++) {
  const r = tf.relu(tiny);
  r.dataSync();
  r.dispose();
}
const perSyncUs = ((performance.now() - t) * 1000) / reps - perKernelUs;

// Measured batch-1 times, interleaved.
let earlyMs = 0;
let baseMs = 0;
const exits = [0, 0];
for (let first = 0; first < samples; first += 250) {
  const n = Math.min(250, samples - first);
  const images = test.images.subarray(first * size, (first + n) * size);
  let s = performance.now();
  const r = earlyExit(early, images, n, thresholds, 1);
  earlyMs += performance.now() - s;
  s = performance.now();
  earlyExit(base, images, n, [], 1);
  baseMs += performance.now() - s;
  r.exitTaken.forEach((k) => exits[Math.min(k - 1, 1)]++);
}
const f1 = exits[0] / samples;
const kernelsEarly = f1 * exitOne + (1 - f1) * exitLast;
console.log(`kernels per sample: early exit at exit 1 ${exitOne}, at the last exit ${exitLast}, baseline ${baseline}`);
console.log(`tiny kernel ${perKernelUs.toFixed(1)} us, read-back ${perSyncUs.toFixed(1)} us`);
console.log(
  `exit-1 fraction ${(100 * f1).toFixed(1)} %: ${kernelsEarly.toFixed(2)} kernels per sample vs ${baseline} -> kernel-count bound ${(baseline / kernelsEarly).toFixed(2)}x`,
);
console.log(
  `measured batch 1 over ${samples} samples: early exit ${(earlyMs / samples).toFixed(3)} ms, baseline ${(baseMs / samples).toFixed(3)} ms -> ${(baseMs / earlyMs).toFixed(2)}x`,
);
console.log(
  `fixed cost share of the early-exit path: ${((100 * (kernelsEarly * perKernelUs + perSyncUs * (1 + (1 - f1)))) / ((1000 * earlyMs) / samples)).toFixed(0)} %`,
);
