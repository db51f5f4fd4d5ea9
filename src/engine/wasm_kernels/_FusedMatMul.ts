/**
 * _FusedMatMul (matmul + bias + activation) for the wasm backend.
 *
 * The stock kernel shares batch_mat_mul_impl.cc with BatchMatMul: XNNPACK's
 * fully-connected operator when neither operand is transposed and both
 * batches are 1, a naive blocked loop otherwise. That loop is not only slow,
 * it is wrong with a bias or a clamping activation: it indexes a rank-1 bias
 * with i*N+j (clamped to N-1), and adds the bias and clamps once per
 * 48-wide block of the shared dimension.
 *
 * So: XNNPACK-able shapes (batch 1, rank-1 bias of length N or none) run on
 * the stock kernel, with transposes materialised by the Transpose kernel;
 * everything else runs unfused (our BatchMatMul, Add, activation kernel),
 * as the cpu backend does.
 */
import * as tf from '@tensorflow/tfjs-core';
import type {
  _FusedMatMulAttrs,
  KernelBackend,
  KernelConfig,
  KernelFunc,
  NamedAttrMap,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import { batchMatMul } from './BatchMatMul.js';
import { originalWasmKernel, requireOriginalWasmKernel } from './originals.js';
import { release, runWasmKernel, single, swapLastTwo, transpose, WASM } from './util.js';

const sizeOf = (shape: readonly number[]): number => shape.reduce((p, d) => p * d, 1);

/** Applies a fused activation with the stock wasm kernels (linear: returns x itself). */
function activate(
  x: TensorInfo,
  activation: _FusedMatMulAttrs['activation'],
  preluWeights: TensorInfo | undefined,
  leakyreluAlpha: number,
  backend: KernelBackend,
): TensorInfo {
  switch (activation) {
    case 'linear':
      return x;
    case 'relu':
      return runWasmKernel(tf.Relu, { x }, {}, backend);
    case 'relu6':
      return runWasmKernel(tf.Relu6, { x }, {}, backend);
    case 'elu':
      return runWasmKernel(tf.Elu, { x }, {}, backend);
    case 'sigmoid':
      return runWasmKernel(tf.Sigmoid, { x }, {}, backend);
    case 'leakyrelu':
      return runWasmKernel(tf.LeakyRelu, { x }, { alpha: leakyreluAlpha }, backend);
    case 'prelu': {
      if (preluWeights === undefined) throw new Error('branchynet: _FusedMatMul prelu needs preluActivationWeights');
      return runWasmKernel(tf.Prelu, { x, alpha: preluWeights }, {}, backend);
    }
    default:
      throw new Error(`branchynet: _FusedMatMul: unsupported activation '${String(activation)}'`);
  }
}

export const fusedMatMul: KernelFunc = (args) => {
  const { inputs, backend, attrs } = args;
  const original = requireOriginalWasmKernel(tf._FusedMatMul);
  const { transposeA, transposeB, activation = 'linear', leakyreluAlpha = 0.2 } = attrs as unknown as _FusedMatMulAttrs;
  const { a, b, bias, preluActivationWeights } = inputs as {
    a: TensorInfo;
    b: TensorInfo;
    bias?: TensorInfo;
    preluActivationWeights?: TensorInfo;
  };
  const be = backend as KernelBackend;
  const n = b.shape[transposeB ? b.shape.length - 2 : b.shape.length - 1];
  const xnnPath =
    sizeOf(a.shape.slice(0, -2)) === 1 &&
    sizeOf(b.shape.slice(0, -2)) === 1 &&
    (bias == null || (bias.shape.length === 1 && bias.shape[0] === n));

  const temps: TensorInfo[] = [];
  try {
    if (xnnPath) {
      if (!transposeA && !transposeB) return original.kernelFunc(args);
      const a2 = transposeA ? transpose(a, swapLastTwo(a.shape.length), be) : a;
      if (transposeA) temps.push(a2);
      const b2 = transposeB ? transpose(b, swapLastTwo(b.shape.length), be) : b;
      if (transposeB) temps.push(b2);
      return single(
        original.kernelFunc({
          inputs: { ...inputs, a: a2, b: b2 },
          backend,
          attrs: { ...attrs, transposeA: false, transposeB: false },
        }),
        tf._FusedMatMul,
      );
    }
    // Unfused.
    const mmAttrs: NamedAttrMap = { transposeA, transposeB };
    let out = single(batchMatMul({ inputs: { a, b }, backend, attrs: mmAttrs }), tf.BatchMatMul);
    if (bias != null) {
      temps.push(out);
      out = runWasmKernel(tf.Add, { a: out, b: bias }, {}, be);
    }
    const activated = activate(out, activation, preluActivationWeights, leakyreluAlpha, be);
    if (activated !== out) temps.push(out);
    return activated;
  } finally {
    release(be, temps);
  }
};

export const fusedMatMulConfig: KernelConfig = {
  kernelName: tf._FusedMatMul,
  backendName: WASM,
  kernelFunc: fusedMatMul,
  setupFunc: originalWasmKernel(tf._FusedMatMul)?.setupFunc,
};
