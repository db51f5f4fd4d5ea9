/**
 * Loads the oneDNN addon (native/onednn.cc, built into build/Release by the
 * package's install step when libdnnl-dev is present). Never throws: a missing
 * build or library yields `null` and a one-line reason (docs/onednn.md).
 */

import { inNode } from '../../platform.js';

// node: modules are imported dynamically so that browser bundles of the engine still build.
const node = inNode
  ? { module: await import('node:module'), fs: await import('node:fs'), url: await import('node:url') }
  : null;

/** Geometry of a 2-D convolution: [N, H, W, Ci, Co, Fh, Fw, Ho, Wo, sh, sw, dh, dw, pt, pl, pb, pr]. */
export type ConvGeometry = readonly number[];
/** Geometry of a 2-D max pooling: [N, H, W, C, Ho, Wo, fh, fw, sh, sw, pt, pl]. */
export type PoolGeometry = readonly number[];

/** The addon's functions. Arrays are read / written in place; outputs are allocated by the caller. */
export interface OneDnnAddon {
  conv2d(
    x: Float32Array,
    filter: Float32Array,
    bias: Float32Array | null,
    y: Float32Array,
    geom: ConvGeometry,
    relu: boolean,
  ): void;
  conv2dBackpropInput(dy: Float32Array, filter: Float32Array, dx: Float32Array, geom: ConvGeometry): void;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, geom: ConvGeometry): void;
  /** c[p] = act(op(a[p]) op(b[p]) + bias), geom = [batch, m, n, k, aBatched, bBatched] (0/1 flags). */
  matMul(
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    geom: readonly number[],
    transposeA: boolean,
    transposeB: boolean,
    bias: Float32Array | null,
    relu: boolean,
  ): void;
  maxPool(x: Float32Array, y: Float32Array, geom: PoolGeometry): void;
  maxPoolGrad(dy: Float32Array, x: Float32Array, dx: Float32Array, geom: PoolGeometry): void;
  /** The cpu backend's average pooling (padding not counted), bit for bit. */
  avgPool(x: Float32Array, y: Float32Array, geom: PoolGeometry): void;
  avgPoolGrad(dy: Float32Array, dx: Float32Array, geom: PoolGeometry): void;
  /**
   * dst[dstStart + r * dstStride, + run) = src[srcStart + r * srcStride, + run) for r < runs; geom = [runs, run,
   * srcStride, dstStride, srcStart, dstStart].
   */
  copyRuns(src: Float32Array, dst: Float32Array, geom: readonly number[]): void;
  /** geom = [positions, channels, depthRadius], params = [bias, alpha, beta]. */
  lrn(x: Float32Array, y: Float32Array, geom: readonly number[], params: readonly number[]): void;
  lrnGrad(
    x: Float32Array,
    y: Float32Array,
    dy: Float32Array,
    dx: Float32Array,
    geom: readonly number[],
    params: readonly number[],
  ): void;
  /**
   * out[i] = a[i % aPeriod] op b[i % bPeriod]; op 0 add, 1 sub, 2 mul, 3 div, 4 a * step(b) (relu's gradient); geom
   * = [n, aPeriod, bPeriod].
   */
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, geom: readonly number[]): void;
  /** op 0 relu, 1 sqrt, 2 square, 3 step (alpha for x <= 0), 4 neg. */
  unary(op: number, x: Float32Array, out: Float32Array, alpha: number): void;
  /** out[o, i] = scale * sum_r x[o, r, i], geom = [outer, reduce, inner]. */
  sum(x: Float32Array, out: Float32Array, geom: readonly number[], scale: number): void;
  /**
   * Batch norm over the last axis of x viewed as [m, c] (training): the batch's mean and biased variance
   * per channel, and y = (x - mean) / sqrt(variance + epsilon) * gamma + beta. geom = [m, c].
   */
  batchNormTrain(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    y: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
    geom: readonly number[],
    epsilon: number,
  ): void;
  /**
   * batchNormTrain's gradient (the statistics depend on x); dmean / dvariance: the statistics' own gradients, or
   * null.
   */
  batchNormTrainGrad(
    dy: Float32Array,
    x: Float32Array,
    gamma: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
    dmean: Float32Array | null,
    dvariance: Float32Array | null,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
    geom: readonly number[],
    epsilon: number,
  ): void;
  /**
   * Per row of logits [rows, classes]: loss = logsumexp(z) - sum(labels * z) and probs = softmax(z)
   * (double sums). geom = [rows, classes].
   */
  softmaxCrossEntropy(
    logits: Float32Array,
    labels: Float32Array,
    loss: Float32Array,
    probs: Float32Array,
    geom: readonly number[],
  ): void;
  /** Its gradient with respect to the logits: dlogits = dy[row] * (probs - labels). */
  softmaxCrossEntropyGrad(
    dy: Float32Array,
    probs: Float32Array,
    labels: Float32Array,
    dlogits: Float32Array,
    geom: readonly number[],
  ): void;
  /**
   * One Adam step of one variable (tfjs's AdamOptimizer formula, float32 operations in its order) into
   * newValue / newM / newV (all of value's length). params = [beta1, 1 - beta1, beta2, 1 - beta2, epsilon,
   * -learningRate, 1 - beta1^t, 1 - beta2^t], each already rounded to float32.
   */
  adamUpdate(
    value: Float32Array,
    m: Float32Array,
    v: Float32Array,
    gradient: Float32Array,
    newValue: Float32Array,
    newM: Float32Array,
    newV: Float32Array,
    params: readonly number[],
  ): void;
  setThreads(n: number): void;
  getThreads(): number;
  /** oneDNN's version, e.g. '2.6.3'. */
  version(): string;
  /** The implementations oneDNN picks for a convolution (forward, backward data, backward weights). */
  convImpl(geom: ConvGeometry): string;
  clearCache(): void;
}

