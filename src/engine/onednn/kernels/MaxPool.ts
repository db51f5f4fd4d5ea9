/**
 * MaxPool and MaxPoolGrad (explicit, asymmetric pads; padded cells never win, first maximum takes
 * the gradient), AvgPool (the cpu backend's mean over the cells inside the input, bit for bit) and
 * AvgPoolGrad (the cpu backend's divisor: the full window).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { AvgPoolAttrs, AvgPoolGradAttrs, MaxPoolAttrs, MaxPoolGradAttrs, TensorInfo } from '@tensorflow/tfjs-core';
import { allFloat32, f32, poolGeometry, sizeOf, uninitialized, withFallback, type OneDnnBackendLike } from './util.js';

export const maxPoolConfig = withFallback(tf.MaxPool, ({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as MaxPoolAttrs;
  const be = backend as OneDnnBackendLike;
  if (!allFloat32(x) || x.shape.length !== 4) return null;
  const info = tf.backend_util.computePool2DInfo(x.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const geom = poolGeometry(info);
  if (geom === null) return null;
  const y = uninitialized(sizeOf(info.outShape));
  be.addon.maxPool(f32(be, x), y, geom);
  return be.makeTensorInfo(info.outShape, 'float32', y);
});

export const maxPoolGradConfig = withFallback(tf.MaxPoolGrad, ({ inputs, backend, attrs }) => {
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as MaxPoolGradAttrs;
  const be = backend as OneDnnBackendLike;
  if (!allFloat32(dy, input) || input.shape.length !== 4) return null;
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const geom = poolGeometry(info);
  if (geom === null || sizeOf(dy.shape) !== sizeOf(info.outShape)) return null;
  const dx = uninitialized(sizeOf(input.shape));
  be.addon.maxPoolGrad(f32(be, dy), f32(be, input), dx, geom);
  return be.makeTensorInfo(input.shape.slice(), 'float32', dx);
});

export const avgPoolConfig = withFallback(tf.AvgPool, ({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as AvgPoolAttrs;
  const be = backend as OneDnnBackendLike;
  if (!allFloat32(x) || x.shape.length !== 4) return null;
  const info = tf.backend_util.computePool2DInfo(x.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const geom = poolGeometry(info);
  if (geom === null) return null;
  const y = uninitialized(sizeOf(info.outShape));
  be.addon.avgPool(f32(be, x), y, geom);
  return be.makeTensorInfo(info.outShape, 'float32', y);
});

export const avgPoolGradConfig = withFallback(tf.AvgPoolGrad, ({ inputs, backend, attrs }) => {
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad } = attrs as unknown as AvgPoolGradAttrs;
  const be = backend as OneDnnBackendLike;
  if (!allFloat32(dy, input) || input.shape.length !== 4) return null;
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad);
  const geom = poolGeometry(info);
  if (geom === null || sizeOf(dy.shape) !== sizeOf(info.outShape)) return null;
  const dx = uninitialized(sizeOf(input.shape));
  be.addon.avgPoolGrad(f32(be, dy), dx, geom);
  return be.makeTensorInfo(input.shape.slice(), 'float32', dx);
});
