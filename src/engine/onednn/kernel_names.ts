/**
 * Names of the fused kernels that only the onednn backend registers (kernels/BatchNorm.ts). Model
 * code checks for them on the active backend (`activeBackendHas`) and otherwise runs its composite
 * ops. Importing this file loads neither the addon nor a backend.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * Batch norm over the last axis in training mode. Inputs { x, gamma, beta } (float32, gamma and
 * beta of shape [channels]), attrs { epsilon }; outputs [y, mean, variance] (the batch's mean and
 * biased variance, shape [channels]). Has a gradient with respect to x, gamma and beta.
 */
export const BATCH_NORM_TRAIN = 'BranchyBatchNormTrain';
/** Its gradient: inputs { dy, x, gamma, mean, variance, dmean, dvariance }; outputs [dx, dgamma, dbeta]. */
export const BATCH_NORM_TRAIN_GRAD = 'BranchyBatchNormTrainGrad';
/** Relu's gradient dy * step(x) in one pass: inputs { dy, x }. */
export const RELU_GRAD = 'BranchyReluGrad';
/**
 * One Adam step of one variable: inputs { value, m, v, gradient } (float32, one shape), attrs
 * { beta1, beta2, epsilon, learningRate, biasCorrection1, biasCorrection2 } (the corrections are
 * 1 - beta1^t and 1 - beta2^t); outputs [newValue, newM, newV], fresh tensors. The same float32
 * operations, in the same order, as tfjs's AdamOptimizer (src/train/fused_adam.ts uses it).
 */
export const ADAM_UPDATE = 'BranchyAdamUpdate';
/**
 * Softmax cross-entropy per row: inputs { logits, labels } (float32 [rows, classes]; labels one-hot
 * or any weights); outputs [loss ([rows]), probs (softmax of the logits)]. Has a gradient with
 * respect to both inputs.
 */
export const SOFTMAX_CROSS_ENTROPY = 'BranchySoftmaxCrossEntropy';
/** Its gradient with respect to the logits: inputs { dy ([rows]), probs, labels }; output dlogits. */
export const SOFTMAX_CROSS_ENTROPY_GRAD = 'BranchySoftmaxCrossEntropyGrad';

/**
 * Whether the active backend registers `kernelName`: model code asks this of the kernels only a
 * native backend has, instead of checking backend names.
 */
export function activeBackendHas(kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.getBackend()) !== undefined;
}
