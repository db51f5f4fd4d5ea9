import { adamState, setAdamLearningRate } from '../compat.js';
import * as tf from '@tensorflow/tfjs-core';
import type { Dataset } from '../data/dataset.js';
import { imageSize } from '../data/dataset.js';
import { shown, UserError } from '../errors.js';
import type { NamedArray } from '../io/tensor_pack.js';
import type { BranchyNet } from '../model/network.js';
import type { AugmentOptions } from '../data/transform.js';
import { makeAugmentation } from '../data/transform.js';
import { deriveSeed, Rng } from '../rng.js';
import { accuracyOf, allExitLogits } from '../runtime/full_forward.js';
import { FusedAdamOptimizer } from './fused_adam.js';
import { jointLoss } from './loss.js';
import type { Distillation } from './loss.js';

export interface OptimizerConfig {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/** Step size over a phase: constant (the paper), or cosine decay from `learningRate` to 0 per batch. */
export type LearningRateSchedule = 'constant' | 'cosine';

export interface PhaseConfig extends OptimizerConfig {
  epochs: number;
  lrSchedule?: LearningRateSchedule;
  /**
   * Train the branch heads only, on a trunk kept as it is (running in inference mode): the
   * paper's alternative to joint training.
   */
  freezeTrunk?: boolean;
  batchSize: number;
  seed: number;
  /** Weight of each exit's loss (length = exits). */
  lossWeights: number[];
  /** Earlier exits also learn the last exit's softened answer; off by default. */
  distill?: Distillation;
  /** Training-batch augmentation (random crop, flip); none by default. */
  augment?: AugmentOptions;
}

export interface EpochRecord {
  epoch: number;
  /** Mean training loss of each exit over the epoch. */
  loss: number[];
  /** Validation accuracy of each exit after the epoch. */
  validationAccuracy: number[];
  imagesPerSecond: number;
  seconds: number;
}

export interface PhaseState {
  epochsDone: number;
  history: EpochRecord[];
  optimizer: tf.AdamOptimizer;
}

/** Adam (tfjs's state and formula; each variable's update is one native call on onednn: fused_adam.ts). */
export function createOptimizer(config: OptimizerConfig): tf.AdamOptimizer {
  return new FusedAdamOptimizer(config.learningRate, config.beta1, config.beta2, config.epsilon);
}

/**
 * Adam's running products beta1^t and beta2^t, saved beside its moments: tfjs's setWeights
 * recomputes them as pow(beta, t + 1), which differs in float32 from the product the run built up
 * step by step (0.7399692 against 0.7399693 for beta2 after 300 steps), so a resumed run would not
 * continue exactly where the killed one stopped.
 */
const ACC_BETAS = ['#accBeta1', '#accBeta2'] as const;

/** The optimiser's state as plain arrays (its step count first, Adam's beta products last), for checkpoints. */
export async function saveOptimizer(optimizer: tf.Optimizer, prefix: string): Promise<NamedArray[]> {
  const weights = await optimizer.getWeights();
  const arrays = weights.map((w) => ({
    name: prefix + w.name,
    shape: w.tensor.shape.slice(),
    data: Float32Array.from(w.tensor.dataSync()),
  }));
  const adam = adamState(optimizer as tf.AdamOptimizer);
  if (adam.accBeta1 && adam.accBeta2) {
    [adam.accBeta1, adam.accBeta2].forEach((v, i) =>
      arrays.push({ name: prefix + ACC_BETAS[i], shape: [], data: Float32Array.from(v.dataSync()) }),
    );
  }
  return arrays;
}

/**
 * Restores `saveOptimizer`'s arrays (prefix removed); checkpoints without the beta products get
 * tfjs's pow(beta, t + 1). With `expected` (the variables the optimiser will update, in order, and
 * the file the arrays came from) the state is checked first: a step count, one first and one
 * second moment of each variable's shape (second moments >= 0), products in (0, 1]; a UserError otherwise.
 */
export async function restoreOptimizer(
  optimizer: tf.Optimizer,
  arrays: NamedArray[],
  expected?: { variables: tf.Variable[]; source: string },
): Promise<void> {
  if (arrays.length === 0) return;
  const products = arrays.filter((a) => (ACC_BETAS as readonly string[]).includes(a.name));
  const [iter, ...rest] = arrays.filter((a) => !products.includes(a));
  if (expected) checkOptimizerState(iter, rest, products, expected.variables, expected.source);
  await optimizer.setWeights([
    { name: 'iter', tensor: tf.scalar(Math.round(iter.data[0]), 'int32') },
    ...rest.map((a) => ({ name: a.name, tensor: tf.tensor(a.data, a.shape) })),
  ]);
  const adam = adamState(optimizer as tf.AdamOptimizer);
  for (const p of products) {
    const target = p.name === ACC_BETAS[0] ? adam.accBeta1 : adam.accBeta2;
    if (target) tf.tidy(() => target.assign(tf.scalar(p.data[0])));
  }
}

function checkOptimizerState(
  iter: NamedArray | undefined,
  moments: NamedArray[],
  products: NamedArray[],
  variables: tf.Variable[],
  source: string,
): void {
  const bad = (what: string) => new UserError(`${source}: the optimiser state ${what} (a corrupt checkpoint)`);
  if (!iter || iter.data.length !== 1 || !Number.isInteger(iter.data[0]) || iter.data[0] < 0) {
    throw bad(`starts with ${shown(iter?.name)}, not a step count`);
  }
  if (moments.length !== 2 * variables.length)
    throw bad(`holds ${moments.length} moments for ${variables.length} variables`);
  moments.forEach((m, i) => {
    const v = variables[i % variables.length];
    if (m.shape.join() !== v.shape.join()) {
      throw bad(`has ${shown(m.name)} of shape [${m.shape}] for a variable of shape [${v.shape}]`);
    }
    if (i >= variables.length && m.data.some((x) => x < 0))
      throw bad(`has a negative second moment in ${shown(m.name)}`);
  });
  for (const p of products) {
    if (!(p.data.length === 1 && p.data[0] > 0 && p.data[0] <= 1)) throw bad(`has ${shown(p.name)} outside (0, 1]`);
  }
}

/** The step size of batch `batch` (0-based) of epoch `epoch` (1-based) of a phase of `epochs` epochs. */
export function scheduledLearningRate(config: PhaseConfig, epoch: number, batch: number, batches: number): number {
  if ((config.lrSchedule ?? 'constant') === 'constant') return config.learningRate;
  const progress = (epoch - 1 + batch / batches) / config.epochs;
  return config.learningRate * 0.5 * (1 + Math.cos(Math.PI * progress));
}

function setLearningRate(optimizer: tf.AdamOptimizer, learningRate: number): void {
  setAdamLearningRate(optimizer, learningRate);
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s % 60).padStart(2, '0')}s`;
}

function fillBatch(
  data: Dataset,
  order: Int32Array,
  start: number,
  n: number,
  images: Float32Array,
  labels: Int32Array,
): void {
  const size = imageSize(data);
  for (let i = 0; i < n; i++) {
    const j = order[start + i];
    images.set(data.images.subarray(j * size, (j + 1) * size), i * size);
    labels[i] = data.labels[j];
  }
}

/**
 * Trains all exits of `net` jointly for the epochs still to do, calling `onEpoch` after each
 * (the place to checkpoint). Each epoch's shuffle comes from (seed, phase, epoch), so a resumed
 * run sees the same batches as an uninterrupted one.
 */
export async function trainPhase(options: {
  phase: string;
  net: BranchyNet;
  train: Dataset;
  validation: Dataset;
  config: PhaseConfig;
  state: PhaseState;
  onEpoch: (state: PhaseState) => Promise<void> | void;
  log: (line: string) => void;
  progress?: (line: string) => void;
}): Promise<void> {
  const { phase, net, train, validation, config, state, log } = options;
  const exits = net.exits;
  if (config.lossWeights.length !== exits) throw new Error(`trainPhase: ${exits} exits need ${exits} loss weights`);
  const size = imageSize(train);
  const batchImages = new Float32Array(config.batchSize * size);
  const batchLabels = new Int32Array(config.batchSize);
  const variables = config.freezeTrunk ? net.headVariables : net.variables;
  const trunkOptions = config.freezeTrunk ? { training: false } : undefined;
  const batches = Math.ceil(train.count / config.batchSize);
  const classes = net.spec.classes;
  const augment = makeAugmentation(train.shape, config.augment);
  let recentSecondsPerEpoch = NaN;

  for (let epoch = state.epochsDone + 1; epoch <= config.epochs; epoch++) {
    const started = performance.now();
    const order = new Rng(deriveSeed(config.seed, phase, epoch)).permutation(train.count);
    const lossSums = new Float64Array(exits);
    for (let b = 0; b < batches; b++) {
      const start = b * config.batchSize;
      const n = Math.min(config.batchSize, train.count - start);
      fillBatch(train, order, start, n, batchImages, batchLabels);
      // Augmentation and dropout draw from streams seeded per batch: a resumed run repeats them.
      augment?.(batchImages, n, new Rng(deriveSeed(config.seed, phase, epoch, 'augment', b)));
      const rng = new Rng(deriveSeed(config.seed, phase, epoch, 'dropout', b));
      setLearningRate(state.optimizer, scheduledLearningRate(config, epoch, b, batches));
      const perExit = tf.tidy(() => {
        const x = tf.tensor4d(batchImages.subarray(0, n * size), [n, ...train.shape]);
        const oneHot = tf.oneHot(tf.tensor1d(batchLabels.subarray(0, n), 'int32'), classes);
        let losses: tf.Tensor | undefined;
        const { grads } = tf.variableGrads(() => {
          const { total, perExit } = jointLoss(
            net.forwardAll(x, { training: true, rng }, trunkOptions),
            oneHot,
            config.lossWeights,
            config.distill,
          );
          losses = tf.keep(tf.stack(perExit));
          return total;
        }, variables);
        // applyGradients is typed for variables but takes gradient tensors (as tfjs's own minimize does).
        state.optimizer.applyGradients(grads as unknown as Parameters<tf.AdamOptimizer['applyGradients']>[0]);
        return losses!;
      });
      const values = perExit.dataSync();
      perExit.dispose();
      for (let k = 0; k < exits; k++) lossSums[k] += values[k] * n;
      if (options.progress && (b % 10 === 9 || b === batches - 1)) {
        const seen = start + n;
        const rate = seen / ((performance.now() - started) / 1000);
        options.progress(
          `[${phase}] epoch ${epoch}/${config.epochs} batch ${b + 1}/${batches}  ${Math.round(rate)} img/s` +
            `  epoch ETA ${formatDuration((train.count - seen) / rate)}`,
        );
      }
    }
    const trainSeconds = (performance.now() - started) / 1000;
    const logits = allExitLogits(net, validation);
    const validationAccuracy = logits.map((l) => accuracyOf(l, validation.labels, classes));
    const seconds = (performance.now() - started) / 1000;
    recentSecondsPerEpoch = Number.isNaN(recentSecondsPerEpoch) ? seconds : 0.7 * recentSecondsPerEpoch + 0.3 * seconds;
    const record: EpochRecord = {
      epoch,
      loss: Array.from(lossSums, (s) => s / train.count),
      validationAccuracy,
      imagesPerSecond: train.count / trainSeconds,
      seconds,
    };
    state.history.push(record);
    state.epochsDone = epoch;
    const perExit = (values: number[], f: (v: number) => string) => values.map((v, k) => `e${k + 1} ${f(v)}`).join(' ');
    log(
      `[${phase}] epoch ${epoch}/${config.epochs}  loss ${perExit(record.loss, (v) => v.toFixed(4))}` +
        `  val acc ${perExit(validationAccuracy, (v) => (100 * v).toFixed(2) + '%')}` +
        `  ${Math.round(record.imagesPerSecond)} img/s  ${seconds.toFixed(1)} s` +
        `  ETA ${formatDuration((config.epochs - epoch) * recentSecondsPerEpoch)}`,
    );
    await options.onEpoch(state);
  }
}
