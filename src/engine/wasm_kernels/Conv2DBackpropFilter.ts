/**
 * Conv2DBackpropFilter for the wasm backend (tfjs-backend-wasm 4.22 has none,
 * so a conv net cannot train on it).
 *
 * With x: [N,H,W,Ci], dy: [N,Ho,Wo,Co], stride s and top/left padding pt/pl:
 *
 *   dW[a,b,ci,co] = sum_{n,i,j} x[n, i*sh + a - pt, j*sw + b - pl, ci] * dy[n,i,j,co]
 *
 * which is a stride-1 convolution of x' = transpose(x) : [Ci,H,W,N] (channels
 * as batch, batch as reduction channel) with the filter
 * dy' = transpose(dy) : [Ho,Wo,N,Co] dilated by the stride, padded by pt/pl
 * at the top/left so that its output is exactly [Ci,Fh,Fw,Co]. Everything
 * runs on the XNNPACK-backed Conv2D and the Transpose kernels.
 *
 * (The wasm Conv3DBackpropFilterV2 is wrong for strides > 1; not used.)
 */
import * as tf from '@tensorflow/tfjs-core';
import type {
  Conv2DBackpropFilterAttrs,
  KernelBackend,
  KernelConfig,
  KernelFunc,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import { as4D, assertNHWC, conv2dExplicit, release, slice, transpose, WASM } from './util.js';

export const conv2DBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
  const be = backend as KernelBackend;
  assertNHWC(dataFormat, tf.Conv2DBackpropFilter);

  const xShape = as4D(x.shape, 'Conv2DBackpropFilter x');
  const [, dyH, dyW, dyC] = as4D(dy.shape, 'Conv2DBackpropFilter dy');
  const info = tf.backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const {
    filterHeight: fh,
    filterWidth: fw,
    strideHeight: sh,
    strideWidth: sw,
    inHeight: h,
    inWidth: w,
    inChannels: ci,
    outChannels: co,
  } = info;
  if (dyH !== info.outHeight || dyW !== info.outWidth || dyC !== co) {
    throw new Error(
      `branchynet: Conv2DBackpropFilter dy shape [${dy.shape.join(',')}] does not match ` +
        `the convolution output [${info.outShape.join(',')}]`,
    );
  }

  // Padding that makes the dilated-dy correlation produce exactly fh x fw rows/cols.
  // A negative bottom/right value means the last input rows/cols are never read
  // (e.g. 'valid' with (H - Fh) % s != 0): compute the extra outputs and crop them.
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const bottom = fh + (dyH - 1) * sh - h - top;
  const right = fw + (dyW - 1) * sw - w - left;

  const temps: TensorInfo[] = [];
  try {
    const xT = transpose(x, [3, 1, 2, 0], be); // [Ci, H, W, N]
    temps.push(xT);
    const dyT = transpose(dy, [1, 2, 0, 3], be); // [Ho, Wo, N, Co]
    temps.push(dyT);
    let grad = conv2dExplicit(
      xT,
      dyT,
      { top, left, bottom: Math.max(bottom, 0), right: Math.max(right, 0) },
      [sh, sw],
      be,
    );
    if (bottom < 0 || right < 0) {
      // [Ci, fh - bottom, fw - right, Co]
      temps.push(grad);
      grad = slice(grad, [0, 0, 0, 0], [ci, fh, fw, co], be);
    }
    temps.push(grad);
    return transpose(grad, [1, 2, 0, 3], be); // [Fh, Fw, Ci, Co]
  } finally {
    release(be, temps);
  }
};

export const conv2DBackpropFilterConfig: KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: WASM,
  kernelFunc: conv2DBackpropFilter,
};
