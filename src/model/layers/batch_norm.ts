import * as tf from '@tensorflow/tfjs-core';
import { activeBackendHas, BATCH_NORM_TRAIN } from '../../engine/onednn/kernel_names.js';
import type { BatchNormSpec, Shape } from '../spec.js';
import type { LayerImpl, ParamDecl, Params } from './types.js';

export const BATCH_NORM_DEFAULTS = { momentum: 0.9, epsilon: 2e-5 } as const;

function settings(spec: BatchNormSpec): { momentum: number; epsilon: number } {
  const momentum = spec.momentum ?? BATCH_NORM_DEFAULTS.momentum;
  const epsilon = spec.epsilon ?? BATCH_NORM_DEFAULTS.epsilon;
  if (!(momentum >= 0 && momentum < 1)) throw new Error(`batchNorm: momentum must be in [0, 1), got ${momentum}`);
  if (!(epsilon > 0)) throw new Error(`batchNorm: epsilon must be > 0, got ${epsilon}`);
  return { momentum, epsilon };
}

/** gamma and beta (trained), mean and variance (running statistics: state, not trained). */
export function batchNormParams(channels: number): ParamDecl[] {
  return [
    { name: 'gamma', shape: [channels], init: 'ones', fanIn: 1 },
    { name: 'beta', shape: [channels], init: 'zeros', fanIn: 1 },
    { name: 'mean', shape: [channels], init: 'zeros', fanIn: 1, trainable: false },
    { name: 'variance', shape: [channels], init: 'ones', fanIn: 1, trainable: false },
  ];
}

/**
 * Whether the active backend has the fused training kernel (only onednn registers it,
 * engine/onednn/kernels/BatchNorm.ts) and it covers this input: float32, channels last.
 */
function hasNativeBatchNorm(x: tf.Tensor, params: Params): boolean {
  if (x.dtype !== 'float32' || x.rank < 2 || x.size === 0) return false;
  if (!activeBackendHas(BATCH_NORM_TRAIN)) return false;
  const c = x.shape[x.rank - 1];
  return [params.gamma, params.beta].every(
    (p) => p !== undefined && p.dtype === 'float32' && p.rank === 1 && p.shape[0] === c,
  );
}

/**
 * Batch norm over the last axis, written with broadcasting ops (tf.batchNorm's gradient tiles,
 * and Tile is a slow loop on wasm). In training the batch statistics normalise and the running
 * ones are updated in place (when they are variables); at inference the running ones normalise.
 * On the onednn backend, training runs as one native kernel with a native gradient instead
 * (same results within float rounding; the running statistics are updated the same way).
 */
export function batchNormForward(spec: BatchNormSpec, x: tf.Tensor, params: Params, training: boolean): tf.Tensor {
  const { momentum, epsilon } = settings(spec);
  let mean: tf.Tensor;
  let variance: tf.Tensor;
  if (training) {
    let y: tf.Tensor | undefined;
    if (hasNativeBatchNorm(x, params)) {
      // One native call (and one for the gradient): statistics, normalisation, scale and shift.
      [y, mean, variance] = tf
        .engine()
        .runKernel(BATCH_NORM_TRAIN, { x, gamma: params.gamma, beta: params.beta }, { epsilon }) as [
        tf.Tensor,
        tf.Tensor,
        tf.Tensor,
      ];
    } else {
      const axes = x.shape.slice(0, -1).map((_, i) => i);
      ({ mean, variance } = tf.moments(x, axes));
    }
    const m = x.size / x.shape[x.shape.length - 1];
    const runMean = params.mean;
    const runVar = params.variance;
    if (runMean instanceof tf.Variable && runVar instanceof tf.Variable) {
      // Not on the loss's path, so no gradient flows here; assign keeps the new values past tf.tidy.
      const unbiased = tf.mul(variance, m > 1 ? m / (m - 1) : 1);
      runMean.assign(tf.add(tf.mul(runMean, momentum), tf.mul(mean, 1 - momentum)));
      runVar.assign(tf.add(tf.mul(runVar, momentum), tf.mul(unbiased, 1 - momentum)));
    }
    if (y !== undefined) return y;
  } else {
    mean = params.mean;
    variance = params.variance;
  }
  const scale = tf.mul(params.gamma, tf.rsqrt(tf.add(variance, epsilon)));
  return tf.add(tf.mul(x, scale), tf.sub(params.beta, tf.mul(mean, scale)));
}

function channels(input: Shape): number {
  if (input.length < 1) throw new Error('batchNorm: expects an input with a channel axis');
  return input[input.length - 1];
}

/** MACs: 0, as for the other normalisations: at inference it folds into the preceding convolution. */
export const batchNorm: LayerImpl<BatchNormSpec> = {
  kind: 'batchNorm',
  outputShape(spec, input) {
    settings(spec);
    channels(input);
    return input;
  },
  params: (_spec, input) => batchNormParams(channels(input)),
  macs: () => 0,
  forward: (spec, x, params, options) => batchNormForward(spec, x, params, options.training),
};
