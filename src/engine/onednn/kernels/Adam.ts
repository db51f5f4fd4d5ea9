/**
 * Adam's update of one variable in one native pass (src/train/fused_adam.ts calls it): tfjs's
 * AdamOptimizer runs ~10 separate elementwise kernels per variable, each allocating its output.
 */
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { ADAM_UPDATE } from '../kernel_names.js';
import { f32, ONEDNN, sizeOf, uninitialized, type OneDnnBackendLike } from './util.js';

export interface AdamUpdateAttrs {
  beta1: number;
  beta2: number;
  epsilon: number;
  learningRate: number;
  /** 1 - beta1^t, as tfjs computes it (float32). */
  biasCorrection1: number;
  /** 1 - beta2^t. */
  biasCorrection2: number;
}

export const adamUpdateConfig: KernelConfig = {
  kernelName: ADAM_UPDATE,
  backendName: ONEDNN,
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { value, m, v, gradient } = inputs as {
      value: TensorInfo;
      m: TensorInfo;
      v: TensorInfo;
      gradient: TensorInfo;
    };
    const a = attrs as unknown as AdamUpdateAttrs;
    const n = sizeOf(value.shape);
    for (const t of [value, m, v, gradient]) {
      if (t.dtype !== 'float32' || sizeOf(t.shape) !== n) {
        throw new Error(`${ADAM_UPDATE}: float32 tensors of ${value.shape} only, got ${t.dtype} [${t.shape}]`);
      }
    }
    const be = backend as OneDnnBackendLike;
    const newValue = uninitialized(n);
    const newM = uninitialized(n);
    const newV = uninitialized(n);
    // The scalars as tfjs's scalar tensors hold them: float32, `1 - beta` computed in double first.
    const r = Math.fround;
    if (n > 0) {
      be.addon.adamUpdate(f32(be, value), f32(be, m), f32(be, v), f32(be, gradient), newValue, newM, newV, [
        r(a.beta1),
        r(1 - a.beta1),
        r(a.beta2),
        r(1 - a.beta2),
        r(a.epsilon),
        r(-a.learningRate),
        r(a.biasCorrection1),
        r(a.biasCorrection2),
      ]);
    }
    const shape = value.shape.slice();
    return [
      be.makeTensorInfo(shape, 'float32', newValue),
      be.makeTensorInfo(shape.slice(), 'float32', newM),
      be.makeTensorInfo(shape.slice(), 'float32', newV),
    ];
  },
};
