#!/usr/bin/env node
/**
 * Benchmark: what each early-exit stage costs on ONNX Runtime against the baseline, in time and in
 * MACs, all runs interleaved round by round. Where a stage's share of the time exceeds its share of
 * the MACs, early exit there saves less than the MAC count says; the time-ideal speed-up (from
 * these stage times and the exit fractions) is what the measured one can approach. The paths
 * "through exit k" (stages 1..k one after another, as a sample answering at exit k takes them)
 * add what running each stage right after a different one costs over repeating it.
 * `npm run bench:stages -- --help` for the options.
 */
import { initBackend } from '../engine/backend.js';
import type { Calibration } from '../eval/calibrate.js';
import { cumulativeExitMacs, trunkMacs } from '../model/macs.js';
import { loadModel, trunkOf } from '../model/io.js';
import { Rng } from '../rng.js';
import { onnxRunnerFromNet } from '../node/onnx.js';
import { benchArgs, modelDirOption, positiveOption, runBench } from './args.js';
import { bestOf } from './best_of.js';

const HELP = `usage: npm run bench:stages -- [options]
  --model DIR              saved model directory (default models/b-lenet-mnist)
  --batch-size N           rows per session run (default 1)
  --threads N              ONNX Runtime intra-op threads (default 1)
  --rounds N               timing rounds; each run's best round counts (default 15)
  --exit-fractions a,b,..  fractions of samples answering at each exit (default: the model's
                           calibration, on its validation split)
  --packing on|off         image packing of a one-channel first layer (default on; docs/onnx.md)
  --json                   print the figures as JSON
`;

const values = benchArgs(
  {
    model: { type: 'string' },
    'batch-size': { type: 'string' },
    threads: { type: 'string' },
    rounds: { type: 'string' },
    'exit-fractions': { type: 'string' },
    packing: { type: 'string' },
    json: { type: 'boolean' },
  },
  HELP,
);

const log = (line: string) => process.stderr.write(line + '\n');

function exitFractionsOf(raw: string | undefined, calibration: unknown, exits: number): number[] | null {
  if (raw !== undefined) {
    const f = raw.split(',').map(Number);
    if (f.length !== exits || f.some((x) => !(x >= 0)) || Math.abs(f.reduce((a, b) => a + b, 0) - 1) > 1e-3) {
      throw new Error(`--exit-fractions: expected ${exits} fractions >= 0 summing to 1, got '${raw}'`);
    }
    return f;
  }
  return (calibration as Calibration | undefined)?.chosen?.exitFractions ?? null;
}

