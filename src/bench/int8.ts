#!/usr/bin/env node
/**
 * Benchmark: a quantised model directory's int8 early exit and int8 baseline against the float
 * early exit and float baseline of the same directory (its float weights, exported as `eval`
 * exports them), all on ONNX Runtime, at batch 1 and batched, in one run with the four
 * contenders interleaved chunk by chunk. Every ratio is against the float baseline measured here.
 * `npm run bench:int8 -- --help` for the options.
 */
import { imageSize } from '../data/dataset.js';
import { headDataset, loadDataset } from '../data/index.js';
import { normalizeDataset } from '../data/transform.js';
import { initBackend } from '../engine/backend.js';
import type { Contender } from '../eval/timing.js';
import { interleaved } from '../eval/timing.js';
import { loadModel, trunkOf } from '../model/io.js';
import { earlyExitAsync } from '../runtime/early_exit.js';
import { onnxRunnerFromNet } from '../node/onnx.js';
import type { StageRunner } from '../runtime/runner.js';
import { int8Runners } from '../quant/eval_int8.js';
import { quantizedRecordOf } from '../quant/model_dir.js';
import { benchArgs, modelDirOption, positiveOption, runBench } from './args.js';

const HELP = `usage: npm run bench:int8 -- --model DIR [options]
  --model DIR              a quantised model directory (written by 'branchynet quantize')
  --limit N                test samples for accuracy and the batched timing (default: all)
  --timing-samples N       test samples timed at batch 1 (default 1000)
  --batch-size N           batch size of the batched timing (default 256)
  --passes N               timed passes per chunk, the best counting (default 3)
  --threads N              ONNX Runtime intra-op threads (default 1)
  --json                   print the figures as JSON
`;

const values = benchArgs(
  {
    model: { type: 'string' },
    limit: { type: 'string' },
    'timing-samples': { type: 'string' },
    'batch-size': { type: 'string' },
    passes: { type: 'string' },
    threads: { type: 'string' },
    json: { type: 'boolean' },
  },
  HELP,
);

const log = (line: string) => process.stderr.write(line + '\n');

async function main(): Promise<void> {
  const dir = modelDirOption(values.model);
  const limit = values.limit === undefined ? undefined : positiveOption(values.limit, 'limit', 1);
  const timingSamples = positiveOption(values['timing-samples'], 'timing-samples', 1000);
  const batchSize = positiveOption(values['batch-size'], 'batch-size', 256);
  const passes = positiveOption(values.passes, 'passes', 3);
  const threads = positiveOption(values.threads, 'threads', 1);
  await initBackend('cpu');
  const model = loadModel(dir);
  const record = quantizedRecordOf(model);
  if (!record)
    throw new Error(
      `${dir}: not a quantised model directory; run 'branchynet quantize --model ${dir} --out DIR2' and pass DIR2`,
    );
  if (!model.thresholds) throw new Error(`${dir}: the float model has no calibrated thresholds`);
  const raw = loadDataset(model.dataset ?? 'mnist').test;
  const test = headDataset(model.normalization ? normalizeDataset(raw, model.normalization) : raw, limit);
  const baselineNet = model.baseline ?? trunkOf(model.net);
  const options = { intraOpNumThreads: threads };
  const floatEarly = await onnxRunnerFromNet(model.net, options);
  const floatBase = await onnxRunnerFromNet(baselineNet, options);
  const { early, base } = await int8Runners(model, options);
  const contenders: Contender[] = [
    { name: 'float baseline', runner: floatBase as StageRunner<unknown>, thresholds: [], sync: false },
    { name: 'float early exit', runner: floatEarly as StageRunner<unknown>, thresholds: model.thresholds, sync: false },
    { name: 'int8 baseline', runner: base as StageRunner<unknown>, thresholds: [], sync: false },
    { name: 'int8 early exit', runner: early as StageRunner<unknown>, thresholds: record.thresholds, sync: false },
  ];
  try {
    const size = imageSize(test);
    const warm = Math.min(4 * batchSize, test.count);
    for (const c of contenders) {
      await earlyExitAsync(c.runner, test.images.subarray(0, 64 * size), Math.min(64, test.count), c.thresholds, 1);
      await earlyExitAsync(c.runner, test.images.subarray(0, warm * size), warm, c.thresholds, batchSize);
    }
    log(
      `${model.spec.name}: ${test.count} test samples at batch ${batchSize}, ${Math.min(timingSamples, test.count)} at batch 1, best of ${passes} passes per chunk, ${threads} thread(s), interleaved...`,
    );
    const batched = await interleaved(contenders, test, test.count, batchSize, batchSize * 8, passes);
    const n1 = Math.min(timingSamples, test.count);
    const single = await interleaved(contenders, test, n1, 1, 250, passes);
    const rows = contenders.map((c, i) => {
      const predictions = batched.results[i].predictions;
      let correct = 0;
      for (let s = 0; s < test.count; s++) if (predictions[s] === test.labels[s]) correct++;
      const exits = new Array(c.runner.exits).fill(0);
      for (let s = 0; s < test.count; s++) exits[batched.results[i].exitTaken[s] - 1]++;
      return {
        name: c.name,
        accuracy: correct / test.count,
        exitFractions: exits.map((e) => e / test.count),
        msPerSample: (single.seconds[i] * 1000) / n1,
        samplesPerSecond: test.count / batched.seconds[i],
        speedupVsFloat: single.seconds[0] / single.seconds[i],
        batchedSpeedupVsFloat: batched.seconds[0] / batched.seconds[i],
      };
    });
    const result = {
      model: dir,
      network: model.spec.name,
      samples: test.count,
      batch1Samples: n1,
      batchSize,
      passes,
      threads,
      thresholds: { float: model.thresholds, int8: record.thresholds },
      contenders: rows,
      int8EarlyExitVsInt8Baseline: {
        batch1: single.seconds[2] / single.seconds[3],
        batched: batched.seconds[2] / batched.seconds[3],
      },
    };
    if (values.json) {
      process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      return;
    }
    process.stdout.write(
      `| contender | acc % | ms/sample (b1) | samples/s (b${batchSize}) | vs float baseline b1 | b${batchSize} | exits % |\n|---|---|---|---|---|---|---|\n`,
    );
    for (const r of rows) {
      process.stdout.write(
        `| ${r.name} | ${(100 * r.accuracy).toFixed(2)} | ${r.msPerSample.toFixed(3)} | ${Math.round(r.samplesPerSecond)} | ` +
          `${r.speedupVsFloat.toFixed(2)}x | ${r.batchedSpeedupVsFloat.toFixed(2)}x | ${r.exitFractions.map((f) => (100 * f).toFixed(1)).join(' / ')} |\n`,
      );
    }
  } finally {
    await Promise.all([floatEarly.release(), floatBase.release(), early.release(), base.release()]);
  }
}

runBench(main);
