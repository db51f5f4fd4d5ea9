import type { Dataset } from '../data/dataset.js';
import { imageSize } from '../data/dataset.js';
import { expectedMacs } from '../model/macs.js';
import { earlyExitAsync } from '../runtime/early_exit.js';
import type { StageRunner } from '../runtime/runner.js';
import { formatThreshold } from './calibrate.js';
import { type Contender, interleaved } from './timing.js';

/**
 * Timed passes per chunk in `eval` (the best counting): one pass swings by 15 % or more on a
 * shared machine; three keep eval on B-LeNet within seconds.
 */
export const DEFAULT_TIMING_PASSES = 3;

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
  /**
   * Accuracy with every sample answered by the last exit (the branchy net's own trunk): tells the
   * accuracy that joint training gave or took from the trunk apart from what the thresholds cost.
   */
  lastExitAccuracy: number;
  /** Batch 1, everything timed: trunk, heads, softmax, entropy, decision. */
  msPerSample: number;
  /** baseline.msPerSample / msPerSample, both measured in this run, interleaved. */
  speedup: number;
  /** Ideal speed-up from MAC counts and the measured exit fractions. */
  macSpeedup: number;
  macs: { baseline: number; earlyExit: number; perExit: number[] };
  baseline: { accuracy: number; msPerSample: number; samplesPerSecond: number };
  batched: {
    batchSize: number;
    samplesPerSecond: number;
    baselineSamplesPerSecond: number;
    speedup: number;
    speedupVsFloat?: number;
  };
  /**
   * For a quantised model: the float baseline, timed in the same interleaved passes, and the
   * early exit's speed-up over it (batch 1; batched in `batched.speedupVsFloat`).
   */
  floatBaseline?: { accuracy: number; msPerSample: number; samplesPerSecond: number };
  speedupVsFloat?: number;
  /** Samples timed at batch 1 and batched; passes over each chunk, its best pass counting. */
  timing: { batch1Samples: number; batchedSamples: number; passes: number };
}

