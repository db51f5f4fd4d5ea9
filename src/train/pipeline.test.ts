import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { holdOutValidation, sliceDataset } from '../data/dataset.js';
import { loadMnist } from '../data/mnist.js';
import { initBackend } from '../engine/backend.js';
import { UserError } from '../errors.js';
import type { BranchyNet } from '../model/network.js';
import { readWeights } from '../model/weights.js';
import { bAlexNet, bLeNet } from '../model/zoo.js';
import type { TrainOptions } from './pipeline.js';
import { DEFAULT_TRAIN_OPTIONS, readBaselineSource, readInitSource, trainBranchyNet } from './pipeline.js';
import { trainAndSave } from '../workflow.js';
import { loadModel } from '../model/io.js';
import type { BranchyNetSpec } from '../model/spec.js';
import { scheduledLearningRate } from './trainer.js';

before(async () => {
  await initBackend('wasm');
});

const mnist = loadMnist();
const { train, validation } = holdOutValidation(sliceDataset(mnist.train, 0, 700), 200);
const options: TrainOptions = { ...DEFAULT_TRAIN_OPTIONS, baselineEpochs: 2, epochs: 2, batchSize: 64, seed: 3 };
const quiet = () => {};

function weightsOf(net: BranchyNet): number[] {
  return readWeights(net).flatMap((a) => Array.from(a.data));
}

test('B-LeNet learns 500 MNIST digits: loss falls, exits beat chance, warm start copies the trunk', async () => {
  const lines: string[] = [];
  const out = mkdtempSync(join(tmpdir(), 'bn-train-'));
  const r = await trainBranchyNet({
    spec: bLeNet(),
    train,
    validation,
    outDir: out,
    options,
    resume: false,
    log: (l) => lines.push(l),
  });
  assert.equal(r.history.baseline.length, 2);
  assert.equal(r.history.joint.length, 2);
  assert.ok(r.history.baseline[1].loss[0] < r.history.baseline[0].loss[0], 'baseline loss falls');
  const last = r.history.joint[1];
  assert.ok(
    last.validationAccuracy.every((a) => a > 0.5),
    `validation accuracies ${last.validationAccuracy}`,
  );
  assert.ok(
    lines.some((l) =>
      /^\[joint\] epoch 2\/2 .*loss e1 [\d.]+ e2 [\d.]+ .*val acc e1 [\d.]+% e2 [\d.]+% .*img\/s .*ETA/.test(l),
    ),
    lines.join('\n'),
  );
  assert.ok(lines.some((l) => /warm-started from the baseline \(10 trunk parameters copied\)/.test(l)));
  assert.deepEqual(readdirSync(out), ['checkpoint.bin']);
});

test('a run killed after an epoch resumes to the same weights as an uninterrupted run', async () => {
  const straightDir = mkdtempSync(join(tmpdir(), 'bn-straight-'));
  const straight = await trainBranchyNet({
    spec: bLeNet(),
    train,
    validation,
    outDir: straightDir,
    options,
    resume: false,
    log: quiet,
  });

  const dir = mkdtempSync(join(tmpdir(), 'bn-resume-'));
  // "Kill" the run after the first joint epoch's checkpoint by stopping at epoch 1, then resume to 2.
  const first = await trainBranchyNet({
    spec: bLeNet(),
    train,
    validation,
    outDir: dir,
    options: { ...options, epochs: 1 },
    resume: false,
    log: quiet,
  });
  await assert.rejects(
    trainBranchyNet({ spec: bLeNet(), train, validation, outDir: dir, options, resume: false, log: quiet }),
    (e: Error) => e instanceof UserError && /exists: resume that run \(resume: true\)/.test(e.message),
  );
  await assert.rejects(
    trainBranchyNet({
      spec: bLeNet(),
      train,
      validation,
      outDir: dir,
      options: { ...options, learningRate: 0.01 },
      resume: true,
      log: quiet,
    }),
    /written with another model, data split or settings/,
  );
  const lines: string[] = [];
  const resumed = await trainBranchyNet({
    spec: bLeNet(),
    train,
    validation,
    outDir: dir,
    options,
    resume: true,
    log: (l) => lines.push(l),
  });
  assert.ok(lines[0].startsWith('resuming'), lines[0]);
  assert.equal(resumed.history.joint.length, 2);
  assert.deepEqual(weightsOf(resumed.net), weightsOf(straight.net));
  assert.deepEqual(
    resumed.history.joint.map((h) => h.loss),
    straight.history.joint.map((h) => h.loss),
  );
  // The run's wall time counts both processes: at least the first one's up to its checkpoint plus the resumed epoch.
  assert.ok(
    resumed.seconds >= first.seconds * 0.9 + resumed.history.joint[1]!.seconds,
    `${resumed.seconds} vs ${first.seconds} + ${resumed.history.joint[1]!.seconds}`,
  );
});

