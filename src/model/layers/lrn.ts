import * as tf from '@tensorflow/tfjs-core';
import type { LrnSpec, Shape } from '../spec.js';
import type { LayerImpl } from './types.js';

/** Chainer's F.local_response_normalization defaults. */
export const LRN_DEFAULTS = { n: 5, k: 2, alpha: 1e-4, beta: 0.75 } as const;

export function lrnParams(spec: LrnSpec): { n: number; k: number; alpha: number; beta: number } {
  const p = {
    n: spec.n ?? LRN_DEFAULTS.n,
    k: spec.k ?? LRN_DEFAULTS.k,
    alpha: spec.alpha ?? LRN_DEFAULTS.alpha,
    beta: spec.beta ?? LRN_DEFAULTS.beta,
  };
  if (!Number.isInteger(p.n) || p.n < 1) throw new Error(`lrn: n must be an integer >= 1, got ${p.n}`);
  for (const [name, v] of [
    ['k', p.k],
    ['alpha', p.alpha],
    ['beta', p.beta],
  ] as const) {
    if (!Number.isFinite(v)) throw new Error(`lrn: ${name} must be a finite number, got ${v}`);
  }
  return p;
}

function check(spec: LrnSpec, input: Shape): Shape {
  if (input.length !== 3) throw new Error(`lrn: expects an [h, w, c] input, got [${input.join(', ')}]`);
  lrnParams(spec);
  return input;
}

/**
 * Chainer/Caffe LRN across channels: y_c = x_c / (k + alpha * sum_{j=c-n/2}^{c+n/2} x_j^2)^beta
 * with n/2 rounded down and alpha not divided by n. tf.localResponseNormalization computes
 * x / (bias + alpha * sum_{|j-c| <= depthRadius} x_j^2)^beta, also without dividing alpha, so
 * the mapping is exact: depthRadius = floor(n / 2), bias = k, same alpha and beta.
 */
export const lrn: LayerImpl<LrnSpec> = {
  kind: 'lrn',
  outputShape: check,
  params: () => [],
  macs: () => 0,
  forward(spec, x) {
    const { n, k, alpha, beta } = lrnParams(spec);
    return tf.localResponseNormalization(x as tf.Tensor4D, Math.floor(n / 2), k, alpha, beta);
  },
};
