/** Conv2DBackpropFilter (the filter gradient of Conv2D) on oneDNN. */
import * as tf from '@tensorflow/tfjs-core';
import type { Conv2DBackpropFilterAttrs, TensorInfo } from '@tensorflow/tfjs-core';
import { allFloat32, convGeometry, f32, sizeOf, uninitialized, withFallback, type OneDnnBackendLike } from './util.js';

export const conv2DBackpropFilterConfig = withFallback(tf.Conv2DBackpropFilter, ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { filterShape, strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as Conv2DBackpropFilterAttrs;
  const be = backend as OneDnnBackendLike;
  if (!allFloat32(x, dy)) return null;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    tf.backend_util.convertConv2DDataFormat(dataFormat),
  );
  const geom = convGeometry(info);
  if (geom === null || sizeOf(dy.shape) !== sizeOf(info.outShape)) return null;
  const dw = uninitialized(sizeOf(filterShape));
  be.addon.conv2dBackpropFilter(f32(be, x), f32(be, dy), dw, geom);
  return be.makeTensorInfo(filterShape.slice(), 'float32', dw);
});
