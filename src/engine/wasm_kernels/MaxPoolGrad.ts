import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * MaxPoolGrad on the wasm backend. The stock kernel loops over every input cell and every window
 * that may contain it; here each output window is scanned once, in JS over views of the wasm heap,
 * and its gradient goes to the window's first maximum (the same tie rule as the cpu backend).
 */
function maxPoolGrad(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as tf.MaxPoolGradAttrs;
  const backend = args.backend as BackendWasm;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const {
    batchSize,
    inHeight,
    inWidth,
    inChannels: channels,
    outHeight,
    outWidth,
    strideHeight,
    strideWidth,
    filterHeight,
    filterWidth,
  } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  const out = backend.makeOutput(input.shape, 'float32');
  // Views are taken after makeOutput, which may grow (and so detach) the heap.
  const x = backend.typedArrayFromHeap(input) as Float32Array;
  const dyValues = backend.typedArrayFromHeap(dy) as Float32Array;
  const dx = backend.typedArrayFromHeap(out) as Float32Array;
  dx.fill(0);
  const best = new Float32Array(channels);
  const bestAt = new Int32Array(channels);
  for (let b = 0; b < batchSize; b++) {
    for (let yR = 0; yR < outHeight; yR++) {
      const rStart = yR * strideHeight - padTop;
      const r0 = Math.max(0, rStart);
      const r1 = Math.min(inHeight, rStart + filterHeight);
      for (let yC = 0; yC < outWidth; yC++) {
        const cStart = yC * strideWidth - padLeft;
        const c0 = Math.max(0, cStart);
        const c1 = Math.min(inWidth, cStart + filterWidth);
        best.fill(-Infinity);
        bestAt.fill(-1);
        for (let r = r0; r < r1; r++) {
          for (let c = c0; c < c1; c++) {
            const base = ((b * inHeight + r) * inWidth + c) * channels;
            for (let d = 0; d < channels; d++) {
              const v = x[base + d];
              if (v > best[d]) {
                best[d] = v;
                bestAt[d] = base + d;
              }
            }
          }
        }
        const dyBase = ((b * outHeight + yR) * outWidth + yC) * channels;
        for (let d = 0; d < channels; d++) if (bestAt[d] >= 0) dx[bestAt[d]] += dyValues[dyBase + d];
      }
    }
  }
  return out;
}

export const maxPoolGradConfig: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as tf.KernelFunc,
};