test('the cosine schedule starts at the step size, halves it midway and decays towards 0', () => {
  const config = { ...options, epochs: 4, lossWeights: [1], lrSchedule: 'cosine' as const };
  assert.equal(scheduledLearningRate({ ...config, lrSchedule: 'constant' }, 3, 5, 10), options.learningRate);
  assert.equal(scheduledLearningRate(config, 1, 0, 10), options.learningRate);
  assert.ok(Math.abs(scheduledLearningRate(config, 3, 0, 10) - options.learningRate / 2) < 1e-12);
  const steps = Array.from({ length: 40 }, (_, i) => scheduledLearningRate(config, 1 + Math.floor(i / 10), i % 10, 10));
  assert.ok(
    steps.every((lr, i) => i === 0 || lr < steps[i - 1]),
    'strictly decreasing',
  );
  assert.ok(steps[39] > 0 && steps[39] < options.learningRate * 0.01, `last step ${steps[39]}`);
});

test('a cosine run must resume with the epoch counts it was started with', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bn-cosine-'));
  const cosine = { ...options, baselineEpochs: 1, epochs: 1, lrSchedule: 'cosine' as const };
  await trainBranchyNet({ spec: bLeNet(), train, validation, outDir: dir, options: cosine, resume: false, log: quiet });
  await assert.rejects(
    trainBranchyNet({
      spec: bLeNet(),
      train,
      validation,
      outDir: dir,
      options: { ...cosine, epochs: 3 },
      resume: true,
      log: quiet,
    }),
    (e: Error) =>
      e instanceof UserError &&
      /cosine schedule depends on the epoch counts; resume with baselineEpochs 1 and epochs 1/.test(e.message),
  );
});

test("--freeze-trunk trains the branch heads only: the trunk stays the baseline's, exit 1 learns", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bn-frozen-'));
  const lines: string[] = [];
  const r = await trainBranchyNet({
    spec: bLeNet(),
    train,
    validation,
    outDir: dir,
    options: { ...options, freezeTrunk: true },
    resume: false,
    log: (l) => lines.push(l),
  });
  assert.ok(
    lines.some((l) => /branches trained on the baseline's frozen trunk \(10 trunk parameters copied\)/.test(l)),
    lines.join('\n'),
  );
  const baseline = new Map(readWeights(r.baseline!).map((a) => [a.name, a.data]));
  const trunk = readWeights(r.net).filter((a) => a.name.startsWith('trunk.'));
  assert.equal(trunk.length, 10);
  for (const a of trunk) assert.deepEqual(a.data, baseline.get(a.name), a.name);
  const joint = r.history.joint;
  assert.ok(joint[1].loss[0] < joint[0].loss[0], 'exit-1 loss falls');
  assert.ok(joint[1].validationAccuracy[0] > 0.5, `exit-1 accuracy ${joint[1].validationAccuracy[0]}`);
  assert.equal(
    joint[1].validationAccuracy[1],
    r.history.baseline[1].validationAccuracy[0],
    'the last exit is the baseline',
  );
  await assert.rejects(
    trainBranchyNet({
      spec: bLeNet(),
      train,
      validation,
      outDir: mkdtempSync(join(tmpdir(), 'bn-frozen0-')),
      options: { ...options, baselineEpochs: 0, freezeTrunk: true },
      resume: false,
      log: quiet,
    }),
    (e: Error) =>
      e instanceof UserError &&
      e.option === 'freezeTrunk' &&
      /needs a baseline phase \(baselineEpochs > 0\)/.test(e.message),
  );
});

test("--baseline-from starts the second phase from another run's trained baseline", async () => {
  const first = mkdtempSync(join(tmpdir(), 'bn-source-'));
  const original = await trainBranchyNet({
    spec: bLeNet(),
    train,
    validation,
    outDir: first,
    options: { ...options, epochs: 1 },
    resume: false,
    log: quiet,
  });
  const source = readBaselineSource(first);
  assert.equal(source.epochs, 2);
  assert.deepEqual(source.history, original.history.baseline);

  const dir = mkdtempSync(join(tmpdir(), 'bn-from-'));
  const lines: string[] = [];
  const r = await trainBranchyNet({
    spec: bLeNet(),
    train,
    validation,
    outDir: dir,
    options: { ...options, baselineEpochs: 0, epochs: 1, freezeTrunk: true },
    baselineSource: source,
    resume: false,
    log: (l) => lines.push(l),
  });
  assert.ok(!lines.some((l) => l.startsWith('[baseline]')), 'no baseline epoch is trained');
  assert.deepEqual(weightsOf(r.baseline!), weightsOf(original.baseline!));
  assert.deepEqual(r.history.baseline, original.history.baseline);
  await assert.rejects(
    trainBranchyNet({
      spec: bAlexNet(),
      train,
      validation,
      outDir: mkdtempSync(join(tmpdir(), 'bn-from2-')),
      options,
      baselineSource: source,
      resume: false,
      log: quiet,
    }),
    (e: Error) => e instanceof UserError && /its baseline is not the trunk of b-alexnet/.test(e.message),
  );
  assert.throws(() => readBaselineSource(mkdtempSync(join(tmpdir(), 'bn-empty-'))), /neither a model directory/);
  // Another validation split would validate on the baseline's training images.
  const shifted = holdOutValidation(sliceDataset(mnist.train, 0, 700), 210);
  await assert.rejects(
    trainBranchyNet({
      spec: bLeNet(),
      ...shifted,
      outDir: mkdtempSync(join(tmpdir(), 'bn-from3-')),
      options: { ...options, baselineEpochs: 0, epochs: 1 },
      baselineSource: source,
      resume: false,
      log: quiet,
    }),
    (e: Error) =>
      e instanceof UserError && /held out for validation, this run holds out 210.*use --val-size 200/.test(e.message),
  );
});

