/**
 * Helpers shared by our wasm kernels.
 *
 * Our kernels are compositions of the stock XNNPACK-backed wasm kernels
 * (Conv2D, Transpose, PadV2, ...). They call those kernels the way the wasm
 * backend's own kernels call each other: directly, at backend level, with
 * TensorInfos. Nothing goes through the engine, so no engine tensors are
 * created and nothing is recorded on the gradient tape; every intermediate
 * TensorInfo must be released with `backend.disposeData` (see `release`).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelBackend, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';

export const WASM = 'wasm';

/** Runs the kernel `kernelName` currently registered for the wasm backend. */
export function runWasmKernel(
  kernelName: string,
  inputs: NamedTensorInfoMap,
  attrs: NamedAttrMap,
  backend: KernelBackend,
): TensorInfo {
  const config = tf.getKernel(kernelName, WASM);
  if (config === undefined) {
    throw new Error(`branchynet: wasm kernel '${kernelName}' is not registered`);
  }
  return single(config.kernelFunc({ inputs, attrs, backend }), kernelName);
}

/** Narrows a kernel result to its single output. */
export function single(out: TensorInfo | TensorInfo[], kernelName: string): TensorInfo {
  if (Array.isArray(out)) {
    if (out.length !== 1) throw new Error(`branchynet: kernel '${kernelName}' returned ${out.length} outputs`);
    return out[0]!;
  }
  return out;
}

/** Releases intermediate TensorInfos (skips null/undefined and the excluded ones, e.g. kernel inputs). */
export function release(
  backend: KernelBackend,
  infos: ReadonlyArray<TensorInfo | null | undefined>,
  keep: ReadonlyArray<TensorInfo> = [],
): void {
  for (const info of infos) {
    if (info != null && !keep.includes(info)) backend.disposeData(info.dataId);
  }
}

export function transpose(x: TensorInfo, perm: number[], backend: KernelBackend): TensorInfo {
  return runWasmKernel(tf.Transpose, { x }, { perm }, backend);
}

export function reshape(x: TensorInfo, shape: number[], backend: KernelBackend): TensorInfo {
  return runWasmKernel(tf.Reshape, { x }, { shape }, backend);
}

export function slice(x: TensorInfo, begin: number[], size: number[], backend: KernelBackend): TensorInfo {
  return runWasmKernel(tf.Slice, { x }, { begin, size }, backend);
}

/** NHWC stride-1 convolution with explicit (non-negative) padding and optional dilation. */
export function conv2dExplicit(
  x: TensorInfo,
  filter: TensorInfo,
  pads: { top: number; bottom: number; left: number; right: number },
  dilations: [number, number],
  backend: KernelBackend,
): TensorInfo {
  const pad = [
    [0, 0],
    [pads.top, pads.bottom],
    [pads.left, pads.right],
    [0, 0],
  ];
  return runWasmKernel(
    tf.Conv2D,
    { x, filter },
    { strides: [1, 1], pad, dilations, dataFormat: 'NHWC', dimRoundingMode: 'floor' },
    backend,
  );
}

/** Permutation swapping the two innermost axes of a rank-`rank` tensor. */
export function swapLastTwo(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 1] = rank - 2;
  perm[rank - 2] = rank - 1;
  return perm;
}

export function assertNHWC(dataFormat: string, kernelName: string): void {
  if (dataFormat !== 'NHWC') {
    throw new Error(`branchynet: wasm ${kernelName} supports dataFormat 'NHWC' only, got '${dataFormat}'`);
  }
}

export type Shape4D = [number, number, number, number];

export function as4D(shape: readonly number[], what: string): Shape4D {
  if (shape.length !== 4) throw new Error(`branchynet: ${what} must be rank 4, got shape [${shape.join(',')}]`);
  return [shape[0]!, shape[1]!, shape[2]!, shape[3]!];
}
