#!/usr/bin/env node
/**
 * Benchmark: the single-file early-exit model against the per-stage runner and the baseline, on
 * ONNX Runtime, all timed in one run, interleaved chunk by chunk, at batch 1 (ms/sample) and
 * batched (samples/s). `npm run bench:single -- --help` for the options.
 */
import { cpus } from 'node:os';
import { createRequire } from 'node:module';
import { imageSize, type Dataset } from '../data/dataset.js';
import { headDataset, loadDataset } from '../data/index.js';
import { normalizeDataset } from '../data/transform.js';
import { initBackend } from '../engine/backend.js';
import { cumulativeExitMacs } from '../model/macs.js';
import { type Contender, interleaved, type WholeContender } from '../eval/timing.js';
import { loadModel, trunkOf } from '../model/io.js';
import { canPackImages, exportSingleFile } from '../onnx/single_file.js';
import type { ExitResults } from '../runtime/early_exit.js';
import { onnxRunnerFromNet } from '../node/onnx.js';
import type { StageRunner } from '../runtime/runner.js';
import { SingleFileSession, toPixels } from '../node/single_file_session.js';
import { benchArgs, modelDirOption, positiveOption, runBench } from './args.js';

const HELP = `usage: npm run bench:single -- [options]
  --model DIR          saved model directory (default models/b-lenet-mnist)
  --samples N          test samples timed at batch 1 (default 2000)
  --batched-samples N  test samples timed batched (default: the whole test set)
  --batch-size N       batch size of the batched measurement (default 256)
  --run-rows N         also time the single file batched in session runs of N rows (default 64)
  --threads N          ONNX Runtime intra-op threads (default 1)
  --thresholds a,b,..  override the model's thresholds (the single file is exported with them)
  --passes N           passes over the samples; each chunk counts its best pass (default 3)
  --json               print the figures as JSON
`;

const values = benchArgs(
  {
    model: { type: 'string' },
    samples: { type: 'string' },
    'batched-samples': { type: 'string' },
    'batch-size': { type: 'string' },
    'run-rows': { type: 'string' },
    threads: { type: 'string' },
    thresholds: { type: 'string' },
    passes: { type: 'string' },
    json: { type: 'boolean' },
  },
  HELP,
);

const positive = (
  name: 'samples' | 'batched-samples' | 'batch-size' | 'run-rows' | 'threads' | 'passes',
  fallback: number,
): number => positiveOption(values[name], name, fallback);

const log = (line: string) => process.stderr.write(line + '\n');

/** Predictions and exits equal, and the largest entropy difference. */
function compare(a: ExitResults, b: ExitResults): { identical: boolean; maxEntropyDifference: number } {
  let identical = true;
  let max = 0;
  for (let i = 0; i < a.exitTaken.length; i++) {
    if (a.predictions[i] !== b.predictions[i] || a.exitTaken[i] !== b.exitTaken[i]) identical = false;
    max = Math.max(max, Math.abs(a.entropies[i] - b.entropies[i]));
  }
  return { identical, maxEntropyDifference: max };
}

/** The single file as a contender: it reads the 0-255 pixels of the same samples the others get (normalised or not). */
function singleContender(
  name: string,
  session: SingleFileSession,
  data: Dataset,
  pixels: Float32Array,
  runRows: (batchSize: number) => number,
): WholeContender {
  const size = imageSize(data);
  return {
    name,
    classify: (images, count, batchSize) => {
      const first = (images.byteOffset - data.images.byteOffset) / Float32Array.BYTES_PER_ELEMENT / size;
      return session.classify(pixels.subarray(first * size, (first + count) * size), count, runRows(batchSize));
    },
  };
}

