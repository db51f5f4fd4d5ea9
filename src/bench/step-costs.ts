#!/usr/bin/env node
/**
 * Benchmark: what a training step on the onednn backend costs besides arithmetic: garbage
 * collections, page faults, context switches and CPU time per step, with the backend's output-array
 * reuse on and off (src/engine/onednn/output_pool.ts), alternating in one run.
 * `npm run bench:step -- --help` for the options.
 */
import { constants as perf, PerformanceObserver } from 'node:perf_hooks';
import { initBackend } from '../engine/backend.js';
import { loadOneDnnAddon } from '../engine/onednn/addon.js';
import { outputPool } from '../engine/onednn/output_pool.js';
import { benchArgs, positiveOption, runBench } from './args.js';
import { BENCH_MODELS, createTrainer, syntheticBatches } from './train_step.js';

const HELP = `usage: npm run bench:step -- [options]
  --model NAME         b-lenet, lenet-20-50, b-alexnet, b-resnet-20, resnet-20 (default resnet-20)
  --threads N          onednn threads (default 2)
  --batch N            batch size (default 64)
  --steps N            timed steps per round (default 20)
  --rounds N           rounds, each timing reuse on and off in turn (default 3)
`;

const values = benchArgs(
  {
    model: { type: 'string' },
    threads: { type: 'string' },
    batch: { type: 'string' },
    steps: { type: 'string' },
    rounds: { type: 'string' },
  },
  HELP,
);

interface Costs {
  imagesPerSecond: number;
  majorGcs: number;
  minorGcs: number;
  userMs: number;
  systemMs: number;
  faults: number;
  switches: number;
}

let majorGcs = 0;
let minorGcs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as { detail?: { kind?: number } }).detail?.kind;
    if (kind === perf.NODE_PERFORMANCE_GC_MINOR) minorGcs++;
    else if (kind === perf.NODE_PERFORMANCE_GC_MAJOR) majorGcs++;
  }
}).observe({ entryTypes: ['gc'] });

/** Lets the gc observer's callbacks run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

async function round(
  trainer: ReturnType<typeof createTrainer>,
  data: ReturnType<typeof syntheticBatches>,
  steps: number,
  batch: number,
): Promise<Costs> {
  await settle();
  const gc0 = [majorGcs, minorGcs];
  const r0 = process.resourceUsage();
  const start = performance.now();
  for (let i = 0; i < steps; i++) trainer.step(data[i % data.length]!.images, data[i % data.length]!.labels);
  const seconds = (performance.now() - start) / 1000;
  const r1 = process.resourceUsage();
  await settle();
  return {
    imagesPerSecond: (steps * batch) / seconds,
    majorGcs: (majorGcs - gc0[0]!) / steps,
    minorGcs: (minorGcs - gc0[1]!) / steps,
    userMs: (r1.userCPUTime - r0.userCPUTime) / 1000 / steps,
    systemMs: (r1.systemCPUTime - r0.systemCPUTime) / 1000 / steps,
    faults: (r1.minorPageFault - r0.minorPageFault) / steps,
    switches: (r1.voluntaryContextSwitches - r0.voluntaryContextSwitches) / steps,
  };
}

async function main(): Promise<void> {
  const name = values.model ?? 'resnet-20';
  const make = BENCH_MODELS[name];
  if (make === undefined)
    throw new Error(`--model: unknown '${name}' (known: ${Object.keys(BENCH_MODELS).join(', ')})`);
  const threads = positiveOption(values.threads, 'threads', 2);
  const batch = positiveOption(values.batch, 'batch', 64);
  const steps = positiveOption(values.steps, 'steps', 20);
  const rounds = positiveOption(values.rounds, 'rounds', 3);
  const { addon, reason } = loadOneDnnAddon();
  if (addon === null) throw new Error(`the onednn backend is not available (${reason}); see docs/onednn.md`);
  await initBackend('onednn', { threads, fallback: false });
  const spec = make();
  const trainer = createTrainer(spec);
  const data = syntheticBatches(spec, batch, 2);
  for (let i = 0; i < 3; i++) trainer.step(data[i % 2]!.images, data[i % 2]!.labels);
  const results: Record<'on' | 'off', Costs[]> = { on: [], off: [] };
  console.log(
    `${name}, onednn ${threads} thread(s), batch ${batch}: ${rounds} rounds of ${steps} steps, output reuse on and off in turn`,
  );
  for (let r = 0; r < rounds; r++) {
    for (const mode of r % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
      outputPool.enabled = mode === 'on';
      outputPool.clear();
      trainer.step(data[0]!.images, data[0]!.labels);
      results[mode].push(await round(trainer, data, steps, batch));
    }
  }
  outputPool.enabled = true;
  trainer.dispose();
  const fmt = (c: Costs) =>
    `${c.imagesPerSecond.toFixed(0).padStart(5)} img/s | ${c.majorGcs.toFixed(1)} | ${c.minorGcs.toFixed(1)} | ${c.userMs.toFixed(0)} | ${c.systemMs.toFixed(0)} | ${c.faults.toFixed(0)} | ${c.switches.toFixed(0)}`;
  console.log(
    '| reuse | round | throughput | full GCs / step | scavenges / step | user ms / step | system ms / step | page faults / step | context switches / step |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (let r = 0; r < rounds; r++)
    for (const mode of ['on', 'off'] as const) console.log(`| ${mode} | ${r + 1} | ${fmt(results[mode][r]!)} |`);
  const best = (mode: 'on' | 'off') => Math.max(...results[mode].map((c) => c.imagesPerSecond));
  console.log(
    `best round: reuse on ${best('on').toFixed(0)} img/s, off ${best('off').toFixed(0)} img/s: ${(best('on') / best('off')).toFixed(2)}x`,
  );
}

runBench(main);
