#!/usr/bin/env node
/**
 * Benchmark: early exit against the baseline on ONNX Runtime and on tfjs, all four timed in one
 * run, interleaved chunk by chunk, at batch 1 (ms/sample) and batched (samples/s); then where
 * batch-1 time goes on ONNX Runtime. `npm run bench:onnx -- --help` for the options.
 */
import { cpus } from 'node:os';
import { createRequire } from 'node:module';
import { headDataset, loadDataset } from '../data/index.js';
import { imageSize } from '../data/dataset.js';
import { initBackend } from '../engine/backend.js';
import type { BackendName } from '../engine/backend.js';
import { cumulativeExitMacs, trunkMacs } from '../model/macs.js';
import { loadModel, trunkOf } from '../model/io.js';
import { encodeModel, GraphBuilder } from '../onnx/graph.js';
import { earlyExitAsync, type ExitResults } from '../runtime/early_exit.js';
import { loadOnnxRuntime, onnxRunnerFromNet } from '../node/onnx.js';
import { openDirectSession } from '../compat.js';
import type { StageRunner } from '../runtime/runner.js';
import { TfjsRunner } from '../runtime/tfjs_runner.js';
import { benchArgs, modelDirOption, positiveOption, runBench } from './args.js';
import { bestOf } from './best_of.js';
import { type Contender, interleaved } from '../eval/timing.js';

const HELP = `usage: npm run bench:onnx -- [options]
  --model DIR          saved model directory (default models/b-lenet-mnist)
  --samples N          test samples timed at batch 1 (default 2000)
  --batched-samples N  test samples timed batched (default: the whole test set)
  --batch-size N       batch size of the batched measurement (default 256)
  --threads N          ONNX Runtime intra-op threads (default 1)
  --backend wasm|cpu   tfjs backend (default wasm)
  --thresholds a,b,..  override the model's thresholds
  --passes N           passes over the samples; each chunk counts its best pass (default 3)
  --json               print the figures as JSON
`;

const values = benchArgs(
  {
    model: { type: 'string' },
    samples: { type: 'string' },
    'batched-samples': { type: 'string' },
    'batch-size': { type: 'string' },
    threads: { type: 'string' },
    backend: { type: 'string' },
    thresholds: { type: 'string' },
    passes: { type: 'string' },
    json: { type: 'boolean' },
  },
  HELP,
);

const positive = (
  name: 'samples' | 'batched-samples' | 'batch-size' | 'threads' | 'passes',
  fallback: number,
): number => positiveOption(values[name], name, fallback);

const log = (line: string) => process.stderr.write(line + '\n');

function same(a: ExitResults, b: ExitResults): boolean {
  return a.predictions.every((p, i) => p === b.predictions[i]) && a.exitTaken.every((e, i) => e === b.exitTaken[i]);
}

