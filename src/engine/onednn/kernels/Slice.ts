/**
 * Slice and SplitV for numeric tensors by copying contiguous innermost runs (the cpu kernel maps
 * every element through index arithmetic when the slice is not contiguous; SplitV is the
 * gradient of the zero-padded ResNet shortcut's Concat). Pure JS: typed-array set/subarray.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, SliceAttrs, SplitVAttrs, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { ONEDNN, cpuKernel } from './util.js';

type Numeric = Float32Array | Int32Array | Uint8Array;

function sliceValues(vals: Numeric, shape: readonly number[], begin: readonly number[], size: readonly number[]): Numeric {
  const rank = shape.length;
  const strides = tf.util.computeStrides(shape as number[]);
  const out = new (vals.constructor as { new (n: number): Numeric })(tf.util.sizeFromShape(size as number[]));
  if (out.length === 0) return out;
  const run = rank === 0 ? 1 : size[rank - 1]!;
  const idx = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  for (let o = 0; o < out.length; o += run) {
    let src = rank === 0 ? 0 : begin[rank - 1]!;
    for (let d = 0; d < rank - 1; d++) src += (begin[d]! + idx[d]!) * strides[d]!;
    out.set(vals.subarray(src, src + run), o);
    for (let d = rank - 2; d >= 0; d--) {              // odometer over the outer dimensions
      if (++idx[d]! < size[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

function slice(be: MathBackendCPU, x: TensorInfo, begin: number[], size: number[]): TensorInfo {
  const vals = be.data.get(x.dataId).values as Numeric;
  return be.makeTensorInfo(size.slice(), x.dtype, sliceValues(vals, x.shape, begin, size));
}

const isNumeric = (x: TensorInfo): boolean => x.dtype === 'float32' || x.dtype === 'int32' || x.dtype === 'bool';

export const sliceConfig: KernelConfig = {
  kernelName: tf.Slice,
  backendName: ONEDNN,
  kernelFunc: (args) => {
    const { x } = args.inputs as { x: tf.Tensor };
    if (!isNumeric(x)) return cpuKernel(tf.Slice)(args);
    const { begin, size } = args.attrs as unknown as SliceAttrs;
    const [b, s] = tf.slice_util.parseSliceParams(x, begin, size);
    tf.slice_util.assertParamsValid(x, b, s);
    return slice(args.backend as MathBackendCPU, x, b, s);
  },
};

export const splitVConfig: KernelConfig = {
  kernelName: tf.SplitV,
  backendName: ONEDNN,
  kernelFunc: (args) => {
    const { x } = args.inputs as { x: tf.Tensor };
    if (!isNumeric(x)) return cpuKernel(tf.SplitV)(args);
    const { numOrSizeSplits, axis } = args.attrs as unknown as SplitVAttrs;
    const $axis = tf.util.parseAxisParam(axis, x.shape)[0]!;
    const splits = tf.backend_util.prepareSplitSize(x, numOrSizeSplits, $axis);
    const begin = new Array<number>(x.rank).fill(0);
    const size = x.shape.slice();
    return splits.map((s) => {
      size[$axis] = s;
      const part = slice(args.backend as MathBackendCPU, x, begin, size);
      begin[$axis]! += s;
      return part;
    });
  },
};
