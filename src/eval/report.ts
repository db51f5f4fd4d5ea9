import * as tf from '@tensorflow/tfjs-core';
import type { Dataset } from '../data/dataset.js';
import { imageSize } from '../data/dataset.js';
import type { BranchyNet } from '../model/network.js';
import type { ExitResults } from '../runtime/early_exit.js';
import { earlyExitAsync } from '../runtime/early_exit.js';
import type { StageRunner } from '../runtime/runner.js';
import { cumulativeExitMacs, formatThreshold } from './calibrate.js';

export interface EvalReport {
  model: string;
  dataset: string;
  samples: number;
  runtime: string;
  /** The tfjs backend active during the evaluation (what the tfjs runtime ran on). */
  backend: string;
  accuracy: number;
  thresholds: number[];
  exitFractions: number[];
  /** Accuracy among the samples that left at each exit (null where none did). */
  exitAccuracies: (number | null)[];
  /** Batch 1, everything timed: trunk, heads, softmax, entropy, decision. */
  msPerSample: number;
  /** baseline.msPerSample / msPerSample, both measured in this run, interleaved. */
  speedup: number;
  /** Ideal speed-up from MAC counts and the measured exit fractions. */
  macSpeedup: number;
  macs: { baseline: number; earlyExit: number; perExit: number[] };
  baseline: { accuracy: number; msPerSample: number; samplesPerSecond: number };
  batched: { batchSize: number; samplesPerSecond: number; baselineSamplesPerSecond: number; speedup: number };
  timing: { batch1Samples: number; batchedSamples: number; rounds: number };
}

interface Timed {
  seconds: number;
}

async function timeRun<A>(runner: StageRunner<A>, images: Float32Array, count: number, thresholds: number[], batchSize: number): Promise<ExitResults & Timed> {
  const start = performance.now();
  // Awaits only the stages of asynchronous runners: a synchronous (tfjs) runner runs as with earlyExit.
  const r = await earlyExitAsync(runner, images, count, thresholds, batchSize);
  return { ...r, seconds: (performance.now() - start) / 1000 };
}

/**
 * Times baseline and early exit side by side: the samples are cut into chunks and the two
 * alternate chunk by chunk (ABBA order), so drift in machine load hits both alike.
 */
async function interleaved<A, B>(
  early: StageRunner<A>,
  base: StageRunner<B>,
  data: Dataset,
  count: number,
  thresholds: number[],
  batchSize: number,
  chunk: number,
): Promise<{ earlySeconds: number; baseSeconds: number; rounds: number; earlyResults: ExitResults; baseResults: ExitResults }> {
  const size = imageSize(data);
  const results = (): ExitResults => ({ predictions: new Int32Array(count), exits: new Uint8Array(count), entropies: new Float32Array(count) });
  const earlyResults = results();
  const baseResults = results();
  const keep = (into: ExitResults, from: ExitResults, first: number) => {
    into.predictions.set(from.predictions, first);
    into.exits.set(from.exits, first);
    into.entropies.set(from.entropies, first);
  };
  let earlySeconds = 0;
  let baseSeconds = 0;
  let rounds = 0;
  for (let first = 0; first < count; first += chunk) {
    const n = Math.min(chunk, count - first);
    const images = data.images.subarray(first * size, (first + n) * size);
    const runEarly = async () => {
      const r = await timeRun(early, images, n, thresholds, batchSize);
      earlySeconds += r.seconds;
      keep(earlyResults, r, first);
    };
    const runBase = async () => {
      const r = await timeRun(base, images, n, [], batchSize);
      baseSeconds += r.seconds;
      keep(baseResults, r, first);
    };
    if (rounds % 2 === 0) {
      await runBase();
      await runEarly();
    } else {
      await runEarly();
      await runBase();
    }
    rounds++;
  }
  return { earlySeconds, baseSeconds, rounds, earlyResults, baseResults };
}

