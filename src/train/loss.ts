import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node build registers no op gradients; the union package's Node build does.
import '@tensorflow/tfjs';
import { activeBackendHas, SOFTMAX_CROSS_ENTROPY } from '../engine/onednn/kernel_names.js';

/** Whether the active backend has the native per-row softmax cross-entropy for these tensors. */
function nativeCrossEntropy(logits: tf.Tensor, labels: tf.Tensor): boolean {
  return (
    logits.rank === 2 && logits.dtype === 'float32' && labels.rank === 2 && activeBackendHas(SOFTMAX_CROSS_ENTROPY)
  );
}

/**
 * Mean softmax cross-entropy of a batch of logits [rows, classes] against label rows (one-hot,
 * or probabilities): the mean of logsumexp(z) - sum(labels * z). One native kernel on onednn.
 */
export function softmaxCrossEntropy(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    if (nativeCrossEntropy(logits, labels)) {
      // tf.oneHot gives int32 labels.
      const rows = labels.dtype === 'float32' ? labels : tf.cast(labels, 'float32');
      const [perRow] = tf.engine().runKernel(SOFTMAX_CROSS_ENTROPY, { logits, labels: rows }) as tf.Tensor[];
      return tf.mean(perRow!) as tf.Scalar;
    }
    return tf.mean(tf.sub(tf.logSumExp(logits, 1), tf.sum(tf.mul(logits, labels), 1))) as tf.Scalar;
  });
}

/**
 * Self-distillation: every exit but the last also learns the last exit's answer softened by
 * `temperature` (soft-target cross-entropy, scaled by temperature² as in Hinton et al. so that its
 * gradient keeps its size), with `weight` against the exit's own loss. The last exit is the
 * teacher only: no gradient flows back into it from these terms.
 */
export interface Distillation {
  weight: number;
  temperature: number;
}

export const DEFAULT_DISTILL_TEMPERATURE = 3;

/** The value of `x`, through which no gradient flows back (tfjs has no stop-gradient op). */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  const identity = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.clone(args[0] as tf.Tensor),
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => tf.zerosLike(dy as tf.Tensor),
  }));
  return identity(x) as T;
}

/** Mean cross-entropy of softmax(logits / temperature) against the probability rows `target`. */
function softTargetCrossEntropy(logits: tf.Tensor, target: tf.Tensor, temperature: number): tf.Scalar {
  return tf.tidy(() => softmaxCrossEntropy(tf.div(logits, temperature), target));
}

/**
 * The joint BranchyNet loss: the weighted sum of every exit's cross-entropy (`perExit`, each
 * term), plus, with `distill`, each earlier exit's distillation term under the same weight.
 */
export function jointLoss(
  exitLogits: tf.Tensor[],
  oneHot: tf.Tensor,
  weights: number[],
  distill?: Distillation,
): { total: tf.Scalar; perExit: tf.Scalar[] } {
  const perExit = exitLogits.map((l) => softmaxCrossEntropy(l, oneHot));
  let terms = perExit.map((l, k) => tf.mul(l, weights[k]) as tf.Scalar);
  const last = exitLogits.length - 1;
  if (distill && distill.weight > 0 && last > 0) {
    const { weight, temperature } = distill;
    const teacher = stopGradient(tf.softmax(tf.div(exitLogits[last], temperature)));
    const scale = weight * temperature * temperature;
    terms = terms.map((t, k) =>
      k === last
        ? t
        : (tf.add(
            t,
            tf.mul(softTargetCrossEntropy(exitLogits[k], teacher, temperature), weights[k] * scale),
          ) as tf.Scalar),
    );
  }
  // tf.addN has no gradient in tfjs: sum the weighted terms pairwise.
  const total = terms.reduce((a, b) => tf.add(a, b));
  return { total, perExit };
}
