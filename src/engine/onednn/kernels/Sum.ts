/**
 * Sum and Mean over contiguous float32 axes (bias gradients, batch-norm statistics: all but the
 * channel axis) as a native reduction.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, MeanAttrs, SumAttrs, TensorInfo } from '@tensorflow/tfjs-core';
import { f32, sizeOf, uninitialized, withFallback, type OneDnnBackendLike } from './util.js';

function reduceConfig(name: string, mean: boolean): KernelConfig {
  return withFallback(name, ({ inputs, backend, attrs }) => {
    const { x } = inputs as { x: TensorInfo };
    const { axis, keepDims } = attrs as unknown as SumAttrs | MeanAttrs;
    if (x.dtype !== 'float32' || sizeOf(x.shape) === 0) return null;
    const axes = [...new Set(tf.util.parseAxisParam(axis, x.shape))].sort((p, q) => p - q);
    if (axes.length === 0 || axes.some((a, i) => i > 0 && a !== axes[i - 1]! + 1)) return null;
    const first = axes[0]!;
    const last = axes[axes.length - 1]!;
    const outer = sizeOf(x.shape.slice(0, first));
    const reduce = sizeOf(x.shape.slice(first, last + 1));
    const inner = sizeOf(x.shape.slice(last + 1));
    const be = backend as OneDnnBackendLike;
    const values = uninitialized(outer * inner);
    be.addon.sum(f32(be, x), values, [outer, reduce, inner], mean ? 1 / reduce : 1);
    const shape = keepDims
      ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
      : x.shape.filter((_, i) => !axes.includes(i));
    return be.makeTensorInfo(shape, 'float32', values);
  });
}

export const sumConfig = reduceConfig(tf.Sum, false);
export const meanConfig = reduceConfig(tf.Mean, true);