test('--init-from continues a finished run: the joint phase starts from its branchy net, on the same network only', async () => {
  const first = mkdtempSync(join(tmpdir(), 'bn-init-src-'));
  await trainAndSave({
    spec: bLeNet(),
    datasetName: 'mnist',
    train,
    validation,
    outDir: first,
    options: { ...options, epochs: 1 },
    resume: false,
    log: quiet,
  });
  const finished = loadModel(first);
  const source = readInitSource(first);
  assert.equal(source.epochs, 2);

  // No joint epoch: the net is the source's, bit for bit (trunk and heads), the baseline too.
  const lines: string[] = [];
  const same = await trainBranchyNet({
    spec: bLeNet(),
    train,
    validation,
    outDir: mkdtempSync(join(tmpdir(), 'bn-init0-')),
    options: { ...options, epochs: 0 },
    baselineSource: source,
    resume: false,
    log: (l) => lines.push(l),
  });
  assert.deepEqual(weightsOf(same.net), weightsOf(finished.net));
  assert.deepEqual(weightsOf(same.baseline!), weightsOf(finished.baseline!));
  assert.equal(same.options.initFrom, first);
  assert.ok(
    lines.some((l) => l.startsWith(`joint training continues from the branchy net of ${first}`)),
    lines.join('\n'),
  );

  // One more epoch moves on from there: its loss starts near where the source's training ended.
  const more = await trainBranchyNet({
    spec: bLeNet(),
    train,
    validation,
    outDir: mkdtempSync(join(tmpdir(), 'bn-init1-')),
    options: { ...options, epochs: 1 },
    baselineSource: source,
    resume: false,
    log: quiet,
  });
  assert.notDeepEqual(weightsOf(more.net), weightsOf(finished.net));
  const fresh = await trainBranchyNet({
    spec: bLeNet(),
    train,
    validation,
    outDir: mkdtempSync(join(tmpdir(), 'bn-init2-')),
    options: { ...options, epochs: 1 },
    baselineSource: readBaselineSource(first),
    resume: false,
    log: quiet,
  });
  assert.ok(
    more.history.joint[0].loss[0] < fresh.history.joint[0].loss[0],
    `exit-1 loss ${more.history.joint[0].loss[0]} continuing, ${fresh.history.joint[0].loss[0]} from the baseline`,
  );

  const other: BranchyNetSpec = { ...bLeNet(), name: 'b-lenet-other' };
  await assert.rejects(
    trainBranchyNet({
      spec: other,
      train,
      validation,
      outDir: mkdtempSync(join(tmpdir(), 'bn-init3-')),
      options,
      baselineSource: source,
      resume: false,
      log: quiet,
    }),
    (e: Error) => e instanceof UserError && /its network is b-lenet, not b-lenet-other/.test(e.message),
  );
  assert.throws(() => readInitSource(mkdtempSync(join(tmpdir(), 'bn-init4-'))), /not a model directory/);
  finished.net.dispose();
  finished.baseline?.dispose();
});

test('--distill changes what the earlier exits learn, and a run resumes only with the same distillation', async () => {
  const sourceDir = mkdtempSync(join(tmpdir(), 'bn-dsrc-'));
  await trainBranchyNet({
    spec: bLeNet(),
    train,
    validation,
    outDir: sourceDir,
    options: { ...options, epochs: 0 },
    resume: false,
    log: quiet,
  });
  const source = readBaselineSource(sourceDir);
  const run = (distill: TrainOptions['distill'], outDir = mkdtempSync(join(tmpdir(), 'bn-distill-')), resume = false) =>
    trainBranchyNet({
      spec: bLeNet(),
      train,
      validation,
      outDir,
      options: { ...options, baselineEpochs: 0, epochs: 1, ...(distill ? { distill } : {}) },
      baselineSource: source,
      resume,
      log: quiet,
    });
  const head = (net: BranchyNet) =>
    readWeights(net)
      .filter((a) => a.name.startsWith('head0.'))
      .flatMap((a) => Array.from(a.data));
  const plain = await run(undefined);
  assert.ok(head(plain.net).length > 0);
  const distilledDir = mkdtempSync(join(tmpdir(), 'bn-distill-'));
  const distilled = await run({ weight: 1, temperature: 3 }, distilledDir);
  assert.notDeepEqual(head(distilled.net), head(plain.net));
  // Weight 0 is the plain joint loss, bit for bit.
  assert.deepEqual(head((await run({ weight: 0, temperature: 3 })).net), head(plain.net));
  await assert.rejects(
    run(undefined, distilledDir, true),
    (e: Error) => e instanceof UserError && /another model, data split or settings/.test(e.message),
  );
});
