/** Conv2DBackpropInput (the input gradient of Conv2D / conv2dTranspose) on oneDNN. */
import * as tf from '@tensorflow/tfjs-core';
import type { Conv2DBackpropInputAttrs, TensorInfo } from '@tensorflow/tfjs-core';
import { allFloat32, convGeometry, f32, sizeOf, uninitialized, withFallback, type OneDnnBackendLike } from './util.js';

export const conv2DBackpropInputConfig = withFallback(tf.Conv2DBackpropInput, ({ inputs, backend, attrs }) => {
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { inputShape, strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as Conv2DBackpropInputAttrs;
  const be = backend as OneDnnBackendLike;
  if (!allFloat32(dy, filter)) return null;
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    tf.backend_util.convertConv2DDataFormat(dataFormat),
  );
  const geom = convGeometry(info);
  if (geom === null || sizeOf(dy.shape) !== sizeOf(info.outShape)) return null;
  const dx = uninitialized(sizeOf(inputShape));
  be.addon.conv2dBackpropInput(f32(be, dy), f32(be, filter), dx, geom);
  return be.makeTensorInfo(inputShape.slice(), 'float32', dx);
});