async function main(): Promise<void> {
  const dir = modelDirOption(values.model);
  const rows = positiveOption(values['batch-size'], 'batch-size', 1);
  const threads = positiveOption(values.threads, 'threads', 1);
  const rounds = positiveOption(values.rounds, 'rounds', 15);
  await initBackend('cpu');
  const model = loadModel(dir);
  const net = model.net;
  const baselineNet = model.baseline ?? trunkOf(net);
  const exitFractions = exitFractionsOf(values['exit-fractions'], model.calibration, net.exits);

  const packing = values.packing ?? 'on';
  if (packing !== 'on' && packing !== 'off') throw new Error(`--packing: expected on or off, got '${packing}'`);
  const runnerOptions = { intraOpNumThreads: threads, imagePacking: packing === 'on' };
  const early = await onnxRunnerFromNet(net, runnerOptions);
  const base = await onnxRunnerFromNet(baselineNet, runnerOptions);
  const rng = new Rng(1);
  const images = Float32Array.from({ length: rows * net.spec.input.reduce((a, b) => a * b, 1) }, () => rng.next());
  // Each stage's input: what the stage before it hands on for these images.
  const inputs = [early.input(images, rows)];
  for (let k = 0; k + 1 < net.exits; k++) inputs.push((await early.runStage(k, inputs[k])).next!);
  const baseInput = base.input(images, rows);

  const reps = Math.max(1, Math.round(200 / rows));
  const through = (exits: number) => async () => {
    let a = inputs[0];
    for (let k = 0; k < exits; k++) a = (await early.runStage(k, a)).next!;
  };
  const cases: Record<string, [() => unknown, number]> = {
    ...Object.fromEntries(inputs.map((a, k) => [`stage ${k + 1}`, [() => early.runStage(k, a), reps]])),
    ...Object.fromEntries(inputs.map((_, k) => [`through exit ${k + 1}`, [through(k + 1), reps]])),
    baseline: [() => base.runStage(0, baseInput), reps],
  };
  log(
    `${net.spec.name} (${dir}) on ONNX Runtime (${early.direct ? 'native session called directly' : 'public API'}, ${threads} thread${threads > 1 ? 's' : ''}, image packing ${early.packed ? 'on' : 'off'}): ` +
      `${rows} row${rows > 1 ? 's' : ''} per run, ${reps} runs per round, best of ${rounds} rounds`,
  );
  const perRun = await bestOf(cases, rounds);
  await Promise.all([early.release(), base.release()]);

  const baselineUs = perRun.baseline / rows;
  const baselineMacs = trunkMacs(baselineNet.macs());
  const macs = net.macs();
  const stageMacs = macs.segments.map((s, k) => s + macs.heads[k]);
  const cumulativeMacs = cumulativeExitMacs(macs);
  let elapsed = 0;
  const stages = stageMacs.map((m, k) => {
    const us = perRun[`stage ${k + 1}`] / rows;
    elapsed += us;
    const pathUs = perRun[`through exit ${k + 1}`] / rows;
    return {
      stage: k + 1,
      macs: m,
      macShare: m / baselineMacs,
      usPerSample: us,
      timeShare: us / baselineUs,
      gmacPerSecond: m / us / 1000,
      answeringMacShare: cumulativeMacs[k] / baselineMacs,
      answeringTimeShare: elapsed / baselineUs,
      /** Stages 1..k run one after another (each after a different stage, as in early exit). */
      pathUsPerSample: pathUs,
      pathTimeShare: pathUs / baselineUs,
    };
  });
  const ideal = exitFractions && {
    exitFractions,
    macIdealSpeedup: 1 / exitFractions.reduce((s, f, k) => s + f * stages[k].answeringMacShare, 0),
    timeIdealSpeedup: 1 / exitFractions.reduce((s, f, k) => s + f * stages[k].answeringTimeShare, 0),
    pathTimeIdealSpeedup: 1 / exitFractions.reduce((s, f, k) => s + f * stages[k].pathTimeShare, 0),
  };
  const figures = {
    model: net.spec.name,
    dir,
    rowsPerRun: rows,
    threads,
    direct: early.direct,
    baseline: { macs: baselineMacs, usPerSample: baselineUs, gmacPerSecond: baselineMacs / baselineUs / 1000 },
    stages,
    ideal,
  };
  if (values.json) {
    process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
    return;
  }
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  const lines = [
    '| stage | MACs | % of baseline MACs | us per sample | % of baseline time | GMAC/s | answering here: % MACs | % time | stages 1..k in a row: us | % time |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...stages.map(
      (s) =>
        `| ${s.stage} | ${s.macs} | ${pct(s.macShare)} | ${s.usPerSample.toFixed(1)} | ${pct(s.timeShare)} | ${s.gmacPerSecond.toFixed(1)} | ${pct(s.answeringMacShare)} | ${pct(s.answeringTimeShare)} | ${s.pathUsPerSample.toFixed(1)} | ${pct(s.pathTimeShare)} |`,
    ),
    `| baseline | ${baselineMacs} | 100% | ${baselineUs.toFixed(1)} | 100% | ${figures.baseline.gmacPerSecond.toFixed(1)} | | | | |`,
  ];
  if (ideal) {
    lines.push(
      `at exit fractions ${ideal.exitFractions.map((f) => pct(f)).join(' / ')}${values['exit-fractions'] ? '' : " (the model's calibration, validation split)"}: ` +
        `MAC-ideal speed-up ${ideal.macIdealSpeedup.toFixed(2)}x, time-ideal (these stage runs) ${ideal.timeIdealSpeedup.toFixed(2)}x, ` +
        `from the stages run in a row ${ideal.pathTimeIdealSpeedup.toFixed(2)}x`,
    );
  }
  process.stdout.write(lines.join('\n') + '\n');
}

runBench(main);