/** Every function of the interface: a build from older sources lacks some, and is not used. */
const ADDON_FUNCTIONS: readonly (keyof OneDnnAddon)[] = [
  'conv2d',
  'conv2dBackpropInput',
  'conv2dBackpropFilter',
  'matMul',
  'maxPool',
  'maxPoolGrad',
  'avgPool',
  'avgPoolGrad',
  'copyRuns',
  'lrn',
  'lrnGrad',
  'binary',
  'unary',
  'sum',
  'batchNormTrain',
  'batchNormTrainGrad',
  'adamUpdate',
  'softmaxCrossEntropy',
  'softmaxCrossEntropyGrad',
  'setThreads',
  'getThreads',
  'version',
  'convImpl',
];

/** Where the install step puts the addon (relative to this file in dist/engine/onednn/). */
export const ADDON_PATH =
  node === null
    ? ''
    : node.url.fileURLToPath(new URL('../../../build/Release/branchynet_onednn.node', import.meta.url));

let loaded: { addon: OneDnnAddon | null; reason: string; defaultThreads: number } | undefined;

/**
 * The addon, or null with the reason it is unavailable. Setting the environment
 * variable BRANCHYNET_ONEDNN=0 disables it (as if it were not built).
 */
export function loadOneDnnAddon(): { addon: OneDnnAddon | null; reason: string; defaultThreads: number } {
  if (loaded !== undefined) return loaded;
  if (node === null) {
    loaded = { addon: null, reason: 'not running under Node', defaultThreads: 1 };
  } else if (process.env['BRANCHYNET_ONEDNN'] === '0') {
    loaded = { addon: null, reason: 'disabled by BRANCHYNET_ONEDNN=0', defaultThreads: 1 };
  } else if (!node.fs.existsSync(ADDON_PATH)) {
    loaded = { addon: null, reason: `addon not built: no ${ADDON_PATH}`, defaultThreads: 1 };
  } else {
    try {
      // libgomp reads this when the addon loads it. Spinning OpenMP workers (the default) make a
      // step ~10x slower whenever another process competes for the cores; sleeping costs little.
      if (process.env['OMP_WAIT_POLICY'] === undefined && process.env['GOMP_SPINCOUNT'] === undefined) {
        process.env['OMP_WAIT_POLICY'] = 'passive';
      }
      const addon = node.module.createRequire(import.meta.url)(ADDON_PATH) as OneDnnAddon;
      const missing = ADDON_FUNCTIONS.filter((f) => typeof addon[f] !== 'function');
      if (missing.length > 0) {
        loaded = {
          addon: null,
          reason: `addon built from older sources (no ${missing.join(', ')}); run npm rebuild`,
          defaultThreads: 1,
        };
        return loaded;
      }
      // OpenMP's default: one thread per core (or OMP_NUM_THREADS).
      loaded = { addon, reason: `oneDNN ${addon.version()}`, defaultThreads: addon.getThreads() };
    } catch (e) {
      const first = String((e as Error).message ?? e).split('\n')[0];
      loaded = { addon: null, reason: `addon failed to load: ${first}`, defaultThreads: 1 };
    }
  }
  return loaded;
}
