/**
 * Softmax cross-entropy per row (the training loss of every exit) and its gradient, one native
 * pass each instead of the ~10 elementwise and reduction ops of the composite. onednn only; the
 * loss (src/train/loss.ts) uses it while onednn is the active backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, KernelConfig, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import { SOFTMAX_CROSS_ENTROPY, SOFTMAX_CROSS_ENTROPY_GRAD } from '../kernel_names.js';
import { f32, ONEDNN, uninitialized, type OneDnnBackendLike } from './util.js';

/** [rows, classes] of float32 [rows, classes] tensors of one shape. */
function rowsAndClasses(name: string, ...ts: TensorInfo[]): [number, number] {
  const [rows, classes] = ts[0]!.shape;
  for (const t of ts) {
    if (t.dtype !== 'float32' || t.shape.length !== 2 || t.shape[0] !== rows || t.shape[1] !== classes) {
      throw new Error(`${name}: float32 [rows, classes] tensors of one shape only, got ${t.dtype} [${t.shape}]`);
    }
  }
  if (!rows || !classes) throw new Error(`${name}: empty input`);
  return [rows, classes];
}

export const softmaxCrossEntropyConfig: KernelConfig = {
  kernelName: SOFTMAX_CROSS_ENTROPY,
  backendName: ONEDNN,
  kernelFunc: ({ inputs, backend }) => {
    const { logits, labels } = inputs as { logits: TensorInfo; labels: TensorInfo };
    const [rows, classes] = rowsAndClasses(SOFTMAX_CROSS_ENTROPY, logits, labels);
    const be = backend as OneDnnBackendLike;
    const loss = uninitialized(rows);
    const probs = uninitialized(rows * classes);
    be.addon.softmaxCrossEntropy(f32(be, logits), f32(be, labels), loss, probs, [rows, classes]);
    return [be.makeTensorInfo([rows], 'float32', loss), be.makeTensorInfo([rows, classes], 'float32', probs)];
  },
};

export const softmaxCrossEntropyGradConfig: KernelConfig = {
  kernelName: SOFTMAX_CROSS_ENTROPY_GRAD,
  backendName: ONEDNN,
  kernelFunc: ({ inputs, backend }) => {
    const { dy, probs, labels } = inputs as { dy: TensorInfo; probs: TensorInfo; labels: TensorInfo };
    const [rows, classes] = rowsAndClasses(SOFTMAX_CROSS_ENTROPY_GRAD, probs, labels);
    if (dy.dtype !== 'float32' || dy.shape.length !== 1 || dy.shape[0] !== rows)
      throw new Error(`${SOFTMAX_CROSS_ENTROPY_GRAD}: dy must be float32 [${rows}]`);
    const be = backend as OneDnnBackendLike;
    const dlogits = uninitialized(rows * classes);
    be.addon.softmaxCrossEntropyGrad(f32(be, dy), f32(be, probs), f32(be, labels), dlogits, [rows, classes]);
    return be.makeTensorInfo([rows, classes], 'float32', dlogits);
  },
};

/**
 * The gradient of SOFTMAX_CROSS_ENTROPY's per-row loss logsumexp(z) - sum(labels * z): the native
 * kernel for the logits, dy * (probs - labels); for the labels (constants in training, so rarely
 * asked for) -z * dy by ops. The probs output carries no gradient of its own.
 */
export const softmaxCrossEntropyGradient: GradConfig = {
  kernelName: SOFTMAX_CROSS_ENTROPY,
  inputsToSave: ['logits', 'labels'],
  outputsToSave: [false, true],
  gradFunc: (dys: Tensor | Tensor[], saved: Tensor[]) => {
    const [dy] = dys as Tensor[];
    const [logits, labels, probs] = saved;
    return {
      logits: () =>
        tf.engine().runKernel(SOFTMAX_CROSS_ENTROPY_GRAD, { dy: dy!, probs: probs!, labels: labels! }) as Tensor,
      labels: () => tf.mul(tf.neg(logits!), tf.expandDims(dy!, 1)),
    };
  },
};