async function main(): Promise<void> {
  const dir = modelDirOption(values.model);
  const threads = positive('threads', 1);
  const batchSize = positive('batch-size', 256);
  const runRows = positive('run-rows', 64);
  const passes = positive('passes', 3);
  await initBackend('wasm');

  const model = loadModel(dir);
  const thresholds = values.thresholds ? values.thresholds.split(',').map(Number) : model.thresholds;
  if (!thresholds) throw new Error(`${dir}: no calibrated thresholds; pass --thresholds`);
  const baselineNet = model.baseline ?? trunkOf(model.net);
  const raw = loadDataset(model.dataset ?? 'mnist').test;
  const pixels = toPixels(raw.images);
  const test = model.normalization ? normalizeDataset(raw, model.normalization) : raw;
  const batch1Samples = Math.min(positive('samples', 2000), test.count);
  const batchedSamples = Math.min(positive('batched-samples', test.count), test.count);

  const { bytes } = exportSingleFile(model.net, { thresholds, normalization: model.normalization ?? null });
  const shape = model.net.spec.input;
  const single = await SingleFileSession.create(bytes, shape, model.net.spec.classes, { intraOpNumThreads: threads });
  const singleApi = await SingleFileSession.create(bytes, shape, model.net.spec.classes, {
    intraOpNumThreads: threads,
    direct: false,
  });
  // With image packing where it applies; else the plain file again (its figures are then left out).
  const packable = canPackImages(model.net);
  const packedBytes = packable
    ? exportSingleFile(model.net, { thresholds, normalization: model.normalization ?? null, imagePacking: true }).bytes
    : bytes;
  const packed = await SingleFileSession.create(packedBytes, shape, model.net.spec.classes, {
    intraOpNumThreads: threads,
  });
  const perStage = await onnxRunnerFromNet(model.net, { intraOpNumThreads: threads });
  const base = await onnxRunnerFromNet(baselineNet, { intraOpNumThreads: threads });
  const contenders: (Contender | WholeContender)[] = [
    { name: 'baseline', runner: base as StageRunner<unknown>, thresholds: [], sync: false },
    { name: 'per-stage runner', runner: perStage as StageRunner<unknown>, thresholds, sync: false },
    singleContender('single file', single, test, pixels, (b) => b),
    singleContender('single file, public API', singleApi, test, pixels, (b) => b),
    ...(packable ? [singleContender('single file with image packing', packed, test, pixels, (b) => b)] : []),
  ];
  // Batched only: the single file fed in runs of `runRows` rows, as the per-stage runner tiles its runs, and the
  // per-stage runner without image packing, which the single file cannot use (its packed graph needs a multiple of 16 rows).
  const unpacked = await onnxRunnerFromNet(model.net, { intraOpNumThreads: threads, imagePacking: false });
  const batchedContenders = [
    ...contenders,
    singleContender(`single file, runs of ${runRows}`, single, test, pixels, (b) => Math.min(b, runRows)),
    { name: 'per-stage runner, no image packing', runner: unpacked as StageRunner<unknown>, thresholds, sync: false },
  ];
  const ortVersion = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
  const cpu = cpus();
  log(
    `${model.spec.name} (${dir}), ${model.dataset ?? 'mnist'} test set: batch 1 on ${batch1Samples} samples (chunks of 100), batch ${batchSize} on ${batchedSamples} (chunks of ${4 * batchSize}), best of ${passes} passes per chunk; thresholds [${thresholds.join(', ')}]`,
  );
  log(
    `onnxruntime-node ${ortVersion} (cpu, ${threads} intra-op thread${threads > 1 ? 's' : ''}, graph optimisation 'all'); ${cpu.length} x ${cpu[0]?.model.trim()}, node ${process.version}`,
  );

  log('warming up...');
  await interleaved(contenders, headDataset(test, 128), 128, 1, 64, 1);
  await interleaved(batchedContenders, headDataset(test, 2 * batchSize), 2 * batchSize, batchSize, 2 * batchSize, 1);
  log(`batch ${batchSize}, interleaved...`);
  const batched = await interleaved(batchedContenders, test, batchedSamples, batchSize, batchSize * 4, passes);
  log('batch 1, interleaved...');
  const b1 = await interleaved(contenders, test, batch1Samples, 1, 100, passes);

  const exits = model.net.exits;
  const counts = new Array(exits).fill(0);
  for (let i = 0; i < batchedSamples; i++) counts[batched.results[1].exitTaken[i] - 1]++;
  const exitFractions = counts.map((c) => c / batchedSamples);
  const perExit = cumulativeExitMacs(model.net.macs());
  const earlyMacs = exitFractions.reduce((s, f, k) => s + f * perExit[k], 0);
  const baselineMacs = baselineNet.macs().segments[0];
  const macSpeedup = baselineMacs / earlyMacs;

  const ms1 = b1.seconds.map((s) => (s * 1000) / batch1Samples);
  const perSecond = batched.seconds.map((s) => batchedSamples / s);
  const figuresOf = (i: number) => ({
    batch1Ms: ms1[i],
    speedup: ms1[0] / ms1[i],
    exitEfficiency: ms1[0] / ms1[i] / macSpeedup,
    batched: {
      batchSize,
      samplesPerSecond: perSecond[i],
      speedup: perSecond[i] / perSecond[0],
      exitEfficiency: perSecond[i] / perSecond[0] / macSpeedup,
    },
  });
  const perStageFigures = figuresOf(1);
  const singleFigures = figuresOf(2);
  const apiFigures = figuresOf(3);
  const at = contenders.length;
  const packedFigures = packable ? figuresOf(4) : null;
  const runsOf = {
    runRows,
    samplesPerSecond: perSecond[at],
    speedup: perSecond[at] / perSecond[0],
    exitEfficiency: perSecond[at] / perSecond[0] / macSpeedup,
  };
  const noPacking = {
    samplesPerSecond: perSecond[at + 1],
    speedup: perSecond[at + 1] / perSecond[0],
    exitEfficiency: perSecond[at + 1] / perSecond[0] / macSpeedup,
  };
  const parity = [2, ...(packable ? [4] : [])]
    .flatMap((i) => [compare(b1.results[i], b1.results[1]), compare(batched.results[i], batched.results[1])])
    .concat(compare(batched.results[at], batched.results[1]));
  const figures = {
    model: model.spec.name,
    dir,
    thresholds,
    samples: { batch1: batch1Samples, batched: batchedSamples, passes },
    exitFractions,
    macs: { baseline: baselineMacs, earlyExit: earlyMacs },
    macSpeedup,
    sameAnswersAsPerStage: {
      identicalPredictionsAndExits: parity.every((p) => p.identical),
      maxEntropyDifference: Math.max(...parity.map((p) => p.maxEntropyDifference)),
    },
    baseline: { batch1Ms: ms1[0], batched: { batchSize, samplesPerSecond: perSecond[0] } },
    perStage: { ...perStageFigures, batchedWithoutImagePacking: noPacking },
    singleFile: {
      ...singleFigures,
      publicApi: { batch1Ms: apiFigures.batch1Ms, speedup: apiFigures.speedup, batched: apiFigures.batched },
      runsOf,
      imagePacking: packedFigures,
    },
    singleVsPerStage: {
      batch1: singleFigures.speedup / perStageFigures.speedup,
      batched: singleFigures.batched.speedup / perStageFigures.batched.speedup,
      batchedRunsOf: runsOf.speedup / perStageFigures.batched.speedup,
      imagePacking: packedFigures
        ? {
            batch1: packedFigures.speedup / perStageFigures.speedup,
            batched: packedFigures.batched.speedup / perStageFigures.batched.speedup,
          }
        : null,
    },
    settings: {
      onnxruntime: ortVersion,
      threads,
      cpu: `${cpu.length} x ${cpu[0]?.model.trim()}`,
      node: process.version,
      direct: single.direct,
    },
  };
  if (values.json) {
    process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
  } else {
    const f2 = (v: number) => v.toFixed(2);
    const rows = [
      [
        'contender',
        'ms/sample (b1)',
        'speed-up b1',
        'efficiency b1',
        `samples/s (b${batchSize})`,
        `speed-up b${batchSize}`,
        `efficiency b${batchSize}`,
      ],
      ['baseline', ms1[0].toFixed(4), '1.00x', '', Math.round(perSecond[0]).toString(), '1.00x', ''],
      ...(
        [
          ['per-stage runner', perStageFigures],
          ['single file', singleFigures],
          ['single file, public API', apiFigures],
          ...(packedFigures ? [['single file with image packing', packedFigures] as const] : []),
        ] as const
      ).map(([name, f]) => [
        name,
        f.batch1Ms.toFixed(4),
        `${f2(f.speedup)}x`,
        f2(f.exitEfficiency),
        Math.round(f.batched.samplesPerSecond).toString(),
        `${f2(f.batched.speedup)}x`,
        f2(f.batched.exitEfficiency),
      ]),
      [
        `single file, runs of ${runRows}`,
        '',
        '',
        '',
        Math.round(runsOf.samplesPerSecond).toString(),
        `${f2(runsOf.speedup)}x`,
        f2(runsOf.exitEfficiency),
      ],
      [
        'per-stage runner, no image packing',
        '',
        '',
        '',
        Math.round(noPacking.samplesPerSecond).toString(),
        `${f2(noPacking.speedup)}x`,
        f2(noPacking.exitEfficiency),
      ],
    ];
    const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
    const line = (row: readonly string[]) => '| ' + row.map((cell, c) => cell.padEnd(widths[c])).join(' | ') + ' |';
    process.stdout.write(
      [
        `${model.spec.name}: exits ${exitFractions.map((f) => (100 * f).toFixed(1) + '%').join(' / ')}, MACs ${Math.round(baselineMacs)} -> ${Math.round(earlyMacs)}: MAC-ideal speed-up ${f2(macSpeedup)}x`,
        line(rows[0]),
        '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|',
        ...rows.slice(1).map(line),
        `single file / per-stage speed-up: batch 1 ${f2(figures.singleVsPerStage.batch1)}, batch ${batchSize} ${f2(figures.singleVsPerStage.batched)} (runs of ${runRows}: ${f2(figures.singleVsPerStage.batchedRunsOf)}; ` +
          (figures.singleVsPerStage.imagePacking
            ? `with image packing: ${f2(figures.singleVsPerStage.imagePacking.batch1)}, ${f2(figures.singleVsPerStage.imagePacking.batched)})`
            : 'no image packing for this network)'),
        `same predictions and exits as the per-stage runner: ${figures.sameAnswersAsPerStage.identicalPredictionsAndExits ? 'yes' : 'NO'}; largest entropy difference ${figures.sameAnswersAsPerStage.maxEntropyDifference.toExponential(2)}`,
      ].join('\n') + '\n',
    );
  }
  await Promise.all([
    single.release(),
    singleApi.release(),
    packed.release(),
    perStage.release(),
    unpacked.release(),
    base.release(),
  ]);
}

runBench(main);
