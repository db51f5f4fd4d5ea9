/**
 * The 'onednn' tfjs backend: tfjs-backend-cpu's backend and kernels (tensors in
 * JS-owned typed arrays), with the heavy kernels replaced by oneDNN ones that
 * work on those arrays in place (kernels/). Needs the addon (addon.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendValues, DataId, DataType, KernelConfig } from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { loadOneDnnAddon, type OneDnnAddon } from './addon.js';
import { conv2DConfig, fusedConv2DConfig } from './kernels/Conv2D.js';
import { conv2DBackpropInputConfig } from './kernels/Conv2DBackpropInput.js';
import { conv2DBackpropFilterConfig } from './kernels/Conv2DBackpropFilter.js';
import { batchMatMulConfig, fusedMatMulConfig } from './kernels/BatchMatMul.js';
import { lrnConfig, lrnGradConfig } from './kernels/LRN.js';
import { avgPoolConfig, avgPoolGradConfig, maxPoolConfig, maxPoolGradConfig } from './kernels/MaxPool.js';
import {
  addConfig,
  multiplyConfig,
  negConfig,
  realDivConfig,
  reluConfig,
  sqrtConfig,
  squareConfig,
  stepConfig,
  subConfig,
} from './kernels/Elementwise.js';
import { concatConfig, sliceConfig, splitVConfig } from './kernels/Slice.js';
import { meanConfig, sumConfig } from './kernels/Sum.js';
import {
  batchNormTrainConfig,
  batchNormTrainGradConfig,
  batchNormTrainGradient,
  reluGradConfig,
  reluGradient,
} from './kernels/BatchNorm.js';
import { adamUpdateConfig } from './kernels/Adam.js';
import {
  softmaxCrossEntropyConfig,
  softmaxCrossEntropyGradConfig,
  softmaxCrossEntropyGradient,
} from './kernels/SoftmaxCrossEntropy.js';
import { ONEDNN } from './kernels/util.js';
import { outputPool } from './output_pool.js';

export { ONEDNN };

/** The kernels that run on oneDNN; every other kernel is the cpu backend's. */
export const ONEDNN_KERNEL_CONFIGS: readonly KernelConfig[] = [
  conv2DConfig,
  fusedConv2DConfig,
  conv2DBackpropInputConfig,
  conv2DBackpropFilterConfig,
  batchMatMulConfig,
  fusedMatMulConfig,
  maxPoolConfig,
  maxPoolGradConfig,
  avgPoolConfig,
  avgPoolGradConfig,
  lrnConfig,
  lrnGradConfig,
  sumConfig,
  meanConfig,
  sliceConfig,
  splitVConfig,
  concatConfig,
  addConfig,
  subConfig,
  multiplyConfig,
  realDivConfig,
  reluConfig,
  stepConfig,
  sqrtConfig,
  squareConfig,
  negConfig,
  batchNormTrainConfig,
  batchNormTrainGradConfig,
  reluGradConfig,
  adamUpdateConfig,
  softmaxCrossEntropyConfig,
  softmaxCrossEntropyGradConfig,
];

/** Relu gradients registered by registerOneDnnGradients (not to be wrapped again). */
const ourReluGradients = new WeakSet<object>();

/**
 * The gradients of the onednn-only kernels, and Relu's gradient rerouted to the native one-pass
 * kernel while onednn is active (the gradient registered before, normally tfjs's, everywhere else).
 * tfjs's gradients register when '@tensorflow/tfjs' is imported: if that happens after this, theirs
 * wins again (correct, only slower).
 */
function registerOneDnnGradients(): void {
  if (tf.getGradient(batchNormTrainGradient.kernelName) === undefined) tf.registerGradient(batchNormTrainGradient);
  if (tf.getGradient(softmaxCrossEntropyGradient.kernelName) === undefined)
    tf.registerGradient(softmaxCrossEntropyGradient);
  const stock = tf.getGradient(tf.Relu);
  if (stock !== undefined && ourReluGradients.has(stock)) return;
  const ours = reluGradient(stock);
  ourReluGradients.add(ours);
  tf.registerGradient(ours);
}

/** Below tfjs's cpu (1) and wasm (2): never chosen unless asked for. */
const ONEDNN_PRIORITY = 0;

export class OneDnnBackend extends MathBackendCPU {
  constructor(readonly addon: OneDnnAddon) {
    super();
    // MathBackendCPU prints an "install tfjs-node" banner on first use in Node: not our advice.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  // Output-array reuse (output_pool.ts): tensors' arrays are registered when written, marked
  // never-reusable when read out, and released to the pool when their last reference goes.
  override write(values: BackendValues, shape: number[], dtype: DataType): DataId {
    outputPool.register(values);
    return super.write(values, shape, dtype);
  }

  override move(dataId: DataId, values: BackendValues, shape: number[], dtype: DataType, refCount: number): void {
    outputPool.register(values);
    super.move(dataId, values, shape, dtype, refCount);
  }

  override readSync(dataId: DataId): BackendValues {
    outputPool.expose(this.data.get(dataId)?.values);
    return super.readSync(dataId);
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const data = this.data.get(dataId);
    // True once the data is gone: its last reference was disposed (or it was forced).
    const gone = super.disposeData(dataId, force);
    if (gone && data !== undefined) outputPool.release(data.values);
    return gone;
  }

  override dispose(): void {
    outputPool.clear();
    super.dispose();
  }
}

/**
 * Registers the 'onednn' backend factory and its kernels (the cpu backend's
 * configs under the name 'onednn', then ours over them). Idempotent. Returns
 * null on success, else why the backend is unavailable.
 */
export function registerOneDnnBackend(): string | null {
  const { addon, reason } = loadOneDnnAddon();
  if (addon === null) return reason;
  registerOneDnnGradients();
  if (tf.findBackendFactory(ONEDNN) != null) return null;
  for (const config of tf.getKernelsForBackend('cpu')) {
    if (tf.getKernel(config.kernelName, ONEDNN) === undefined) tf.registerKernel({ ...config, backendName: ONEDNN });
  }
  for (const config of ONEDNN_KERNEL_CONFIGS) {
    if (tf.getKernel(config.kernelName, ONEDNN) !== undefined) tf.unregisterKernel(config.kernelName, ONEDNN);
    tf.registerKernel(config);
  }
  tf.registerBackend(ONEDNN, () => new OneDnnBackend(addon), ONEDNN_PRIORITY);
  return null;
}
