/**
 * BatchMatMul for the wasm backend. The stock kernel only takes the XNNPACK
 * fully-connected path when neither operand is transposed (and the batch is
 * 1); with transposeA/transposeB it falls back to naive blocked loops (~20x
 * slower at 512x784x128). Here the transposes are materialised with the
 * Transpose kernel and the plain stock kernel does the product. The
 * non-transposed case is delegated unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BatchMatMulAttrs, KernelBackend, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { requireOriginalWasmKernel, originalWasmKernel } from './originals.js';
import { release, single, swapLastTwo, transpose, WASM } from './util.js';

export const batchMatMul: KernelFunc = (args) => {
  const { inputs, backend, attrs } = args;
  const original = requireOriginalWasmKernel(tf.BatchMatMul);
  const { transposeA, transposeB } = attrs as unknown as BatchMatMulAttrs;
  if (!transposeA && !transposeB) return original.kernelFunc(args);

  const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
  const be = backend as KernelBackend;
  const temps: TensorInfo[] = [];
  try {
    const a2 = transposeA ? transpose(a, swapLastTwo(a.shape.length), be) : a;
    if (transposeA) temps.push(a2);
    const b2 = transposeB ? transpose(b, swapLastTwo(b.shape.length), be) : b;
    if (transposeB) temps.push(b2);
    return single(
      original.kernelFunc({
        inputs: { a: a2, b: b2 },
        backend,
        attrs: { ...attrs, transposeA: false, transposeB: false },
      }),
      tf.BatchMatMul,
    );
  } finally {
    release(be, temps);
  }
};

export const batchMatMulConfig: KernelConfig = {
  kernelName: tf.BatchMatMul,
  backendName: WASM,
  kernelFunc: batchMatMul,
  // The stock kernel binds its wasm function in its setup; keep it bound.
  setupFunc: originalWasmKernel(tf.BatchMatMul)?.setupFunc,
};
