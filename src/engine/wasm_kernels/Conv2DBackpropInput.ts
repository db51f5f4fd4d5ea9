/**
 * Conv2DBackpropInput for the wasm backend. The stock one is a naive C++ loop;
 * this one is a single XNNPACK Conv2D:
 *
 *   dx = conv_stride1( zero-upsample(dy, stride), flip_hw(transpose_io(W)) )
 *
 * dy: [N,Ho,Wo,Co] is upsampled to [N,Ho*sh,Wo*sw,Co] (every value followed by
 * s-1 zeros, via Reshape + PadV2), the filter [Fh,Fw,Ci,Co] becomes
 * [Fh,Fw,Co,Ci] flipped spatially, and the "full" padding Fh-1-pt (top),
 * Fw-1-pl (left) plus whatever makes the output exactly [N,H,W,Ci] is handed
 * to the convolution. Negative paddings (padding larger than Fh-1) crop dy
 * instead.
 */
import * as tf from '@tensorflow/tfjs-core';
import type {
  Conv2DBackpropInputAttrs,
  KernelBackend,
  KernelConfig,
  KernelFunc,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import { as4D, assertNHWC, conv2dExplicit, release, reshape, runWasmKernel, slice, transpose, WASM } from './util.js';

export const conv2DBackpropInput: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as Conv2DBackpropInputAttrs;
  const be = backend as KernelBackend;
  assertNHWC(dataFormat, tf.Conv2DBackpropInput);

  const filterShape = as4D(filter.shape, 'Conv2DBackpropInput filter');
  const [n, dyH, dyW, dyC] = as4D(dy.shape, 'Conv2DBackpropInput dy');
  const info = tf.backend_util.computeConv2DInfo(
    as4D(inputShape, 'Conv2DBackpropInput inputShape'),
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw, inHeight: h, inWidth: w } = info;
  if (dyH !== info.outHeight || dyW !== info.outWidth || dyC !== info.outChannels || n !== info.batchSize) {
    throw new Error(
      `branchynet: Conv2DBackpropInput dy shape [${dy.shape.join(',')}] does not match ` +
        `the convolution output [${info.outShape.join(',')}]`,
    );
  }

  const temps: TensorInfo[] = [];
  try {
    // 1. Zero-upsample dy by the stride: [N,Ho,Wo,Co] -> [N, Ho*sh, Wo*sw, Co].
    let up = dy;
    if (sh > 1 || sw > 1) {
      const r = reshape(dy, [n * dyH, 1, dyW, 1, dyC], be);
      temps.push(r);
      const p = runWasmKernel(
        tf.PadV2,
        { x: r },
        {
          paddings: [
            [0, 0],
            [0, sh - 1],
            [0, 0],
            [0, sw - 1],
            [0, 0],
          ],
          constantValue: 0,
        },
        be,
      );
      temps.push(p);
      up = reshape(p, [n, dyH * sh, dyW * sw, dyC], be);
      temps.push(up);
    }
    const upH = dyH * sh;
    const upW = dyW * sw;

    // 2. Padding of the stride-1 "full" correlation; crop where it is negative.
    let top = fh - 1 - info.padInfo.top;
    let left = fw - 1 - info.padInfo.left;
    let bottom = h + fh - 1 - upH - top;
    let right = w + fw - 1 - upW - left;
    if (top < 0 || left < 0 || bottom < 0 || right < 0) {
      const cropTop = Math.max(-top, 0);
      const cropLeft = Math.max(-left, 0);
      const sizeH = upH - cropTop - Math.max(-bottom, 0);
      const sizeW = upW - cropLeft - Math.max(-right, 0);
      up = slice(up, [0, cropTop, cropLeft, 0], [n, sizeH, sizeW, dyC], be);
      temps.push(up);
      top = Math.max(top, 0);
      left = Math.max(left, 0);
      bottom = Math.max(bottom, 0);
      right = Math.max(right, 0);
    }

    // 3. Filter [Fh,Fw,Ci,Co] -> [Fh,Fw,Co,Ci], flipped along H and W.
    const fT = transpose(filter, [0, 1, 3, 2], be);
    temps.push(fT);
    const fFlip = runWasmKernel(tf.Reverse, { x: fT }, { dims: [0, 1] }, be);
    temps.push(fFlip);

    return conv2dExplicit(up, fFlip, { top, bottom, left, right }, [1, 1], be); // [N, H, W, Ci]
  } finally {
    release(be, temps);
  }
};

export const conv2DBackpropInputConfig: KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: WASM,
  kernelFunc: conv2DBackpropInput,
};
