import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Dataset } from '../data/dataset.js';
import { shown, UserError } from '../errors.js';
import type { NamedArray } from '../io/tensor_pack.js';
import { readPackFile, writePackFile } from '../io/tensor_pack.js';
import { checkSpecFromFile } from '../model/file_checks.js';
import { BranchyNet } from '../model/network.js';
import type { BranchyNetSpec } from '../model/spec.js';
import { baselineOf } from '../model/spec.js';
import { assignWeights, readWeights } from '../model/weights.js';
import { loadModel, savedValidationSize, type LoadedModel } from '../model/io.js';
import type { AugmentOptions } from '../data/transform.js';
import type { EpochRecord, LearningRateSchedule, PhaseConfig, PhaseState } from './trainer.js';
import { createOptimizer, restoreOptimizer, saveOptimizer, trainPhase } from './trainer.js';
import type { Distillation } from './loss.js';

export interface TrainOptions {
  /** Epochs of the baseline (trunk alone); 0 skips it and the branchy net starts from scratch. */
  baselineEpochs: number;
  /** Epochs of joint training of all exits. */
  epochs: number;
  batchSize: number;
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  seed: number;
  /** Weight of each exit's loss; default 1.0 each (the reference code). */
  lossWeights?: number[];
  /** Training-batch augmentation (random crop with padding, horizontal flip); off by default, as in the paper. */
  augment?: AugmentOptions;
  /** Step size over each phase; constant by default, as in the paper. */
  lrSchedule?: LearningRateSchedule;
  /** Second phase: earlier exits also learn the last exit's softened answer (self-distillation); off by default. */
  distill?: Distillation;
  /** Second phase trains the branch heads only, on the baseline's trunk left as it is (RQ3 of the paper). */
  freezeTrunk?: boolean;
  /** Set when the baseline was taken from another run (`BaselineSource.from`) rather than trained. */
  baselineFrom?: string;
  /** Set when the joint phase started from another run's branchy net (`BaselineSource.branchy`). */
  initFrom?: string;
}

export const DEFAULT_TRAIN_OPTIONS: TrainOptions = {
  baselineEpochs: 50,
  epochs: 100,
  batchSize: 512,
  learningRate: 0.001,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
  seed: 1,
};

export interface TrainHistory {
  baseline: EpochRecord[];
  joint: EpochRecord[];
}

interface CheckpointHeader {
  kind: 'branchynet-checkpoint';
  spec: BranchyNetSpec;
  options: TrainOptions;
  dataset: { train: number; validation: number };
  phase: 'baseline' | 'joint';
  epochsDone: number;
  history: TrainHistory;
  /** Wall time of the run up to this checkpoint, over every process that trained it (absent in older checkpoints). */
  seconds?: number;
}

