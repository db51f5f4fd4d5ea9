import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node build registers no op gradients; the union package's Node build does.
import '@tensorflow/tfjs';

/** Mean softmax cross-entropy of a batch of logits against one-hot labels. */
export function softmaxCrossEntropy(logits: tf.Tensor, oneHot: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.sub(tf.logSumExp(logits, 1), tf.sum(tf.mul(logits, oneHot), 1))) as tf.Scalar);
}

/** The joint BranchyNet loss: the weighted sum of every exit's cross-entropy, and each term. */
export function jointLoss(exitLogits: tf.Tensor[], oneHot: tf.Tensor, weights: number[]): { total: tf.Scalar; perExit: tf.Scalar[] } {
  const perExit = exitLogits.map((l) => softmaxCrossEntropy(l, oneHot));
  // tf.addN has no gradient in tfjs: sum the weighted terms pairwise.
  const total = perExit.map((l, k) => tf.mul(l, weights[k]) as tf.Scalar).reduce((a, b) => tf.add(a, b));
  return { total, perExit };
}
