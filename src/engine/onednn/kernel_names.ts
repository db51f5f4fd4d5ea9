/**
 * Names of the fused kernels that only the onednn backend registers (kernels/BatchNorm.ts). Model
 * code checks for them on the active backend (tf.getKernel) and otherwise runs its composite ops.
 * Constants only: importing this file loads nothing.
 */

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
