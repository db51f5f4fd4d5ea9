/** Conv2D and FusedConv2D (bias, relu) on oneDNN; other activations and layouts fall back to the cpu kernels. */
import * as tf from '@tensorflow/tfjs-core';
import type { Conv2DAttrs, FusedConv2DAttrs, TensorInfo } from '@tensorflow/tfjs-core';
import { allFloat32, convGeometry, f32, sizeOf, uninitialized, withFallback, type OneDnnBackendLike } from './util.js';

function conv(
  backend: OneDnnBackendLike,
  x: TensorInfo,
  filter: TensorInfo,
  bias: TensorInfo | undefined,
  attrs: Conv2DAttrs,
  relu: boolean,
): TensorInfo | null {
  if (!allFloat32(x, filter, bias)) return null;
  const { strides, pad, dataFormat, dilations, dimRoundingMode } = attrs;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    strides,
    dilations,
    pad,
    dimRoundingMode,
    false,
    tf.backend_util.convertConv2DDataFormat(dataFormat),
  );
  const geom = convGeometry(info);
  if (geom === null) return null;
  if (
    bias !== undefined &&
    (sizeOf(bias.shape) !== info.outChannels || bias.shape[bias.shape.length - 1] !== info.outChannels)
  )
    return null;
  const y = uninitialized(sizeOf(info.outShape));
  backend.addon.conv2d(
    f32(backend, x),
    f32(backend, filter),
    bias === undefined ? null : f32(backend, bias),
    y,
    geom,
    relu,
  );
  return backend.makeTensorInfo(info.outShape, 'float32', y);
}

export const conv2DConfig = withFallback(tf.Conv2D, ({ inputs, backend, attrs }) => {
  const { x, filter } = inputs as { x: TensorInfo; filter: TensorInfo };
  return conv(backend as OneDnnBackendLike, x, filter, undefined, attrs as unknown as Conv2DAttrs, false);
});

export const fusedConv2DConfig = withFallback(tf.FusedConv2D, ({ inputs, backend, attrs }) => {
  const { x, filter, bias, preluActivationWeights } = inputs as {
    x: TensorInfo;
    filter: TensorInfo;
    bias?: TensorInfo;
    preluActivationWeights?: TensorInfo;
  };
  const a = attrs as unknown as FusedConv2DAttrs;
  if (preluActivationWeights != null || (a.activation !== 'linear' && a.activation !== 'relu')) return null;
  return conv(backend as OneDnnBackendLike, x, filter, bias ?? undefined, a, a.activation === 'relu');
});
