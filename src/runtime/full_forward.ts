import * as tf from '@tensorflow/tfjs-core';
import type { Dataset } from '../data/dataset.js';
import { imageSize } from '../data/dataset.js';
import type { BranchyNet } from '../model/network.js';
import { argmaxRow } from './exit_rule.js';

/** Logits of every exit for every sample (N x classes each), by the full forward pass. */
export function allExitLogits(net: BranchyNet, data: Dataset, batchSize = 1000): Float32Array[] {
  const classes = net.spec.classes;
  const out = Array.from({ length: net.exits }, () => new Float32Array(data.count * classes));
  const size = imageSize(data);
  for (let start = 0; start < data.count; start += batchSize) {
    const n = Math.min(batchSize, data.count - start);
    const logits = tf.tidy(() => {
      const x = tf.tensor4d(data.images.subarray(start * size, (start + n) * size), [n, ...data.shape]);
      return net.forwardAll(x, { training: false });
    });
    logits.forEach((l, k) => out[k].set(l.dataSync(), start * classes));
    tf.dispose(logits);
  }
  return out;
}

export function accuracyOf(logits: Float32Array, labels: Uint8Array, classes: number): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (argmaxRow(logits, i, classes) === labels[i]) correct++;
  return labels.length === 0 ? 0 : correct / labels.length;
}
