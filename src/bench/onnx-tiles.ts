#!/usr/bin/env node
/**
 * Benchmark: ONNX Runtime's batched early exit and baseline with batches run whole or as tiles of
 * fewer rows (`OnnxRunner`'s `maxRunRows`), all timed in one run, interleaved chunk by chunk.
 * `npm run bench:tiles -- --help` for the options.
 */
import { loadDataset } from '../data/index.js';
import { initBackend } from '../engine/backend.js';
import { UserError } from '../errors.js';
import { loadModel, trunkOf } from '../model/io.js';
import { onnxRunnerFromNet } from '../node/onnx.js';
import type { StageRunner } from '../runtime/runner.js';
import { benchArgs, modelDirOption, positiveOption, runBench } from './args.js';
import { type Contender, interleaved } from '../eval/timing.js';

const HELP = `usage: npm run bench:tiles -- [options]
  --model DIR          saved model directory (default models/b-lenet-mnist)
  --tiles a,b,..       most rows per session run to compare (default 256,64,32)
  --batch-size N       batch size (default 256)
  --passes N           passes over the test set; each chunk counts its best pass (default 3)
  --packing on,off     image packing settings to compare (default on; see docs/onnx.md)
`;

const values = benchArgs(
  {
    model: { type: 'string' },
    tiles: { type: 'string' },
    'batch-size': { type: 'string' },
    passes: { type: 'string' },
    packing: { type: 'string' },
  },
  HELP,
);

async function main(): Promise<void> {
  const dir = modelDirOption(values.model);
  const tiles = (values.tiles ?? '256,64,32').split(',').map((t) => positiveOption(t.trim(), 'tiles', 1));
  const batchSize = positiveOption(values['batch-size'], 'batch-size', 256);
  const passes = positiveOption(values.passes, 'passes', 3);
  await initBackend('cpu'); // only to hold the weights while exporting
  const model = loadModel(dir);
  const thresholds = model.thresholds;
  if (!thresholds) throw new Error(`${dir}: no calibrated thresholds`);
  const baselineNet = model.baseline ?? trunkOf(model.net);
  const test = loadDataset(model.dataset ?? 'mnist').test;
  const packings = (values.packing ?? 'on').split(',').map((p) => p.trim());
  for (const p of packings)
    if (p !== 'on' && p !== 'off')
      throw new UserError(`--packing: expected on, off or on,off, got '${values.packing}'`);
  const settings = tiles.flatMap((maxRunRows) =>
    packings.map((packing) => ({ maxRunRows, imagePacking: packing === 'on' })),
  );
  const contenders: Contender[] = [];
  for (const { maxRunRows, imagePacking } of settings) {
    const base = await onnxRunnerFromNet(baselineNet, { maxRunRows, imagePacking });
    const early = await onnxRunnerFromNet(model.net, { maxRunRows, imagePacking });
    const setting = `tiles ${maxRunRows}, image packing ${imagePacking ? 'on' : 'off'}`;
    contenders.push({
      name: `baseline, ${setting}`,
      runner: base as StageRunner<unknown>,
      thresholds: [],
      sync: false,
    });
    contenders.push({ name: `early exit, ${setting}`, runner: early as StageRunner<unknown>, thresholds, sync: false });
  }
  // Warm-up: one pass of everyone over a few batches.
  await interleaved(contenders, test, Math.min(4 * batchSize, test.count), batchSize, batchSize, 1);
  const { seconds } = await interleaved(contenders, test, test.count, batchSize, 8 * batchSize, passes);
  process.stdout.write(
    `${model.spec.name}, ONNX Runtime (1 thread), batch ${batchSize}, ${test.count} test samples, best of ${passes} passes per chunk\n`,
  );
  for (const [t, { maxRunRows, imagePacking }] of settings.entries()) {
    const [b, e] = [seconds[2 * t], seconds[2 * t + 1]];
    const packing = packings.length > 1 ? `, image packing ${imagePacking ? 'on ' : 'off'}` : '';
    process.stdout.write(
      `rows per run ${String(maxRunRows).padStart(4)}${packing}: baseline ${Math.round(test.count / b)} samples/s, early exit ${Math.round(test.count / e)} samples/s, speed-up ${(b / e).toFixed(2)}x\n`,
    );
  }
}

runBench(main);
