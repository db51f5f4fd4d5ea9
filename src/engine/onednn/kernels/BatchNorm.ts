/**
 * Batch norm over the last axis in training mode (statistics, normalisation, scale and shift in
 * one native call, and its gradient in another), and Relu's gradient in one pass. These kernels
 * exist only on the onednn backend; the gradients registered here route to them only there.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, KernelConfig, NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import { BATCH_NORM_TRAIN, BATCH_NORM_TRAIN_GRAD, RELU_GRAD } from '../kernel_names.js';
import { f32, ONEDNN, sizeOf, uninitialized, type OneDnnBackendLike } from './util.js';

interface BatchNormAttrs {
  epsilon: number;
}

/** [rows, channels] of a float32 input of rank >= 1 whose last axis is `gamma`'s length. */
function rowsAndChannels(x: TensorInfo, ...perChannel: TensorInfo[]): [number, number] {
  const c = x.shape[x.shape.length - 1] ?? 0;
  const n = sizeOf(x.shape);
  if (x.shape.length < 1 || n === 0) throw new Error(`${BATCH_NORM_TRAIN}: empty input of shape [${x.shape}]`);
  for (const t of [x, ...perChannel]) {
    if (t.dtype !== 'float32') throw new Error(`${BATCH_NORM_TRAIN}: float32 only, got ${t.dtype}`);
  }
  for (const t of perChannel) {
    if (t.shape.length !== 1 || t.shape[0] !== c)
      throw new Error(`${BATCH_NORM_TRAIN}: expected shape [${c}], got [${t.shape}]`);
  }
  return [n / c, c];
}

export const batchNormTrainConfig: KernelConfig = {
  kernelName: BATCH_NORM_TRAIN,
  backendName: ONEDNN,
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
    const { epsilon } = attrs as unknown as BatchNormAttrs;
    const [m, c] = rowsAndChannels(x, gamma, beta);
    const be = backend as OneDnnBackendLike;
    const y = uninitialized(m * c);
    const mean = uninitialized(c);
    const variance = uninitialized(c);
    be.addon.batchNormTrain(f32(be, x), f32(be, gamma), f32(be, beta), y, mean, variance, [m, c], epsilon);
    return [
      be.makeTensorInfo(x.shape.slice(), 'float32', y),
      be.makeTensorInfo([c], 'float32', mean),
      be.makeTensorInfo([c], 'float32', variance),
    ];
  },
};

export const batchNormTrainGradConfig: KernelConfig = {
  kernelName: BATCH_NORM_TRAIN_GRAD,
  backendName: ONEDNN,
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { dy, x, gamma, mean, variance, dmean, dvariance } = inputs as Record<string, TensorInfo>;
    const { epsilon } = attrs as unknown as BatchNormAttrs;
    const [m, c] = rowsAndChannels(
      x!,
      gamma!,
      mean!,
      variance!,
      ...(dmean ? [dmean] : []),
      ...(dvariance ? [dvariance] : []),
    );
    if (dy!.dtype !== 'float32' || sizeOf(dy!.shape) !== m * c)
      throw new Error(`${BATCH_NORM_TRAIN_GRAD}: dy does not match x`);
    const be = backend as OneDnnBackendLike;
    const dx = uninitialized(m * c);
    const dgamma = uninitialized(c);
    const dbeta = uninitialized(c);
    be.addon.batchNormTrainGrad(
      f32(be, dy!),
      f32(be, x!),
      f32(be, gamma!),
      f32(be, mean!),
      f32(be, variance!),
      dmean ? f32(be, dmean) : null,
      dvariance ? f32(be, dvariance) : null,
      dx,
      dgamma,
      dbeta,
      [m, c],
      epsilon,
    );
    return [
      be.makeTensorInfo(x!.shape.slice(), 'float32', dx),
      be.makeTensorInfo([c], 'float32', dgamma),
      be.makeTensorInfo([c], 'float32', dbeta),
    ];
  },
};

/** dy * step(x) for float32 tensors of one shape (the Relu gradient's composite, one pass). */
export const reluGradConfig: KernelConfig = {
  kernelName: RELU_GRAD,
  backendName: ONEDNN,
  kernelFunc: ({ inputs, backend }) => {
    const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
    const n = sizeOf(x.shape);
    if (dy.dtype !== 'float32' || x.dtype !== 'float32' || sizeOf(dy.shape) !== n)
      throw new Error(`${RELU_GRAD}: float32 tensors of one shape only`);
    const be = backend as OneDnnBackendLike;
    const values = uninitialized(n);
    if (n > 0) be.addon.binary(4, f32(be, dy), f32(be, x), values, [n, n, n]);
    return be.makeTensorInfo(x.shape.slice(), 'float32', values);
  },
};

/**
 * The gradient of BATCH_NORM_TRAIN (its outputs' gradients: dy, and dmean / dvariance, zeros
 * unless the statistics feed the loss), one native call for dx, dgamma and dbeta.
 */
export const batchNormTrainGradient: GradConfig = {
  kernelName: BATCH_NORM_TRAIN,
  inputsToSave: ['x', 'gamma'],
  outputsToSave: [false, true, true],
  gradFunc: (dys: Tensor | Tensor[], saved: Tensor[], attrs?: NamedAttrMap) => {
    const [dy, dmean, dvariance] = dys as Tensor[];
    const [x, gamma, mean, variance] = saved;
    const [dx, dgamma, dbeta] = tf
      .engine()
      .runKernel(
        BATCH_NORM_TRAIN_GRAD,
        { dy: dy!, x: x!, gamma: gamma!, mean: mean!, variance: variance!, dmean: dmean!, dvariance: dvariance! },
        attrs as unknown as NamedAttrMap,
      ) as Tensor[];
    return { x: () => dx!, gamma: () => dgamma!, beta: () => dbeta! };
  },
};

/**
 * Relu's gradient: the native one-pass kernel while onednn is the active backend (float32), and
 * otherwise `stock` (the gradient registered before, normally tfjs's), or tfjs's formula.
 */
export function reluGradient(stock: GradConfig | undefined): GradConfig {
  return {
    kernelName: tf.Relu,
    inputsToSave: ['x'],
    gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs?: NamedAttrMap) => {
      const d = dy as Tensor;
      const [x] = saved;
      if (
        tf.getBackend() === ONEDNN &&
        d.dtype === 'float32' &&
        x!.dtype === 'float32' &&
        tf.getKernel(RELU_GRAD, ONEDNN) !== undefined
      ) {
        return { x: () => tf.engine().runKernel(RELU_GRAD, { dy: d, x: x! }) as Tensor };
      }
      if (stock !== undefined) return stock.gradFunc(dy, saved, attrs ?? {});
      return { x: () => tf.mul(d, tf.cast(tf.step(x!), 'float32')) };
    },
  };
}
