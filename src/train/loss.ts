import * as tf from '@tensorflow/tfjs-core';

/** Mean softmax cross-entropy of a batch of logits against one-hot labels. */
export function softmaxCrossEntropy(logits: tf.Tensor, oneHot: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.sub(tf.logSumExp(logits, 1), tf.sum(tf.mul(logits, oneHot), 1))) as tf.Scalar);
}

/** The joint BranchyNet loss: the weighted sum of every exit's cross-entropy, and each term. */
export function jointLoss(exitLogits: tf.Tensor[], oneHot: tf.Tensor, weights: number[]): { total: tf.Scalar; perExit: tf.Scalar[] } {
  const perExit = exitLogits.map((l) => softmaxCrossEntropy(l, oneHot));
  const total = tf.addN(perExit.map((l, k) => tf.mul(l, weights[k]))) as tf.Scalar;
  return { total, perExit };
}
