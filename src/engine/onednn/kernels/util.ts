/** Shared plumbing of the onednn kernels: typed-array access, cpu fallbacks, geometry. */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { ConvGeometry, OneDnnAddon, PoolGeometry } from '../addon.js';
import { outputPool } from '../output_pool.js';

export const ONEDNN = 'onednn';

/** What every onednn kernel's backend offers: the cpu backend's storage plus the addon. */
export interface OneDnnBackendLike extends MathBackendCPU {
  readonly addon: OneDnnAddon;
}

/** The Float32Array behind a float32 tensor (no copy). */
export function f32(backend: MathBackendCPU, t: TensorInfo): Float32Array {
  return backend.data.get(t.dataId).values as Float32Array;
}

export function allFloat32(...ts: (TensorInfo | undefined)[]): boolean {
  return ts.every((t) => t === undefined || t.dtype === 'float32');
}

/**
 * An output array for a native kernel, not zero-filled (every native kernel writes all of its
 * output, so a memset would be wasted work on memory-bound ops), reused from a disposed tensor
 * where one of that length is free (output_pool.ts).
 */
export function uninitialized(n: number): Float32Array {
  return outputPool.take(n);
}

export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** The cpu backend's kernel of that name (the onednn backend is a cpu backend, so it can run it). */
export function cpuKernel(name: string): KernelFunc {
  const config = tf.getKernel(name, 'cpu');
  if (config === undefined) throw new Error(`onednn: the cpu backend has no ${name} kernel to fall back to`);
  return config.kernelFunc;
}

/** A kernel config that runs `native` and the cpu kernel whenever `native` returns null. */
export function withFallback(
  name: string,
  native: (args: Parameters<KernelFunc>[0]) => TensorInfo | null,
): KernelConfig {
  let fallback: KernelFunc | undefined;
  return {
    kernelName: name,
    backendName: ONEDNN,
    kernelFunc: (args) => native(args) ?? (fallback ??= cpuKernel(name))(args),
  };
}

/**
 * oneDNN's geometry of a tfjs convolution, or null when oneDNN cannot express it
 * (NCHW, depthwise, empty tensors, or output sizes that do not follow
 * floor((in + pads - extent) / stride) + 1, e.g. dimRoundingMode 'ceil').
 */
export function convGeometry(info: tf.backend_util.Conv2DInfo): ConvGeometry | null {
  const {
    batchSize: n,
    inHeight: h,
    inWidth: w,
    inChannels: ci,
    outChannels: co,
    filterHeight: fh,
    filterWidth: fw,
    outHeight: ho,
    outWidth: wo,
    strideHeight: sh,
    strideWidth: sw,
    dilationHeight: dh,
    dilationWidth: dw,
    padInfo: { top: pt, left: pl, bottom: pb, right: pr },
    dataFormat,
  } = info;
  if (dataFormat !== 'channelsLast') return null;
  if (n * h * w * ci * co * ho * wo === 0) return null;
  if (pt < 0 || pl < 0 || pb < 0 || pr < 0) return null;
  const out = (i: number, a: number, b: number, f: number, s: number, d: number): number =>
    Math.floor((i + a + b - ((f - 1) * d + 1)) / s) + 1;
  if (out(h, pt, pb, fh, sh, dh) !== ho || out(w, pl, pr, fw, sw, dw) !== wo) return null;
  return [n, h, w, ci, co, fh, fw, ho, wo, sh, sw, dh, dw, pt, pl, pb, pr];
}

/** Geometry of a max pooling, or null when the native kernel does not cover it (dilation, NCHW, empty). */
export function poolGeometry(info: tf.backend_util.Conv2DInfo): PoolGeometry | null {
  const {
    batchSize: n,
    inHeight: h,
    inWidth: w,
    inChannels: c,
    outHeight: ho,
    outWidth: wo,
    filterHeight: fh,
    filterWidth: fw,
    strideHeight: sh,
    strideWidth: sw,
    padInfo: { top: pt, left: pl },
  } = info;
  if (info.dataFormat !== 'channelsLast' || info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  if (n * h * w * c * ho * wo === 0) return null;
  return [n, h, w, c, ho, wo, fh, fw, sh, sw, pt, pl];
}