export async function evaluate<A, B, C = unknown>(args: {
  name: string;
  dataset: string;
  runtime: string;
  /** The tfjs backend the tfjs runtime runs on (reported; 'none' for other runtimes). */
  backend: string;
  /** MACs per sample of answering at each exit, and of the baseline. */
  macs: { perExit: readonly number[]; baseline: number };
  early: StageRunner<A>;
  base: StageRunner<B>;
  /** A further baseline to time alongside (the float one, when `early` and `base` are quantised). */
  floatBase?: StageRunner<C>;
  test: Dataset;
  thresholds: number[];
  /** How many test samples to time at batch 1 (default: all). */
  timingSamples?: number;
  batchSize?: number;
  /** Timed passes over each chunk of samples, the best counting (default DEFAULT_TIMING_PASSES). */
  passes?: number;
  log?: (line: string) => void;
  /** Progress within the timed passes (a line: what, samples done of all). */
  progress?: (line: string) => void;
}): Promise<EvalReport> {
  const { test, thresholds, early, base } = args;
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

  const passes = args.passes ?? DEFAULT_TIMING_PASSES;
  // The asynchronous loop for every runner: it awaits only the stages of asynchronous ones.
  const contenders: Contender[] = [
    { name: 'early exit', runner: early as StageRunner<unknown>, thresholds, sync: false },
    { name: 'baseline', runner: base as StageRunner<unknown>, thresholds: [], sync: false },
    ...(args.floatBase
      ? [{ name: 'float baseline', runner: args.floatBase as StageRunner<unknown>, thresholds: [], sync: false }]
      : []),
  ];
  if (args.floatBase) {
    await earlyExitAsync(args.floatBase, test.images.subarray(0, warm * size), warm, [], 1);
    await earlyExitAsync(args.floatBase, test.images.subarray(0, warmBatched * size), warmBatched, [], batchSize);
  }
  log(
    `accuracy and batched throughput at batch ${batchSize} on ${test.count} samples (best of ${passes} passes per chunk)...`,
  );
  const progress = (what: string) =>
    args.progress && ((done: number, count: number) => args.progress!(`${what}: ${done}/${count} samples`));
  const batched = await interleaved(
    contenders,
    test,
    test.count,
    batchSize,
    batchSize * 8,
    passes,
    progress(`batch ${batchSize}`),
  );
  const [earlyAll, baseAll] = batched.results;
  const [earlySeconds, baseSeconds, floatSeconds] = batched.seconds;

  const timingSamples = Math.min(args.timingSamples ?? test.count, test.count);
  log(`batch-1 latency on ${timingSamples} samples, interleaved with the baseline...`);
  const single = await interleaved(contenders, test, timingSamples, 1, 250, passes, progress('batch 1'));
  const [singleEarly, singleBase, singleFloat] = single.seconds;
  for (let i = 0; i < timingSamples; i++) {
    if (
      single.results[0].predictions[i] !== earlyAll.predictions[i] ||
      single.results[0].exitTaken[i] !== earlyAll.exitTaken[i]
    ) {
      throw new Error(`evaluate: batch-1 and batched early exit disagree on sample ${i}`);
    }
  }

  const exits = early.exits;
  // Untimed: nobody leaves early below a threshold of 0 (an entropy is never negative).
  const lastOnly = await earlyExitAsync(
    early,
    test.images,
    test.count,
    thresholds.map(() => 0),
    batchSize,
  );
  let lastCorrect = 0;
  for (let i = 0; i < test.count; i++) if (lastOnly.predictions[i] === test.labels[i]) lastCorrect++;
  const counts = new Array(exits).fill(0);
  const right = new Array(exits).fill(0);
  let correct = 0;
  let baseCorrect = 0;
  for (let i = 0; i < test.count; i++) {
    const k = earlyAll.exitTaken[i] - 1;
    counts[k]++;
    if (earlyAll.predictions[i] === test.labels[i]) {
      correct++;
      right[k]++;
    }
    if (baseAll.predictions[i] === test.labels[i]) baseCorrect++;
  }
  const exitFractions = counts.map((c) => c / test.count);
  const perExit = [...args.macs.perExit];
  const earlyMacs = expectedMacs(exitFractions, perExit);
  const baselineMacs = args.macs.baseline;
  const msPerSample = (singleEarly * 1000) / timingSamples;
  const baselineMs = (singleBase * 1000) / timingSamples;
  const earlyRate = test.count / earlySeconds;
  const baseRate = test.count / baseSeconds;
  let vsFloat: Pick<EvalReport, 'floatBaseline' | 'speedupVsFloat'> = {};
  if (args.floatBase) {
    const floatAll = batched.results[2];
    const floatCorrect = floatAll.predictions.reduce((n, p, i) => n + (p === test.labels[i] ? 1 : 0), 0);
    const floatMs = (singleFloat * 1000) / timingSamples;
    vsFloat = {
      floatBaseline: {
        accuracy: floatCorrect / test.count,
        msPerSample: floatMs,
        samplesPerSecond: test.count / floatSeconds,
      },
      speedupVsFloat: floatMs / msPerSample,
    };
  }
  return {
    model: args.name,
    dataset: args.dataset,
    samples: test.count,
    runtime: args.runtime,
    backend: args.backend,
    accuracy: correct / test.count,
    thresholds,
    exitFractions,
    exitAccuracies: counts.map((c, k) => (c === 0 ? null : right[k] / c)),
    lastExitAccuracy: lastCorrect / test.count,
    msPerSample,
    speedup: baselineMs / msPerSample,
    macSpeedup: baselineMacs / earlyMacs,
    macs: { baseline: baselineMacs, earlyExit: earlyMacs, perExit },
    baseline: { accuracy: baseCorrect / test.count, msPerSample: baselineMs, samplesPerSecond: 1000 / baselineMs },
    batched: {
      batchSize,
      samplesPerSecond: earlyRate,
      baselineSamplesPerSecond: baseRate,
      speedup: earlyRate / baseRate,
      ...(args.floatBase ? { speedupVsFloat: floatSeconds / earlySeconds } : {}),
    },
    ...vsFloat,
    timing: { batch1Samples: timingSamples, batchedSamples: test.count, passes },
  };
}

const pct = (v: number | null) => (v === null ? '-' : (100 * v).toFixed(2));

/** A readable table in the shape of a row of the paper's Table I. */
export function formatReport(r: EvalReport): string {
  const rows = [
    [
      'network',
      'acc %',
      'ms/sample (b1)',
      'samples/s (b' + r.batched.batchSize + ')',
      'speed-up b1',
      'speed-up b' + r.batched.batchSize,
      'T',
      'exit %',
    ],
    ...(r.floatBaseline
      ? [
          [
            'float baseline',
            pct(r.floatBaseline.accuracy),
            r.floatBaseline.msPerSample.toFixed(3),
            Math.round(r.floatBaseline.samplesPerSecond).toString(),
            '',
            '',
            '',
            '',
          ],
        ]
      : []),
    [
      r.floatBaseline ? 'int8 baseline' : 'baseline',
      pct(r.baseline.accuracy),
      r.baseline.msPerSample.toFixed(3),
      Math.round(r.batched.baselineSamplesPerSecond).toString(),
      '',
      '',
      '',
      '',
    ],
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
    ...rows.slice(1).map(line),
    `exit accuracies %: ${r.exitAccuracies.map(pct).join(', ')}; every sample at the last exit: ${pct(r.lastExitAccuracy)} %`,
    ...(r.speedupVsFloat === undefined
      ? []
      : [
          `speed-up over the float baseline: ${r.speedupVsFloat.toFixed(2)}x at batch 1, ` +
            `${r.batched.speedupVsFloat!.toFixed(2)}x at batch ${r.batched.batchSize}`,
        ]),
    `MACs per sample: baseline ${Math.round(r.macs.baseline)}, early exit ${Math.round(r.macs.earlyExit)} -> ideal speed-up ${r.macSpeedup.toFixed(2)}x`,
  ].join('\n');
}
