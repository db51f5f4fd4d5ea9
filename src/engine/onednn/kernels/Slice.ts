/**
 * Slice, SplitV and Concat by copying contiguous runs (the cpu kernels map every element through
 * index arithmetic; SplitV is the gradient of the zero-padded ResNet shortcut's Concat). A float32
 * slice along one axis, a split and a float32 concat are one native call each (`copyRuns`: one
 * memcpy per run); other slices copy innermost runs in JS (typed-array set/subarray).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ConcatAttrs, KernelConfig, SliceAttrs, SplitVAttrs, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { ONEDNN, cpuKernel, f32, sizeOf, uninitialized, withFallback, type OneDnnBackendLike } from './util.js';

type Numeric = Float32Array | Int32Array | Uint8Array;

function sliceValues(
  vals: Numeric,
  shape: readonly number[],
  begin: readonly number[],
  size: readonly number[],
): Numeric {
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
    for (let d = rank - 2; d >= 0; d--) {
      // odometer over the outer dimensions
      if (++idx[d]! < size[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * A slice that cuts one axis only (every other axis whole) as runs of a flat copy: `runs` blocks
 * of `run` elements, `stride` apart in the source, the first at `start`. Null for other slices.
 */
function oneAxisRuns(
  shape: readonly number[],
  begin: readonly number[],
  size: readonly number[],
): { runs: number; run: number; stride: number; start: number } | null {
  let axis = -1;
  for (let d = 0; d < shape.length; d++) {
    if (begin[d] === 0 && size[d] === shape[d]) continue;
    if (axis >= 0) return null;
    axis = d;
  }
  if (axis < 0) axis = 0;
  const inner = sizeOf(shape.slice(axis + 1));
  return {
    runs: sizeOf(shape.slice(0, axis)),
    run: size[axis]! * inner,
    stride: shape[axis]! * inner,
    start: begin[axis]! * inner,
  };
}

function slice(be: MathBackendCPU, x: TensorInfo, begin: number[], size: number[]): TensorInfo {
  const runs = x.dtype === 'float32' && x.shape.length > 0 ? oneAxisRuns(x.shape, begin, size) : null;
  if (runs !== null) {
    const native = be as OneDnnBackendLike;
    const out = uninitialized(sizeOf(size));
    if (out.length > 0)
      native.addon.copyRuns(f32(native, x), out, [runs.runs, runs.run, runs.stride, runs.run, runs.start, 0]);
    return be.makeTensorInfo(size.slice(), x.dtype, out);
  }
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

export const concatConfig = withFallback(tf.Concat, ({ inputs, backend, attrs }) => {
  const xs = inputs as unknown as TensorInfo[];
  const be = backend as OneDnnBackendLike;
  if (xs.length === 0 || !xs.every((x) => x.dtype === 'float32') || xs[0]!.shape.length === 0) return null;
  const axis = tf.util.parseAxisParam((attrs as unknown as ConcatAttrs).axis, xs[0]!.shape)[0]!;
  const shapes = xs.map((x) => x.shape);
  tf.backend_util.assertParamsConsistent(shapes, axis);
  const outShape = tf.backend_util.computeOutShape(shapes, axis);
  const out = uninitialized(sizeOf(outShape));
  const runs = sizeOf(outShape.slice(0, axis));
  const inner = sizeOf(outShape.slice(axis + 1));
  const stride = outShape[axis]! * inner;
  let offset = 0;
  for (const x of xs) {
    const run = x.shape[axis]! * inner;
    if (run > 0 && runs > 0) be.addon.copyRuns(f32(be, x), out, [runs, run, run, stride, 0, offset]);
    offset += run;
  }
  return be.makeTensorInfo(outShape, 'float32', out);
});