export async function evaluate<A, B>(args: {
  name: string;
  dataset: string;
  runtime: string;
  net: BranchyNet;
  baselineNet: BranchyNet;
  early: StageRunner<A>;
  base: StageRunner<B>;
  test: Dataset;
  thresholds: number[];
  /** How many test samples to time at batch 1 (default: all). */
  timingSamples?: number;
  batchSize?: number;
  log?: (line: string) => void;
}): Promise<EvalReport> {
  const { net, test, thresholds, early, base } = args;
  const batchSize = args.batchSize ?? 256;
  const log = args.log ?? (() => {});
  const size = imageSize(test);

  // Warm up both paths (first calls compile kernels, plan buffers and grow the heap), at batch 1
  // and with a few full batches.
  const warm = Math.min(64, test.count);
  await earlyExitAsync(early, test.images.subarray(0, warm * size), warm, thresholds, 1);
  await earlyExitAsync(base, test.images.subarray(0, warm * size), warm, [], 1);
  const warmBatched = Math.min(4 * batchSize, test.count);
  await earlyExitAsync(early, test.images.subarray(0, warmBatched * size), warmBatched, thresholds, batchSize);
  await earlyExitAsync(base, test.images.subarray(0, warmBatched * size), warmBatched, [], batchSize);

  log(`accuracy and batched throughput at batch ${batchSize} on ${test.count} samples...`);
  const batchedChunk = batchSize * 8;
  const batched = await interleaved(early, base, test, test.count, thresholds, batchSize, batchedChunk);
  const earlyAll = batched.earlyResults;
  const baseAll = batched.baseResults;

  const timingSamples = Math.min(args.timingSamples ?? test.count, test.count);
  log(`batch-1 latency on ${timingSamples} samples, interleaved with the baseline...`);
  const single = await interleaved(early, base, test, timingSamples, thresholds, 1, 250);
  for (let i = 0; i < timingSamples; i++) {
    if (single.earlyResults.predictions[i] !== earlyAll.predictions[i] || single.earlyResults.exits[i] !== earlyAll.exits[i]) {
      throw new Error(`evaluate: batch-1 and batched early exit disagree on sample ${i}`);
    }
  }

  const exits = net.exits;
  const counts = new Array(exits).fill(0);
  const right = new Array(exits).fill(0);
  let correct = 0;
  let baseCorrect = 0;
  for (let i = 0; i < test.count; i++) {
    const k = earlyAll.exits[i];
    counts[k]++;
    if (earlyAll.predictions[i] === test.labels[i]) {
      correct++;
      right[k]++;
    }
    if (baseAll.predictions[i] === test.labels[i]) baseCorrect++;
  }
  const exitFractions = counts.map((c) => c / test.count);
  const perExit = cumulativeExitMacs(net.macs());
  const earlyMacs = exitFractions.reduce((s, f, k) => s + f * perExit[k], 0);
  const baselineMacs = args.baselineNet.macs().segments[0];
  const msPerSample = (single.earlySeconds * 1000) / timingSamples;
  const baselineMs = (single.baseSeconds * 1000) / timingSamples;
  const earlyRate = test.count / batched.earlySeconds;
  const baseRate = test.count / batched.baseSeconds;
  return {
    model: args.name,
    dataset: args.dataset,
    samples: test.count,
    runtime: args.runtime,
    backend: tf.getBackend(),
    accuracy: correct / test.count,
    thresholds,
    exitFractions,
    exitAccuracies: counts.map((c, k) => (c === 0 ? null : right[k] / c)),
    msPerSample,
    speedup: baselineMs / msPerSample,
    macSpeedup: baselineMacs / earlyMacs,
    macs: { baseline: baselineMacs, earlyExit: earlyMacs, perExit },
    baseline: { accuracy: baseCorrect / test.count, msPerSample: baselineMs, samplesPerSecond: 1000 / baselineMs },
    batched: { batchSize, samplesPerSecond: earlyRate, baselineSamplesPerSecond: baseRate, speedup: earlyRate / baseRate },
    timing: { batch1Samples: timingSamples, batchedSamples: test.count, rounds: single.rounds },
  };
}

const pct = (v: number | null) => (v === null ? '-' : (100 * v).toFixed(2));

/** A readable table in the shape of a row of the paper's Table I. */
export function formatReport(r: EvalReport): string {
  const rows = [
    ['network', 'acc %', 'ms/sample (b1)', 'samples/s (b' + r.batched.batchSize + ')', 'speed-up b1', 'speed-up b' + r.batched.batchSize, 'T', 'exit %'],
    ['baseline', pct(r.baseline.accuracy), r.baseline.msPerSample.toFixed(3), Math.round(r.batched.baselineSamplesPerSecond).toString(), '', '', '', ''],
    [
      r.model,
      pct(r.accuracy),
      r.msPerSample.toFixed(3),
      Math.round(r.batched.samplesPerSecond).toString(),
      `${r.speedup.toFixed(2)}x`,
      `${r.batched.speedup.toFixed(2)}x`,
      r.thresholds.map(formatThreshold).join(', '),
      r.exitFractions.map((f) => (100 * f).toFixed(1)).join(', '),
    ],
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const line = (row: string[]) => '| ' + row.map((cell, c) => cell.padEnd(widths[c])).join(' | ') + ' |';
  return [
    `${r.dataset} test set, ${r.samples} samples, runtime ${r.runtime}${r.runtime === 'tfjs' ? ` (${r.backend} backend)` : ''}`,
    line(rows[0]),
    '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|',
    line(rows[1]),
    line(rows[2]),
    `exit accuracies %: ${r.exitAccuracies.map(pct).join(', ')}`,
    `MACs per sample: baseline ${Math.round(r.macs.baseline)}, early exit ${Math.round(r.macs.earlyExit)} -> ideal speed-up ${r.macSpeedup.toFixed(2)}x`,
  ].join('\n');
}