export const CHECKPOINT_FILE = 'checkpoint.bin';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isWhole(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

/**
 * Reads a training checkpoint and checks what a run reads from its header (spec, epoch counts,
 * phase, data split sizes, history) and its arrays (`readPackFile`: shapes, finite values): a
 * UserError naming the file where any of it is malformed.
 */
export function readCheckpoint(path: string): { header: CheckpointHeader; arrays: NamedArray[] } {
  const ckpt = readPackFile<CheckpointHeader>(path);
  const h = ckpt.header as Partial<Record<keyof CheckpointHeader, unknown>>;
  const bad = (what: string) => new UserError(`${path}: ${what} (a corrupt checkpoint?)`);
  if (h.kind !== 'branchynet-checkpoint') throw new UserError(`${path}: not a training checkpoint`);
  checkSpecFromFile(h.spec, path);
  const o = h.options;
  if (!isRecord(o) || !isWhole(o.baselineEpochs) || !isWhole(o.epochs)) {
    throw bad(`options must hold whole numbers of epochs, found ${shown(o)}`);
  }
  const split = h.dataset;
  if (!isRecord(split) || !isWhole(split.train) || !isWhole(split.validation)) {
    throw bad(`dataset must hold the split's sizes, found ${shown(split)}`);
  }
  if (h.phase !== 'baseline' && h.phase !== 'joint')
    throw bad(`phase must be "baseline" or "joint", found ${shown(h.phase)}`);
  const phaseEpochs = h.phase === 'baseline' ? o.baselineEpochs : o.epochs;
  if (!isWhole(h.epochsDone) || h.epochsDone > phaseEpochs) {
    throw bad(`epochsDone must be a whole number up to ${phaseEpochs}, found ${shown(h.epochsDone)}`);
  }
  const history = h.history;
  if (!isRecord(history) || ![history.baseline, history.joint].every((l) => Array.isArray(l) && l.every(isRecord))) {
    throw bad(`history must hold the baseline's and the joint phase's epochs, found ${shown(history)}`);
  }
  if (h.seconds !== undefined && !(typeof h.seconds === 'number' && h.seconds >= 0 && Number.isFinite(h.seconds))) {
    throw bad(`seconds must be a number >= 0, found ${shown(h.seconds)}`);
  }
  return ckpt;
}

/** A trained baseline to start the second phase from, instead of training one. */
export interface BaselineSource {
  /** Where it came from (recorded in the run's options). */
  from: string;
  spec: BranchyNetSpec;
  /** Its weights, named as in a checkpoint ('baseline/...'). */
  arrays: NamedArray[];
  history: EpochRecord[];
  epochs: number;
  /** Images it held out for validation, where recorded: the new run must hold out the same. */
  split: { validation: number } | null;
  /** A trained branchy net to start the joint phase from, instead of the baseline's trunk alone (`readInitSource`). */
  branchy?: { spec: BranchyNetSpec; arrays: NamedArray[] };
}

/** The separately trained baseline of a loaded model directory, as a `BaselineSource`. */
function baselineOfModel(dir: string, model: LoadedModel): BaselineSource {
  if (!model.baseline)
    throw new UserError(`${dir}: the model directory has no separately trained baseline (baseline.bin)`);
  const training = model.training as { options?: TrainOptions; history?: TrainHistory } | undefined;
  const validation = savedValidationSize(model);
  const history: unknown = training?.history?.baseline ?? [];
  const epochs: unknown = training?.options?.baselineEpochs ?? training?.history?.baseline?.length ?? 0;
  if (!Array.isArray(history) || !history.every(isRecord) || !isWhole(epochs)) {
    const where = join(dir, 'model.json');
    throw new UserError(`${where}: training must record the baseline's epochs, found ${shown(training)}`);
  }
  return {
    from: dir,
    spec: model.baseline.spec,
    arrays: copiedWeights(model.baseline, 'baseline/'),
    history: history as unknown as EpochRecord[],
    epochs,
    split: validation === undefined ? null : { validation },
  };
}

/** A net's weights, copied out of the tensors' buffers (the net is disposed after). */
function copiedWeights(net: BranchyNet, prefix: string): NamedArray[] {
  return readWeights(net, prefix).map((a) => ({ ...a, data: Float32Array.from(a.data) }));
}

/** Runs `use` on the model directory `dir`, then frees its networks. */
function withModel<T>(dir: string, use: (model: LoadedModel) => T): T {
  const model = loadModel(dir);
  try {
    return use(model);
  } finally {
    model.net.dispose();
    model.baseline?.dispose();
  }
}

/**
 * The baseline of a finished run directory (its model.json and baseline.bin), or of a training
 * directory whose checkpoint is past the baseline phase.
 */
export function readBaselineSource(dir: string): BaselineSource {
  const checkpointPath = join(dir, CHECKPOINT_FILE);
  if (existsSync(join(dir, 'model.json'))) return withModel(dir, (model) => baselineOfModel(dir, model));
  if (!existsSync(checkpointPath))
    throw new UserError(`${dir}: neither a model directory (model.json) nor a training directory (${CHECKPOINT_FILE})`);
  const ckpt = readCheckpoint(checkpointPath);
  if (ckpt.header.phase !== 'joint' || ckpt.header.options.baselineEpochs === 0) {
    throw new UserError(
      `${checkpointPath}: its baseline is not trained yet (${ckpt.header.phase} phase, ${ckpt.header.epochsDone} epochs done)`,
    );
  }
  const arrays = ckpt.arrays.filter((a) => a.name.startsWith('baseline/'));
  const byName = new Map(arrays.map((a) => [a.name, a]));
  for (const { name, decl } of checkSpecFromFile(baselineOf(ckpt.header.spec), checkpointPath).params) {
    const a = byName.get(`baseline/${name}`);
    if (a?.shape.join() !== decl.shape.join()) {
      const found = a ? `of shape [${a.shape}], not [${decl.shape}]` : 'missing';
      throw new UserError(`${checkpointPath}: the baseline's parameter '${name}' is ${found}`);
    }
  }
  return {
    from: dir,
    spec: baselineOf(ckpt.header.spec),
    arrays,
    history: ckpt.header.history.baseline,
    epochs: ckpt.header.options.baselineEpochs,
    split: { validation: ckpt.header.dataset.validation },
  };
}

/**
 * A finished run's model directory, to continue training from: its baseline (as
 * `readBaselineSource`) and its branchy net's weights, where the joint phase then starts.
 */
export function readInitSource(dir: string): BaselineSource {
  if (!existsSync(join(dir, 'model.json')))
    throw new UserError(`${dir}: not a model directory (no model.json) to continue from`);
  return withModel(dir, (model) => ({
    ...baselineOfModel(dir, model),
    branchy: { spec: model.spec, arrays: copiedWeights(model.net, 'branchy/') },
  }));
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Trains the baseline (the trunk alone), then the branchy network warm-started from it, all exits
 * jointly. Checkpoints `outDir/checkpoint.bin` atomically after every epoch; with `resume` it
 * continues from there, losing at most the epoch in progress.
 */
export async function trainBranchyNet(args: {
  spec: BranchyNetSpec;
  train: Dataset;
  validation: Dataset;
  outDir: string;
  options: TrainOptions;
  resume: boolean;
  /** Start from this trained baseline instead of training one. */
  baselineSource?: BaselineSource;
  log: (line: string) => void;
  progress?: (line: string) => void;
}): Promise<{
  net: BranchyNet;
  baseline: BranchyNet | null;
  history: TrainHistory;
  seconds: number;
  options: TrainOptions;
}> {
  const { spec, train, validation, outDir, log } = args;
  const source = args.baselineSource;
  const layersOf = ({ input, classes, segments }: BranchyNetSpec) => ({ input, classes, segments });
  if (source && !sameJson(layersOf(source.spec), layersOf(baselineOf(spec)))) {
    throw new UserError(`${source.from}: its baseline is not the trunk of ${spec.name} (another model or exit layout)`);
  }
  // Validation is the last N training images: with another N this run would validate on images
  // the baseline was trained on. (--train-limit only shortens the training part: no overlap.)
  if (source?.split && source.split.validation !== validation.count) {
    throw new UserError(
      `${source.from}: its baseline was trained with ${source.split.validation} images held out for validation, this run holds out ${validation.count}: ` +
        `its validation images would include the baseline's training images; use --val-size ${source.split.validation}`,
    );
  }
  if (source?.branchy && !sameJson(source.branchy.spec, spec)) {
    throw new UserError(
      `${source.from}: its network is ${source.branchy.spec.name}, not ${spec.name}: training continues only on the same network`,
    );
  }
  const options: TrainOptions = source
    ? {
        ...args.options,
        baselineEpochs: source.epochs,
        baselineFrom: source.from,
        ...(source.branchy ? { initFrom: source.from } : {}),
      }
    : args.options;
  const started = performance.now();
  const exits = spec.segments.length;
  const lossWeights = options.lossWeights ?? spec.lossWeights ?? new Array(exits).fill(1);
  if (lossWeights.length !== exits)
    throw new UserError(`${spec.name} has ${exits} exits, got ${lossWeights.length} weights`, {
      option: 'lossWeights',
    });
  const resolved: TrainOptions = { ...options, lossWeights };
  if (options.freezeTrunk && options.baselineEpochs === 0)
    throw new UserError('trains the branches on a trained trunk: it needs a baseline phase (baselineEpochs > 0)', {
      option: 'freezeTrunk',
    });
  mkdirSync(outDir, { recursive: true });
  const checkpointPath = join(outDir, CHECKPOINT_FILE);
  const datasetSizes = { train: train.count, validation: validation.count };

  let header: CheckpointHeader = {
    kind: 'branchynet-checkpoint',
    spec,
    options: resolved,
    dataset: datasetSizes,
    phase: options.baselineEpochs > 0 && !source ? 'baseline' : 'joint',
    epochsDone: 0,
    history: { baseline: source?.history ?? [], joint: [] },
  };
  let saved: NamedArray[] = source?.arrays ?? [];
  // Wall time spent by earlier processes of a resumed run (what a killed one did after its last checkpoint is lost
  // with it).
  let secondsBefore = 0;
  const secondsSoFar = () => secondsBefore + (performance.now() - started) / 1000;
  if (existsSync(checkpointPath)) {
    if (!args.resume) {
      throw new UserError(`${checkpointPath} exists: resume that run (resume: true) or write to another directory`);
    }
    const ckpt = readCheckpoint(checkpointPath);
    const { epochs: _e, baselineEpochs: _b, ...fixedNow } = resolved;
    const { epochs: _e2, baselineEpochs: _b2, ...fixedThen } = ckpt.header.options;
    if (
      !sameJson(ckpt.header.spec, spec) ||
      !sameJson(fixedThen, fixedNow) ||
      !sameJson(ckpt.header.dataset, datasetSizes)
    ) {
      throw new UserError(
        `${checkpointPath} was written with another model, data split or settings (${JSON.stringify(ckpt.header.options)}); ` +
          'resume with the same ones, or choose another --out',
      );
    }
    if (resolved.lrSchedule === 'cosine') {
      const then = ckpt.header.options;
      if (then.epochs !== resolved.epochs || then.baselineEpochs !== resolved.baselineEpochs) {
        throw new UserError(
          `${checkpointPath}: a cosine schedule depends on the epoch counts; resume with baselineEpochs ${then.baselineEpochs} and epochs ${then.epochs}`,
        );
      }
    }
    if (ckpt.header.phase === 'joint' && resolved.baselineEpochs !== ckpt.header.options.baselineEpochs) {
      throw new UserError(
        `${checkpointPath}: the baseline already finished after ${ckpt.header.options.baselineEpochs} epochs; resume with baselineEpochs ${ckpt.header.options.baselineEpochs}`,
      );
    }
    header = { ...ckpt.header, options: resolved };
    secondsBefore = ckpt.header.seconds ?? 0;
    saved = ckpt.arrays;
    log(`resuming ${checkpointPath}: ${header.phase} phase, ${header.epochsDone} epochs done`);
  } else if (args.resume) {
    log(`no checkpoint at ${checkpointPath}: starting a new run`);
  }

  const phaseConfig = (epochs: number, seed: number): PhaseConfig => ({ ...resolved, epochs, seed, lossWeights: [] });
  const optimizerArrays = (prefix: string) =>
    saved.filter((a) => a.name.startsWith(prefix)).map((a) => ({ ...a, name: a.name.slice(prefix.length) }));
  const checkpoint = async (
    phase: 'baseline' | 'joint',
    epochsDone: number,
    state: PhaseState | null,
    nets: { prefix: string; net: BranchyNet }[],
  ) => {
    header = { ...header, phase, epochsDone, seconds: secondsSoFar() };
    const arrays = nets.flatMap(({ prefix, net }) => readWeights(net, prefix));
    if (state) arrays.push(...(await saveOptimizer(state.optimizer, 'optimizer/')));
    writePackFile(checkpointPath, header, arrays);
  };

  // Phase 1: the baseline, the trunk alone.
  let baseline: BranchyNet | null = null;
  if (resolved.baselineEpochs > 0) {
    baseline = new BranchyNet(baselineOf(spec), resolved.seed);
    if (saved.length > 0) assignWeights(baseline, saved, checkpointPath, 'baseline/');
    if (header.phase === 'baseline') {
      const state: PhaseState = {
        epochsDone: header.epochsDone,
        history: header.history.baseline,
        optimizer: createOptimizer(resolved),
      };
      const expected = { variables: baseline.variables, source: checkpointPath };
      await restoreOptimizer(state.optimizer, optimizerArrays('optimizer/'), expected);
      const base = baseline;
      await trainPhase({
        phase: 'baseline',
        net: base,
        train,
        validation,
        config: {
          ...phaseConfig(resolved.baselineEpochs, resolved.seed),
          lossWeights: [1],
          freezeTrunk: false,
          distill: undefined,
        },
        state,
        log,
        progress: args.progress,
        onEpoch: (s) => checkpoint('baseline', s.epochsDone, s, [{ prefix: 'baseline/', net: base }]),
      });
      state.optimizer.dispose();
      await checkpoint('joint', 0, null, [{ prefix: 'baseline/', net: base }]);
    }
  }

  // Phase 2: the branchy network, warm-started from the baseline, all exits jointly.
  const net = new BranchyNet(spec, resolved.seed);
  const state: PhaseState = {
    epochsDone: header.epochsDone,
    history: header.history.joint,
    optimizer: createOptimizer(resolved),
  };
  if (header.epochsDone > 0) {
    assignWeights(net, saved, checkpointPath, 'branchy/');
    const variables = resolved.freezeTrunk ? net.headVariables : net.variables;
    await restoreOptimizer(state.optimizer, optimizerArrays('optimizer/'), { variables, source: checkpointPath });
  } else if (source?.branchy) {
    assignWeights(net, source.branchy.arrays, source.from, 'branchy/');
    log(`joint training continues from the branchy net of ${source.from} (${net.paramList.length} parameters)`);
  } else if (baseline) {
    const copied = net.copyParamsFrom(baseline);
    log(
      resolved.freezeTrunk
        ? `branches trained on the baseline's frozen trunk (${copied.length} trunk parameters copied)`
        : `joint training warm-started from the baseline (${copied.length} trunk parameters copied)`,
    );
  }
  const nets = (n: BranchyNet) => [
    ...(baseline ? [{ prefix: 'baseline/', net: baseline }] : []),
    { prefix: 'branchy/', net: n },
  ];
  await trainPhase({
    phase: 'joint',
    net,
    train,
    validation,
    config: { ...phaseConfig(resolved.epochs, resolved.seed), lossWeights },
    state,
    log,
    progress: args.progress,
    onEpoch: (s) => checkpoint('joint', s.epochsDone, s, nets(net)),
  });
  state.optimizer.dispose();
  // `options` as run: loss weights resolved, the baseline's epochs and source when taken from another run.
  return { net, baseline, history: header.history, seconds: secondsSoFar(), options: resolved };
}
