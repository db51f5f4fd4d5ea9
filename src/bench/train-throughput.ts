/**
 * Training throughput (images/s; batch 64, Adam, joint loss, synthetic data) of B-LeNet, a 20/50
 * LeNet, B-AlexNet, B-ResNet-20 and the plain ResNet-20 on each tfjs backend, next to PyTorch's
 * figure for the same nets from bench/pytorch_reference.py, measured in the same run.
 * `npm run bench:train -- --help` for the options.
 */
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { backendThreads, initBackend, type BackendName } from '../engine/backend.js';
import { loadOneDnnAddon } from '../engine/onednn/addon.js';
import { outputPool } from '../engine/onednn/output_pool.js';
import type { BranchyNetSpec } from '../model/spec.js';
import { benchArgs, positiveOption, runBench } from './args.js';
import { BENCH_MODELS, createTrainer, syntheticBatches } from './train_step.js';

const HELP = `usage: npm run bench:train -- [options]
  --batch N            batch size (default 64)
  --seconds N          seconds of training timed per model and backend (default 3)
  --threads N          threads for onednn, wasm and PyTorch (default min(2, cores))
  --backends a,b       tfjs backends to time: onednn, wasm, cpu (default onednn,wasm; cpu is ~2 img/s)
  --models a,b         b-lenet, lenet-20-50, b-alexnet, b-resnet-20, resnet-20 (default all)
  --no-torch           skip PyTorch (bench/pytorch_reference.py, run when python3-torch is installed)
`;

const values = benchArgs(
  {
    batch: { type: 'string' },
    seconds: { type: 'string' },
    threads: { type: 'string' },
    backends: { type: 'string' },
    models: { type: 'string' },
    'no-torch': { type: 'boolean' },
  },
  HELP,
);

/** Images/s of training steps on the current backend: 2 warm-up steps, then at least `seconds` and 3 steps. */
function measure(spec: BranchyNetSpec, batch: number, seconds: number): number {
  const trainer = createTrainer(spec);
  const data = syntheticBatches(spec, batch, 4);
  for (let i = 0; i < 2; i++) trainer.step(data[i % 4]!.images, data[i % 4]!.labels);
  let steps = 0;
  const start = performance.now();
  while (steps < 3 || performance.now() - start < seconds * 1000) {
    const { images, labels } = data[steps % 4]!;
    trainer.step(images, labels);
    steps++;
  }
  const ips = (steps * batch) / ((performance.now() - start) / 1000);
  trainer.dispose();
  // Each model starts with no arrays of the one before waiting for reuse.
  outputPool.clear();
  return ips;
}

/** PyTorch's images/s per model, or why there are none. */
function torchFigures(
  models: string[],
  batch: number,
  seconds: number,
  threads: number,
): { figures: Record<string, number>; note: string } {
  if (values['no-torch']) return { figures: {}, note: 'skipped (--no-torch)' };
  const script = fileURLToPath(new URL('../../bench/pytorch_reference.py', import.meta.url));
  // Debian's python3-torch lives in the system interpreter, which a pyenv shim on PATH may hide.
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const run = spawnSync(
    python,
    [script, '--batch', String(batch), '--seconds', String(seconds), '--threads', String(threads), ...models],
    { encoding: 'utf8' },
  );
  const line = run.stdout?.trim().split('\n').pop() ?? '';
  if (run.status !== 0 || !line.startsWith('{')) {
    return {
      figures: {},
      note: `not measured (${(run.stderr || String(run.error)).trim().split('\n').pop()}; apt-get install python3-torch libopenblas0-pthread)`,
    };
  }
  const parsed = JSON.parse(line) as { torch: string; threads: number; results: Record<string, number> };
  return { figures: parsed.results, note: `PyTorch ${parsed.torch}, ${parsed.threads} threads` };
}

async function main(): Promise<void> {
  const batch = positiveOption(values.batch, 'batch', 64);
  const seconds = positiveOption(values.seconds, 'seconds', 3);
  const threads = positiveOption(values.threads, 'threads', Math.min(2, os.availableParallelism()));
  const models = values.models?.split(',') ?? Object.keys(BENCH_MODELS);
  const unknown = models.filter((m) => BENCH_MODELS[m] === undefined);
  if (unknown.length > 0)
    throw new Error(`--models: unknown ${unknown.join(', ')} (known: ${Object.keys(BENCH_MODELS).join(', ')})`);
  const backends = (values.backends?.split(',') ?? ['onednn', 'wasm']) as BackendName[];
  const badBackend = backends.find((b) => !['onednn', 'wasm', 'cpu'].includes(b));
  if (badBackend !== undefined) throw new Error(`--backends: unknown '${badBackend}' (onednn, wasm, cpu)`);
  const rows: { model: string; backend: string; ips: number }[] = [];
  for (const backend of backends) {
    if (backend === 'onednn' && loadOneDnnAddon().addon === null) {
      console.log(`onednn: skipped (${loadOneDnnAddon().reason})`);
      continue;
    }
    await initBackend(backend, { threads: backend === 'cpu' ? undefined : threads, fallback: false });
    const label = `${backend} (${backendThreads()} thr)`;
    for (const model of models) {
      const make = BENCH_MODELS[model]!;
      const ips = measure(make(), batch, seconds);
      rows.push({ model, backend: label, ips });
      console.log(`${model.padEnd(12)} ${label.padEnd(16)} ${ips.toFixed(0).padStart(7)} img/s`);
    }
    tf.disposeVariables();
  }
  const { figures, note } = torchFigures(models, batch, seconds, threads);
  console.log(`\nbatch ${batch}, Adam; ${note}`);
  console.log('| model | backend | train img/s | vs PyTorch |');
  console.log('|---|---|---|---|');
  for (const model of models) {
    for (const r of rows.filter((x) => x.model === model)) {
      const ref = figures[model];
      console.log(`| ${model} | ${r.backend} | ${r.ips.toFixed(0)} | ${ref ? `${(r.ips / ref).toFixed(2)}x` : '–'} |`);
    }
    if (figures[model]) console.log(`| ${model} | PyTorch | ${figures[model]!.toFixed(0)} | 1.00x |`);
  }
}

runBench(main);