async function main(): Promise<void> {
  const dir = modelDirOption(values.model);
  const backend = (values.backend ?? 'wasm') as BackendName;
  const threads = positive('threads', 1);
  const batchSize = positive('batch-size', 256);
  const passes = positive('passes', 3);
  await initBackend(backend);
  const ortLoaded = await loadOnnxRuntime();
  if ('error' in ortLoaded) throw new Error(`onnxruntime-node did not load: ${ortLoaded.error}`);
  const ort = ortLoaded.ort;

  const model = loadModel(dir);
  const thresholds = values.thresholds ? values.thresholds.split(',').map(Number) : model.thresholds;
  if (!thresholds) throw new Error(`${dir}: no calibrated thresholds; pass --thresholds`);
  const baselineNet = model.baseline ?? trunkOf(model.net);
  const test = loadDataset(model.dataset ?? 'mnist').test;
  const batch1Samples = Math.min(positive('samples', 2000), test.count);
  const batchedSamples = Math.min(positive('batched-samples', test.count), test.count);

  const ortEarly = await onnxRunnerFromNet(model.net, { intraOpNumThreads: threads });
  const ortBase = await onnxRunnerFromNet(baselineNet, { intraOpNumThreads: threads });
  const contenders: Contender[] = [
    { name: 'onnx baseline', runner: ortBase as StageRunner<unknown>, thresholds: [], sync: false },
    { name: 'onnx early exit', runner: ortEarly as StageRunner<unknown>, thresholds, sync: false },
    { name: 'tfjs baseline', runner: new TfjsRunner(baselineNet) as StageRunner<unknown>, thresholds: [], sync: true },
    { name: 'tfjs early exit', runner: new TfjsRunner(model.net) as StageRunner<unknown>, thresholds, sync: true },
  ];
  const ortVersion = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
  const cpu = cpus();
  log(
    `${model.spec.name} (${dir}), ${model.dataset ?? 'mnist'} test set: batch 1 on ${batch1Samples} samples (chunks of 100), batch ${batchSize} on ${batchedSamples} (chunks of ${4 * batchSize}), best of ${passes} passes per chunk; thresholds [${thresholds.join(', ')}]`,
  );
  const binding = ortEarly.direct ? 'native session called directly' : 'public InferenceSession API';
  log(
    `onnxruntime-node ${ortVersion} (cpu, ${threads} intra-op thread${threads > 1 ? 's' : ''}, graph optimisation 'all', ${binding}), tfjs ${backend}; ${cpu.length} x ${cpu[0]?.model.trim()}, node ${process.version}`,
  );

  log('warming up...');
  await interleaved(contenders, headDataset(test, 128), 128, 1, 64, 1);
  await interleaved(contenders, headDataset(test, 2 * batchSize), 2 * batchSize, batchSize, 2 * batchSize, 1);

  log(`batch ${batchSize}, interleaved...`);
  const batched = await interleaved(contenders, test, batchedSamples, batchSize, batchSize * 4, passes);
  log('batch 1, interleaved...');
  const single = await interleaved(contenders, test, batch1Samples, 1, 100, passes);

  const early = batched.results[1];
  const exits = model.net.exits;
  const counts = new Array(exits).fill(0);
  for (let i = 0; i < batchedSamples; i++) counts[early.exitTaken[i] - 1]++;
  const exitFractions = counts.map((c) => c / batchedSamples);
  let correct = 0;
  for (let i = 0; i < batchedSamples; i++) if (early.predictions[i] === test.labels[i]) correct++;
  const perExit = cumulativeExitMacs(model.net.macs());
  const earlyMacs = exitFractions.reduce((s, f, k) => s + f * perExit[k], 0);
  const baselineMacs = trunkMacs(baselineNet.macs());
  const macSpeedup = baselineMacs / earlyMacs;
  const identical =
    same(batched.results[1], batched.results[3]) &&
    same(single.results[1], single.results[3]) &&
    same(batched.results[0], batched.results[2]);

  const runtimes = ['onnx', 'tfjs'].map((name, r) => {
    const [b, e] = [2 * r, 2 * r + 1];
    const b1 = {
      baseline: (single.seconds[b] * 1000) / batch1Samples,
      earlyExit: (single.seconds[e] * 1000) / batch1Samples,
    };
    const bn = { baseline: batchedSamples / batched.seconds[b], earlyExit: batchedSamples / batched.seconds[e] };
    const s1 = b1.baseline / b1.earlyExit;
    const sn = bn.earlyExit / bn.baseline;
    return {
      runtime: name,
      batch1: { baselineMs: b1.baseline, earlyExitMs: b1.earlyExit, speedup: s1, exitEfficiency: s1 / macSpeedup },
      batched: {
        batchSize,
        baselineSamplesPerSecond: bn.baseline,
        earlyExitSamplesPerSecond: bn.earlyExit,
        speedup: sn,
        exitEfficiency: sn / macSpeedup,
      },
    };
  });

  // Where batch-1 time goes on ONNX Runtime: one empty session run, each stage's run, the loop.
  log('batch-1 breakdown on ONNX Runtime...');
  const g = new GraphBuilder('identity');
  g.output(g.input('x', ['N', 1]), 'y', ['N', 1]);
  const emptyGraph = encodeModel(g.build('an empty graph: the cost of one session run'));
  const identity = await openDirectSession(ort, emptyGraph, { intraOpNumThreads: threads }, ['y'], ortEarly.direct);
  const identityViaApi = await openDirectSession(ort, emptyGraph, { intraOpNumThreads: threads }, ['y'], false);
  const one = new ort.Tensor('float32', new Float32Array(1), [1, 1]);
  const image = test.images.subarray(0, imageSize(test));
  const stageInputs = [ortEarly.input(image, 1)];
  for (let k = 0; k + 1 < exits; k++) stageInputs.push((await ortEarly.runStage(k, stageInputs[k])).next!);
  const loopImages = test.images.subarray(0, 100 * imageSize(test));
  // Batched: what stage 1 costs against the baseline, on the same rows, against its share of MACs.
  const blockRows = Math.min(batchSize, test.count);
  const block = test.images.subarray(0, blockRows * imageSize(test));
  const tfjsStage = (r: StageRunner<unknown>) => async () => {
    const a = r.input(block, blockRows);
    const out = await r.runStage(0, a);
    r.dispose(a);
    if (out.next) r.dispose(out.next);
  };
  const t = await bestOf({
    empty: [() => identity.run({ x: one }), 200],
    emptyViaApi: [() => identityViaApi.run({ x: one }), 200],
    ...Object.fromEntries(stageInputs.map((a, k) => [`stage${k}`, [() => ortEarly.runStage(k, a), 100]])),
    baseline: [() => ortBase.runStage(0, ortBase.input(image, 1)), 100],
    // The early-exit loop itself, everyone answering at exit 1: its cost beyond the stage-1 run.
    loop: [
      () =>
        earlyExitAsync(
          ortEarly,
          loopImages,
          100,
          thresholds.map(() => Infinity),
          1,
        ),
      1,
    ],
    batchedStage1: [() => ortEarly.runStage(0, ortEarly.input(block, blockRows)), 1],
    batchedBaseline: [() => ortBase.runStage(0, ortBase.input(block, blockRows)), 1],
    tfjsStage1: [tfjsStage(contenders[3].runner), 1],
    tfjsBaseline: [tfjsStage(contenders[2].runner), 1],
  });
  const emptyRun = t.empty;
  const stageRuns = stageInputs.map((_, k) => t[`stage${k}`]);
  const baselineRun = t.baseline;
  const firstExitLoop = t.loop / 100;
  const [batchedStage1Us, batchedBaselineUs, tfjsStage1Us, tfjsBaselineUs] = [
    t.batchedStage1,
    t.batchedBaseline,
    t.tfjsStage1,
    t.tfjsBaseline,
  ];
  // Expected early-exit time from the stage runs alone: a sample answering at exit k ran stages 1..k.
  let expected = 0;
  for (let k = 0; k < exits; k++) expected += exitFractions[k] * stageRuns.slice(0, k + 1).reduce((a, b) => a + b, 0);
  const runsPerSample = exitFractions.reduce((s, f, k) => s + f * (k + 1), 0);
  await Promise.all([identity.release(), identityViaApi.release()]);
  const stage1MacShare = perExit[0] / baselineMacs;
  const breakdown = {
    direct: ortEarly.direct,
    emptySessionRunUs: emptyRun,
    emptySessionRunPublicApiUs: t.emptyViaApi,
    stageRunUs: stageRuns,
    baselineRunUs: baselineRun,
    sessionRunsPerSample: runsPerSample,
    expectedFromStageRunsUs: expected,
    earlyExitLoopAtExit1Us: firstExitLoop,
    loopOverheadUs: firstExitLoop - stageRuns[0],
    measuredInterleavedUs: runtimes[0].batch1.earlyExitMs * 1000,
  };

  const figures = {
    model: model.spec.name,
    dir,
    thresholds,
    samples: { batch1: batch1Samples, batched: batchedSamples, passes },
    accuracy: correct / batchedSamples,
    exitFractions,
    macs: { baseline: baselineMacs, earlyExit: earlyMacs },
    macSpeedup,
    identicalPredictionsAndExits: identical,
    runtimes,
    onnxVsTfjsBatch1: runtimes[0].batch1.earlyExitMs / runtimes[1].batch1.earlyExitMs,
    onnxBatch1Breakdown: breakdown,
    batchedStage1: {
      rows: blockRows,
      macShare: stage1MacShare,
      onnx: {
        stage1Us: batchedStage1Us,
        baselineUs: batchedBaselineUs,
        timeShare: batchedStage1Us / batchedBaselineUs,
      },
      tfjs: { stage1Us: tfjsStage1Us, baselineUs: tfjsBaselineUs, timeShare: tfjsStage1Us / tfjsBaselineUs },
    },
    settings: {
      onnxruntime: ortVersion,
      threads,
      tfjsBackend: backend,
      cpu: `${cpu.length} x ${cpu[0]?.model.trim()}`,
      node: process.version,
    },
  };
  if (values.json) {
    process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
  } else {
    const f2 = (v: number) => v.toFixed(2);
    const rows = [
      [
        'runtime',
        'baseline ms (b1)',
        'early exit ms (b1)',
        'speed-up b1',
        'efficiency b1',
        `baseline /s (b${batchSize})`,
        `early exit /s (b${batchSize})`,
        `speed-up b${batchSize}`,
        `efficiency b${batchSize}`,
      ],
      ...runtimes.map((r) => [
        r.runtime,
        r.batch1.baselineMs.toFixed(3),
        r.batch1.earlyExitMs.toFixed(3),
        `${f2(r.batch1.speedup)}x`,
        f2(r.batch1.exitEfficiency),
        Math.round(r.batched.baselineSamplesPerSecond).toString(),
        Math.round(r.batched.earlyExitSamplesPerSecond).toString(),
        `${f2(r.batched.speedup)}x`,
        f2(r.batched.exitEfficiency),
      ]),
    ];
    const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
    const line = (row: string[]) => '| ' + row.map((cell, c) => cell.padEnd(widths[c])).join(' | ') + ' |';
    const us = (v: number) => `${v.toFixed(1)} us`;
    process.stdout.write(
      [
        `${model.spec.name}: accuracy ${(100 * figures.accuracy).toFixed(2)}%, exits ${exitFractions.map((f) => (100 * f).toFixed(1) + '%').join(' / ')}, ` +
          `MACs ${Math.round(baselineMacs)} -> ${Math.round(earlyMacs)}: MAC-ideal speed-up ${f2(macSpeedup)}x`,
        line(rows[0]),
        '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|',
        ...rows.slice(1).map(line),
        `efficiency = measured speed-up / MAC-ideal speed-up; ONNX Runtime early exit takes ${f2(figures.onnxVsTfjsBatch1)}x the tfjs runtime's time at batch 1`,
        `predictions and exits identical on ONNX Runtime and tfjs (batch 1 and ${batchSize}): ${identical ? 'yes' : 'NO'}`,
        `where batch-1 time goes on ONNX Runtime (best of 15 rounds): an empty session run ${us(emptyRun)}` +
          (ortEarly.direct ? ` (${us(t.emptyViaApi)} through onnxruntime-node's public API)` : '') +
          '; ' +
          stageRuns.map((s, k) => `stage ${k + 1} ${us(s)} (${us(s - emptyRun)} compute)`).join(', ') +
          `; baseline ${us(baselineRun)} (${us(baselineRun - emptyRun)} compute)`,
        `  the early-exit loop with every sample answering at exit 1: ${us(firstExitLoop)} per sample, ${us(breakdown.loopOverheadUs)} beyond the stage-1 run (input tensor, decision)`,
        `  at the measured exit fractions: ${f2(runsPerSample)} session runs per sample, ${us(expected)} from the stage runs alone; ` +
          `${us(breakdown.measuredInterleavedUs)} measured interleaved with the other runtimes above`,
        `batch ${blockRows}: stage 1 (trunk part + exit-1 head) does ${(100 * stage1MacShare).toFixed(1)}% of the baseline's MACs but takes ` +
          `${(100 * figures.batchedStage1.onnx.timeShare).toFixed(1)}% of its time on ONNX Runtime (${(batchedStage1Us / 1000).toFixed(2)} of ${(batchedBaselineUs / 1000).toFixed(2)} ms), ` +
          `${(100 * figures.batchedStage1.tfjs.timeShare).toFixed(1)}% on tfjs (${(tfjsStage1Us / 1000).toFixed(2)} of ${(tfjsBaselineUs / 1000).toFixed(2)} ms): ` +
          `the efficiency of early exit is capped near ${f2(stage1MacShare / figures.batchedStage1.onnx.timeShare)} (ONNX Runtime) and ${f2(stage1MacShare / figures.batchedStage1.tfjs.timeShare)} (tfjs) when nearly all answer at exit 1`,
      ].join('\n') + '\n',
    );
  }
  await Promise.all([ortEarly.release(), ortBase.release()]);
}

runBench(main);
