/**
 * BatchMatMul and _FusedMatMul (bias, relu) on oneDNN's sgemm. Batch dimensions
 * either match or one side has a single matrix; other broadcasts, dtypes and
 * activations fall back to the cpu kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BatchMatMulAttrs, TensorInfo, _FusedMatMulAttrs } from '@tensorflow/tfjs-core';
import { allFloat32, f32, sizeOf, uninitialized, withFallback, type OneDnnBackendLike } from './util.js';

function matMul(
  be: OneDnnBackendLike,
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  bias: TensorInfo | undefined,
  relu: boolean,
): TensorInfo | null {
  if (!allFloat32(a, b, bias) || a.shape.length < 2 || b.shape.length < 2) return null;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const [m, k] = transposeA ? [a.shape[ra - 1]!, a.shape[ra - 2]!] : [a.shape[ra - 2]!, a.shape[ra - 1]!];
  const [k2, n] = transposeB ? [b.shape[rb - 1]!, b.shape[rb - 2]!] : [b.shape[rb - 2]!, b.shape[rb - 1]!];
  if (k !== k2) return null; // the cpu kernel reports the mismatch
  const aOuter = a.shape.slice(0, -2);
  const bOuter = b.shape.slice(0, -2);
  let outer: number[];
  try {
    outer = tf.backend_util.assertAndGetBroadcastShape(aOuter, bOuter);
  } catch {
    return null;
  }
  const batch = sizeOf(outer);
  const batchA = sizeOf(aOuter);
  const batchB = sizeOf(bOuter);
  if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1) || batch * m * n * k === 0) return null;
  if (bias !== undefined && (sizeOf(bias.shape) !== n || bias.shape[bias.shape.length - 1] !== n)) return null;
  const c = uninitialized(batch * m * n);
  be.addon.matMul(
    f32(be, a),
    f32(be, b),
    c,
    [batch, m, n, k, batchA === batch ? 1 : 0, batchB === batch ? 1 : 0],
    transposeA,
    transposeB,
    bias === undefined ? null : f32(be, bias),
    relu,
  );
  return be.makeTensorInfo([...outer, m, n], 'float32', c);
}

export const batchMatMulConfig = withFallback(tf.BatchMatMul, ({ inputs, backend, attrs }) => {
  const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = attrs as unknown as BatchMatMulAttrs;
  return matMul(backend as OneDnnBackendLike, a, b, transposeA, transposeB, undefined, false);
});

export const fusedMatMulConfig = withFallback(tf._FusedMatMul, ({ inputs, backend, attrs }) => {
  const { a, b, bias, preluActivationWeights } = inputs as {
    a: TensorInfo;
    b: TensorInfo;
    bias?: TensorInfo;
    preluActivationWeights?: TensorInfo;
  };
  const { transposeA, transposeB, activation } = attrs as unknown as _FusedMatMulAttrs;
  if (preluActivationWeights != null || (activation !== 'linear' && activation !== 'relu')) return null;
  return matMul(backend as OneDnnBackendLike, a, b, transposeA, transposeB, bias ?? undefined, activation === 'relu');
});
