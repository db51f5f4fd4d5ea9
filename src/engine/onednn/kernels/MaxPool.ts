/**
 * MaxPool and MaxPoolGrad (explicit, asymmetric pads; padded cells never win, first maximum takes
 * the gradient), AvgPool (the cpu backend's mean over the cells inside the input, bit for bit) and
 * AvgPoolGrad (the cpu backend's divisor: the full window).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { AvgPoolAttrs, AvgPoolGradAttrs, MaxPoolAttrs, MaxPoolGradAttrs, TensorInfo } from '@tensorflow/tfjs-core';
import type { PoolGeometry } from '../addon.js';
import { allFloat32, f32, poolGeometry, sizeOf, uninitialized, withFallback, type OneDnnBackendLike } from './util.js';

/** A forward pooling kernel (MaxPool, AvgPool): same geometry and fallback, its own native loop. */
function forwardPool(
  kernelName: string,
  run: (be: OneDnnBackendLike, x: Float32Array, y: Float32Array, geom: PoolGeometry) => void,
) {
  return withFallback(kernelName, ({ inputs, backend, attrs }) => {
    const { x } = inputs as { x: TensorInfo };
    const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as MaxPoolAttrs | AvgPoolAttrs;
    const be = backend as OneDnnBackendLike;
    if (!allFloat32(x) || x.shape.length !== 4) return null;
    const info = tf.backend_util.computePool2DInfo(
      x.shape as [number, number, number, number],
      filterSize,
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    const geom = poolGeometry(info);
    if (geom === null) return null;
    const y = uninitialized(sizeOf(info.outShape));
    run(be, f32(be, x), y, geom);
    return be.makeTensorInfo(info.outShape, 'float32', y);
  });
}

export const maxPoolConfig = forwardPool(tf.MaxPool, (be, x, y, geom) => be.addon.maxPool(x, y, geom));

export const maxPoolGradConfig = withFallback(tf.MaxPoolGrad, ({ inputs, backend, attrs }) => {
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as MaxPoolGradAttrs;
  const be = backend as OneDnnBackendLike;
  if (!allFloat32(dy, input) || input.shape.length !== 4) return null;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const geom = poolGeometry(info);
  if (geom === null || sizeOf(dy.shape) !== sizeOf(info.outShape)) return null;
  const dx = uninitialized(sizeOf(input.shape));
  be.addon.maxPoolGrad(f32(be, dy), f32(be, input), dx, geom);
  return be.makeTensorInfo(input.shape.slice(), 'float32', dx);
});

export const avgPoolConfig = forwardPool(tf.AvgPool, (be, x, y, geom) => be.addon.avgPool(x, y, geom));

export const avgPoolGradConfig = withFallback(tf.AvgPoolGrad, ({ inputs, backend, attrs }) => {
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad } = attrs as unknown as AvgPoolGradAttrs;
  const be = backend as OneDnnBackendLike;
  if (!allFloat32(dy, input) || input.shape.length !== 4) return null;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
  );
  const geom = poolGeometry(info);
  if (geom === null || sizeOf(dy.shape) !== sizeOf(info.outShape)) return null;
  const dx = uninitialized(sizeOf(input.shape));
  be.addon.avgPoolGrad(f32(be, dy), dx, geom);
  return be.makeTensorInfo(input.shape.slice(), 'float32', dx);
});
