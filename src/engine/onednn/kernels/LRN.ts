/** LRN and LRNGrad over the channel axis (B-AlexNet, B-ResNet's exit 1) as native loops, the cpu backend's formulas. */
import * as tf from '@tensorflow/tfjs-core';
import type { LRNAttrs, LRNGradAttrs, TensorInfo } from '@tensorflow/tfjs-core';
import { allFloat32, f32, sizeOf, uninitialized, withFallback, type OneDnnBackendLike } from './util.js';

function geometry(x: TensorInfo, depthRadius: number): number[] | null {
  if (x.shape.length !== 4 || sizeOf(x.shape) === 0) return null;
  const channels = x.shape[3]!;
  return [sizeOf(x.shape) / channels, channels, depthRadius];
}

export const lrnConfig = withFallback(tf.LRN, ({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: TensorInfo };
  const { depthRadius, bias, alpha, beta } = attrs as unknown as LRNAttrs;
  const geom = geometry(x, depthRadius);
  if (!allFloat32(x) || geom === null) return null;
  const be = backend as OneDnnBackendLike;
  const y = uninitialized(sizeOf(x.shape));
  be.addon.lrn(f32(be, x), y, geom, [bias, alpha, beta]);
  return be.makeTensorInfo(x.shape.slice(), 'float32', y);
});

export const lrnGradConfig = withFallback(tf.LRNGrad, ({ inputs, backend, attrs }) => {
  const { x, y, dy } = inputs as { x: TensorInfo; y: TensorInfo; dy: TensorInfo };
  const { depthRadius, bias, alpha, beta } = attrs as unknown as LRNGradAttrs;
  const geom = geometry(dy, depthRadius);
  if (!allFloat32(x, y, dy) || geom === null) return null;
  const be = backend as OneDnnBackendLike;
  const dx = uninitialized(sizeOf(dy.shape));
  be.addon.lrnGrad(f32(be, x), f32(be, y), f32(be, dy), dx, geom, [bias, alpha, beta]);
  return be.makeTensorInfo(dy.shape.slice(), 'float32', dx);
});
